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

Errors and limits
-----------------
pybit makes exactly one attempt per call and never sleeps; this module retries, at most
``max_attempts`` calls per page in all. A rate limit (retCode 10006) waits until Bybit's
``X-Bapi-Limit-Reset-Timestamp`` (at most 60 s; a backoff if it is missing or past). A
network error, a timeout, HTTP 5xx, retCode 10000/10016 (busy) or a body that is not
Bybit's JSON backs off exponentially (1, 2, 4 ... 30 s, jittered). HTTP 403 is Bybit's IP
rate limit, which retrying soon only prolongs: it fails at once. An unknown symbol is a
:class:`~attnviz.bars.BarDataError`; everything else a :class:`~attnviz.sources.base.SourceError`
naming the source, category, symbol, interval and range.

Keys
----
Market data needs no API key. ``credentials``, or else ``BYBIT_API_KEY`` and
``BYBIT_API_SECRET`` from the environment, go to pybit and nowhere else: no repr, log line
or error message shows them.
"""

import json
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import polars as pl
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from attnviz.bars import RECEIVED_SCHEMA, VALUES, BarDataError, interval_duration
from attnviz.sources.base import BarRequest, Received, SourceError, in_request, with_raw

CATEGORIES = ("spot", "linear", "inverse")
INTERVAL_CODES = {
    **{f"{n}m": str(n) for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": str(n * 60) for n in (1, 2, 4, 6, 12)},
    **{"1d": "D", "1w": "W", "1M": "M"},
}
LIMIT = 1000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMNS = ("start", "open", "high", "low", "close", "volume", "turnover")
MAX_RATE_WAIT = 60.0
MAX_BACKOFF = 30.0
BUSY_CODES = {10000, 10016}
# pybit restores its default retry codes when given none: it gets one Bybit never sends.
_NO_RETRY_CODES = {-1}
_BYBIT_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
_MS = re.compile(r"^-?\d{1,15}$")  # under 10**15 ms (year 33658): no datetime overflow


class _Retry(Exception):
    """A failed attempt worth another, after ``wait`` seconds (``None``: back off)."""

    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.wait = wait


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
        env = os.environ.get("BYBIT_API_KEY"), os.environ.get("BYBIT_API_SECRET")
        if credentials is None and all(env):
            credentials = env  # type: ignore[assignment]
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
        self._sleep = sleep
        self._keyed = credentials is not None
        key, secret = credentials or (None, None)
        # pybit's HTTP is a dataclass whose repr shows the secret: it stays out of ours.
        self._client = HTTP(
            api_key=key,
            api_secret=secret,
            timeout=self.timeout,
            max_retries=1,  # one attempt: its retry loop (and its sleeps) never run
            retry_codes=_NO_RETRY_CODES,
            force_retry=False,
        )
        if self.endpoint:
            self._client.endpoint = self.endpoint

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
            *self._labels(request),
            *(pl.lit(None).alias(column) for column in ("ts", *VALUES, "turnover")),
            "raw",
            pl.lit(["malformed_row"]).alias("failed"),
        )
        rejected = rejected.cast({**RECEIVED_SCHEMA, "failed": pl.List(pl.String)})
        return Received(
            received.bars, pl.concat([received.rejected, rejected]), received.not_closed
        )

    def _labels(self, request: BarRequest) -> list[pl.Expr]:
        return [
            pl.lit(self.name).alias("source"),
            pl.lit(request.symbol).alias("symbol"),
            pl.lit(request.interval).alias("interval"),
        ]

    def _frame(self, request: BarRequest, rows: list[list[str]]) -> pl.DataFrame:
        """The received frame of rows in Bybit's shape, ``raw`` holding their strings."""
        texts = pl.DataFrame(
            {name: [row[i] for row in rows] for i, name in enumerate(COLUMNS)},
            schema=dict.fromkeys(COLUMNS, pl.String),
        )
        epoch_ms = pl.Series([_start_ms(row) for row in rows], dtype=pl.Int64)
        ts = pl.from_epoch(pl.lit(epoch_ms), time_unit="ms").dt.replace_time_zone("UTC")
        return texts.select(
            *self._labels(request),
            ts.alias("ts"),
            # Not a number ("abc", ""): null, for validation to quarantine; raw keeps it.
            *(pl.col(column).cast(pl.Float64, strict=False) for column in COLUMNS[1:]),
            with_raw(COLUMNS),
        ).cast(RECEIVED_SCHEMA)

    def _pages(self, request: BarRequest, start_ms: int | None, end_ms: int) -> Iterator[list[Any]]:
        """The pages Bybit gives for ``[start_ms, end_ms]``, newest first."""
        # A full page of distinct bars spans LIMIT - 1 intervals at least: a server that needs
        # more pages than the range can hold does not page back as Bybit does.
        step_ms = int(interval_duration(request.interval).total_seconds() * 1000)
        floor_ms = 0 if start_ms is None else start_ms  # Bybit has nothing before 1970
        budget = max(end_ms - floor_ms, 0) // ((LIMIT - 1) * step_ms) + 2
        for _ in range(budget):
            page = self._call(request, start_ms, end_ms)
            yield page
            if len(page) < LIMIT:  # the range (or the history) is exhausted
                return
            starts = (_start_ms(row) for row in page if _shaped(row))
            inside = [s for s in starts if s is not None and floor_ms <= s <= end_ms]
            if not inside:
                raise SourceError(
                    f"{self._label(request)}: Bybit sent a full page with no bar in "
                    f"[{start_ms}, {end_ms}] ms: it does not page back"
                )
            end_ms = min(inside) - 1
            if end_ms < floor_ms:
                return
        raise SourceError(
            f"{self._label(request)}: Bybit sent more pages ({budget}) than the range can "
            "hold: it does not page back"
        )

    def _call(self, request: BarRequest, start_ms: int | None, end_ms: int) -> list[Any]:
        """The rows of one page, retried as the module doc says."""
        params = {
            "category": self.category,
            "symbol": request.symbol,
            "interval": INTERVAL_CODES[request.interval],
            "start": start_ms,  # pybit leaves out None
            "end": end_ms,
            "limit": LIMIT,
        }
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._attempt(request, params)
            except _Retry as retry:
                if attempt == self.max_attempts:
                    raise SourceError(
                        f"{self._label(request)}: gave up after {attempt} attempts; last: {retry}"
                    ) from retry.__cause__
                jitter = 0.75 + random.random() / 2  # parallel fetches do not retry in step
                backoff = min(MAX_BACKOFF, 2.0 ** (attempt - 1) * jitter)
                self._sleep(backoff if retry.wait is None else retry.wait)
        raise AssertionError("unreachable: max_attempts >= 1")

    def _attempt(self, request: BarRequest, params: dict[str, Any]) -> list[Any]:
        label = self._label(request)
        try:
            answer = self._client.get_kline(**params)
        except InvalidRequestError as error:  # HTTP 200 with a retCode
            code, message = error.status_code, str(error.message)
            if code == 10006:  # pybit keeps the headers: Bybit says when the limit resets
                wait = _reset_wait(error.resp_headers)
                raise _Retry(f"rate limited (retCode 10006: {message})", wait) from error
            if code in BUSY_CODES:
                raise _Retry(f"Bybit busy (retCode {code}: {message})") from error
            if code == 10001 and "symbol" in message.lower():
                raise BarDataError(
                    f"bybit {self.category} has no symbol {request.symbol!r} (retCode {code}: "
                    f"{message}); check the symbol and the category ({', '.join(CATEGORIES)})"
                ) from None
            raise SourceError(f"{label}: Bybit refused: retCode {code}: {message}") from error
        except FailedRequestError as error:
            status = error.status_code
            if error.request == "JSON decoding":  # pybit's name for a body that is not JSON
                raise _Retry("the answer was not JSON") from error
            if status == 403:
                raise SourceError(
                    f"{label}: HTTP 403: Bybit's IP rate limit (or a region it blocks); not "
                    "retried now: retry after several minutes"
                ) from error
            if isinstance(status, int) and status >= 500:
                raise _Retry(f"HTTP {status}") from error
            raise SourceError(f"{label}: HTTP {status}: {error.message}") from error
        except requests.Timeout as error:
            raise _Retry(f"no answer within {self.timeout:g} s") from error
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as error:
            endpoint = self._client.endpoint
            raise _Retry(f"connection to {endpoint} failed ({type(error).__name__})") from error
        except (AttributeError, TypeError) as error:  # pybit, on JSON that is not an object
            raise _Retry("the answer was not a JSON object") from error
        except requests.RequestException as error:
            raise SourceError(f"{label}: request failed ({type(error).__name__})") from error
        result = answer.get("result") if isinstance(answer, dict) else None
        rows = result.get("list") if isinstance(result, dict) else None
        if not isinstance(rows, list):
            raise _Retry("the answer had no result.list")
        return rows

    def _label(self, request: BarRequest) -> str:
        """Source, category, symbol, interval and range, for messages."""
        start = request.start.isoformat() if request.start else "the first bar"
        end = request.end.isoformat() if request.end else f"as of {request.as_of.isoformat()}"
        return f"bybit {self.category} {request.symbol} {request.interval} [{start}, {end})"


def _ms(moment: datetime) -> int:
    """``moment`` in whole milliseconds since 1970, rounded up (exact: no float)."""
    return -((EPOCH - moment) // timedelta(milliseconds=1))


def _start_ms(row: list[str]) -> int | None:
    return int(row[0]) if _MS.match(row[0]) else None


def _pair(credentials: object) -> bool:
    return (
        isinstance(credentials, tuple | list)
        and len(credentials) == 2
        and all(isinstance(part, str) and part for part in credentials)
    )


def _shaped(row: object) -> bool:
    """Whether ``row`` has Bybit's shape: a list of seven strings."""
    return (
        isinstance(row, list)
        and len(row) == len(COLUMNS)
        and all(isinstance(value, str) for value in row)
    )


def _reset_wait(headers: Any) -> float | None:
    """Seconds until Bybit's rate-limit reset, at most a minute; ``None`` if unknown or past."""
    try:
        reset_ms = int((headers or {}).get("X-Bapi-Limit-Reset-Timestamp", ""))
    except (TypeError, ValueError):
        return None
    wait = reset_ms / 1000 - time.time()
    return min(wait, MAX_RATE_WAIT) if wait > 0 else None
