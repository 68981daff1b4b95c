import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from bybit_server import (
    BybitServer,
    body,
    delay,
    empty_page,
    open_times,
    page,
    random_walk,
    rate_limit,
    retcode,
    status,
)

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources.base import BarRequest, SourceError
from attnviz.sources.bybit import INTERVAL_CODES, BybitSource

HOUR_MS = 3_600_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


@pytest.fixture
def server() -> Iterator[BybitServer]:
    with BybitServer() as running:
        yield running


class Sleeps(list[float]):
    """A ``sleep`` that records the waits asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        assert seconds >= 0, "a negative sleep"
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(autouse=True)
def no_env_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)


def source(server: BybitServer, sleeps: Sleeps, **options: object) -> BybitSource:
    return BybitSource(endpoint=server.url, timeout=0.3, sleep=sleeps, **options)  # type: ignore[arg-type]


def hourly(server: BybitServer, count: int = 2500, symbol: str = "BTCUSDT") -> list[list[str]]:
    rows = random_walk(T0_MS, count, "60")
    server.add_candles(symbol, "60", rows)
    return rows


def later(count: int) -> datetime:
    """A moment ``count`` hours after T0."""
    return T0 + timedelta(hours=count)


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


# -- intervals and values -------------------------------------------------------------------


@pytest.mark.parametrize(("interval", "code"), sorted(INTERVAL_CODES.items()))
def test_every_interval_maps_to_bybits_code(
    server: BybitServer, sleeps: Sleeps, interval: str, code: str
) -> None:
    start = T0_MS if code != "W" else ms(datetime(2024, 1, 1, tzinfo=UTC))  # a Monday
    rows = random_walk(start, 5, code)
    server.add_candles("BTCUSDT", code, rows)
    as_of = datetime(2025, 6, 1, tzinfo=UTC)
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", interval, as_of=as_of))
    assert server.requests[0]["interval"] == code
    assert received.bars["ts"].to_list() == [utc(int(row[0])) for row in rows]


def test_weekly_and_monthly_bars_keep_bybits_open_times(
    server: BybitServer, sleeps: Sleeps
) -> None:
    monday = datetime(2023, 12, 25, tzinfo=UTC)
    server.add_candles("BTCUSDT", "W", random_walk(ms(monday), 3, "W"))
    months = open_times(ms(datetime(2022, 11, 1, tzinfo=UTC)), 16, "M")
    server.add_candles("BTCUSDT", "M", random_walk(months[0], 16, "M"))
    bybit = source(server, sleeps)
    as_of = datetime(2024, 3, 1, tzinfo=UTC)
    weeks = bybit.fetch(BarRequest("BTCUSDT", "1w", as_of=as_of)).bars["ts"].to_list()
    assert weeks == [monday + timedelta(weeks=i) for i in range(3)]
    assert all(week.weekday() == 0 for week in weeks)
    monthly = bybit.fetch(BarRequest("BTCUSDT", "1M", as_of=as_of))
    expected = [
        datetime(2022 + (10 + i) // 12, (10 + i) % 12 + 1, 1, tzinfo=UTC) for i in range(16)
    ]
    assert monthly.bars["ts"].to_list() == expected  # across two year ends
    assert monthly.not_closed == 0  # the March 2024 bar opens at the as-of: not asked for
    request = BarRequest("BTCUSDT", "1M", as_of=datetime(2024, 2, 10, tzinfo=UTC))
    assert bybit.fetch(request).not_closed == 1  # February 2024 is forming


def test_values_that_are_not_numbers_reach_validation_as_null(
    server: BybitServer, sleeps: Sleeps
) -> None:
    rows = [
        [str(T0_MS), "abc", "2", "0.5", "1", "10", "10"],
        [str(T0_MS + HOUR_MS), "1", "", "0.5", "1", "10", ""],
        [str(T0_MS + 2 * HOUR_MS), "0", "-1", "-2", "0", "0", "0"],  # validation's job
        ["not-a-time", "1", "2", "0.5", "1", "10", "10"],
    ]
    server.faults.append(page(rows))
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    bars = received.bars
    assert bars.height == 4 and received.rejected.is_empty()
    assert bars["open"].to_list() == [None, 1.0, 0.0, 1.0]
    assert bars["high"].to_list() == [2.0, None, -1.0, 2.0]
    assert bars["turnover"].to_list() == [10.0, None, 0.0, 10.0]
    assert bars["ts"].to_list() == [T0, later(1), later(2), None]  # unreadable ts: last
    assert json.loads(bars["raw"][0])["open"] == "abc"
    assert json.loads(bars["raw"][1])["high"] == ""
    assert json.loads(bars["raw"][3])["start"] == "not-a-time"


def test_rows_not_in_bybits_shape_are_rejected_as_malformed(
    server: BybitServer, sleeps: Sleeps
) -> None:
    good = [str(T0_MS), "1", "2", "0.5", "1", "10", "10"]
    odd = [[str(T0_MS + HOUR_MS), "1", "2"], {"start": "1"}, [T0_MS, 1, 2, 0.5, 1, 10, 10], None]
    server.faults.append(page([good, *odd]))
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 1
    rejected = received.rejected
    assert rejected["failed"].to_list() == [["malformed_row"]] * 4
    assert [json.loads(raw) for raw in rejected["raw"]] == odd
    assert rejected["ts"].is_null().all() and (rejected["symbol"] == "BTCUSDT").all()
    assert received.received == 5


# -- errors, retries and limits -------------------------------------------------------------


def test_an_unknown_symbol_is_a_bar_data_error(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    with pytest.raises(BarDataError, match="bybit linear has no symbol 'FOOUSDT'"):
        source(server, sleeps).fetch(BarRequest("FOOUSDT", "1h", as_of=later(10)))
    spot = source(server, sleeps, category="spot")
    with pytest.raises(BarDataError, match="bybit spot has no symbol 'BTCUSDT'"):
        spot.fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert sleeps == []


def test_a_symbol_bybit_cannot_have_is_refused_before_asking(
    server: BybitServer, sleeps: Sleeps
) -> None:
    with pytest.raises(BarDataError, match="upper-case"):
        source(server, sleeps).fetch(BarRequest("btcusdt", "1h", as_of=later(10)))
    with pytest.raises(BarDataError, match="not a Bybit symbol"):
        source(server, sleeps).fetch(BarRequest("EURUSD=X", "1h", as_of=later(10)))
    assert server.requests == []


def test_other_retcodes_are_source_errors_naming_the_request(
    server: BybitServer, sleeps: Sleeps
) -> None:
    hourly(server, 10)
    server.faults.append(retcode(10001, "params error: interval invalid"))
    request = BarRequest("BTCUSDT", "1h", as_of=later(10), start=T0, end=later(5))
    with pytest.raises(SourceError) as error:
        source(server, sleeps).fetch(request)
    message = str(error.value)
    assert message.startswith("bybit linear BTCUSDT 1h [2024-01-01T00:00:00+00:00, 2024-01-01T05")
    assert "retCode 10001: params error: interval invalid" in message
    assert len(server.requests) == 1 and sleeps == []


def test_a_rate_limit_waits_until_bybits_reset_time(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    server.faults.append(rate_limit(reset_ms=int(time.time() * 1000) + 1500))
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 10
    assert len(sleeps) == 1 and 1.2 < sleeps[0] <= 1.5
    assert len(server.requests) == 2


def test_a_rate_limit_wait_is_capped_at_a_minute(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    server.faults.append(rate_limit(reset_ms=int(time.time() * 1000) + 3_600_000))
    source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert sleeps == [60.0]


@pytest.mark.parametrize("reset_ms", [1_000, None])
def test_a_rate_limit_with_a_past_or_no_reset_time_backs_off_briefly(
    server: BybitServer, sleeps: Sleeps, reset_ms: int | None
) -> None:
    hourly(server, 10)
    server.faults.append(rate_limit(reset_ms))
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 10
    assert len(sleeps) == 1 and 0.75 <= sleeps[0] <= 1.25


def test_rate_limits_count_toward_the_attempts(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    server.repeat(rate_limit(int(time.time() * 1000) + 500))
    with pytest.raises(SourceError, match="gave up after 3 attempts; last: rate limited"):
        source(server, sleeps, max_attempts=3).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_http_403_is_the_ip_rate_limit_and_is_not_retried(
    server: BybitServer, sleeps: Sleeps
) -> None:
    hourly(server, 10)
    server.repeat(status(403))
    with pytest.raises(SourceError, match="IP rate limit") as error:
        source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert "retry after several minutes" in str(error.value)
    assert "bybit linear BTCUSDT 1h" in str(error.value)
    assert len(server.requests) == 1 and sleeps == []


def test_other_http_errors_are_not_retried(server: BybitServer, sleeps: Sleeps) -> None:
    server.faults.append(status(404))
    with pytest.raises(SourceError, match="HTTP 404"):
        source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert len(server.requests) == 1


def test_a_timeout_is_retried(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    server.faults.append(delay(1.0))
    started = time.monotonic()
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 10
    assert time.monotonic() - started < 0.9  # gave up after the 0.3 s timeout
    assert len(sleeps) == 1 and len(server.requests) == 2


def test_a_refused_connection_fails_after_bounded_backoff(sleeps: Sleeps) -> None:
    gone = BybitServer()
    gone.stop()  # the port is closed: every connection is refused
    bybit = BybitSource(endpoint=gone.url, timeout=0.3, max_attempts=4, sleep=sleeps)
    request = BarRequest("BTCUSDT", "1h", as_of=later(10), start=T0)
    with pytest.raises(SourceError) as error:
        bybit.fetch(request)
    message = str(error.value)
    assert message.startswith("bybit linear BTCUSDT 1h [2024-01-01T00:00:00+00:00, as of")
    assert re.search(
        r"gave up after 4 attempts; last: connection to http://127.0.0.1:\d+ failed", message
    )
    assert message.endswith("(ConnectionError)")
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        assert 0.75 * 2**attempt <= wait <= 1.25 * 2**attempt


def test_backoff_is_capped(sleeps: Sleeps) -> None:
    gone = BybitServer()
    gone.stop()
    bybit = BybitSource(endpoint=gone.url, timeout=0.3, max_attempts=9, sleep=sleeps)
    with pytest.raises(SourceError):
        bybit.fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert len(sleeps) == 8 and max(sleeps) == 30.0


@pytest.mark.parametrize(
    "fault",
    [body(b"<html>not json</html>"), body(b"[1, 2]"), body(b'{"retCode": 0}'), retcode(10016)],
    ids=["html", "json-list", "no-result", "busy"],
)
def test_bodies_that_are_not_bybits_answer_are_retried(
    server: BybitServer, sleeps: Sleeps, fault: object
) -> None:
    hourly(server, 10)
    server.faults.append(fault)  # type: ignore[arg-type]
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 10
    assert len(sleeps) == 1 and len(server.requests) == 2


def test_server_errors_fail_after_the_attempts(server: BybitServer, sleeps: Sleeps) -> None:
    hourly(server, 10)
    server.repeat(status(502))
    request = BarRequest("BTCUSDT", "1h", as_of=later(10), start=T0, end=later(5))
    with pytest.raises(SourceError) as error:
        source(server, sleeps, max_attempts=3).fetch(request)
    message = str(error.value)
    assert message.startswith("bybit linear BTCUSDT 1h [2024-01-01T00:00:00+00:00, 2024-01-01T05")
    assert message.endswith("gave up after 3 attempts; last: HTTP 502")
    assert len(server.requests) == 3 and len(sleeps) == 2


# -- options and keys -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"category": "option"}, r"unknown category 'option'; expected one of .*spot.*linear"),
        ({"timeout": "fast"}, "timeout must be a positive number"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"max_attempts": 0}, "max_attempts must be a whole number"),
        ({"max_attempts": 2.5}, "max_attempts must be a whole number"),
        ({"endpoint": "ftp://example.com"}, "not an http"),
        ({"credentials": ("key", "")}, "credentials must be a pair"),
    ],
)
def test_bad_options_are_named(options: dict[str, object], match: str) -> None:
    with pytest.raises(BarDataError, match=match):
        BybitSource(**options)  # type: ignore[arg-type]


def test_symbols_must_be_named() -> None:
    with pytest.raises(BarDataError, match="name the symbols to fetch"):
        BybitSource().symbols("1h")


KEY, SECRET = "KEYk3yk3yk3y", "SECRETs3cr3ts3cr3t"


def leaks(text: str) -> bool:
    return KEY in text or SECRET in text


def test_keys_never_leak(
    server: BybitServer, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keyed = source(server, sleeps, credentials=(KEY, SECRET), max_attempts=2)
    assert repr(keyed).endswith("credentials=<hidden>)") and not leaks(repr(keyed))
    assert (keyed._client.api_key, keyed._client.api_secret) == (KEY, SECRET)
    assert not leaks(str(vars(keyed).get("endpoint")))
    hourly(server, 10)
    for fault in (retcode(10001, "params error"), status(403), status(500), delay(1.0)):
        server.repeat(fault)
        with pytest.raises(SourceError) as error:
            keyed.fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
        chain: BaseException | None = error.value
        while chain is not None:
            assert not leaks(str(chain)) and not leaks(repr(chain))
            assert not any(leaks(str(arg)) for arg in chain.args)
            chain = chain.__cause__ or chain.__context__
    assert not leaks(caplog.text)


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BYBIT_API_KEY", KEY)
    monkeypatch.setenv("BYBIT_API_SECRET", SECRET)
    keyed = BybitSource()
    assert "credentials=<hidden>" in repr(keyed) and not leaks(repr(keyed))
    assert (keyed._client.api_key, keyed._client.api_secret) == (KEY, SECRET)
    monkeypatch.delenv("BYBIT_API_SECRET")
    assert "credentials" not in repr(BybitSource())  # half a key is none
