"""A run's life in the warehouse: its key, its ``runs`` row, and the snapshot after it."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from prefect import task
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from attnviz import config
from tasks.writer import open_warehouse, run_slot
from warehouse.locks import file_lock, runs_lock_path
from warehouse.runs import finish_run, start_run, work_key
from warehouse.snapshot import publish_snapshot

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def scheduled_as_of(every: timedelta) -> datetime:
    """The default as-of of a run: its scheduled start, floored to a multiple of ``every``.

    Flooring makes the as-of a logical time: a late start, a retry from the UI or a
    second manual run in the same period is the same work, so it replaces rows
    instead of adding them. Flooring to the bar interval loses no bar, since bars
    close on multiples of it.
    """
    scheduled = datetime.fromisoformat(flow_run.scheduled_start_time.isoformat())
    return EPOCH + (scheduled.astimezone(UTC) - EPOCH) // every * every


@task(name="open-run", task_run_name="open {flow}")
def open_run(flow: str, parameters: dict[str, Any], as_of: datetime) -> str:
    """Record the work as running and return its run id (its work key)."""
    run_id = work_key(flow, parameters, as_of)
    with open_warehouse() as con:
        attempt = start_run(con, run_id, str(flow_run.id), flow, parameters, as_of)
    if attempt > 1:
        get_run_logger().info("%s: attempt %d at this work; its rows are replaced", run_id, attempt)
    return run_id


@task(name="close-run")
def close_run(run_id: str, status: str, message: str | None = None) -> None:
    """Record how the run ended, with its counts."""
    with open_warehouse() as con:
        finish_run(con, run_id, status, message)


@task(name="publish-snapshot")
def publish() -> bool:
    """Publish the read-only snapshot for readers, unless another run is still in progress."""
    published = publish_snapshot(
        config.warehouse_path(), config.snapshot_path(), config.write_wait_seconds()
    )
    get_run_logger().info(
        "snapshot %s" if published else "snapshot %s left as it was: another run is in progress",
        config.snapshot_path(),
    )
    return published


@contextmanager
def recorded_run(flow: str, parameters: dict[str, Any], as_of: datetime) -> Iterator[str]:
    """Run the block as the work (flow, parameters, as_of), recorded in ``runs``.

    The run first takes the warehouse's concurrency slot (:func:`tasks.writer.run_slot`).
    Its row is opened, then closed as succeeded or failed with the reason; while it
    is open the run holds the shared runs lock, and when it ends it publishes the
    snapshot, so readers see the warehouse between runs, never during one.
    """
    database = config.warehouse_path()
    try:
        with (
            run_slot(),
            file_lock(
                runs_lock_path(database), config.write_wait_seconds(), shared=True, what="runs lock"
            ),
        ):
            run_id = open_run(flow, parameters, as_of)
            try:
                yield run_id
            except BaseException as error:
                close_run(run_id, "failed", f"{type(error).__name__}: {error}")
                raise
            close_run(run_id, "succeeded")
    finally:
        publish()
