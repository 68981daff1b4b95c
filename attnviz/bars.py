"""What a bar is: its columns, its intervals, and the symbol names attnviz accepts.

A bar is keyed by (source, symbol, interval, ts); ``ts`` is the bar's open time
in UTC. Sources hand over *received* frames: the bar columns plus ``raw``, the
row exactly as the source gave it (JSON), so a rejected row can be quarantined
as received even when a value could not be parsed. ``turnover`` (the traded value,
in the quote currency) is kept where a source reports it (Bybit) and null elsewhere.

Intervals run from one minute to one month. Every interval but the month has a
fixed length (:data:`INTERVALS`); a monthly bar opens on the first of its month,
00:00 UTC, and lasts to the first of the next, so arithmetic on bar times goes
through :func:`bar_end`, :func:`shift` and :func:`floor` rather than a length.
"""

import re
from datetime import UTC, datetime, timedelta

import polars as pl

KEY = ("source", "symbol", "interval", "ts")
PRICES = ("open", "high", "low", "close")
VALUES = (*PRICES, "volume")

UTC_TS = pl.Datetime("us", "UTC")
SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "symbol": pl.String(),
    "interval": pl.String(),
    "ts": UTC_TS,
    **{column: pl.Float64() for column in VALUES},
    "turnover": pl.Float64(),
}
RECEIVED_SCHEMA: dict[str, pl.DataType] = {**SCHEMA, "raw": pl.String()}

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "3m": timedelta(minutes=3),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "1h": timedelta(hours=1),
    "2h": timedelta(hours=2),
    "4h": timedelta(hours=4),
    "6h": timedelta(hours=6),
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
    "1w": timedelta(weeks=1),
}
# Weekly bars open on Monday 00:00 UTC (as Bybit's "W" candles do); 1970-01-01 was a Thursday.
GRID_ORIGIN: dict[str, timedelta] = {"1w": timedelta(days=4)}
# The calendar interval: bars open on the first of each month, 00:00 UTC.
MONTHLY = "1M"
INTERVAL_NAMES = (*INTERVALS, MONTHLY)

# Letters, digits and the punctuation real tickers use (BRK-B, EURUSD=X, ^GSPC, BTC.D).
# No slash, quote, space or semicolon: a symbol never becomes a path or SQL by accident.
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9._=^-]{0,31}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


class BarDataError(ValueError):
    """Bars, or a request for bars, that attnviz cannot take; the message says what and where."""


def check_interval(interval: str) -> str:
    """Return ``interval`` if attnviz knows it (:data:`INTERVAL_NAMES`).

    Raises
    ------
    BarDataError
        If it does not, naming the intervals it knows.
    """
    if interval not in INTERVAL_NAMES:
        raise BarDataError(
            f"unknown interval {interval!r}; expected one of {', '.join(INTERVAL_NAMES)}"
        )
    return interval


def interval_duration(interval: str) -> timedelta:
    """Length of one bar of ``interval``; a month counts as its shortest, 28 days.

    Use it for sizes (how long a bar is at least), never to step from one bar to the
    next: :func:`shift` does that for every interval.

    Raises
    ------
    BarDataError
        If the interval is not one of :data:`INTERVAL_NAMES`.
    """
    check_interval(interval)
    return INTERVALS.get(interval, timedelta(days=28))


def bar_end(ts: pl.Expr, interval: str) -> pl.Expr:
    """When each bar opening at ``ts`` closes (the next bar's open time)."""
    if check_interval(interval) == MONTHLY:
        return ts.dt.offset_by("1mo")
    return ts + INTERVALS[interval]


def shift(moment: datetime, bars: int, interval: str) -> datetime:
    """``moment`` moved by ``bars`` intervals (back when negative), months by the calendar.

    A moment on the 31st moved by months lands on the last day of a shorter month.
    """
    if check_interval(interval) != MONTHLY:
        return moment + bars * INTERVALS[interval]
    months = moment.year * 12 + moment.month - 1 + bars
    year, month = divmod(months, 12)
    next_month = datetime(year + (month == 11), (month + 1) % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))


def floor(moment: datetime, interval: str) -> datetime:
    """The open time of the bar of ``interval`` that ``moment`` (aware) falls in, in UTC."""
    moment = moment.astimezone(UTC)
    if check_interval(interval) == MONTHLY:
        return datetime(moment.year, moment.month, 1, tzinfo=UTC)
    origin = datetime(1970, 1, 1, tzinfo=UTC) + GRID_ORIGIN.get(interval, timedelta())
    step = INTERVALS[interval]
    return origin + (moment - origin) // step * step


def is_symbol(text: object) -> bool:
    """Whether ``text`` is a well-formed ticker (:data:`SYMBOL_PATTERN`)."""
    return isinstance(text, str) and _SYMBOL.fullmatch(text) is not None


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is a well-formed ticker, else raise :class:`BarDataError`."""
    if not is_symbol(symbol):
        raise BarDataError(
            f"invalid symbol {symbol!r}: use 1-32 letters, digits or . _ = ^ - "
            "(starting with a letter, digit or ^)"
        )
    return symbol


def grid_offset_seconds(ts: pl.Expr, interval: str) -> pl.Expr:
    """Seconds by which each ``ts`` lies past its interval's grid (0 = aligned)."""
    if check_interval(interval) == MONTHLY:
        return (ts - ts.dt.truncate("1mo")).dt.total_seconds()
    step = int(interval_duration(interval).total_seconds())
    origin = int(GRID_ORIGIN.get(interval, timedelta()).total_seconds())
    return (ts.dt.epoch("s") - origin) % step
