from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from pydantic import ValidationError

from attnviz.bars import BarDataError, check_symbol, grid_offset_seconds, interval_duration
from attnviz.series import SAMPLE_SERIES, Series


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
    assert {s.interval for s in SAMPLE_SERIES} == {"1d", "1h"}
