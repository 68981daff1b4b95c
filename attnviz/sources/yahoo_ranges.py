"""What to ask Yahoo for: its intervals, its look-back limits, and the ranges of each download.

Intervals and ``ts``. 1m 5m 15m 30m 1d 1w 1M are Yahoo's 1m 5m 15m 30m 1d 1wk 1mo; Yahoo
has no 3m 2h 4h 6h 12h. Its hourly bars of US stocks open at the half hour (09:30 New
York), off attnviz's hourly grid: 1h is refused. Weeks are asked for from a Monday and
months from the 1st, as Yahoo dates bars from where it is asked, so they land on
attnviz's grid; a row off it is left to validation.

Look-back. Yahoo serves 1m bars of the last 30 days, 5m to 30m bars of the last 60
(yfinance builds 30m from 15m), 1m at most 7 days a request (yfinance 1.7 asks 8 at most;
Yahoo's message said 7). A range reaching further back is refused before any request; no
start means as far back as allowed (less a day, so it is still inside when Yahoo checks).
Longer 1m ranges are fetched in 7-day chunks. Daily and longer: no limit, no start means
from the first trade.
"""

from datetime import UTC, datetime, timedelta

from attnviz.bars import BarDataError, floor
from attnviz.sources.base import BarRequest

# ``[start, end)`` of a fetch or a download; ``None``: from the first trade, or until now.
Span = tuple[datetime | None, datetime | None]

YAHOO_INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1d": "1d"}
YAHOO_INTERVALS |= {"1w": "1wk", "1M": "1mo"}
# The intraday intervals, and how far back Yahoo serves them.
LOOKBACK = {"1m": timedelta(days=30), **{i: timedelta(days=60) for i in ("5m", "15m", "30m")}}
CHUNK, MARGIN = {"1m": timedelta(days=7)}, timedelta(days=1)
HOURLY = "Yahoo's hourly bars of US stocks open at the half hour (09:30, 10:30 New York), off "
HOURLY += "the hourly grid attnviz keys bars on; use 30m or 1d"


def intraday(interval: str) -> bool:
    """Whether Yahoo's bars of ``interval`` are instants (not dates), with a look-back limit."""
    return interval in LOOKBACK


def check_range(request: BarRequest, now: datetime) -> Span | None:
    """The range to fetch for ``request``; ``None`` if it can hold no bar.

    Raises
    ------
    BarDataError
        For an interval Yahoo lacks, or a range beyond its look-back.
    """
    symbol, interval, start, end = request.symbol, request.interval, request.start, request.end
    if interval == "1h":
        raise BarDataError(f"yfinance: {symbol} 1h: {HOURLY}")
    if interval not in YAHOO_INTERVALS:
        offered = ", ".join(YAHOO_INTERVALS)
        raise BarDataError(f"yfinance: {symbol}: Yahoo has no {interval} bars; it has {offered}")
    if intraday(interval):
        earliest = now - LOOKBACK[interval] + MARGIN
        if (start is not None and start < earliest) or (end is not None and end <= earliest):
            raise BarDataError(
                f"yfinance: {symbol} {interval} from {start or 'the start'} to {end or 'now'}: "
                f"Yahoo serves {interval} bars of the last {LOOKBACK[interval].days} days only; "
                f"start at {earliest:%Y-%m-%d %H:%M} UTC or later, or use a longer interval"
            )
        start = start or earliest
    return None if start is not None and start >= (end or now) else (start, end)


def windows(
    interval: str, start: datetime | None, end: datetime | None, now: datetime
) -> list[Span]:
    """The ``[start, end)`` of each download: instants for intraday bars, else dates."""
    if intraday(interval):
        assert start is not None  # check_range gave every intraday request one
        start, step, stop = floor(start, interval), CHUNK.get(interval), end or now
        if step is None:
            return [(start, end)]
        starts = [start + k * step for k in range(-(-(stop - start) // step))]
        return [(s, s + step if s + step < stop else end) for s in starts]

    def day(moment: datetime) -> datetime:
        return datetime.combine(moment.astimezone(UTC).date(), datetime.min.time())

    first = start and day(start)
    if first and interval != "1d":  # Yahoo dates weeks and months from the day it is asked
        first = first.replace(day=1) if interval == "1M" else first - timedelta(first.weekday())
    pad = {"1d": timedelta(days=1), "1w": timedelta(days=7), "1M": timedelta(days=31)}[interval]
    return [(first, end and day(end) + pad)]
