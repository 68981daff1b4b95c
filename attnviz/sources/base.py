"""The one interface every bar source implements."""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import polars as pl

from attnviz.bars import check_symbol, interval_duration


@dataclass(frozen=True)
class BarRequest:
    """Which bars to fetch.

    Parameters
    ----------
    symbol, interval
        The series.
    as_of
        The moment of the fetch: only bars that had closed by then are returned.
        A replayed source (``sample``) pretends the clock stood there.
    start, end
        Optional bounds on the bar-open time, ``start <= ts < end``.
    """

    symbol: str
    interval: str
    as_of: datetime
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        check_symbol(self.symbol)
        interval_duration(self.interval)


class BarSource(Protocol):
    """A source of OHLCV bars.

    ``fetch`` returns a frame with :data:`attnviz.bars.RECEIVED_SCHEMA`: only
    closed bars inside the request's bounds, plus any rows whose ``ts`` could
    not be read (so validation can quarantine them rather than lose them).
    """

    name: str

    def fetch(self, request: BarRequest) -> pl.DataFrame: ...


def in_request(frame: pl.DataFrame, request: BarRequest) -> pl.DataFrame:
    """Rows of ``frame`` inside the request's time bounds and closed by its ``as_of``.

    Rows without a ts are kept: they are bad input that validation must see.
    """
    ts = pl.col("ts")
    keep = ts + interval_duration(request.interval) <= request.as_of
    if request.start is not None:
        keep &= ts >= request.start
    if request.end is not None:
        keep &= ts < request.end
    return frame.filter(keep | ts.is_null())


def with_raw(frame: pl.DataFrame) -> pl.Expr:
    """The expression that records each row of ``frame`` as received, as one JSON object."""
    return pl.struct(frame.columns).struct.json_encode().alias("raw")
