"""Bars from Yahoo Finance, through yfinance.

:mod:`attnviz.sources.yahoo_download` is our one contact with yfinance (a ``yf.download``
call, and what its frame and its logged reasons say for each ticker);
:mod:`attnviz.sources.yahoo_ranges` tells what to ask for (Yahoo's intervals and look-back
limits). This module fetches with them: a few tickers at once, retrying what is transient.

Prices. ``adjusted=True`` (the default) takes yfinance's ``auto_adjust``: open, high, low
and close scaled to the adjusted close, so that splits and dividends are not jumps and a
long history is one consistent series. ``adjusted=False``: prices as traded, Yahoo's
``Adj Close`` kept in ``raw`` only. Yahoo reports no ``turnover`` (null).

``ts`` is the bar's open in UTC: an intraday time (in the exchange's zone) converted; a
date (daily and longer) at 00:00 UTC. Dates are the exchange's: east of UTC today's
forming bar is dated tomorrow in UTC, so daily and longer rows count as being in the
future only a day after the wall clock.

Several series. :meth:`YFinanceSource.fetch_many` makes one download per interval, over the
union of the ranges; :func:`~attnviz.sources.base.in_request` cuts each ticker's rows to its
own request. Each ticker gets one outcome: its bars, a :class:`~attnviz.bars.BarDataError`
(Yahoo has no such bars), or, after bounded exponential backoff for transient failures
(rate limits, network errors, timeouts), a :class:`~attnviz.sources.base.SourceError`.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import polars as pl

from attnviz.bars import BarDataError
from attnviz.sources import yahoo_download
from attnviz.sources.base import RECEIVED, BarRequest, Received, in_request, labels
from attnviz.sources.yahoo_download import Download, Failure, Rows, ticker_rows
from attnviz.sources.yahoo_ranges import YAHOO_INTERVALS, Span, check_range, intraday, windows

# The default edge, by a name the constructor's ``download`` does not hide (and that tests of
# whole flows replace).
_yahoo = yahoo_download.download
_NOW = partial(datetime.now, UTC)


class YFinanceSource:
    """Bars from Yahoo Finance; the module's notes say what it asks for and how it fails.

    Parameters
    ----------
    adjusted
        Prices adjusted for splits and dividends (the default), or as traded.
    session
        A requests or curl_cffi session for yfinance; None: yfinance makes its own.
    download, sleep, clock
        The network edge (:func:`~attnviz.sources.yahoo_download.download`), the wait between
        attempts and the wall clock that Yahoo's look-back limits count from; tests replace
        them.
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
        self._download: Download = download or partial(_yahoo, session=session)
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
        now = self._clock()
        results: dict[str, Received | Exception] = {}
        groups: dict[str, list[tuple[BarRequest, Span]]] = {}
        for request in requests:
            try:
                span = check_range(request, now)
            except BarDataError as error:
                results[request.symbol] = error
                continue
            if span is None:
                results[request.symbol] = Received(pl.DataFrame(schema=RECEIVED))
            else:
                groups.setdefault(request.interval, []).append((request, span))
        for interval, members in groups.items():
            starts = [start for _, (start, _) in members]
            ends = [end for _, (_, end) in members]
            start = None if None in starts else min(s for s in starts if s is not None)
            end = None if None in ends else max(e for e in ends if e is not None)
            tickers = sorted({request.symbol.upper() for request, _ in members})
            outcomes = self._fetch_group(tickers, interval, windows(interval, start, end, now))
            for request, _ in members:
                results[request.symbol] = self._outcome(request, outcomes[request.symbol.upper()])
        return {symbol: results[symbol] for symbol in symbols}

    def _fetch_group(self, tickers: list[str], interval: str, spans: list[Span]) -> dict[str, Rows]:
        """Every ticker's rows over ``spans``; transient failures are fetched again."""
        outcomes: dict[str, Rows] = {}
        pending = tickers
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * 2 ** (attempt - 1))
            outcomes |= self._attempt(pending, interval, spans)
            pending = [t for t in pending if _transient(outcomes[t])]
            if not pending:
                break
        return outcomes

    def _attempt(self, tickers: list[str], interval: str, spans: list[Span]) -> dict[str, Rows]:
        """One download per span; a ticker that failed in one is not asked again."""
        failed: dict[str, Failure] = {}
        parts: dict[str, list[pl.DataFrame]] = {ticker: [] for ticker in tickers}
        for start, end in spans:
            asked = [ticker for ticker in tickers if ticker not in failed]
            try:
                frame, reasons = self._download(
                    asked, YAHOO_INTERVALS[interval], start, end, self.adjusted
                )
            except Exception as error:  # yf.download raises only outside its per-ticker loop
                frame, reasons = None, dict.fromkeys(asked, repr(error))
            for ticker in asked:
                rows = ticker_rows(frame, ticker, reasons.get(ticker), intraday(interval))
                if isinstance(rows, Failure):
                    failed[ticker] = rows
                elif intraday(interval):  # each chunk keeps the bars it asked for: none twice
                    ts = pl.col("ts")
                    parts[ticker].append(rows.filter(ts >= start, ts < end if end else True))
                else:
                    parts[ticker].append(rows)
        return {ticker: failed.get(ticker) or pl.concat(parts[ticker]) for ticker in tickers}

    def _outcome(self, request: BarRequest, rows: Rows) -> Received | Exception:
        """``request``'s :class:`Received`, or the exception that names its failure."""
        if isinstance(rows, Failure):
            why = "Yahoo has no such bars: " if rows.error is BarDataError else ""
            why = f"failed {self.retries + 1} times: " if rows.transient else why
            return rows.error(
                f"yfinance: {request.symbol} {request.interval} from "
                f"{request.start or 'the start'} to {request.end or 'now'}: {why}{rows.reason}"
            )
        received = rows.sort("ts", maintain_order=True).select(
            *labels(self.name, request),
            pl.exclude("raw"),
            pl.lit(None).alias("turnover"),
            "raw",
        )
        # Dates are the exchange's (see the notes): a daily row is in the future a day later.
        ahead = timedelta() if intraday(request.interval) else timedelta(days=1)
        return in_request(received.cast(RECEIVED), request, now=self._clock() + ahead)


def _transient(rows: Rows) -> bool:
    """Whether a ticker failed in a way worth fetching again."""
    return isinstance(rows, Failure) and rows.transient
