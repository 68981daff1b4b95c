from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime

import duckdb
import polars as pl
import pytest

from attnviz.quality import validate_bars
from warehouse.bars import close_before, read_bars, resume_from, store_series
from warehouse.db import connect

Bars = Callable[..., pl.DataFrame]
SERIES = ("test", "TEST", "1d")


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    with closing(connect()) as connection:
        yield connection


def store(con: duckdb.DuckDBPyConnection, received: pl.DataFrame, run_id: str = "run-1"):
    result = validate_bars(received, "1d")
    return store_series(con, run_id, SERIES, result.good, result.rejected, result.checks)


def count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_loading_the_same_bars_twice_leaves_one_row_per_key(con, bars: Bars) -> None:
    first = store(con, bars(10))
    second = store(con, bars(10), run_id="run-2")
    assert (first.new_bars, first.revised_bars) == (10, 0)
    assert (second.new_bars, second.revised_bars, second.loaded) == (0, 0, 10)
    assert count(con, "bars") == 10
    # Unchanged bars keep the run that wrote them.
    assert con.execute("SELECT DISTINCT run_id FROM bars").fetchall() == [("run-1",)]


def test_a_corrected_bar_replaces_the_stored_one(con, bars: Bars) -> None:
    store(con, bars(5))
    corrected = bars(5).with_columns(
        close=pl.when(pl.int_range(5) == 2).then(102.5).otherwise(pl.col("close"))
    )
    result = store(con, corrected, run_id="run-2")
    assert (result.new_bars, result.revised_bars) == (0, 1)
    stored = read_bars(con, *SERIES)
    assert stored["close"][2] == 102.5 and stored.height == 5
    assert con.execute("SELECT run_id FROM bars WHERE close = 102.5").fetchall() == [("run-2",)]


def test_rejected_rows_are_kept_as_received_once(con, bars: Bars) -> None:
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


def test_counts_and_check_results_are_recorded_per_run_and_series(con, bars: Bars) -> None:
    store(con, bars(5).with_columns(volume=pl.lit(-1.0)))
    series_row = con.execute("SELECT received, loaded, rejected FROM run_series").fetchall()
    assert series_row == [(5, 0, 5)]
    failed = con.execute(
        "SELECT expectation, unexpected_count FROM validation_results WHERE NOT success"
    ).fetchall()
    assert failed == [("volume_non_negative", 5)]


def test_resume_point_watermark_and_previous_close(con, bars: Bars) -> None:
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
