"""Bars from Yahoo Finance, through yfinance.

Yahoo's chart API wants a browser-like session, a cookie and a crumb; yfinance handles them.
:func:`download` is our one contact with it (a ``yf.download`` call and the reasons it gave
for failed tickers); the rest reads the frame it returns, so tests feed recorded frames.

Prices. ``adjusted=True`` (the default) takes yfinance's ``auto_adjust``: open, high, low
and close scaled to the adjusted close, so that splits and dividends are not jumps and a
long history is one consistent series. ``adjusted=False``: prices as traded, Yahoo's
``Adj Close`` kept in ``raw`` only. Yahoo reports no ``turnover`` (null).

Intervals and ``ts``. 1m 5m 15m 30m 1d 1w 1M are Yahoo's 1m 5m 15m 30m 1d 1wk 1mo; Yahoo
has no 3m 2h 4h 6h 12h. Its hourly bars of US stocks open at the half hour (09:30 New
York), off attnviz's hourly grid: 1h is refused. ``ts`` is the bar's open in UTC: an
intraday time (in the exchange's zone) converted; a date (daily and longer) at 00:00 UTC.
Weeks are asked for from a Monday and months from the 1st, as Yahoo dates bars from where
it is asked, so they land on attnviz's grid; a row off it is left to validation. Dates are
the exchange's: east of UTC today's forming bar is dated tomorrow in UTC, so daily and
longer rows count as being in the future only a day after the wall clock.

Look-back. Yahoo serves 1m bars of the last 30 days, 5m to 30m bars of the last 60
(yfinance builds 30m from 15m), 1m at most 7 days a request (yfinance 1.7 asks 8 at most;
Yahoo's message said 7). A range reaching further back is refused before any request; no
start means as far back as allowed (less a day, so it is still inside when Yahoo checks).
Longer 1m ranges are fetched in 7-day chunks. Daily and longer: no limit, no start means
from the first trade.

Several series. :meth:`YFinanceSource.fetch_many` makes one download per interval, over the
union of the ranges; :func:`in_request` cuts each ticker's rows to its own request.

Failures. ``yf.download`` does not raise for a ticker: it leaves its columns empty and logs
why. :func:`download` collects the reasons, with yfinance's ``hide_exceptions`` off so that
a network error is not reported as missing prices. Each ticker gets one outcome, never NaN
bars nor an empty success for a failure:

- "no price data found" (Yahoo knows the ticker, it gave its time zone, but has no bar in
  the range: a weekend, a holiday) or "Data doesn't exist for startDate": no bars.
- Yahoo's refusal (no time zone: unknown ticker; "symbol may be delisted"; a range it does
  not serve; 404): :class:`BarDataError`.
- Rate limits, network errors, timeouts: fetched again with bounded exponential backoff,
  then :class:`SourceError`.
- Anything else, or a ticker without values and without a reason: :class:`SourceError`.

A row with some values missing stays, nulls and ``raw``, for validation to quarantine. A row
without any value is not the ticker's: yfinance drops those (``keepna=False``) and pads each
ticker with them to the other tickers' timestamps.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from attnviz.bars import RECEIVED_SCHEMA, BarDataError, floor
from attnviz.sources.base import BarRequest, Received, SourceError, in_request, with_raw

if TYPE_CHECKING:  # pandas only at the edge, and imported only when yfinance runs
    import pandas as pd

Span = tuple[datetime | None, datetime | None]
Download = Callable[
    [list[str], str, datetime | None, datetime | None, bool], "tuple[pd.DataFrame, dict[str, str]]"
]
YAHOO_INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "30m": "30m", "1d": "1d"}
YAHOO_INTERVALS |= {"1w": "1wk", "1M": "1mo"}
LOOKBACK = {"1m": timedelta(days=30), **{i: timedelta(days=60) for i in ("5m", "15m", "30m")}}
CHUNK, MARGIN = {"1m": timedelta(days=7)}, timedelta(days=1)
HOURLY = "Yahoo's hourly bars of US stocks open at the half hour (09:30, 10:30 New York), off "
HOURLY += "the hourly grid attnviz keys bars on; use 30m or 1d"
OHLCV = ("Open", "High", "Low", "Close", "Volume")
ROWS = {"ts": RECEIVED_SCHEMA["ts"], **{c.lower(): pl.Float64() for c in OHLCV}, "raw": pl.String()}

# yfinance's reasons (an exception's repr), by what they mean for the ticker.
NO_BARS = re.compile(r"no price data found(?!.*status_code)|Data doesn.t exist for startDate", re.S)
REFUSED = re.compile(r"YF\w*MissingError|YFInvalidPeriodError|\b404\b|Not Found", re.I)
TRANSIENT = re.compile(
    r"RateLimit|Too Many Requests|\b429\b|ConnectionError|DNSError|Timeout|ChunkedEncoding|"
    r"RemoteDisconnected|IncompleteRead|ProxyError|SSLError|CurlError|CURRENTLY DOWN|\b50[0234]\b",
    re.I,
)
# yf.download logs each reason once, with the tickers that share it: "['AAPL', 'X']: reason".
FAILED_LINE = re.compile(r"^\[(?P<tickers>[^\]]*)\]: (?P<reason>.*)$", re.S)
# yf.download sets process-wide state (its session, hide_exceptions, our log handler).
_LOCK = threading.Lock()


class _Reasons(logging.Handler):
    """The reasons ``yf.download`` logs for its failed tickers, by ticker."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_ticker: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        line = FAILED_LINE.match(record.getMessage())
        try:
            tickers = ast.literal_eval(f"[{line['tickers']}]") if line else []
        except (ValueError, SyntaxError):  # another error line that starts with "["
            return
        self.by_ticker |= {str(ticker): line["reason"] for ticker in tickers if line}


def download(
    tickers: list[str],
    interval: str,
    start: datetime | None,
    end: datetime | None,
    adjusted: bool,
    *,
    session: object | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """One ``yf.download`` call and the reasons it gave for the tickers that failed.

    Parameters
    ----------
    tickers, interval
        Yahoo's tickers and interval (``1wk``, not ``1w``).
    start, end
        ``[start, end)``: naive, a date in the exchange's zone; aware, an instant. No
        start: from the first trade. No end: until now.
    adjusted
        yfinance's ``auto_adjust``.
    session
        A requests or curl_cffi session for yfinance; None: yfinance's own.

    Returns
    -------
    The frame as ``yf.download`` returns it (columns ``(Price, Ticker)``) and, by ticker,
    yfinance's reason for each failure.
    """
    import yfinance as yf  # the package: imports are absolute, this module is not "yfinance"

    logger, reasons = logging.getLogger("yfinance"), _Reasons()
    span = {"start": start, "end": end} if start else {"period": "max", "end": end}
    with _LOCK:
        hide, level = yf.config.debug.hide_exceptions, logger.level
        yf.config.debug.hide_exceptions = False
        logger.setLevel(min(logger.getEffectiveLevel(), logging.ERROR))
        logger.addHandler(reasons)
        try:
            frame = yf.download(
                tickers, interval=interval, auto_adjust=adjusted, group_by="column",
                progress=False, threads=False, session=session, **span,
            )  # fmt: skip
        finally:
            logger.removeHandler(reasons)
            logger.setLevel(level)
            yf.config.debug.hide_exceptions = hide
    return frame, reasons.by_ticker


_yahoo = download  # the default, by a name the constructor's ``download`` does not hide
_NOW = partial(datetime.now, UTC)


class _Failure(NamedTuple):
    error: type[Exception]
    reason: str
    transient: bool = False


Rows = pl.DataFrame | _Failure


def _rows(frame: pd.DataFrame | None, ticker: str, reason: str | None, intraday: bool) -> Rows:
    """One ticker's rows of a downloaded frame (:data:`ROWS`), or why there are none."""
    if reason and not NO_BARS.search(reason):
        if TRANSIENT.search(reason):
            return _Failure(SourceError, reason, transient=True)
        return _Failure(BarDataError if REFUSED.search(reason) else SourceError, reason)
    missing = frame is None or frame.columns.nlevels != 2 or ticker not in frame.columns.unique(1)
    block = None if missing else frame.xs(ticker, axis=1, level=1).dropna(how="all")
    if block is None or block.empty:  # right only when yfinance said there are no bars
        why = "yfinance gave no values for it, and no reason"
        return pl.DataFrame(schema=ROWS) if reason else _Failure(SourceError, why)
    # Adj Close of an adjusted download belongs to the failed tickers (yfinance's empty frame).
    block = block[[c for c in block.columns if c in OHLCV or block[c].notna().any()]]
    if intraday and block.index.tz is None:
        return _Failure(SourceError, "intraday times without a time zone")
    index = block.index
    ts = (index.tz_convert("UTC") if intraday else index).tz_localize(None).to_numpy()
    table = block.reset_index(drop=True)
    table.insert(0, index.name or "Date", [stamp.isoformat() for stamp in index])
    received = pl.from_pandas(table, nan_to_null=True)
    return received.select(
        pl.Series("ts", ts).dt.replace_time_zone("UTC"),
        *[(pl.col(c) if c in received.columns else pl.lit(None)).alias(c.lower()) for c in OHLCV],
        with_raw(received.columns),
    ).cast(ROWS)


def _check(request: BarRequest, now: datetime) -> Span | None:
    """The range to fetch for ``request`` (None: it holds no bar); refuses what Yahoo lacks."""
    symbol, interval, start, end = request.symbol, request.interval, request.start, request.end
    if interval == "1h":
        raise BarDataError(f"yfinance: {symbol} 1h: {HOURLY}")
    if interval not in YAHOO_INTERVALS:
        offered = ", ".join(YAHOO_INTERVALS)
        raise BarDataError(f"yfinance: {symbol}: Yahoo has no {interval} bars; it has {offered}")
    if interval in LOOKBACK:
        earliest = now - LOOKBACK[interval] + MARGIN
        if (start is not None and start < earliest) or (end is not None and end <= earliest):
            raise BarDataError(
                f"yfinance: {symbol} {interval} from {start or 'the start'} to {end or 'now'}: "
                f"Yahoo serves {interval} bars of the last {LOOKBACK[interval].days} days only; "
                f"start at {earliest:%Y-%m-%d %H:%M} UTC or later, or use a longer interval"
            )
        start = start or earliest
    return None if start is not None and start >= (end or now) else (start, end)


def _windows(interval: str, start: datetime | None, end: datetime | None, now: datetime) -> list:
    """The ``[start, end)`` of each download: instants for intraday bars, else dates."""
    if interval in LOOKBACK:
        assert start is not None  # _check gave every intraday request one
        start, step, stop = floor(start, interval), CHUNK.get(interval), end or now
        starts = [start + k * step for k in range(-(-(stop - start) // step))] if step else [start]
        return [(s, s + step if step and s + step < stop else end) for s in starts]

    def day(moment: datetime) -> datetime:
        return datetime.combine(moment.astimezone(UTC).date(), datetime.min.time())

    first = start and day(start)
    if first and interval != "1d":  # Yahoo dates weeks and months from the day it is asked
        first = first.replace(day=1) if interval == "1M" else first - timedelta(first.weekday())
    pad = {"1d": timedelta(days=1), "1w": timedelta(days=7), "1M": timedelta(days=31)}[interval]
    return [(first, end and day(end) + pad)]


class YFinanceSource:
    """Bars from Yahoo Finance; the module's notes say what it asks for and how it fails.

    Parameters
    ----------
    adjusted
        Prices adjusted for splits and dividends (the default), or as traded.
    session
        A requests or curl_cffi session for yfinance; None: yfinance makes its own.
    download, sleep, clock
        The network edge (:func:`download`), the wait between attempts and the wall clock
        that Yahoo's look-back limits count from; tests replace them.
    retries, backoff_s
        Further attempts for transient failures: the first after ``backoff_s`` seconds,
        then each after twice the wait before.
    """

    name = "yfinance"

    def __init__(
        self,
        adjusted: bool = True,
        session: object | None = None,
        *,
        download: Download | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = _NOW,
        retries: int = 3,
        backoff_s: float = 2.0,
    ) -> None:
        self.adjusted, self.retries, self.backoff_s = adjusted, retries, backoff_s
        self._download = download or partial(_yahoo, session=session)
        self._sleep, self._clock = sleep, clock

    def symbols(self, interval: str) -> list[str]:
        """Yahoo lists no tickers: raises :class:`BarDataError`."""
        raise BarDataError("yfinance: name the tickers to fetch (e.g. AAPL MSFT)")

    def fetch(self, request: BarRequest) -> Received:
        """What Yahoo has for one request; raises its failure (see :meth:`fetch_many`)."""
        outcome = self.fetch_many([request])[request.symbol]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def fetch_many(self, requests: list[BarRequest]) -> dict[str, Received | Exception]:
        """Each request's bars, or its own failure; one download per interval.

        Parameters
        ----------
        requests
            One per symbol; intervals and ranges may differ.

        Returns
        -------
        By symbol, a :class:`Received` or the exception that stopped it: a
        :class:`BarDataError` (an interval or range Yahoo lacks, an unknown ticker) or a
        :class:`SourceError` (network or Yahoo trouble, after the retries).
        """
        symbols = [request.symbol for request in requests]
        if twice := sorted({symbol for symbol in symbols if symbols.count(symbol) > 1}):
            raise BarDataError(f"yfinance: one request per symbol; twice: {', '.join(twice)}")
        now, results = self._clock(), dict[str, Received | Exception]()
        groups: dict[str, list[tuple[BarRequest, Span]]] = {}
        for request in requests:
            try:
                span = _check(request, now)
            except BarDataError as error:
                results[request.symbol] = error
                continue
            if span is None:
                results[request.symbol] = Received(pl.DataFrame(schema=RECEIVED_SCHEMA))
            else:
                groups.setdefault(request.interval, []).append((request, span))
        for interval, members in groups.items():
            starts, ends = zip(*(span for _, span in members), strict=True)
            start = None if None in starts else min(starts)
            end = None if None in ends else max(ends)
            tickers = sorted({request.symbol.upper() for request, _ in members})
            outcomes = self._fetch_group(tickers, interval, _windows(interval, start, end, now))
            for request, _ in members:
                results[request.symbol] = self._outcome(request, outcomes[request.symbol.upper()])
        return {symbol: results[symbol] for symbol in symbols}

    def _fetch_group(
        self, tickers: list[str], interval: str, windows: list[Span]
    ) -> dict[str, Rows]:
        """Every ticker's rows over ``windows``; transient failures are fetched again."""
        outcomes: dict[str, Rows] = {}
        pending = tickers
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            outcomes |= self._attempt(pending, interval, windows)
            pending = [t for t in pending if getattr(outcomes[t], "transient", False)]
            if not pending:
                break
        return outcomes

    def _attempt(self, tickers: list[str], interval: str, windows: list[Span]) -> dict[str, Rows]:
        """One download per window; a ticker that failed in one is not asked again."""
        intraday, failed = interval in LOOKBACK, {}
        parts: dict[str, list[pl.DataFrame]] = {ticker: [] for ticker in tickers}
        for start, end in windows:
            asked = [ticker for ticker in tickers if ticker not in failed]
            try:
                frame, reasons = self._download(
                    asked, YAHOO_INTERVALS[interval], start, end, self.adjusted
                )
            except Exception as error:  # yf.download raises only outside its per-ticker loop
                frame, reasons = None, dict.fromkeys(asked, repr(error))
            for ticker in asked:
                rows = _rows(frame, ticker, reasons.get(ticker), intraday)
                if isinstance(rows, _Failure):
                    failed[ticker] = rows
                elif intraday:  # each chunk keeps the bars it asked for: none twice
                    ts = pl.col("ts")
                    parts[ticker].append(rows.filter(ts >= start, ts < end if end else True))
                else:
                    parts[ticker].append(rows)
        return {ticker: failed.get(ticker) or pl.concat(parts[ticker]) for ticker in tickers}

    def _outcome(self, request: BarRequest, rows: Rows) -> Received | Exception:
        """``request``'s :class:`Received`, or the exception that names its failure."""
        if isinstance(rows, _Failure):
            why = {BarDataError: "Yahoo has no such bars: "}.get(rows.error, "")
            why = f"failed {self.retries + 1} times: " if rows.transient else why
            return rows.error(
                f"yfinance: {request.symbol} {request.interval} from "
                f"{request.start or 'the start'} to {request.end or 'now'}: {why}{rows.reason}"
            )
        received = rows.sort("ts", maintain_order=True).select(
            pl.lit(self.name).alias("source"),
            pl.lit(request.symbol).alias("symbol"),
            pl.lit(request.interval).alias("interval"),
            pl.exclude("raw"),
            pl.lit(None).alias("turnover"),
            "raw",
        )
        # Dates are the exchange's (see the notes): a daily row is in the future a day later.
        now = self._clock() + (timedelta() if request.interval in LOOKBACK else timedelta(days=1))
        return in_request(received.cast(RECEIVED_SCHEMA), request, now=now)
