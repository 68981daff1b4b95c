"""The one interface every bar source implements, and the pieces of a fetch they share."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

import polars as pl

from attnviz.bars import RECEIVED_SCHEMA, bar_end, check_interval, check_symbol, shift

# The received columns as a polars Schema, the form ``DataFrame.cast`` is typed to take
# (``RECEIVED_SCHEMA`` is a plain dict); and the quarantine's: those plus ``failed``, the reasons.
RECEIVED = pl.Schema(RECEIVED_SCHEMA)
REJECTED = pl.Schema({**RECEIVED_SCHEMA, "failed": pl.List(pl.String())})


class SourceError(RuntimeError):
    """A source could not deliver, after its own bounded retries (network, rate limits, outages).

    The message names the source, the symbol and the range asked for. The source has
    already retried what was worth retrying, so callers do not retry it again.
    """


def empty_rejected() -> pl.DataFrame:
    """A quarantine frame with no rows (:data:`REJECTED`)."""
    return pl.DataFrame(schema=REJECTED)


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
        check_interval(self.interval)

    def asked_for(self, ts: pl.Expr) -> pl.Expr:
        """Whether each ``ts`` lies within the bounds, ``start <= ts < end``."""
        wanted = pl.lit(True)
        if self.start is not None:
            wanted &= ts >= self.start
        if self.end is not None:
            wanted &= ts < self.end
        return wanted


def chunks(request: BarRequest, bars: int) -> list[BarRequest]:
    """``request`` cut into consecutive requests of at most ``bars`` bars each, oldest first.

    A long range (a backfill of years of minute bars) is then read, validated and
    loaded a piece at a time: memory stays bounded, and a run killed half-way keeps
    the pieces it loaded, so the next run resumes from them. A request without a
    ``start`` cannot be cut and stays whole.
    """
    if request.start is None:
        return [request]
    last = min(request.end or request.as_of, request.as_of)
    pieces: list[BarRequest] = []
    start = request.start
    while True:
        end = shift(start, bars, request.interval)
        if end >= last:
            return [*pieces, replace(request, start=start)]
        pieces.append(replace(request, start=start, end=end))
        start = end


@dataclass(frozen=True)
class Received:
    """Everything a source read for one request, each row accounted for.

    ``received == len(bars) + len(rejected) + not_closed``: a row the source read
    either goes on to validation, is already quarantined with a reason, or is a
    bar that had not closed by the request's ``as_of`` (counted, not stored).

    Attributes
    ----------
    bars
        Rows for validation, in :data:`attnviz.bars.RECEIVED_SCHEMA`: closed bars inside the
        request's bounds, plus rows whose ``ts`` could not be read (validation quarantines them).
    rejected
        Rows the source itself could tell were wrong (e.g. an ``interval`` column naming another
        interval, a bar timestamped in the future), as received plus ``failed``: the reasons.
    not_closed
        Rows of bars that had not closed by ``as_of`` (the forming bar, or a later one).
    """

    bars: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=empty_rejected)
    not_closed: int = 0

    @property
    def received(self) -> int:
        """How many rows the source read for the request."""
        return self.bars.height + self.rejected.height + self.not_closed


class BarSource(Protocol):
    """A source of OHLCV bars: ``fetch`` returns what it read for a request (:class:`Received`)."""

    name: str

    def symbols(self, interval: str) -> list[str]:
        """The symbols the source holds at ``interval``."""
        ...

    def fetch(self, request: BarRequest) -> Received:
        """What the source read for ``request``."""
        ...


@runtime_checkable
class BatchSource(BarSource, Protocol):
    """A source that serves several series in one request (Yahoo: one download, many tickers)."""

    def fetch_many(self, requests: list[BarRequest]) -> dict[str, Received | Exception]:
        """By symbol, what the source read for each request, or the exception that stopped it."""
        ...


def labels(source: str, request: BarRequest) -> list[pl.Expr]:
    """The ``source``, ``symbol`` and ``interval`` columns of the rows read for ``request``."""
    return [
        pl.lit(source).alias("source"),
        pl.lit(request.symbol).alias("symbol"),
        pl.lit(request.interval).alias("interval"),
    ]


def with_raw(columns: Sequence[str]) -> pl.Expr:
    """The expression that records each row as received, its ``columns`` as one JSON object."""
    return pl.struct(columns).struct.json_encode().alias("raw")


def failed_with(reason: str) -> pl.Expr:
    """The ``failed`` column of rows a source rejects for one ``reason``."""
    return pl.lit([reason], dtype=pl.List(pl.String())).alias("failed")


def in_request(frame: pl.DataFrame, request: BarRequest, now: datetime | None = None) -> Received:
    """Sort the rows of ``frame`` (received schema) by what the request makes of them.

    Rows inside the request's time bounds that had closed by its ``as_of`` go on to
    validation; so do rows without a ``ts``, which are bad input validation must see.
    Rows that open after the wall clock (``now``) cannot be real bars and are
    rejected as ``ts_in_future``; the others that had not closed by ``as_of`` are
    counted as ``not_closed``. Rows outside ``[start, end)`` were not asked for.
    """
    now = now or datetime.now(UTC)
    ts = pl.col("ts")
    frame = frame.filter(request.asked_for(ts) | ts.is_null())
    future = ts > now
    closed = bar_end(ts, request.interval) <= request.as_of
    return Received(
        bars=frame.filter(ts.is_null() | (closed & ~future)),
        rejected=frame.filter(future).with_columns(failed_with("ts_in_future")),
        not_closed=frame.filter(~closed & ~future).height,
    )
