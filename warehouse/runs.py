"""The ``runs`` table: one row per flow run, opened at its start and closed at its end."""

import json
from datetime import datetime
from typing import Any

import duckdb

from warehouse.db import query_row, transaction


def start_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    flow: str,
    parameters: dict[str, Any],
    as_of: datetime,
) -> None:
    """Record a run as ``running``; starting the same run_id again (a retry) clears its records."""
    with transaction(con):
        for table in ("run_series", "validation_results", "runs"):
            con.execute(f"DELETE FROM {table} WHERE run_id = ?", [run_id])
        con.execute(
            """
            INSERT INTO runs (run_id, flow, parameters, as_of, started_at, status)
            VALUES (?, ?, ?, ?, now(), 'running')
            """,
            [run_id, flow, json.dumps(parameters, default=str, sort_keys=True), as_of],
        )


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
