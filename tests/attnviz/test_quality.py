from collections.abc import Callable
from datetime import timedelta

import polars as pl
import pytest

from attnviz.bars import SCHEMA, BarDataError
from attnviz.quality import validate_bars, validate_received
from attnviz.quality_suite import CHECKS
from attnviz.sources.base import Received, with_raw

Bars = Callable[..., pl.DataFrame]


def spoil(frame: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    """Set some values of one row, and record the spoiled row as received."""
    for column, value in values.items():
        frame = frame.with_columns(frame[column].scatter(row, value))
    return frame.drop("raw").pipe(lambda f: f.with_columns(with_raw(f.columns)))


def failed_by_row(received: pl.DataFrame, **kwargs: object) -> dict[int, set[str]]:
    result = validate_bars(received, "1d", **kwargs)
    assert result.good.height + result.rejected.height == received.height
    index = {ts: i for i, ts in enumerate(received["ts"].to_list())}
    return {
        index[ts]: set(failed) for ts, failed in result.rejected.select("ts", "failed").iter_rows()
    }


def test_clean_bars_all_load_and_every_check_reports(bars: Bars) -> None:
    received = bars(20)
    result = validate_bars(received, "1d")
    assert result.rejected.is_empty()
    assert result.good.equals(received.select(list(SCHEMA)))
    assert set(result.checks["check"]) == set(CHECKS)
    assert result.checks["success"].all() and (result.checks["unexpected_count"] == 0).all()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # A missing price also fails the comparisons it takes part in.
        ({"close": float("nan")}, {"close_not_null", "high_ge_close", "low_le_close"}),
        ({"open": None}, {"open_not_null", "high_ge_open", "low_le_open"}),
        ({"volume": None}, {"volume_not_null"}),
        (
            {"low": -1.0, "open": -0.5, "close": -0.2},
            {"low_positive", "open_positive", "close_positive"},
        ),
        ({"volume": -5.0}, {"volume_non_negative"}),
        ({"high": 90.0}, {"high_ge_open", "high_ge_close"}),
        ({"low": 200.0}, {"low_le_open", "low_le_close"}),
        ({"symbol": "A'; DROP TABLE bars;--"}, {"symbol_well_formed"}),
    ],
)
def test_row_checks_name_what_failed_and_keep_the_rest(
    bars: Bars, values: dict[str, object], expected: set[str]
) -> None:
    received = spoil(bars(5), 2, **values)
    failed = failed_by_row(received)
    assert list(failed) == [2]
    assert failed[2] == expected


def test_duplicate_key_rejects_every_copy(bars: Bars) -> None:
    received = bars(5)
    received = pl.concat([received.slice(0, 3), received.slice(2, 1), received.slice(3, 2)])
    result = validate_bars(received, "1d")
    assert result.rejected.height == 2
    assert all("key_unique" in failed for failed in result.rejected["failed"].to_list())
    assert "ts_increasing" in result.rejected["failed"][1]
    assert result.good.height == 4


def test_out_of_order_bar_is_rejected(bars: Bars) -> None:
    received = bars(5)
    received = pl.concat(
        [received.slice(0, 2), received.slice(3, 1), received.slice(2, 1), received.slice(4, 1)]
    )
    result = validate_bars(received, "1d")
    assert result.rejected["ts"].to_list() == [received["ts"][3]]
    assert result.rejected["failed"].to_list() == [["ts_increasing"]]


def test_bar_off_the_interval_grid_is_rejected(bars: Bars) -> None:
    received = bars(5)
    received = spoil(received, 3, ts=received["ts"][3] + timedelta(hours=3))
    assert failed_by_row(received) == {3: {"ts_on_grid"}}


def test_hourly_grid(bars: Bars) -> None:
    received = bars(5, interval="1h")
    received = spoil(received, 1, ts=received["ts"][1] + timedelta(minutes=1))
    result = validate_bars(received, "1h")
    assert result.rejected["failed"].to_list() == [["ts_on_grid"]]


def test_step_check_flags_a_jump_and_the_way_back(bars: Bars) -> None:
    received = spoil(bars(6), 3, open=1000.0, close=1000.0, high=1001.0, low=999.0)
    failed = failed_by_row(received)
    assert failed == {3: {"close_step_within_limit"}, 4: {"close_step_within_limit"}}
    # A looser limit lets the same bars through.
    assert failed_by_row(received, max_step=20.0) == {}


def test_step_check_compares_the_first_bar_with_the_stored_close(bars: Bars) -> None:
    received = bars(3)
    assert failed_by_row(received, previous_close=10.0) == {0: {"close_step_within_limit"}}
    assert failed_by_row(received, previous_close=99.0) == {}


def test_row_without_timestamp_is_quarantined_not_lost(bars: Bars) -> None:
    received = spoil(bars(4), 1, ts=None)
    result = validate_bars(received, "1d")
    assert result.rejected["failed"].to_list() == [["ts_not_null"]]
    assert result.rejected["raw"][0] == received["raw"][1]
    assert result.good.height == 3


def test_empty_frame_passes_with_zero_counts(bars: Bars) -> None:
    result = validate_bars(bars(0), "1d")
    assert result.good.is_empty() and result.rejected.is_empty()
    assert result.checks["success"].all() and result.checks.height == len(CHECKS)


def test_wrong_dtype_or_missing_column_is_a_clear_error(bars: Bars) -> None:
    received = bars(3)
    with pytest.raises(BarDataError, match="column 'close' is String, expected Float64"):
        validate_bars(received.with_columns(pl.col("close").cast(pl.String)), "1d")
    with pytest.raises(BarDataError, match=r"lack column\(s\) \['volume'\]"):
        validate_bars(received.drop("volume"), "1d")
    with pytest.raises(BarDataError, match="max_step must be > 1"):
        validate_bars(received, "1d", max_step=0.5)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"high": float("inf")}, {"high_within_bound", "range_within_limit"}),
        ({"volume": float("inf")}, {"volume_within_bound"}),
        # 1e309 overflows to inf when a CSV is parsed; 1e308 is finite but absurd.
        ({"high": float("1e309")}, {"high_within_bound", "range_within_limit"}),
        (
            {"open": 1e308, "high": 1e308, "low": 1e308, "close": 1e308},
            {f"{c}_within_bound" for c in ("open", "high", "low", "close")}
            | {"close_step_within_limit"},
        ),
        ({"high": 1000.0}, {"range_within_limit"}),
    ],
)
def test_infinite_and_absurd_values_are_quarantined(
    bars: Bars, values: dict[str, object], expected: set[str]
) -> None:
    failed = failed_by_row(spoil(bars(5), 2, **values))
    assert set(failed) >= {2} and failed[2] == expected


def test_a_first_batch_of_absurd_prices_fails_without_an_earlier_close(bars: Bars) -> None:
    received = bars(3).with_columns(pl.col(c) * 1e300 for c in ("open", "high", "low", "close"))
    received = received.drop("raw").pipe(lambda f: f.with_columns(with_raw(f.columns)))
    assert validate_bars(received, "1d").good.is_empty()


def test_rows_the_source_rejected_join_the_quarantine_with_their_reasons(bars: Bars) -> None:
    frame = bars(4)
    rejected = frame.head(1).with_columns(
        pl.lit(["interval_mismatch"], dtype=pl.List(pl.String)).alias("failed")
    )
    result = validate_received(Received(frame.tail(3), rejected, not_closed=2), "1d")
    assert (result.good.height, result.rejected.height, result.not_closed) == (3, 1, 2)
    assert result.received == 6
    assert result.rejected["failed"].to_list() == [["interval_mismatch"]]
    reported = result.checks.filter(pl.col("check") == "interval_mismatch").row(0, named=True)
    assert reported == {"check": "interval_mismatch", "success": False, "unexpected_count": 1}


def test_a_batch_the_source_rejected_whole_still_reports_every_check(bars: Bars) -> None:
    rejected = bars(2).with_columns(
        pl.lit(["ts_in_future"], dtype=pl.List(pl.String)).alias("failed")
    )
    result = validate_received(Received(bars(0), rejected), "1d")
    assert (result.good.height, result.rejected.height) == (0, 2)
    assert set(result.checks["check"]) == {*CHECKS, "ts_in_future"}
