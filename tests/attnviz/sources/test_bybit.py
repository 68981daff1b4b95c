"""The Bybit source's intervals, values and rows, and its options and keys."""

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bybit_faults import delay, page, retcode, status
from bybit_kit import HOUR_MS, T0, T0_MS, Sleeps, hourly, later, ms, source, utc
from bybit_server import BybitServer, open_times, random_walk

from attnviz.bars import BarDataError
from attnviz.sources.base import BarRequest, SourceError
from attnviz.sources.bybit import INTERVAL_CODES, BybitSource

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
def test_bad_options_are_named(options: dict[str, Any], match: str) -> None:
    # Options come from YAML and flow parameters: wrong types are named, not trusted.
    with pytest.raises(BarDataError, match=match):
        BybitSource(**options)


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
    assert (keyed._client.http.api_key, keyed._client.http.api_secret) == (KEY, SECRET)
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
    assert (keyed._client.http.api_key, keyed._client.http.api_secret) == (KEY, SECRET)
    monkeypatch.delenv("BYBIT_API_SECRET")
    assert "credentials" not in repr(BybitSource())  # half a key is none
