"""The quarantine, ``bars_rejected``: rows that failed validation, kept as evidence.

A row rejected again is open again; a row whose ts later gets a good bar is marked
resolved (``resolved_by``) and stays, so that what was wrong and when is never lost.
"""

import duckdb
import polars as pl

from warehouse.db import registered


def resolve_quarantine(
    con: duckdb.DuckDBPyConnection, series: tuple[str, str, str], good: pl.DataFrame, run_id: str
) -> None:
    """Mark the open quarantine rows of the series at a ts that now has a good bar as resolved."""
    if good.is_empty():
        return
    with registered(con, "good_ts", good.select("ts")):
        con.execute(
            """
            UPDATE bars_rejected SET resolved_by = ?, resolved_at = now()
            WHERE source = ? AND symbol = ? AND interval = ? AND resolved_by IS NULL
              AND ts IN (SELECT ts FROM good_ts)
            """,
            [run_id, *series],
        )


def quarantine(con: duckdb.DuckDBPyConnection, rejected: pl.DataFrame, run_id: str) -> None:
    """Insert the rejected rows; a row rejected before is rejected again, and open again."""
    if rejected.is_empty():
        return
    with registered(con, "rejected_in", rejected):
        con.execute(
            """
            INSERT INTO bars_rejected
            SELECT source, symbol, interval, ts, raw, md5(raw), failed, ?, now(), NULL, NULL
            FROM rejected_in
            ON CONFLICT (source, symbol, interval, row_hash) DO UPDATE SET
                failed = excluded.failed,
                run_id = excluded.run_id,
                rejected_at = excluded.rejected_at,
                resolved_by = NULL,
                resolved_at = NULL
            """,
            [run_id],
        )
