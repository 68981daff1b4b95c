"""Writing and reading bars: set-based upserts, the quarantine, repairs, watermarks.

Repairing history: an incremental run re-reads only the last few bars, so a bar
corrected further back loads when its range is read again (``ingest --full`` with
``--start``/``--end``). With a :class:`Repair` range the load also removes the
stored bars of that range that the source no longer has at all (a bar loaded on a
wrong day, say). A quarantined row stays in ``bars_rejected`` as evidence and is
marked resolved (``resolved_by``) once a good bar is stored at its ts.
"""

from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from attnviz.bars import shift
from attnviz.series import Series
from warehouse.db import query, registered, transaction
from warehouse.quarantine import quarantine, resolve_quarantine


@dataclass(frozen=True)
class SeriesLoad:
    """What one series' batch did to the warehouse.

    ``received == loaded + rejected + not_closed``: every row the source read is
    loaded, quarantined, or counted as a bar that had not closed yet.
    """

    source: str
    symbol: str
    interval: str
    received: int
    loaded: int
    rejected: int
    not_closed: int
    new_bars: int
    revised_bars: int
    removed_bars: int
    first_ts: datetime | None
    last_ts: datetime | None

    @property
    def series(self) -> Series:
        """The series loaded."""
        return Series(source=self.source, symbol=self.symbol, interval=self.interval)

    @property
    def label(self) -> str:
        """The series' label, ``source/symbol/interval``."""
        return self.series.label


# The counts of run_series and run_series_attempts, in their column order.
_COUNTS = ("received", "loaded", "rejected", "not_closed", "new_bars", "revised_bars",
           "removed_bars", "first_ts", "last_ts")  # fmt: skip
_ADD_COUNTS = ", ".join(
    [f"{c} = {c} + excluded.{c}" for c in _COUNTS[:-2]]
    + [
        "first_ts = least(first_ts, excluded.first_ts)",
        "last_ts = greatest(last_ts, excluded.last_ts)",
    ]
)


@dataclass(frozen=True)
class Repair:
    """A range of bar-open times, ``start <= ts < end``, that a batch replaces as a whole.

    Stored bars in it that the batch holds neither as a good nor as a rejected row
    are removed; ``start=None`` reaches back to the series' first bar.
    """

    start: datetime | None
    end: datetime


def store_series(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    series: tuple[str, str, str],
    good: pl.DataFrame,
    rejected: pl.DataFrame,
    checks: pl.DataFrame,
    not_closed: int = 0,
    repair: Repair | None = None,
    complete: bool = True,
) -> SeriesLoad:
    """Load one validated batch in one transaction: bars, quarantine, counts and check results.

    The counts and check results of the batch add to those the run already has for the
    series (a long range loads as several batches); the returned load has the totals.

    Parameters
    ----------
    con
        A read-write warehouse connection.
    run_id
        The run doing the load; a second call with the same run and series replaces its records.
    series
        (source, symbol, interval).
    good, rejected, checks, not_closed
        The parts of an :class:`attnviz.quality.Validation`.
    repair
        When given, stored bars of this range that the batch does not hold are removed.
    complete
        Whether this is the series' last batch of the run: a rerun keeps a complete load
        (:func:`loaded_before`) and reads an incomplete one on from the stored bars.
    """
    source, symbol, interval = series
    with transaction(con):
        removed_bars = 0 if repair is None else _remove_missing(con, series, repair, good, rejected)
        new_bars, revised_bars = _upsert_bars(con, good, run_id)
        resolve_quarantine(con, series, good, run_id)
        quarantine(con, rejected, run_id)
        batch = [good.height + rejected.height + not_closed, good.height, rejected.height,
                 not_closed, new_bars, revised_bars, removed_bars, good["ts"].min(),
                 good["ts"].max()]  # fmt: skip
        # A long range loads piece by piece: each piece adds to the run's and the attempt's
        # counts of the series (received, loaded, ... summed; first and last bar widened).
        [totals] = con.execute(
            f"""
            INSERT INTO run_series VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT DO UPDATE SET {_ADD_COUNTS}, complete = excluded.complete
            RETURNING {", ".join(_COUNTS)}
            """,
            [run_id, *series, *batch, complete],
        ).fetchall()
        con.execute(
            f"""
            INSERT INTO run_series_attempts
            SELECT ?, coalesce((SELECT attempts FROM runs WHERE run_id = ?), 1), ?, ?, ?,
                   ?, ?, ?, ?, ?, ?, ?, ?, ?
            ON CONFLICT DO UPDATE SET {_ADD_COUNTS}
            """,
            [run_id, run_id, *series, *batch],
        )
        checks_in = checks.select(
            pl.lit(run_id).alias("run_id"),
            pl.lit(source).alias("source"),
            pl.lit(symbol).alias("symbol"),
            pl.lit(interval).alias("interval"),
            pl.col("check").alias("expectation"),
            "success",
            "unexpected_count",
        )
        with registered(con, "checks_in", checks_in):
            con.execute(
                """
                INSERT INTO validation_results SELECT * FROM checks_in
                ON CONFLICT DO UPDATE SET
                    success = validation_results.success AND excluded.success,
                    unexpected_count = validation_results.unexpected_count
                                       + excluded.unexpected_count
                """
            )
    return SeriesLoad(source, symbol, interval, *totals)


def _upsert_bars(
    con: duckdb.DuckDBPyConnection, good: pl.DataFrame, run_id: str
) -> tuple[int, int]:
    """Insert new bars and replace changed ones, set-based; returns (new, revised) counts."""
    if good.is_empty():
        return 0, 0
    with registered(con, "bars_in", good):
        [(new_bars, revised_bars)] = con.execute(
            """
            SELECT count(*) FILTER (WHERE b.ts IS NULL),
                   count(*) FILTER (
                       WHERE b.ts IS NOT NULL
                         AND (b.open, b.high, b.low, b.close, b.volume, b.turnover)
                             IS DISTINCT FROM
                             (i.open, i.high, i.low, i.close, i.volume, i.turnover))
            FROM bars_in i
            LEFT JOIN bars b USING (source, symbol, interval, ts)
            """
        ).fetchall()
        # An unchanged bar keeps its run_id and loaded_at: they say when its values last changed.
        con.execute(
            """
            INSERT INTO bars BY NAME
            SELECT source, symbol, interval, ts, open, high, low, close, volume, turnover,
                   ? AS run_id, now() AS loaded_at
            FROM bars_in
            ON CONFLICT (source, symbol, interval, ts) DO UPDATE SET
                open = excluded.open, high = excluded.high, low = excluded.low,
                close = excluded.close, volume = excluded.volume, turnover = excluded.turnover,
                run_id = excluded.run_id, loaded_at = excluded.loaded_at
            WHERE (bars.open, bars.high, bars.low, bars.close, bars.volume, bars.turnover)
                  IS DISTINCT FROM
                  (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume,
                   excluded.turnover)
            """,
            [run_id],
        )
    return new_bars, revised_bars


def _remove_missing(
    con: duckdb.DuckDBPyConnection,
    series: tuple[str, str, str],
    repair: Repair,
    good: pl.DataFrame,
    rejected: pl.DataFrame,
) -> int:
    """Delete the stored bars of ``repair``'s range that the batch does not hold; returns how many.

    A ts the batch holds only as a rejected row keeps its stored bar: a bad row never
    replaces good data.
    """
    held = pl.concat([good.select("ts"), rejected.select("ts").drop_nulls()])
    with registered(con, "held_ts", held):
        [(removed,)] = con.execute(
            """
            DELETE FROM bars
            WHERE source = ? AND symbol = ? AND interval = ?
              AND ts >= coalesce(?::TIMESTAMPTZ, '-infinity'::TIMESTAMPTZ) AND ts < ?
                AND ts NOT IN (SELECT ts FROM held_ts)
            """,
            [*series, repair.start, repair.end],
        ).fetchall()  # DuckDB answers a DELETE with the count of rows it removed
    return int(removed)


def loaded_before(
    con: duckdb.DuckDBPyConnection, run_id: str, series: tuple[str, str, str]
) -> SeriesLoad | None:
    """The complete load an earlier attempt of run ``run_id`` committed for ``series``, if any."""
    rows = query(
        con,
        """
        SELECT source, symbol, interval, received, loaded, rejected, not_closed, new_bars,
               revised_bars, removed_bars, first_ts, last_ts
        FROM run_series
        WHERE run_id = ? AND source = ? AND symbol = ? AND interval = ? AND complete
        """,
        [run_id, *series],
    )
    return SeriesLoad(**rows.row(0, named=True)) if rows.height else None


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
    newest: datetime = rows[0][0]
    oldest_read_again: datetime = rows[-1][0]
    return shift(newest, 1, interval) if overlap_bars == 0 else oldest_read_again


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
    closed_by_open = None if closed_by is None else shift(closed_by, -1, interval)
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
