"""What the Yahoo source tests share: a fixed now, and a source on recorded answers."""

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import yahoo_fixtures as yx

from attnviz.sources import BarRequest
from attnviz.sources.yfinance import YFinanceSource

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
    """A request for the first days of January 2024 (the bars :func:`daily` answers with)."""
    bounds = {"start": utc(2024, 1, 1), "end": utc(2024, 1, 5)} | bounds
    return BarRequest(symbol, interval, as_of=NOW, **bounds)
