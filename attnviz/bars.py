"""What a bar is: its columns, its intervals, and the symbol names attnviz accepts.

A bar is keyed by (source, symbol, interval, ts); ``ts`` is the bar's open time
in UTC. Sources hand over *received* frames: the bar columns plus ``raw``, the
row exactly as the source gave it (JSON), so a rejected row can be quarantined
as received even when a value could not be parsed.
"""

import re
from datetime import timedelta

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

# Letters, digits and the punctuation real tickers use (BRK-B, EURUSD=X, ^GSPC, BTC.D).
# No slash, quote, space or semicolon: a symbol never becomes a path or SQL by accident.
SYMBOL_PATTERN = r"^[A-Za-z0-9^][A-Za-z0-9._=^-]{0,31}$"
_SYMBOL = re.compile(SYMBOL_PATTERN)


class BarDataError(ValueError):
    """Bars, or a request for bars, that attnviz cannot take; the message says what and where."""


def interval_duration(interval: str) -> timedelta:
    """Length of one bar of ``interval``.

    Raises
    ------
    BarDataError
        If the interval is not one of :data:`INTERVALS`.
    """
    try:
        return INTERVALS[interval]
    except KeyError:
        raise BarDataError(
            f"unknown interval {interval!r}; expected one of {', '.join(INTERVALS)}"
        ) from None


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
    step = int(interval_duration(interval).total_seconds())
    origin = int(GRID_ORIGIN.get(interval, timedelta()).total_seconds())
    return (ts.dt.epoch("s") - origin) % step
