"""What the Yahoo source asks for, and where its bars land: intervals, zones, look-back."""

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import yahoo_fixtures as yx
from yahoo_kit import NOW, daily, jan, source, utc

from attnviz.bars import BarDataError, floor
from attnviz.sources import BarRequest, Received


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
    def answer(call: yx.Call) -> tuple[pd.DataFrame, dict[str, str]]:
        # Yahoo's answer also holds the bar just before the chunk.
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
    # Each chunk's first bar and the one an hour on; none twice, none before the start.
    chunks = [start + timedelta(days=days) for days in (0, 7, 14)]
    expected = [first + timedelta(hours=hours) for first in chunks for hours in (0, 1)]
    assert received.bars["ts"].to_list() == expected


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
