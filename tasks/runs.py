"""A run's life in the warehouse: its key, its ``runs`` row, and the snapshot after it."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from attnviz import config
from attnviz.bars import floor
from attnviz.faults import crash_point
from tasks.phases import peak_rss_mb, phases_markdown, take_totals
from tasks.turns import open_warehouse, run_turn
from warehouse.runs import EndStatus, finish_run, get_run, mark_crashed, start_run, work_key
from warehouse.snapshot import check_live, publish_snapshot


def scheduled_as_of(interval: str) -> datetime:
    """The default as-of of a run: its scheduled start, floored to the ``interval`` grid.

    Flooring makes the as-of a logical time: a late start, a retry from the UI or a
    second manual run in the same period is the same work, so it replaces rows
    instead of adding them. Flooring to the bar interval loses no bar, since bars
    close on its grid.
    """
    scheduled = datetime.fromisoformat(flow_run.scheduled_start_time.isoformat())
    return floor(scheduled, interval)


@task(name="open-run", task_run_name="open {flow}")
def open_run(run_id: str, flow: str, parameters: dict[str, Any], as_of: datetime) -> None:
    """Check the warehouse, mark the runs whose process died as crashed, record this one.

    Called with the runs lock held: no other run is in progress, so a row still
    ``running`` is one whose process died without closing it.
    """
    logger = get_run_logger()
    check_live(config.warehouse_path(), config.snapshot_path(), config.write_wait_seconds())
    with open_warehouse() as con:
        crashed = mark_crashed(con)
        attempt = start_run(con, run_id, str(flow_run.id), flow, parameters, as_of)
    for run in crashed:
        logger.warning(
            "run %s (pid %s on %s, started %s) had crashed: its process ended without "
            "closing it; marked crashed",
            run.run_id,
            run.pid,
            run.host,
            run.started_at,
        )
    if attempt > 1:
        logger.info("%s: attempt %d at this work; its rows are replaced", run_id, attempt)


@task(name="close-run")
def close_run(run_id: str, status: EndStatus, message: str | None = None) -> None:
    """Record how the run ended, with its counts, its phases' times and its peak memory.

    The phases are also published as the ``run-summary`` artifact.
    """
    totals, peak = take_totals(), peak_rss_mb()
    phases = pl.DataFrame(
        [{"phase": name, **asdict(total)} for name, total in totals.items()],
        schema={"phase": pl.String, "seconds": pl.Float64, "tasks": pl.Int64,
                "peak_rss_mb": pl.Float64},
    )  # fmt: skip
    with open_warehouse() as con:
        finish_run(con, run_id, status, message, phases=phases, peak_rss_mb=peak)
        run = get_run(con, run_id)
    assert run is not None and run.ended_at is not None, "the run was just closed"
    wall = (run.ended_at - run.started_at).total_seconds()
    create_markdown_artifact(
        f"### {run_id}: {status}\n\n{phases_markdown(totals, wall, peak)}",
        key="run-summary",
        description="Where the run's time and memory went",
    )


@task(name="publish-snapshot")
def publish() -> bool:
    """Publish the read-only snapshot for readers, unless another run is still in progress."""
    crash_point("publish")
    published = publish_snapshot(
        config.warehouse_path(), config.snapshot_path(), config.write_wait_seconds()
    )
    get_run_logger().info(
        "snapshot %s" if published else "snapshot %s left as it was: another run is in progress",
        config.snapshot_path(),
    )
    return published


def _close_failed(run_id: str, error: BaseException) -> None:
    """Record the run as failed with ``error``; if even that fails (a full disk), log it.

    The run's own error is the one to end with; its row then stays ``running`` and the
    next run marks it crashed.
    """
    try:
        close_run(run_id, "failed", f"{type(error).__name__}: {error}")
    except Exception as closing:
        get_run_logger().warning("could not record run %s as failed: %s", run_id, closing)


@contextmanager
def recorded_run(flow: str, parameters: dict[str, Any], as_of: datetime) -> Iterator[str]:
    """Run the block as the work (flow, parameters, as_of), recorded in ``runs``.

    The run first takes its turn at the warehouse (:func:`tasks.turns.run_turn`),
    which it holds until its row is closed. Its row is opened, then closed as
    succeeded or failed with the reason (a SIGTERM too, raised as an exception by
    Prefect; only a process that dies outright leaves it open, for the next run to
    mark crashed). When it ends it publishes the snapshot, so readers see the
    warehouse between runs, never during one; after a failure, a snapshot that
    cannot be published (a full disk, a damaged file) is logged, so that the run's
    own error is the one it ends with.
    """
    run_id = work_key(flow, parameters, as_of)
    failure: BaseException | None = None
    try:
        with run_turn(run_id):
            open_run(run_id, flow, parameters, as_of)
            try:
                yield run_id
            except BaseException as error:
                _close_failed(run_id, error)
                raise
            close_run(run_id, "succeeded")
    except BaseException as error:
        failure = error
    if failure is None:
        publish()
        return
    # Publish outside the except block, so that its own failure is not chained to the run's.
    try:
        publish()
    except Exception as error:
        get_run_logger().warning("snapshot not published after the failed run: %s", error)
    raise failure
