from datetime import UTC, datetime

import polars as pl
import pytest

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources import BarRequest, make_source
from attnviz.sources.sample import SampleSource

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_sample_holds_four_daily_stocks_and_an_hourly_series() -> None:
    series = SampleSource().series()
    assert {s for s, i in series if i == "1d"} >= {"AAPL", "IBM", "MSFT", "GOOG"}
    assert ("EURUSD", "1h") in series


def test_fetch_returns_received_frame_of_real_bars() -> None:
    received = make_source("sample").fetch(BarRequest("AAPL", "1d", as_of=NOW))
    assert received.rejected.is_empty() and received.not_closed == 0
    bars = received.bars
    assert bars.schema == pl.Schema(RECEIVED_SCHEMA)
    assert bars.height == 3270
    assert bars["ts"].is_sorted() and bars["ts"].n_unique() == bars.height
    assert (bars["source"] == "sample").all()
    assert (
        bars.select((pl.col("low") <= pl.col("close")) & (pl.col("close") <= pl.col("high")))
        .to_series()
        .all()
    )


def test_as_of_replays_history_with_only_closed_bars() -> None:
    source = SampleSource()
    as_of = datetime(2017, 6, 1, 10, 30, tzinfo=UTC)
    received = source.fetch(BarRequest("EURUSD", "1h", as_of=as_of))
    # The 10:00 bar is still open at 10:30: it is counted, and the newest bar is the 09:00 one.
    assert received.bars["ts"].max() == datetime(2017, 6, 1, 9, tzinfo=UTC)
    assert received.not_closed == 1 and received.received == received.bars.height + 1
    window = source.fetch(
        BarRequest("EURUSD", "1h", as_of=as_of, start=datetime(2017, 6, 1, tzinfo=UTC))
    ).bars
    assert window["ts"].min() == datetime(2017, 6, 1, tzinfo=UTC)
    assert window.height == 10


def test_symbols_are_those_held_at_the_interval() -> None:
    assert SampleSource().symbols("1d") == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert SampleSource().symbols("1h") == ["EURUSD"]
    assert SampleSource().symbols("5m") == []


def test_unknown_series_is_a_clear_error_listing_what_exists() -> None:
    with pytest.raises(BarDataError, match="no series TSLA 1d; it has: AAPL 1d"):
        SampleSource().fetch(BarRequest("TSLA", "1d", as_of=NOW))


def test_requests_refuse_bad_symbols_and_intervals_up_front() -> None:
    with pytest.raises(BarDataError, match="invalid symbol"):
        BarRequest("../../x", "1d", as_of=NOW)
    with pytest.raises(BarDataError, match="unknown interval"):
        BarRequest("AAPL", "1day", as_of=NOW)


def test_unknown_source_and_bad_options_are_named() -> None:
    with pytest.raises(BarDataError, match="unknown source 'nyse'"):
        make_source("nyse")
    with pytest.raises(BarDataError, match="source 'sample': bad options"):
        make_source("sample", {"colour": "red"})
