from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pydantic import ValidationError

from attnviz.bars import (
    UTC_TS,
    BarDataError,
    bar_end,
    check_symbol,
    floor,
    grid_offset_seconds,
    interval_duration,
    shift,
)
from attnviz.series import Series


def test_interval_duration_knows_common_intervals_and_names_the_bad_one() -> None:
    assert interval_duration("1h") == timedelta(hours=1)
    assert interval_duration("1w") == timedelta(weeks=1)
    with pytest.raises(BarDataError, match="unknown interval '7x'"):
        interval_duration("7x")


@pytest.mark.parametrize("symbol", ["AAPL", "BRK-B", "EURUSD=X", "^GSPC", "BTCUSDT", "btc.d"])
def test_real_tickers_are_accepted(symbol: str) -> None:
    assert check_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol", ["../../x", "A'; DROP TABLE bars;--", "", "a b", "x/y", ".hidden", "A" * 33]
)
def test_symbols_that_could_become_paths_or_sql_are_refused(symbol: str) -> None:
    with pytest.raises(BarDataError, match="invalid symbol"):
        check_symbol(symbol)


def test_grid_offset_is_zero_on_the_grid_and_weeks_start_on_monday() -> None:
    monday = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
    frame = pl.DataFrame(
        {"ts": [monday, monday + timedelta(minutes=30), monday + timedelta(days=2)]}
    )
    offsets = frame.select(
        hour=grid_offset_seconds(pl.col("ts"), "1h"),
        week=grid_offset_seconds(pl.col("ts"), "1w"),
    )
    assert offsets["hour"].to_list() == [0, 1800, 0]
    assert offsets["week"].to_list() == [0, 1800, 2 * 86400]


def test_series_validates_its_fields() -> None:
    assert Series(symbol="AAPL").label == "sample/AAPL/1d"
    with pytest.raises(ValidationError, match="invalid symbol"):
        Series(symbol="../../x")
    with pytest.raises(ValidationError, match="unknown interval"):
        Series(symbol="AAPL", interval="2d")
    assert Series(symbol="BTCUSDT", interval="1M").interval == "1M"


def test_monthly_bars_step_by_the_calendar() -> None:
    jan31 = datetime(2024, 1, 31, 12, tzinfo=UTC)
    assert shift(jan31, 1, "1M") == datetime(2024, 2, 29, 12, tzinfo=UTC)  # a leap February
    assert shift(jan31, -2, "1M") == datetime(2023, 11, 30, 12, tzinfo=UTC)
    assert shift(datetime(2023, 12, 1, tzinfo=UTC), 1, "1M") == datetime(2024, 1, 1, tzinfo=UTC)
    assert shift(datetime(2024, 1, 1, tzinfo=UTC), -1, "1M") == datetime(2023, 12, 1, tzinfo=UTC)
    assert shift(jan31, 2, "1h") == jan31 + timedelta(hours=2)
    assert floor(jan31, "1M") == datetime(2024, 1, 1, tzinfo=UTC)
    assert floor(jan31, "1w") == datetime(2024, 1, 29, tzinfo=UTC)  # a Monday
    assert floor(jan31, "4h") == datetime(2024, 1, 31, 12, tzinfo=UTC)
    opens = pl.DataFrame(
        {"ts": [datetime(2023, 12, 1), datetime(2024, 2, 1), datetime(2024, 2, 2)]},
        schema={"ts": UTC_TS},
    )
    ends = opens.select(
        bar_end(pl.col("ts"), "1M"), grid_offset_seconds(pl.col("ts"), "1M").alias("off")
    )
    assert ends["ts"].to_list() == [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
        datetime(2024, 3, 2, tzinfo=UTC),
    ]
    assert ends["off"].to_list() == [0, 0, 86400]  # the 2nd of a month is off the monthly grid
