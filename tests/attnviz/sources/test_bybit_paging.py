"""The Bybit source pages back through a range and keeps what the request asks for."""

import json
import time
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from bybit_faults import empty_page, page
from bybit_kit import HOUR_MS, T0, T0_MS, Sleeps, hourly, later, ms, source, utc
from bybit_server import BybitServer, random_walk

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources.base import BarRequest, SourceError

# -- paging ---------------------------------------------------------------------------------


def test_a_long_range_pages_back_from_its_end(server: BybitServer, sleeps: Sleeps) -> None:
    rows = hourly(server, 2500)
    request = BarRequest("BTCUSDT", "1h", as_of=later(2500), start=T0)
    received = source(server, sleeps).fetch(request)
    bars = received.bars
    assert bars.schema == pl.Schema(RECEIVED_SCHEMA)
    assert bars["ts"].to_list() == [later(i) for i in range(2500)]
    assert received.not_closed == 0 and received.rejected.is_empty()
    assert (bars["source"] == "bybit").all() and (bars["interval"] == "1h").all()
    first = rows[0]
    assert bars.row(0, named=True)["turnover"] == float(first[6])
    assert bars["close"][0] == float(first[4])
    assert json.loads(bars["raw"][0]) == dict(
        zip(("start", "open", "high", "low", "close", "volume", "turnover"), first, strict=True)
    )
    # Bybit's end is inclusive; each page ends just before the oldest bar of the last.
    assert [(r["start"], r["end"], r["limit"]) for r in server.requests] == [
        (str(T0_MS), str(ms(later(2500)) - 1), "1000"),
        (str(T0_MS), str(ms(later(1500)) - 1), "1000"),
        (str(T0_MS), str(ms(later(500)) - 1), "1000"),
    ]
    assert {r["category"] for r in server.requests} == {"linear"}
    assert {r["interval"] for r in server.requests} == {"60"}
    assert sleeps == []


def test_a_range_of_whole_pages_ends_when_it_reaches_start(
    server: BybitServer, sleeps: Sleeps
) -> None:
    hourly(server, 2500)
    request = BarRequest("BTCUSDT", "1h", as_of=later(3000), start=later(500), end=later(2500))
    received = source(server, sleeps).fetch(request)
    assert received.bars["ts"].to_list() == [later(i) for i in range(500, 2500)]
    assert len(server.requests) == 2  # no third call for an already covered range


def test_without_start_paging_runs_until_history_is_exhausted(
    server: BybitServer, sleeps: Sleeps
) -> None:
    hourly(server, 2000)
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(2000)))
    assert received.bars.height == 2000
    assert "start" not in server.requests[0]
    # Two full pages, then an empty one: the history is exhausted.
    assert len(server.requests) == 3


def test_page_boundary_duplicates_are_kept_once(server: BybitServer, sleeps: Sleeps) -> None:
    rows = hourly(server, 2500)
    # Hand-made pages that overlap by one bar, the way a sloppy end bound would.
    server.faults.extend(
        [page(rows[1500:][::-1]), page(rows[501:1501][::-1]), page(rows[:502][::-1])]
    )
    request = BarRequest("BTCUSDT", "1h", as_of=later(2500), start=T0)
    received = source(server, sleeps).fetch(request)
    assert received.bars["ts"].to_list() == [later(i) for i in range(2500)]
    assert [r["end"] for r in server.requests] == [
        str(ms(later(2500)) - 1),
        str(ms(later(1500)) - 1),
        str(ms(later(501)) - 1),
    ]


def test_out_of_order_pages_and_stray_bars(server: BybitServer, sleeps: Sleeps) -> None:
    rows = random_walk(T0_MS, 30, "60")
    stray_old = random_walk(T0_MS - 10 * HOUR_MS, 1, "60")
    future_ms = int(time.time() * 1000) + 10 * 86_400_000
    stray_future = [str(future_ms // HOUR_MS * HOUR_MS), *rows[0][1:]]
    shuffled = rows[10:20] + rows[:10] + stray_old + [stray_future] + rows[20:]
    server.add_candles("BTCUSDT", "60", rows)
    server.faults.append(page(shuffled))
    request = BarRequest("BTCUSDT", "1h", as_of=later(30), start=T0)
    received = source(server, sleeps).fetch(request)
    # Before start: not asked for, dropped; opening after now: rejected as such.
    assert received.bars["ts"].to_list() == [later(i) for i in range(30)]
    assert received.rejected["failed"].to_list() == [["ts_in_future"]]
    assert len(server.requests) == 1


def test_a_server_repeating_one_page_cannot_loop_the_client(
    server: BybitServer, sleeps: Sleeps
) -> None:
    rows = hourly(server, 2500)
    server.repeat(page(rows[-1000:][::-1]))
    request = BarRequest("BTCUSDT", "1h", as_of=later(2500))
    with pytest.raises(SourceError, match="does not page back") as error:
        source(server, sleeps).fetch(request)
    assert "bybit linear BTCUSDT 1h" in str(error.value)
    assert len(server.requests) == 2


def test_a_server_paging_back_too_slowly_is_stopped(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    end_ms = ms(later(24)) - 1
    # Full pages of off-grid bars, one millisecond apart: endless, but never the same.
    for k in range(20):
        rows = [[str(end_ms - k * 1000 - i), *["1"] * 6] for i in range(1000)]
        server.faults.append(page(rows))
    request = BarRequest("BTCUSDT", "1m", as_of=later(24), start=later(23))
    with pytest.raises(SourceError, match=r"more pages \(\d+\) than the range can hold"):
        source(server, sleeps).fetch(request)
    assert len(server.requests) == 2  # an hour of minutes fits one page: 2 pages at most


# -- what lands: forming candle, as-of, empty ranges ---------------------------------------


def test_the_forming_candle_is_counted_not_closed(server: BybitServer, sleeps: Sleeps) -> None:
    as_of = datetime.now(UTC)
    rows = random_walk(None, 50, "1h", until_ms=ms(as_of))  # attnviz names work too
    server.add_candles("ETHUSDT", "1h", rows)
    received = source(server, sleeps).fetch(BarRequest("ETHUSDT", "1h", as_of=as_of))
    forming = utc(int(rows[-1][0]))
    assert forming <= as_of < forming + timedelta(hours=1)
    assert received.not_closed == 1
    assert received.bars.height == 49 and received.bars["ts"].max() == forming - timedelta(hours=1)
    assert received.received == 50


def test_an_as_of_in_the_past_takes_only_bars_closed_by_then(
    server: BybitServer, sleeps: Sleeps
) -> None:
    hourly(server, 100)
    as_of = later(40) + timedelta(minutes=30)
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=as_of, start=T0))
    assert received.bars["ts"].max() == later(39) and received.bars.height == 40
    assert received.not_closed == 1  # the 40th bar, forming at the as-of
    # Bars opening after the as-of are not even asked for.
    assert server.requests[0]["end"] == str(ms(as_of) - 1)


def test_an_empty_page_ends_the_fetch(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 100)
    server.faults.append(empty_page())
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(100)))
    assert received.received == 0 and received.bars.schema == pl.Schema(RECEIVED_SCHEMA)
    assert len(server.requests) == 1


def test_a_range_without_bars_is_empty_not_an_error(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 100)
    request = BarRequest("BTCUSDT", "1h", as_of=later(500), start=later(200), end=later(300))
    received = source(server, sleeps).fetch(request)
    assert received.received == 0 and len(server.requests) == 1


@pytest.mark.parametrize(
    ("start", "end", "as_of"),
    [
        (later(50), later(10), later(100)),  # end before start
        (later(50), later(50), later(100)),  # an empty range
        (later(50), None, later(20)),  # starts after the as-of
        (datetime.now(UTC) + timedelta(days=3), None, datetime.now(UTC) + timedelta(days=9)),
    ],
)
def test_ranges_that_cannot_hold_a_bar_ask_nothing(
    server: BybitServer,
    sleeps: Sleeps,
    start: datetime,
    end: datetime | None,
    as_of: datetime,
) -> None:
    hourly(server, 100)
    received = source(server, sleeps).fetch(
        BarRequest("BTCUSDT", "1h", as_of=as_of, start=start, end=end)
    )
    assert received.received == 0 and server.requests == []


def test_a_future_as_of_asks_no_further_than_now(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    before = int(time.time() * 1000)
    as_of = datetime.now(UTC) + timedelta(days=30)
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=as_of, start=T0))
    assert received.bars.height == 10
    assert before - 1 <= int(server.requests[0]["end"]) <= int(time.time() * 1000)


def test_a_huge_range_of_minutes_with_little_history_is_one_call(
    server: BybitServer, sleeps: Sleeps
) -> None:
    server.add_candles("BTCUSDT", "1", random_walk(T0_MS, 10, "1"))
    request = BarRequest("BTCUSDT", "1m", as_of=later(1), start=datetime(1990, 1, 1, tzinfo=UTC))
    assert source(server, sleeps).fetch(request).bars.height == 10
    assert len(server.requests) == 1


def test_bounds_are_exact_to_the_millisecond(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    half = timedelta(microseconds=500)
    request = BarRequest("BTCUSDT", "1h", as_of=later(10), start=T0 + half, end=later(5) + half)
    received = source(server, sleeps).fetch(request)
    # Bybit's bounds are inclusive milliseconds: start rounds up, the end stays exclusive.
    assert server.requests[0]["start"] == str(T0_MS + 1)
    assert server.requests[0]["end"] == str(ms(later(5)))
    assert received.bars["ts"].to_list() == [later(i) for i in range(1, 6)]


def test_naive_times_are_refused(server: BybitServer, sleeps: Sleeps) -> None:
    request = BarRequest("BTCUSDT", "1h", as_of=datetime(2024, 1, 2))
    with pytest.raises(BarDataError, match="must be aware"):
        source(server, sleeps).fetch(request)
    assert server.requests == []
