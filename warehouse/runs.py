"""The ``runs`` table: one row per logical piece of work, opened at its start, closed at its end.

A run is keyed by its logical work: the flow, its parameters and the as-of moment
it stands at. Running the same work again (a retry from the Prefect UI, or a new
run with the same parameters) reuses the key, so its rows replace the earlier ones.

A run whose process dies (``kill -9``, the out-of-memory killer, a CI timeout, a
reboot) cannot close its row. Whoever next holds the runs lock of
:mod:`warehouse.locks`, which a live run holds for its whole life, knows that no run
is in progress, so any row still ``running`` is marked ``crashed``
(:func:`mark_crashed`): the next run does it as it starts, and a reader can do it
first (:func:`reap_crashed_runs`).
"""

import hashlib
import json
import os
import socket
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl

from warehouse.db import WarehouseError, query_row, registered, transaction
from warehouse.locks import file_lock, runs_lock_path, writer
from warehouse.snapshot import publish_snapshot

# How a run (and each attempt at it) stands: ``running`` until it closes itself as
# ``succeeded`` or ``failed``, or until the next run finds its process gone (``crashed``).
RunStatus = Literal["running", "succeeded", "failed", "crashed"]
EndStatus = Literal["succeeded", "failed"]


@dataclass(frozen=True)
class CrashedRun:
    """A run found ``running`` with no live process behind it, as it was when found."""

    run_id: str
    pid: int | None
    host: str | None
    started_at: datetime


@dataclass(frozen=True)
class RunRecord:
    """A ``runs`` row: the latest attempt at a piece of work, parameters decoded.

    Attributes
    ----------
    attempts
        How many attempts the work has had (1 for a first run).
    received, loaded, rejected, not_closed
        Bar counts summed over the run's series; ``None`` until it ends.
    peak_rss_mb
        The run's process memory high-water mark when it ended; ``None`` until then.
    """

    run_id: str
    flow: str
    parameters: dict[str, Any]
    as_of: datetime
    started_at: datetime
    ended_at: datetime | None
    status: RunStatus
    message: str | None
    flow_run_id: str | None
    attempts: int
    pid: int | None
    host: str | None
    crashed_noticed_at: datetime | None
    received: int | None
    loaded: int | None
    rejected: int | None
    not_closed: int | None
    peak_rss_mb: float | None


def work_key(flow: str, parameters: dict[str, Any], as_of: datetime) -> str:
    """The run id of a piece of work, e.g. ``nightly-20261124T000000Z-3f2a9c1e0b7d``.

    Readable at a glance (flow and as-of) and unique per parameter set: the digest
    is over the parameters as canonical JSON, so key order and defaults spelled out
    or left implicit by the caller do not matter once the flow has resolved them.
    """
    stamp = as_of.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    canonical = json.dumps(parameters, default=str, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(f"{flow}\n{stamp}\n{canonical}".encode()).hexdigest()[:12]
    return f"{flow}-{stamp}-{digest}"


def start_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    flow_run_id: str,
    flow: str,
    parameters: dict[str, Any],
    as_of: datetime,
) -> int:
    """Record the work as ``running`` by this process and return which attempt it is (1, 2, ...).

    Work that succeeded before is done again from scratch: its per-series records
    are cleared, and the sources are read again (a deliberate rerun, to pick up a
    corrected file). After an attempt that failed or crashed, the records of the
    series it loaded (``run_series`` and ``validation_results``, committed with their
    bars) stay, and the ingest keeps those loads rather than reading again from a
    watermark that attempt already moved: the run resumes and ends as one clean
    attempt would. The other tables replace their rows of the run as each step
    writes them again.
    """
    with transaction(con):
        before = query_row(con, "SELECT attempts, status FROM runs WHERE run_id = ?", [run_id])
        attempt = 1 if before is None else before["attempts"] + 1
        cleared = ("run_series", "validation_results") if _succeeded(before) else ()
        for table in (*cleared, "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        con.execute(
            """
            INSERT INTO runs (run_id, flow, parameters, as_of, started_at, status,
                              flow_run_id, attempts, pid, host)
            VALUES (?, ?, ?, ?, now(), 'running', ?, ?, ?, ?)
            """,
            [run_id, flow, json.dumps(parameters, default=str, sort_keys=True), as_of,
             flow_run_id, attempt, os.getpid(), socket.gethostname()],
        )  # fmt: skip
        con.execute(
            """
            INSERT OR REPLACE INTO run_attempts (run_id, attempt, flow_run_id, started_at,
                                                 status, pid, host)
            VALUES (?, ?, ?, now(), 'running', ?, ?)
            """,
            [run_id, attempt, flow_run_id, os.getpid(), socket.gethostname()],
        )
    return attempt


def _succeeded(run: dict[str, Any] | None) -> bool:
    return run is not None and run["status"] == "succeeded"


def mark_crashed(con: duckdb.DuckDBPyConnection) -> list[CrashedRun]:
    """Mark every ``running`` run as ``crashed``, now; return those runs' rows as they were.

    Call it only while holding the runs lock exclusively: then no run is in
    progress, and a row still ``running`` belongs to a process that died before it
    could close it. Its end went unseen, so ``ended_at`` stays empty and
    ``crashed_noticed_at`` says when it was found. The attempt's row in
    ``run_attempts`` is marked too.
    """
    con.execute(
        """
        UPDATE run_attempts SET status = 'crashed', message = 'its process ended without closing it'
        FROM runs
        WHERE runs.status = 'running' AND run_attempts.run_id = runs.run_id
          AND run_attempts.attempt = runs.attempts
        """
    )
    return [
        CrashedRun(*row)
        for row in con.execute(
            """
            UPDATE runs SET
                status = 'crashed', crashed_noticed_at = now(),
                message = 'its process (' || coalesce('pid ' || pid || ' on ' || host, 'unknown')
                    || ') ended without closing the run: killed (kill -9, out of memory, a '
                    || 'timeout) or its machine stopped'
            WHERE status = 'running'
            RETURNING run_id, pid, host, started_at
            """
        ).fetchall()
    ]


def reap_crashed_runs(database: Path, snapshot: Path) -> list[str]:
    """Mark the runs of ``database`` whose process died as crashed, for readers; return their ids.

    Without it a reader sees a crashed run as ``running`` until the next run starts.
    It never waits: while a run is in progress (which marked them as it started) or
    another process writes, when this process may not write the warehouse, or when
    the live file is damaged (the next run says so, with the remedy), it leaves them
    to the next run. When it marks some, it publishes the snapshot again
    so that its readers see them.

    Parameters
    ----------
    database, snapshot
        The live warehouse file and its published read-only copy.
    """
    if not os.access(database, os.W_OK):
        return []
    try:
        with (
            file_lock(runs_lock_path(database), 0, what="runs lock"),
            writer(database, 0) as con,
        ):
            crashed = [run.run_id for run in mark_crashed(con)]
    except WarehouseError:  # busy, or a damaged file: the next run says so, with its remedy
        return []
    if crashed:
        with suppress(WarehouseError):  # another process writes: the next run publishes
            publish_snapshot(database, snapshot, 0)
    return crashed


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: EndStatus,
    message: str | None = None,
    *,
    phases: pl.DataFrame | None = None,
    peak_rss_mb: float | None = None,
) -> None:
    """Close a run and its latest attempt with a status, a message and their counts.

    The run's counts are summed over its series (``run_series``), the attempt's over
    what it alone read (``run_series_attempts``). ``phases`` (columns phase, seconds,
    tasks, peak_rss_mb) replaces the attempt's ``run_phases`` rows; ``peak_rss_mb`` is
    the process's memory high-water mark.
    """
    attempt = "attempt = (SELECT attempts FROM runs WHERE run_id = $run_id)"
    with transaction(con):
        if phases is not None:
            con.execute(
                f"DELETE FROM run_phases WHERE run_id = $run_id AND {attempt}", {"run_id": run_id}
            )
            with registered(con, "phases", phases):
                con.execute(
                    """
                    INSERT INTO run_phases (run_id, attempt, phase, seconds, tasks, peak_rss_mb)
                    SELECT $run_id, (SELECT attempts FROM runs WHERE run_id = $run_id),
                           phase, seconds, tasks, peak_rss_mb
                    FROM phases
                    """,
                    {"run_id": run_id},
                )
        for table, counted, where in [
            ("run_attempts", f"run_series_attempts WHERE run_id = $run_id AND {attempt}",
             f"run_id = $run_id AND {attempt}"),
            ("runs", "run_series WHERE run_id = $run_id", "run_id = $run_id"),
        ]:  # fmt: skip
            con.execute(
                f"""
                UPDATE {table} SET
                    status = $status, message = $message, ended_at = now(),
                    peak_rss_mb = $peak_rss_mb,
                    received = totals.received, loaded = totals.loaded,
                    rejected = totals.rejected, not_closed = totals.not_closed
                FROM (
                    SELECT coalesce(sum(received), 0) AS received,
                           coalesce(sum(loaded), 0) AS loaded,
                           coalesce(sum(rejected), 0) AS rejected,
                           coalesce(sum(not_closed), 0) AS not_closed
                    FROM {counted}
                ) AS totals
                WHERE {where}
                """,
                {
                    "status": status,
                    "message": message,
                    "run_id": run_id,
                    "peak_rss_mb": peak_rss_mb,
                },
            )


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord | None:
    """The ``runs`` row of ``run_id``, or ``None``."""
    row = query_row(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
    if row is None:
        return None
    return RunRecord(**{**row, "parameters": json.loads(row["parameters"])})
