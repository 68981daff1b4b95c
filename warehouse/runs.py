"""The ``runs`` table: one row per logical piece of work, opened at its start, closed at its end.

A run is keyed by its logical work: the flow, its parameters and the as-of moment
it stands at. Running the same work again (a retry from the Prefect UI, or a new
run with the same parameters) reuses the key, so its rows replace the earlier ones.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import duckdb

from warehouse.db import query_row, transaction


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
    """Record the work as ``running`` and return which attempt at it this is (1, 2, ...).

    Starting work that ran before clears its per-series records; the other tables
    replace their rows of the run as each step writes them again.
    """
    with transaction(con):
        before = query_row(con, "SELECT attempts FROM runs WHERE run_id = ?", [run_id])
        attempt = 1 if before is None else before["attempts"] + 1
        for table in ("run_series", "validation_results", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        con.execute(
            """
            INSERT INTO runs (run_id, flow, parameters, as_of, started_at, status,
                              flow_run_id, attempts)
            VALUES (?, ?, ?, ?, now(), 'running', ?, ?)
            """,
            [run_id, flow, json.dumps(parameters, default=str, sort_keys=True), as_of,
             flow_run_id, attempt],
        )  # fmt: skip
    return attempt


def finish_run(
    con: duckdb.DuckDBPyConnection, run_id: str, status: str, message: str | None = None
) -> None:
    """Close a run with its status, a message, and its counts summed over its series."""
    con.execute(
        """
        UPDATE runs SET
            status = $status, message = $message, ended_at = now(),
            received = totals.received, loaded = totals.loaded, rejected = totals.rejected
        FROM (
            SELECT coalesce(sum(received), 0) AS received,
                   coalesce(sum(loaded), 0) AS loaded,
                   coalesce(sum(rejected), 0) AS rejected
            FROM run_series WHERE run_id = $run_id
        ) AS totals
        WHERE runs.run_id = $run_id
        """,
        {"status": status, "message": message, "run_id": run_id},
    )


def get_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any] | None:
    """The ``runs`` row of ``run_id`` as a dict, or ``None``."""
    return query_row(con, "SELECT * FROM runs WHERE run_id = ?", [run_id])
