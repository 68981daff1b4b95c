"""Bybit v5 candles (``/v5/market/kline``) through pybit, Bybit's own client.

Paging
------
Bybit answers at most 1000 candles per call, the newest of the range asked for, newest first,
every value a string: ``[startTime ms, open, high, low, close, volume, turnover]``. A fetch
asks for ``[start, end)`` (Bybit's bounds are inclusive, so up to ``end - 1 ms``), capped at
the request's ``as_of`` and the wall clock (later bars cannot have closed, or exist), then
pages back: each page ends just before the oldest bar of the last. Paging stops at a short
or empty page (the range, or the history, is exhausted) or on reaching ``start``. A server
that does not page back (the same page again, more pages than the range can hold) is an
error, never an endless loop. A bar read twice at a page boundary is kept once.

Rows
----
``raw`` keeps Bybit's strings; a value that is not a number reaches validation as null, to
be quarantined there. A row that is not a list of seven strings is rejected as
``malformed_row``. Bybit's newest candle is still forming: it, like any bar not closed by
the ``as_of``, is counted as not closed (:func:`~attnviz.sources.base.in_request`). Weekly
and monthly bars keep Bybit's open times (Monday; the first of the month; 00:00 UTC).

Errors, limits and keys
-----------------------
Each page is one call of :class:`~attnviz.sources.bybit_client.KlineClient`, which retries
what is worth retrying and tells the rest apart. Market data needs no API key.
``credentials``, or else ``BYBIT_API_KEY`` and ``BYBIT_API_SECRET`` from the environment,
go to pybit and nowhere else: no repr, log line or error message shows them.
"""

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeGuard

import polars as pl

from attnviz.bars import VALUES, BarDataError, interval_duration
from attnviz.sources.base import (
    RECEIVED,
    REJECTED,
    BarRequest,
    Received,
    SourceError,
    failed_with,
    in_request,
    labels,
    with_raw,
)
from attnviz.sources.bybit_client import CATEGORIES, KlineClient

INTERVAL_CODES = {
    **{f"{n}m": str(n) for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": str(n * 60) for n in (1, 2, 4, 6, 12)},
    **{"1d": "D", "1w": "W", "1M": "M"},
}
LIMIT = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS = ("start", "open", "high", "low", "close", "volume", "turnover")
_BYBIT_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
_MS = re.compile(r"^-?\d{1,15}$")  # under 10**15 ms (year 33658): no datetime overflow


class BybitSource:
    """Candles of one Bybit market category.

    Parameters
    ----------
    category
        ``"spot"``, ``"linear"`` (USDT/USDC perpetuals and futures) or ``"inverse"``.
    endpoint
        Base URL instead of Bybit's mainnet (e.g. a loopback test server).
    timeout
        Seconds to wait for each HTTP answer.
    max_attempts
        Calls per page at most, retries included.
    credentials
        ``(api_key, api_secret)``; else ``BYBIT_API_KEY``/``BYBIT_API_SECRET`` if both are set.
    sleep
        How to wait between attempts (for tests: record the waits instead).

    Raises
    ------
    BarDataError
        For an option out of range, named (credentials never shown).
    """

    name = "bybit"

    def __init__(
        self,
        category: Literal["spot", "linear", "inverse"] = "linear",
        endpoint: str | None = None,
        timeout: float = 10,
        max_attempts: int = 5,
        credentials: tuple[str, str] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        key, secret = os.environ.get("BYBIT_API_KEY"), os.environ.get("BYBIT_API_SECRET")
        if credentials is None and key and secret:
            credentials = (key, secret)
        # Options come from YAML and flow parameters: their types are checked, not trusted.
        whole = isinstance(max_attempts, int) and not isinstance(max_attempts, bool)
        seconds = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if category not in CATEGORIES:
            problem = f"unknown category {category!r}; expected one of {', '.join(CATEGORIES)}"
        elif endpoint is not None and not re.match(r"^https?://[^\s/]+", str(endpoint)):
            problem = f"endpoint {endpoint!r} is not an http(s) URL"
        elif not (seconds and 0 < timeout < float("inf")):
            problem = f"timeout must be a positive number of seconds, not {timeout!r}"
        elif not (whole and max_attempts >= 1):
            problem = f"max_attempts must be a whole number >= 1, not {max_attempts!r}"
        elif credentials is not None and not _pair(credentials):
            problem = "credentials must be a pair of non-empty strings (key, secret)"  # unquoted
        else:
            problem = None
        if problem:
            raise BarDataError(f"bybit: {problem}")
        self.category = category
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.timeout = float(timeout)
        self.max_attempts = max_attempts
        self._keyed = credentials is not None
        self._client = KlineClient(
            category, self.endpoint, self.timeout, max_attempts, credentials, sleep
        )

    def __repr__(self) -> str:
        keyed = ", credentials=<hidden>" if self._keyed else ""
        return (
            f"BybitSource(category={self.category!r}, endpoint={self.endpoint!r}, "
            f"timeout={self.timeout:g}, max_attempts={self.max_attempts}{keyed})"
        )

    def symbols(self, interval: str) -> list[str]:
        """Not listed: Bybit has hundreds of symbols per category, so a catalogue names them.

        Raises
        ------
        BarDataError
            Always, saying so.
        """
        raise BarDataError(
            "bybit: name the symbols to fetch (e.g. BTCUSDT); the exchange lists hundreds "
            f"of {self.category} symbols"
        )

    def fetch(self, request: BarRequest) -> Received:
        """Every candle of ``request`` Bybit has, paging back from its end (see the module doc).

        Raises
        ------
        BarDataError
            For a symbol Bybit cannot have, or does not list in this category.
        SourceError
            When Bybit cannot deliver after the retries worth making.
        """
        if not _BYBIT_SYMBOL.match(request.symbol):
            raise BarDataError(
                f"bybit: {request.symbol!r} is not a Bybit symbol (upper-case letters, digits "
                "and '-', e.g. BTCUSDT)"
            )
        moments = (request.as_of, request.start, request.end)
        if any(moment is not None and moment.tzinfo is None for moment in moments):
            raise BarDataError(f"{self._label(request)}: as_of, start and end must be aware")
        now = datetime.now(UTC)
        # Bybit's bounds are inclusive whole milliseconds: t >= start, t < end.
        end_ms = _ms(min(request.end or now, request.as_of, now)) - 1
        start_ms = None if request.start is None else _ms(request.start)
        frames = [self._frame(request, [])]
        malformed: list[str] = []
        if start_ms is None or start_ms <= end_ms:
            for page in self._pages(request, start_ms, end_ms):  # page by page: less memory
                frames.append(self._frame(request, [row for row in page if _shaped(row)]))
                malformed += [json.dumps(row) for row in page if not _shaped(row)]
        ts = pl.col("ts")
        frame = pl.concat(frames).filter(ts.is_first_distinct() | ts.is_null())  # boundary twins
        received = in_request(frame.sort(ts, nulls_last=True, maintain_order=True), request, now)
        if not malformed:
            return received
        rejected = pl.DataFrame({"raw": malformed}, schema={"raw": pl.String}).select(
            *labels(self.name, request),
            *(pl.lit(None).alias(column) for column in ("ts", *VALUES, "turnover")),
            "raw",
            failed_with("malformed_row"),
        )
        return Received(
            received.bars,
            pl.concat([received.rejected, rejected.cast(REJECTED)]),
            received.not_closed,
        )

    def _frame(self, request: BarRequest, rows: list[list[str]]) -> pl.DataFrame:
        """The received frame of rows in Bybit's shape, ``raw`` holding their strings."""
        texts = pl.DataFrame(
            {name: [row[i] for row in rows] for i, name in enumerate(COLUMNS)},
            schema=dict.fromkeys(COLUMNS, pl.String),
        )
        epoch_ms = pl.Series([_start_ms(row) for row in rows], dtype=pl.Int64)
        ts = pl.from_epoch(pl.lit(epoch_ms), time_unit="ms").dt.replace_time_zone("UTC")
        return texts.select(
            *labels(self.name, request),
            ts.alias("ts"),
            # Not a number ("abc", ""): null, for validation to quarantine; raw keeps it.
            *(pl.col(column).cast(pl.Float64, strict=False) for column in COLUMNS[1:]),
            with_raw(COLUMNS),
        ).cast(RECEIVED)

    def _pages(
        self, request: BarRequest, start_ms: int | None, end_ms: int
    ) -> Iterator[list[object]]:
        """The pages Bybit gives for ``[start_ms, end_ms]``, newest first."""
        # A full page of distinct bars spans LIMIT - 1 intervals at least: a server that needs
        # more pages than the range can hold does not page back as Bybit does.
        step_ms = int(interval_duration(request.interval).total_seconds() * 1000)
        floor_ms = 0 if start_ms is None else start_ms  # Bybit has nothing before 1970
        budget = max(end_ms - floor_ms, 0) // ((LIMIT - 1) * step_ms) + 2
        label = self._label(request)
        for _ in range(budget):
            query = {
                "category": self.category,
                "symbol": request.symbol,
                "interval": INTERVAL_CODES[request.interval],
                "start": start_ms,
                "end": end_ms,
                "limit": LIMIT,
            }
            page = self._client.page(query, label)
            yield page
            if len(page) < LIMIT:  # the range (or the history) is exhausted
                return
            starts = (_start_ms(row) for row in page if _shaped(row))
            inside = [s for s in starts if s is not None and floor_ms <= s <= end_ms]
            if not inside:
                raise SourceError(
                    f"{label}: Bybit sent a full page with no bar in "
                    f"[{start_ms}, {end_ms}] ms: it does not page back"
                )
            end_ms = min(inside) - 1
            if end_ms < floor_ms:
                return
        raise SourceError(
            f"{label}: Bybit sent more pages ({budget}) than the range can hold: it does not "
            "page back"
        )

    def _label(self, request: BarRequest) -> str:
        """Source, category, symbol, interval and range, for messages."""
        start = request.start.isoformat() if request.start else "the first bar"
        end = request.end.isoformat() if request.end else f"as of {request.as_of.isoformat()}"
        return f"bybit {self.category} {request.symbol} {request.interval} [{start}, {end})"


def _ms(moment: datetime) -> int:
    """``moment`` in whole milliseconds since 1970, rounded up (exact: no float)."""
    return -((EPOCH - moment) // timedelta(milliseconds=1))


def _start_ms(row: list[str]) -> int | None:
    """A row's open time in ms, if it is a whole number of a sane size."""
    return int(row[0]) if _MS.match(row[0]) else None


def _pair(credentials: object) -> bool:
    return (
        isinstance(credentials, tuple | list)
        and len(credentials) == 2
        and all(isinstance(part, str) and part for part in credentials)
    )


def _shaped(row: object) -> TypeGuard[list[str]]:
    """Whether ``row`` has Bybit's shape: a list of seven strings."""
    return (
        isinstance(row, list)
        and len(row) == len(COLUMNS)
        and all(isinstance(value, str) for value in row)
    )
