"""The Bybit client's retries, waits and errors, on a loopback server that misbehaves."""

import re
import time
from types import SimpleNamespace

import pytest
from bybit_faults import Fault, body, delay, rate_limit, retcode, status
from bybit_kit import T0, Sleeps, hourly, later, source
from bybit_server import BybitServer

from attnviz.bars import BarDataError
from attnviz.sources import bybit_client
from attnviz.sources.base import BarRequest, SourceError
from attnviz.sources.bybit import BybitSource

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


def test_a_rate_limit_waits_until_bybits_reset_time(
    server: BybitServer, sleeps: Sleeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The client's clock stands still, so the wait it computes is exact.
    monkeypatch.setattr(bybit_client, "time", SimpleNamespace(time=lambda: 1_000.0))
    hourly(server, 10)
    server.faults.append(rate_limit(reset_ms=1_001_500))
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 10
    assert sleeps == [1.5]
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
    received = source(server, sleeps).fetch(BarRequest("BTCUSDT", "1h", as_of=later(10)))
    assert received.bars.height == 10
    # Waiting out the slow answer would have needed one request: the client gave up on it
    # after its 0.3 s timeout, backed off once and asked again.
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
    server: BybitServer, sleeps: Sleeps, fault: Fault
) -> None:
    hourly(server, 10)
    server.faults.append(fault)
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
