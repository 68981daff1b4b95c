from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from attnviz.quality import validate_bars, validate_received
from attnviz.sources.base import BarRequest, Received, in_request
from warehouse.bars import (
    Repair,
    SeriesLoad,
    close_before,
    read_bars,
    resume_from,
    store_series,
)
from warehouse.db import connect

Bars = Callable[..., pl.DataFrame]
SERIES = ("test", "TEST", "1d")


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with closing(connect()) as connection:
        yield connection


def store(
    con: duckdb.DuckDBPyConnection, received: pl.DataFrame, run_id: str = "run-1"
) -> SeriesLoad:
    result = validate_bars(received, "1d")
    return store_series(con, run_id, SERIES, result.good, result.rejected, result.checks)


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    [(rows,)] = con.execute(f"SELECT count(*) FROM {table}").fetchall()
    return int(rows)


def test_loading_the_same_bars_twice_leaves_one_row_per_key(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    first = store(con, bars(10))
    second = store(con, bars(10), run_id="run-2")
    assert (first.new_bars, first.revised_bars) == (10, 0)
    assert (second.new_bars, second.revised_bars, second.loaded) == (0, 0, 10)
    assert count(con, "bars") == 10
    # Unchanged bars keep the run that wrote them.
    assert con.execute("SELECT DISTINCT run_id FROM bars").fetchall() == [("run-1",)]


def test_a_corrected_bar_replaces_the_stored_one(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    store(con, bars(5))
    corrected = bars(5).with_columns(
        close=pl.when(pl.int_range(5) == 2).then(102.5).otherwise(pl.col("close"))
    )
    result = store(con, corrected, run_id="run-2")
    assert (result.new_bars, result.revised_bars) == (0, 1)
    stored = read_bars(con, *SERIES)
    assert stored["close"][2] == 102.5 and stored.height == 5
    assert con.execute("SELECT run_id FROM bars WHERE close = 102.5").fetchall() == [("run-2",)]


def test_rejected_rows_are_kept_as_received_once(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    received = bars(5).with_columns(
        symbol=pl.when(pl.int_range(5) == 4)
        .then(pl.lit("A'; DROP TABLE bars;--"))
        .otherwise("symbol")
    )
    received = received.with_columns(
        raw=pl.struct(received.drop("raw").columns).struct.json_encode()
    )
    for run in ("run-1", "run-2"):
        result = store(con, received, run_id=run)
    assert (result.received, result.loaded, result.rejected) == (5, 4, 1)
    rows = con.execute(
        "SELECT symbol, failed, run_id, raw->>'symbol' FROM bars_rejected"
    ).fetchall()
    assert rows == [
        ("A'; DROP TABLE bars;--", ["symbol_well_formed"], "run-2", "A'; DROP TABLE bars;--")
    ]
    assert count(con, "bars") == 4  # the table survived the symbol


def test_counts_and_check_results_are_recorded_per_run_and_series(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    store(con, bars(5).with_columns(volume=pl.lit(-1.0)))
    series_row = con.execute("SELECT received, loaded, rejected FROM run_series").fetchall()
    assert series_row == [(5, 0, 5)]
    failed = con.execute(
        "SELECT expectation, unexpected_count FROM validation_results WHERE NOT success"
    ).fetchall()
    assert failed == [("volume_non_negative", 5)]


def test_resume_point_watermark_and_previous_close(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    assert resume_from(con, *SERIES, 3) is None
    store(con, bars(5))
    assert resume_from(con, *SERIES, 3) == datetime(2024, 1, 3, tzinfo=UTC)
    assert resume_from(con, *SERIES, 0) == datetime(2024, 1, 6, tzinfo=UTC)
    assert resume_from(con, *SERIES, 9) == datetime(2024, 1, 1, tzinfo=UTC)
    assert con.execute("SELECT last_ts, bars FROM watermarks").fetchall() == [
        (datetime(2024, 1, 5, tzinfo=UTC), 5)
    ]
    assert close_before(con, *SERIES, datetime(2024, 1, 3, tzinfo=UTC)) == 101.0
    assert close_before(con, *SERIES, datetime(2024, 1, 1, tzinfo=UTC)) is None


def store_received(
    con: duckdb.DuckDBPyConnection, received: Received, run_id: str, repair: Repair | None = None
) -> SeriesLoad:
    result = validate_received(received, "1d")
    return store_series(
        con,
        run_id,
        SERIES,
        result.good,
        result.rejected,
        result.checks,
        result.not_closed,
        repair,
    )


def test_every_row_read_is_loaded_rejected_or_counted_as_not_closed(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    frame = bars(6)
    # The source read 6 rows: the last bar had not closed by the as-of, the fifth is dated 2100.
    as_of = datetime(2024, 1, 6, 12, tzinfo=UTC)
    in_2100 = frame.with_columns(
        ts=pl.when(pl.int_range(6) == 4).then(datetime(2100, 1, 1, tzinfo=UTC)).otherwise("ts")
    )
    received = in_request(in_2100, BarRequest("TEST", "1d", as_of=as_of))
    result = store_received(con, received, "run-1")
    assert (result.received, result.loaded, result.rejected, result.not_closed) == (6, 4, 1, 1)
    assert con.execute("SELECT failed FROM bars_rejected").fetchall() == [(["ts_in_future"],)]
    assert con.execute(
        "SELECT received, loaded, rejected, not_closed FROM run_series"
    ).fetchall() == [(6, 4, 1, 1)]
    assert con.execute(
        "SELECT unexpected_count FROM validation_results WHERE expectation = 'ts_in_future'"
    ).fetchall() == [(1,)]


def test_a_repair_removes_bars_the_source_no_longer_has_and_resolves_their_rejections(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    # A file read wrong: its last two bars landed a month late, and one row was quarantined.
    right = bars(6)
    wrong = right.with_columns(
        ts=pl.col("ts")
        + pl.when(pl.int_range(6) >= 4).then(pl.duration(days=30)).otherwise(pl.duration()),
        volume=pl.when(pl.int_range(6) == 2).then(-1.0).otherwise("volume"),
    ).drop("raw")
    store(con, wrong.with_columns(raw=pl.struct(wrong.columns).struct.json_encode()))
    assert con.execute(
        "SELECT count(*) FROM bars_rejected WHERE resolved_by IS NULL"
    ).fetchall() == [(1,)]

    # A plain full reload of the right file adds the right bars beside the wrong ones ...
    store(con, right, run_id="run-2")
    assert count(con, "bars") == 6 + 2
    # ... a repair of the range removes the wrong ones, and only inside its range.
    repair = Repair(start=None, end=datetime(2024, 1, 20, tzinfo=UTC))
    result = store_received(con, Received(right), "run-3", repair=repair)
    assert result.removed_bars == 0  # the bars on wrong days lie after the range
    result = store_received(
        con, Received(right), "run-4", repair=Repair(None, datetime(2024, 3, 1, tzinfo=UTC))
    )
    assert result.removed_bars == 2
    assert read_bars(con, *SERIES)["ts"].to_list() == right["ts"].to_list()
    # The quarantined row's day now has a good bar: its rejection is resolved, not deleted.
    assert con.execute("SELECT resolved_by FROM bars_rejected").fetchall() == [("run-2",)]


def test_a_repair_keeps_a_stored_bar_that_the_source_now_sends_bad(
    con: duckdb.DuckDBPyConnection, bars: Bars
) -> None:
    store(con, bars(5))
    bad_now = bars(5).with_columns(
        volume=pl.when(pl.int_range(5) == 1).then(-1.0).otherwise("volume")
    )
    bad_now = bad_now.with_columns(raw=pl.struct(bad_now.drop("raw").columns).struct.json_encode())
    result = store_received(
        con, Received(bad_now), "run-2", repair=Repair(None, datetime(2025, 1, 1, tzinfo=UTC))
    )
    assert (result.removed_bars, result.rejected) == (0, 1)
    assert count(con, "bars") == 5
