"""What the Bybit source tests share: a fixed start, a recording sleep, a source on the loopback.

The fixtures (``server``, ``sleeps``) are in ``tests/attnviz/sources/conftest.py``.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from bybit_faults import Row
from bybit_server import BybitServer, random_walk

from attnviz.sources.bybit import BybitSource

HOUR_MS = 3_600_000
T0 = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday
T0_MS = int(T0.timestamp() * 1000)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC)


def later(count: int) -> datetime:
    """A moment ``count`` hours after T0."""
    return T0 + timedelta(hours=count)


class Sleeps(list[float]):
    """A ``sleep`` that records the waits asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        assert seconds >= 0, "a negative sleep"
        self.append(seconds)


def source(server: BybitServer, sleeps: Sleeps, **options: Any) -> BybitSource:
    """A source on the loopback server, quick to time out, recording its waits."""
    return BybitSource(endpoint=server.url, timeout=0.3, sleep=sleeps, **options)


def hourly(server: BybitServer, count: int = 2500, symbol: str = "BTCUSDT") -> list[Row]:
    """``count`` hourly candles of ``symbol`` from T0 on the server; returns them."""
    rows = random_walk(T0_MS, count, "60")
    server.add_candles(symbol, "60", rows)
    return rows
