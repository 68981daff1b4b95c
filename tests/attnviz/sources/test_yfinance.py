import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
import requests
import yahoo_fixtures as yx

from attnviz.bars import RECEIVED_SCHEMA, BarDataError, floor
from attnviz.sources import BarRequest, Received, SourceError
from attnviz.sources.yfinance import YFinanceSource, download

# A Tuesday afternoon in New York, two days after the US clocks went forward.
NOW = datetime(2024, 3, 12, 15, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def source(
    *answers: yx.Answer, now: datetime = NOW, **options: Any
) -> tuple[YFinanceSource, yx.Recorded, list[float]]:
    """A source on recorded answers; returns it, its download and the waits it made."""
    fake, sleeps = yx.Recorded(list(answers)), []
    made = YFinanceSource(download=fake, sleep=sleeps.append, clock=lambda: now, **options)
    return made, fake, sleeps


def daily(
    *tickers: str, reasons: dict[str, str] | None = None, **frames: pd.DataFrame
) -> tuple[pd.DataFrame, dict[str, str]]:
    """A daily answer: the named tickers with three January bars, plus ``frames`` as given."""
    bars = [(10.0, 12.0, 9.0, 11.0, 100), (11.0, 13.0, 10.0, 12.0, 200), (12, 14, 11, 13, 300)]
    stamps = ["2024-01-02", "2024-01-03", "2024-01-04"]
    built = {ticker: yx.history(stamps, bars) for ticker in tickers} | frames
    return yx.combine(built), reasons or {}


def jan(symbol: str, interval: str = "1d", **bounds: datetime) -> BarRequest:
    bounds = {"start": utc(2024, 1, 1), "end": utc(2024, 1, 5)} | bounds
    return BarRequest(symbol, interval, as_of=NOW, **bounds)


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
    from attnviz.quality import validate_received

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


def test_intraday_times_are_converted_to_utc_across_a_dst_change() -> None:
    # Friday 09:30 New York is 14:30 UTC (EST); Monday 09:30 is 13:30 UTC (EDT).
    stamps = ["2024-03-08 14:30", "2024-03-08 20:55", "2024-03-11 13:30"]
    frame = yx.history(stamps, [(1.0, 2.0, 0.5, 1.5, 10)] * 3, intraday=True)
    assert str(frame.index.tz) == yx.NEW_YORK
    made, fake, _ = source((yx.combine({"SPY": frame}, intraday=True), {}))
    request = BarRequest("SPY", "5m", as_of=NOW, start=utc(2024, 3, 8), end=utc(2024, 3, 12))
    bars = made.fetch(request).bars
    expected = [utc(2024, 3, 8, 14, 30), utc(2024, 3, 8, 20, 55), utc(2024, 3, 11, 13, 30)]
    assert bars["ts"].to_list() == expected
    assert json.loads(bars["raw"][2])["Datetime"] == "2024-03-11T09:30:00-04:00"
    assert fake.calls[0].interval == "5m" and fake.calls[0].start == utc(2024, 3, 8)


def test_odd_tickers_and_a_london_clock_going_back() -> None:
    # The UK clocks go back at 01:00 UTC on 2024-10-27: 01:30 London happens twice.
    now = utc(2024, 10, 28, 12)
    times = ["2024-10-27 00:29", "2024-10-27 00:30", "2024-10-27 01:30", "2024-10-27 01:31"]
    fx = yx.history(times, [(1.08, 1.09, 1.07, 1.08, 0)] * 4, intraday=True, tz="Europe/London")
    gspc = yx.history(["2024-10-27 00:30"], [(5800, 5810, 5790, 5805, 9)], intraday=True)
    answer = yx.combine({"EURUSD=X": fx, "^GSPC": gspc}, intraday=True), {}
    made, fake, _ = source(answer, now=now)
    start = utc(2024, 10, 27)
    results = made.fetch_many(
        [BarRequest(s, "1m", as_of=now, start=start) for s in ("eurusd=x", "^GSPC")]
    )
    assert fake.calls[0].tickers == ["EURUSD=X", "^GSPC"]
    fx_bars, gspc_bars = results["eurusd=x"].bars, results["^GSPC"].bars
    minutes = [(0, 29), (0, 30), (1, 30), (1, 31)]
    assert fx_bars["ts"].to_list() == [utc(2024, 10, 27, h, m) for h, m in minutes]
    assert set(fx_bars["symbol"]) == {"eurusd=x"}
    # Padding rows (the other ticker's times) are not bars of this one.
    assert gspc_bars["ts"].to_list() == [utc(2024, 10, 27, 0, 30)]


@pytest.mark.parametrize(
    ("interval", "days", "limit"), [("1m", 30, "30 days"), ("5m", 61, "60 days")]
)
def test_ranges_beyond_yahoos_look_back_are_refused_before_any_download(
    interval: str, days: int, limit: str
) -> None:
    made, fake, _ = source(daily("MSFT"))
    old = BarRequest("AAPL", interval, as_of=NOW, start=NOW - timedelta(days=days))
    with pytest.raises(BarDataError, match=rf"AAPL {interval} from .* last {limit} only"):
        made.fetch(old)
    too_old_end = BarRequest("AAPL", interval, as_of=NOW, end=NOW - timedelta(days=days))
    with pytest.raises(BarDataError, match=limit):
        made.fetch(too_old_end)
    assert fake.calls == []
    # Beside a request that is fine, only that one is fetched.
    results = made.fetch_many([old, jan("MSFT")])
    assert isinstance(results["AAPL"], BarDataError) and isinstance(results["MSFT"], Received)
    assert [call.tickers for call in fake.calls] == [["MSFT"]]


def test_intraday_without_a_start_reaches_back_as_far_as_yahoo_allows() -> None:
    made, fake, _ = source(daily(AAPL=yx.failed(), reasons={"AAPL": yx.no_prices("5m", 0, 0)}))
    made.fetch(BarRequest("AAPL", "5m", as_of=NOW))
    assert fake.calls[0].start == floor(NOW - timedelta(days=59), "5m")
    assert fake.calls[0].end is None


def test_one_minute_ranges_are_fetched_in_seven_day_chunks_without_double_bars() -> None:
    def answer(
        call: yx.Call,
    ) -> tuple[
        pd.DataFrame, dict[str, str]
    ]:  # Yahoo's answer also holds the bar just before the chunk
        times = [call.start - timedelta(minutes=1), call.start, call.start + timedelta(hours=1)]
        stamps = [t.astimezone(UTC).strftime("%Y-%m-%d %H:%M") for t in times]
        frame = yx.history(stamps, [(1.0, 2.0, 0.5, 1.5, 10)] * 3, intraday=True)
        return yx.combine({"AAPL": frame}, intraday=True), {}

    made, fake, _ = source(answer)
    start = utc(2024, 2, 22, 14, 30)  # 19 days back
    received = made.fetch(BarRequest("AAPL", "1m", as_of=NOW, start=start))
    windows = [(call.start, call.end) for call in fake.calls]
    assert windows == [
        (start, start + timedelta(days=7)),
        (start + timedelta(days=7), start + timedelta(days=14)),
        (start + timedelta(days=14), None),
    ]
    ts = received.bars["ts"]
    assert ts.n_unique() == ts.len() == 6  # each chunk's first bar and the one an hour on
    assert ts.min() == start


@pytest.mark.parametrize("interval", ["3m", "2h", "4h", "6h", "12h"])
def test_intervals_yahoo_lacks_are_refused(interval: str) -> None:
    made, fake, _ = source(daily("AAPL"))
    with pytest.raises(BarDataError, match=f"Yahoo has no {interval} bars; it has 1m, 5m"):
        made.fetch(jan("AAPL", interval))
    assert fake.calls == []


def test_hourly_is_refused_with_the_reason_and_what_to_use() -> None:
    made, fake, _ = source(daily("AAPL"))
    with pytest.raises(BarDataError, match=r"half hour.*use 30m or 1d"):
        made.fetch(jan("AAPL", "1h"))
    assert fake.calls == []


def test_the_forming_daily_bar_is_counted_not_closed() -> None:
    stamps = ["2024-03-11", "2024-03-12"]  # NOW is the afternoon of 2024-03-12
    frame = yx.history(stamps, [(1.0, 2.0, 0.5, 1.5, 10)] * 2)
    made, _, _ = source((yx.combine({"AAPL": frame}), {}))
    received = made.fetch(BarRequest("AAPL", "1d", as_of=NOW, start=utc(2024, 3, 11)))
    assert received.bars["ts"].to_list() == [utc(2024, 3, 11)]
    assert received.not_closed == 1 and received.rejected.is_empty()


def test_weekly_bars_are_asked_from_a_monday_and_land_on_it() -> None:
    mondays = ["2024-01-08", "2024-01-15", "2024-01-22"]
    frame = yx.history(mondays, [(1.0, 2.0, 0.5, 1.5, 10)] * 3)
    made, fake, _ = source((yx.combine({"AAPL": frame}), {}))
    request = BarRequest("AAPL", "1w", as_of=NOW, start=utc(2024, 1, 10), end=utc(2024, 1, 29))
    ts = made.fetch(request).bars["ts"].to_list()
    assert fake.calls[0].interval == "1wk"
    assert fake.calls[0].start == datetime(2024, 1, 8)  # the Monday of the 10th's week
    assert ts == [utc(2024, 1, 15), utc(2024, 1, 22)]
    assert all(t.weekday() == 0 and floor(t, "1w") == t for t in ts)


def test_monthly_bars_are_asked_from_the_first_and_land_on_it() -> None:
    frame = yx.history(["2024-01-01", "2024-02-01"], [(1.0, 2.0, 0.5, 1.5, 10)] * 2)
    made, fake, _ = source((yx.combine({"AAPL": frame}), {}))
    request = BarRequest("AAPL", "1M", as_of=NOW, start=utc(2024, 1, 15))
    ts = made.fetch(request).bars["ts"].to_list()
    assert (fake.calls[0].interval, fake.calls[0].start) == ("1mo", datetime(2024, 1, 1))
    assert ts == [utc(2024, 2, 1)]  # January opened before the request's start


def test_a_forming_bar_dated_ahead_of_utc_is_not_closed_but_two_days_ahead_is_rejected() -> None:
    # 23:30 UTC on the 12th is 10:30 on the 13th in Sydney: its forming bar is dated the 13th.
    now = utc(2024, 3, 12, 23, 30)
    stamps = ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-15"]
    frame = yx.history(stamps, [(1.0, 2.0, 0.5, 1.5, 10)] * 4, tz="Australia/Sydney")
    made, _, _ = source((yx.combine({"BHP.AX": frame}), {}), now=now)
    received = made.fetch(BarRequest("BHP.AX", "1d", as_of=now, start=utc(2024, 3, 11)))
    # A daily bar closes at 00:00 UTC after its date: the 12th and the 13th are not closed.
    assert received.bars["ts"].to_list() == [utc(2024, 3, 11)] and received.not_closed == 2
    assert received.rejected["ts"].to_list() == [utc(2024, 3, 15)]
    assert received.rejected["failed"].to_list() == [["ts_in_future"]]


def test_yahoos_data_does_not_exist_for_the_range_is_no_bars() -> None:
    # Yahoo's own reason, as yfinance passes it on (repr quotes it in "": it holds a ').
    reason = 'YFPricesMissingError("Data doesn\'t exist for startDate = 946684800, endDate = 9783")'
    made, _, _ = source(daily(AAPL=yx.failed(), reasons={"AAPL": reason}))
    assert made.fetch(jan("AAPL")).received == 0


@pytest.mark.parametrize(
    ("start", "end"),
    [(utc(2024, 1, 5), utc(2024, 1, 2)), (utc(2024, 1, 5), utc(2024, 1, 5)), (NOW, None)],
    ids=["end before start", "empty range", "starting now"],
)
def test_a_range_that_holds_no_bar_is_empty_without_a_download(
    start: datetime, end: datetime | None
) -> None:
    made, fake, _ = source(daily("AAPL"))
    received = made.fetch(BarRequest("AAPL", "1d", as_of=NOW, start=start, end=end))
    assert received.received == 0 and fake.calls == []


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


def test_download_collects_the_reasons_yfinance_logs_and_restores_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    import yfinance as yf

    seen: dict[str, object] = {}

    def fake_download(tickers: list[str], **kwargs: object) -> pd.DataFrame:
        seen.update(kwargs, tickers=tickers, hide=yf.config.debug.hide_exceptions)
        logger = logging.getLogger("yfinance")
        logger.error("\n2 Failed downloads:")  # what yfinance logs, verbatim
        logger.error(f"['AAPL', '^GSPC']: {yx.DNS_ERROR}")
        logger.error(f"['NOPE']: {yx.NO_TIMEZONE}")
        logger.error("[Errno 5] not a list of tickers: ignored")
        return yx.combine({t: yx.failed() for t in tickers})

    monkeypatch.setattr(yf, "download", fake_download)
    monkeypatch.setattr(logging.getLogger("yfinance"), "level", logging.CRITICAL)
    hide = yf.config.debug.hide_exceptions
    frame, reasons = download(["AAPL", "^GSPC", "NOPE"], "1d", None, None, True)
    assert reasons == {"AAPL": yx.DNS_ERROR, "^GSPC": yx.DNS_ERROR, "NOPE": yx.NO_TIMEZONE}
    assert frame.shape == (0, 18)
    assert seen == {
        "tickers": ["AAPL", "^GSPC", "NOPE"],
        "interval": "1d",
        "auto_adjust": True,
        "group_by": "column",
        "progress": False,
        "threads": False,
        "session": None,
        "period": "max",  # no start: from the first trade
        "end": None,
        "hide": False,  # so that a network error is reported as one
    }
    assert yf.config.debug.hide_exceptions == hide
    assert logging.getLogger("yfinance").level == logging.CRITICAL
    assert not any(type(h).__name__ == "_Reasons" for h in logging.getLogger("yfinance").handlers)


# --- Through yfinance itself, on a canned Yahoo -----------------------------------------

SESSION_BARS = [  # 09:30 New York in UTC; the adjusted close halves the first two (a split)
    ("2024-01-02 14:30:00", 10.0, 12.0, 9.0, 11.0, 100, 5.5),
    ("2024-01-03 14:30:00", 11.0, 13.0, 10.0, 12.0, 200, 6.0),
    ("2024-01-04 14:30:00", 12.0, 14.0, 11.0, 13.0, 300, 13.0),
]
FIVE_MINUTES = [
    ("2024-03-08 14:30:00", 1.0, 2.0, 0.5, 1.5, 10, 1.5),
    ("2024-03-08 14:35:00", 1.5, 2.5, 1.0, 2.0, 20, 2.0),
    ("2024-03-11 13:30:00", 2.0, 3.0, 1.5, 2.5, 30, 2.5),
]


@pytest.fixture
def yahoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[yx.YahooAdapter]:
    """A canned Yahoo for AAPL (daily) and SPY, MSFT (5m); any real connection fails."""

    def refuse(*args: object) -> None:
        raise AssertionError(f"a test tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    adapter = yx.YahooAdapter(
        {
            "AAPL": yx.Ticker(SESSION_BARS),
            "SPY": yx.Ticker(FIVE_MINUTES, granularity_s=300),
            "MSFT": yx.Ticker(FIVE_MINUTES, granularity_s=300),
        }
    )
    with yx.isolated_yfinance(tmp_path / "yfinance-cache"):
        yield adapter


def test_through_yfinance_with_a_canned_yahoo(yahoo: yx.YahooAdapter, tmp_path: Path) -> None:
    made = YFinanceSource(session=yx.yahoo_session(yahoo), clock=lambda: NOW)
    results = made.fetch_many([jan("AAPL"), jan("ZZZZ")])
    bars = results["AAPL"].bars
    assert bars["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 3), utc(2024, 1, 4)]
    # Adjusted (the default): open, high and low scaled by Adj Close / Close, close = Adj Close.
    assert bars.select("open", "high", "low", "close").row(0) == (5.0, 6.0, 4.5, 5.5)
    assert bars["volume"].to_list() == [100.0, 200.0, 300.0]
    # The reason yfinance logged for the ticker the canned Yahoo does not know reached us.
    assert isinstance(results["ZZZZ"], SourceError)
    assert "ZZZZ 1d" in str(results["ZZZZ"]) and "no canned answer" in str(results["ZZZZ"])
    assert [url for url in yahoo.unexpected if "ZZZZ" not in url] == []
    assert any("/v8/finance/chart/AAPL?period1=" in url for url in yahoo.urls)
    assert (tmp_path / "yfinance-cache").is_dir()  # yfinance's caches stayed in the test's folder


def test_fixture_frames_are_what_yf_download_returns(yahoo: yx.YahooAdapter) -> None:
    from yfinance.utils import empty_df

    session = yx.yahoo_session(yahoo)
    stamps = [bar[0][:10] for bar in SESSION_BARS]
    values = [bar[1:6] for bar in SESSION_BARS]
    for adjusted in (False, True):
        got, reasons = download(
            ["AAPL"], "1d", datetime(2024, 1, 1), None, adjusted, session=session
        )
        adj = [bar[6] for bar in SESSION_BARS]
        expected = yx.history(stamps, values, adj_close=adj)
        if adjusted:  # yfinance's auto_adjust: OHLC scaled by Adj Close / Close
            ratio = expected["Adj Close"] / expected["Close"]
            expected[["Open", "High", "Low"]] = expected[["Open", "High", "Low"]].mul(ratio, axis=0)
            expected = expected.assign(Close=expected["Adj Close"]).drop(columns="Adj Close")
        pd.testing.assert_frame_equal(got, yx.combine({"AAPL": expected}))
        assert reasons == {}
    start, end = utc(2024, 3, 8), utc(2024, 3, 12)
    got, _ = download(["SPY", "MSFT"], "5m", start, end, False, session=session)
    frames = {
        t: yx.history([b[0][:16] for b in FIVE_MINUTES], [b[1:6] for b in FIVE_MINUTES],
                      intraday=True, adj_close=[b[6] for b in FIVE_MINUTES])
        for t in ("SPY", "MSFT")
    }  # fmt: skip
    pd.testing.assert_frame_equal(got, yx.combine(frames, intraday=True))
    pd.testing.assert_frame_equal(yx.failed(), empty_df())
    assert yahoo.unexpected == []
