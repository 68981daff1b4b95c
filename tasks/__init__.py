"""Prefect tasks: thin wrappers over attnviz/ and warehouse/ that add retries, names and logs."""
