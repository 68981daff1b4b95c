"""Prefect flows composing the tasks in ``tasks/``. Only the CLI imports this package."""
