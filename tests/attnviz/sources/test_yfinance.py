"""The Yahoo source on recorded ``yf.download`` answers: values, tickers, failures, retries."""

import json
from datetime import datetime

import pandas as pd
import polars as pl
import pytest
import requests
import yahoo_fixtures as yx
from yahoo_kit import daily, jan, source, utc

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.quality import validate_received
from attnviz.sources import Received, SourceError


def test_daily_bars_open_at_midnight_utc_with_the_values_yahoo_gave() -> None:
    made, fake, _ = source(daily("AAPL"))
    received = made.fetch(jan("AAPL"))
    bars = received.bars
    assert bars.schema == pl.Schema(RECEIVED_SCHEMA)
    assert bars["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 3), utc(2024, 1, 4)]
    assert bars.row(0, named=True) | {"raw": None} == {
        "source": "yfinance",
        "symbol": "AAPL",
        "interval": "1d",
        "ts": utc(2024, 1, 2),
        "open": 10.0,
        "high": 12.0,
        "low": 9.0,
        "close": 11.0,
        "volume": 100.0,
        "turnover": None,
        "raw": None,
    }
    assert json.loads(bars["raw"][0]) == {
        "Date": "2024-01-02T00:00:00",
        **{"Close": 11.0, "High": 12.0, "Low": 9.0, "Open": 10.0, "Volume": 100},
    }
    # Dates are asked for as dates (the exchange's), the end one day on; adjusted by default.
    assert fake.calls == [yx.Call(["AAPL"], "1d", datetime(2024, 1, 1), datetime(2024, 1, 6), True)]


def test_several_tickers_are_one_download_and_each_keeps_its_own_range() -> None:
    made, fake, _ = source(daily("AAPL", "MSFT"))
    results = made.fetch_many(
        [jan("AAPL", start=utc(2024, 1, 3)), jan("MSFT", end=utc(2024, 1, 3))]
    )
    assert len(fake.calls) == 1
    assert fake.calls[0].tickers == ["AAPL", "MSFT"]
    assert (fake.calls[0].start, fake.calls[0].end) == (datetime(2024, 1, 1), datetime(2024, 1, 6))
    aapl, msft = results["AAPL"], results["MSFT"]
    assert isinstance(aapl, Received) and isinstance(msft, Received)
    assert aapl.bars["ts"].to_list() == [utc(2024, 1, 3), utc(2024, 1, 4)]
    assert msft.bars["ts"].to_list() == [utc(2024, 1, 2)]
    assert set(msft.bars["symbol"]) == {"MSFT"}


def test_raw_prices_are_as_traded_and_adj_close_stays_in_raw() -> None:
    frame = yx.history(
        ["2024-01-02"], [(10.0, 12.0, 9.0, 11.0, 100)], adj_close=[5.5]
    )  # a 2:1 split later: the adjusted close is half
    made, fake, _ = source((yx.combine({"AAPL": frame}), {}), adjusted=False)
    bars = made.fetch(jan("AAPL")).bars
    assert fake.calls[0].adjusted is False
    assert bars.select("open", "high", "low", "close").row(0) == (10.0, 12.0, 9.0, 11.0)
    assert json.loads(bars["raw"][0])["Adj Close"] == 5.5


def test_a_failed_ticker_is_its_own_error_beside_a_good_one() -> None:
    answer = daily("AAPL", NOPE=yx.failed(), reasons={"NOPE": yx.NO_TIMEZONE})
    # The shape yfinance gives: an all-NaN block, with an Adj Close column only the failure has.
    assert ("Adj Close", "NOPE") in answer[0].columns and answer[0]["Close"]["NOPE"].isna().all()
    made, _, sleeps = source(answer)
    results = made.fetch_many([jan("AAPL"), jan("NOPE")])
    assert isinstance(results["AAPL"], Received) and results["AAPL"].bars.height == 3
    assert "Adj Close" not in results["AAPL"].bars["raw"][0]
    error = results["NOPE"]
    assert isinstance(error, BarDataError) and sleeps == []
    assert "NOPE 1d" in str(error) and "no timezone found" in str(error)
    made, _, _ = source(answer)
    with pytest.raises(BarDataError, match=r"NOPE 1d .* no timezone found"):
        made.fetch(jan("NOPE"))


@pytest.mark.parametrize(
    "answer",
    [daily("AAPL", NOPE=yx.failed()), daily("AAPL")],
    ids=["all-NaN, no reason", "missing from the frame"],
)
def test_a_ticker_without_values_is_an_error_even_without_a_reason(
    answer: tuple[pd.DataFrame, dict[str, str]],
) -> None:
    made, _, _ = source(answer)
    with pytest.raises(SourceError, match=r"NOPE 1d .* no values"):
        made.fetch(jan("NOPE"))


@pytest.mark.parametrize("reason", [yx.DELISTED, yx.NO_TIMEZONE, "HTTPError('404 Client Error')"])
def test_an_unknown_or_delisted_ticker_is_bar_data_error_at_once(reason: str) -> None:
    made, fake, sleeps = source(daily(NOPE=yx.failed(), reasons={"NOPE": reason}))
    with pytest.raises(BarDataError, match=r"NOPE 1d .*Yahoo has no such bars"):
        made.fetch(jan("NOPE"))
    assert len(fake.calls) == 1 and sleeps == []


def test_all_failing_is_retried_with_backoff_then_source_errors() -> None:
    answer = daily(
        AAPL=yx.failed(), MSFT=yx.failed(), reasons={"AAPL": yx.DNS_ERROR, "MSFT": yx.TIMEOUT}
    )
    assert answer[0].shape == (0, 12)
    made, fake, sleeps = source(answer)
    results = made.fetch_many([jan("AAPL"), jan("MSFT")])
    assert sleeps == [2.0, 4.0, 8.0] and len(fake.calls) == 4
    assert all(call.tickers == ["AAPL", "MSFT"] for call in fake.calls)
    for symbol, words in (("AAPL", "Could not resolve host"), ("MSFT", "timed out")):
        error = results[symbol]
        assert isinstance(error, SourceError)
        assert f"{symbol} 1d" in str(error) and "failed 4 times" in str(error)
        assert words in str(error)


def test_only_the_transient_failures_are_fetched_again() -> None:
    first = daily("AAPL", MSFT=yx.failed(), reasons={"MSFT": yx.RATE_LIMITED})
    made, fake, sleeps = source(first, daily("MSFT"))
    results = made.fetch_many([jan("AAPL"), jan("MSFT")])
    assert [call.tickers for call in fake.calls] == [["AAPL", "MSFT"], ["MSFT"]]
    assert sleeps == [2.0]
    assert all(isinstance(r, Received) and r.bars.height == 3 for r in results.values())


def test_a_download_that_raises_fails_each_of_its_tickers() -> None:
    made, fake, _ = source(RuntimeError("yfinance broke"))
    results = made.fetch_many([jan("AAPL"), jan("MSFT")])
    assert len(fake.calls) == 1
    assert all(isinstance(results[s], SourceError) for s in ("AAPL", "MSFT"))
    assert "MSFT 1d" in str(results["MSFT"]) and "yfinance broke" in str(results["MSFT"])
    made, fake, sleeps = source(requests.ConnectionError("reset by peer"), daily("AAPL"))
    assert made.fetch(jan("AAPL")).bars.height == 3 and sleeps == [2.0]


def test_a_range_without_bars_is_an_empty_success_not_an_error() -> None:
    # Saturday to Monday: Yahoo knows AAPL (it found its time zone) but has no bar.
    reason = yx.no_prices("1d", "2024-01-06", "2024-01-08")
    made, _, _ = source(daily(AAPL=yx.failed(), reasons={"AAPL": reason}))
    received = made.fetch(jan("AAPL", start=utc(2024, 1, 6), end=utc(2024, 1, 8)))
    assert received.received == 0 and received.bars.schema == pl.Schema(RECEIVED_SCHEMA)


def test_a_row_with_missing_values_reaches_validation_and_is_quarantined() -> None:
    frame = yx.history(
        ["2024-01-02", "2024-01-03"], [(10.0, 12.0, 9.0, 11.0, 100), (None, 13.0, 10.0, 12.0, 0)]
    )
    made, _, _ = source((yx.combine({"AAPL": frame}), {}))
    received = made.fetch(jan("AAPL"))
    assert received.bars["open"].to_list() == [10.0, None]
    assert json.loads(received.bars["raw"][1])["Open"] is None
    validation = validate_received(received, "1d")
    assert validation.good.height == 1
    assert validation.rejected["ts"].to_list() == [utc(2024, 1, 3)]
    assert "open_not_null" in validation.rejected["failed"][0]


def test_yahoos_data_does_not_exist_for_the_range_is_no_bars() -> None:
    # Yahoo's own reason, as yfinance passes it on (repr quotes it in "": it holds a ').
    reason = 'YFPricesMissingError("Data doesn\'t exist for startDate = 946684800, endDate = 9783")'
    made, _, _ = source(daily(AAPL=yx.failed(), reasons={"AAPL": reason}))
    assert made.fetch(jan("AAPL")).received == 0


def test_duplicated_and_unsorted_rows_are_kept_sorted_for_validation() -> None:
    stamps = ["2024-01-03", "2024-01-02", "2024-01-03"]
    bars = [(2.0, 3.0, 1.0, 2.5, 20), (1.0, 2.0, 0.5, 1.5, 10), (2.1, 3.1, 1.1, 2.6, 21)]
    # yf.download sorts and deduplicates; a frame that is not must not lose or reorder bars.
    frame = yx.history(stamps, bars).tz_localize(None)
    frame.columns = pd.MultiIndex.from_product([frame.columns, ["AAPL"]], names=["Price", "Ticker"])
    made, _, _ = source((frame, {}))
    bars_out = made.fetch(jan("AAPL")).bars
    assert bars_out["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 3), utc(2024, 1, 3)]
    assert bars_out["close"].to_list() == [1.5, 2.5, 2.6]  # both duplicates, in Yahoo's order


def test_symbols_must_be_named_and_each_asked_once() -> None:
    made, _, _ = source(daily("AAPL"))
    with pytest.raises(BarDataError, match="name the tickers to fetch"):
        made.symbols("1d")
    with pytest.raises(BarDataError, match="one request per symbol; twice: AAPL"):
        made.fetch_many([jan("AAPL"), jan("AAPL", "1w")])
