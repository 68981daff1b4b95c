"""Writing and reading bars: set-based upserts, the quarantine, watermarks."""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from attnviz.bars import interval_duration
from warehouse.db import query, transaction


@dataclass(frozen=True)
class SeriesLoad:
    """What one series' batch did to the warehouse. ``received == loaded + rejected``."""

    source: str
    symbol: str
    interval: str
    received: int
    loaded: int
    rejected: int
    new_bars: int
    revised_bars: int
    first_ts: datetime | None
    last_ts: datetime | None


def store_series(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    series: tuple[str, str, str],
    good: pl.DataFrame,
    rejected: pl.DataFrame,
    checks: pl.DataFrame,
) -> SeriesLoad:
    """Load one validated batch in one transaction: bars, quarantine, counts and check results.

    Parameters
    ----------
    con
        A read-write warehouse connection.
    run_id
        The run doing the load; a second call with the same run and series replaces its records.
    series
        (source, symbol, interval).
    good, rejected, checks
        The parts of an :class:`attnviz.quality.Validation`.
    """
    source, symbol, interval = series
    with transaction(con):
        new_bars, revised_bars = _upsert_bars(con, good, run_id)
        _quarantine(con, rejected, run_id)
        load = SeriesLoad(
            source=source,
            symbol=symbol,
            interval=interval,
            received=good.height + rejected.height,
            loaded=good.height,
            rejected=rejected.height,
            new_bars=new_bars,
            revised_bars=revised_bars,
            first_ts=good["ts"].min(),
            last_ts=good["ts"].max(),
        )
        con.execute(
            "INSERT OR REPLACE INTO run_series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, source, symbol, interval, load.received, load.loaded, load.rejected,
             load.new_bars, load.revised_bars, load.first_ts, load.last_ts],
        )  # fmt: skip
        checks_in = checks.select(
            pl.lit(run_id).alias("run_id"),
            pl.lit(source).alias("source"),
            pl.lit(symbol).alias("symbol"),
            pl.lit(interval).alias("interval"),
            pl.col("check").alias("expectation"),
            "success",
            "unexpected_count",
        )
        con.register("checks_in", checks_in)
        try:
            con.execute("INSERT OR REPLACE INTO validation_results SELECT * FROM checks_in")
        finally:
            con.unregister("checks_in")
    return load


def _upsert_bars(
    con: duckdb.DuckDBPyConnection, good: pl.DataFrame, run_id: str
) -> tuple[int, int]:
    """Insert new bars and replace changed ones, set-based; returns (new, revised) counts."""
    if good.is_empty():
        return 0, 0
    con.register("bars_in", good)
    try:
        [(new_bars, revised_bars)] = con.execute(
            """
            SELECT count(*) FILTER (WHERE b.ts IS NULL),
                   count(*) FILTER (
                       WHERE b.ts IS NOT NULL
                         AND (b.open, b.high, b.low, b.close, b.volume)
                             IS DISTINCT FROM (i.open, i.high, i.low, i.close, i.volume))
            FROM bars_in i
            LEFT JOIN bars b USING (source, symbol, interval, ts)
            """
        ).fetchall()
        # An unchanged bar keeps its run_id and loaded_at: they say when its values last changed.
        con.execute(
            """
            INSERT INTO bars
            SELECT source, symbol, interval, ts, open, high, low, close, volume, ?, now()
            FROM bars_in
            ON CONFLICT (source, symbol, interval, ts) DO UPDATE SET
                open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, volume = excluded.volume,
                run_id = excluded.run_id, loaded_at = excluded.loaded_at
            WHERE (bars.open, bars.high, bars.low, bars.close, bars.volume)
                  IS DISTINCT FROM
                  (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume)
            """,
            [run_id],
        )
    finally:
        con.unregister("bars_in")
    return new_bars, revised_bars


def _quarantine(con: duckdb.DuckDBPyConnection, rejected: pl.DataFrame, run_id: str) -> None:
    if rejected.is_empty():
        return
    con.register("rejected_in", rejected)
    try:
        con.execute(
            """
            INSERT INTO bars_rejected
            SELECT source, symbol, interval, ts, raw, md5(raw), failed, ?, now()
            FROM rejected_in
            ON CONFLICT (source, symbol, interval, row_hash) DO UPDATE SET
                failed = excluded.failed,
                run_id = excluded.run_id,
                rejected_at = excluded.rejected_at
            """,
            [run_id],
        )
    finally:
        con.unregister("rejected_in")


def resume_from(
    con: duckdb.DuckDBPyConnection, source: str, symbol: str, interval: str, overlap_bars: int
) -> datetime | None:
    """Where an incremental fetch of the series starts; ``None`` if nothing is stored yet.

    That is the open time of the ``overlap_bars``-th newest stored bar, so the last
    ``overlap_bars`` bars are read again and a bar the source revised gets corrected;
    with no overlap, the open time just after the newest stored bar (the watermark).
    """
    rows = con.execute(
        """
        SELECT ts FROM bars WHERE source = ? AND symbol = ? AND interval = ?
        ORDER BY ts DESC LIMIT ?
        """,
        [source, symbol, interval, max(overlap_bars, 1)],
    ).fetchall()
    if not rows:
        return None
    if overlap_bars == 0:
        return rows[0][0] + interval_duration(interval)
    return rows[-1][0]


def close_before(
    con: duckdb.DuckDBPyConnection, source: str, symbol: str, interval: str, ts: datetime
) -> float | None:
    """Close of the last stored bar of the series that opened before ``ts``."""
    rows = con.execute(
        """
        SELECT close FROM bars
        WHERE source = ? AND symbol = ? AND interval = ? AND ts < ?
        ORDER BY ts DESC LIMIT 1
        """,
        [source, symbol, interval, ts],
    ).fetchall()
    return rows[0][0] if rows else None


def read_bars(
    con: duckdb.DuckDBPyConnection,
    source: str,
    symbol: str,
    interval: str,
    closed_by: datetime | None = None,
) -> pl.DataFrame:
    """The stored bars of one series, oldest first; with ``closed_by``, those closed by then."""
    closed_by_open = None if closed_by is None else closed_by - interval_duration(interval)
    return query(
        con,
        """
        SELECT source, symbol, interval, ts, open, high, low, close, volume FROM bars
        WHERE source = ? AND symbol = ? AND interval = ?
          AND ts <= coalesce(?::TIMESTAMPTZ, 'infinity'::TIMESTAMPTZ)
        ORDER BY ts
        """,
        [source, symbol, interval, closed_by_open],
    )
