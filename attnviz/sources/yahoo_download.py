"""Our one contact with yfinance: a ``yf.download`` call, and what it says for each ticker.

Yahoo's chart API wants a browser-like session, a cookie and a crumb; yfinance handles them.
:func:`download` makes the call; :func:`ticker_rows` reads one ticker's part of the frame it
returns, so tests feed recorded frames. pandas appears only here, at this edge.

Failures. ``yf.download`` does not raise for a ticker: it leaves its columns empty and logs
why. :func:`download` collects the reasons, with yfinance's ``hide_exceptions`` off so that
a network error is not reported as missing prices. Each ticker gets one outcome, never NaN
bars nor an empty success for a failure:

- "no price data found" (Yahoo knows the ticker, it gave its time zone, but has no bar in
  the range: a weekend, a holiday) or "Data doesn't exist for startDate": no bars.
- Yahoo's refusal (no time zone: unknown ticker; "symbol may be delisted"; a range it does
  not serve; 404): :class:`~attnviz.bars.BarDataError`.
- Rate limits, network errors, timeouts: transient (the source fetches them again).
- Anything else, or a ticker without values and without a reason:
  :class:`~attnviz.sources.base.SourceError`.

A row with some values missing stays, nulls and ``raw``, for validation to quarantine. A row
without any value is not the ticker's: yfinance drops those (``keepna=False``) and pads each
ticker with them to the other tickers' timestamps.
"""

from __future__ import annotations

import ast
import logging
import re
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, cast

import polars as pl

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources.base import SourceError, with_raw

if TYPE_CHECKING:  # pandas only at the edge, and imported only when yfinance runs
    import pandas as pd

# What the source calls to download: tickers, Yahoo's interval, start, end, adjusted.
Download = Callable[
    [list[str], str, datetime | None, datetime | None, bool], "tuple[pd.DataFrame, dict[str, str]]"
]
OHLCV = ("Open", "High", "Low", "Close", "Volume")
# One ticker's rows, before the source labels them.
ROWS = pl.Schema(
    {"ts": RECEIVED_SCHEMA["ts"], **{c.lower(): pl.Float64() for c in OHLCV}, "raw": pl.String()}
)

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


class Failure(NamedTuple):
    """Why a ticker has no rows: the error to raise, yfinance's reason, and whether to retry."""

    error: type[Exception]
    reason: str
    transient: bool = False


# A ticker's rows (:data:`ROWS`), or why it has none.
Rows = pl.DataFrame | Failure


class _Reasons(logging.Handler):
    """The reasons ``yf.download`` logs for its failed tickers, by ticker."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.by_ticker: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        line = FAILED_LINE.match(record.getMessage())
        if line is None:
            return
        try:
            tickers = ast.literal_eval(f"[{line['tickers']}]")
        except (ValueError, SyntaxError):  # another error line that starts with "["
            return
        self.by_ticker |= {str(ticker): line["reason"] for ticker in tickers}


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
    import yfinance as yf

    logger, reasons = logging.getLogger("yfinance"), _Reasons()
    span = {"start": start, "end": end} if start else {"period": "max", "end": end}
    with _LOCK:
        hide, level = yf.config.debug.hide_exceptions, logger.level
        yf.config.debug.hide_exceptions = False
        logger.setLevel(min(logger.getEffectiveLevel(), logging.ERROR))
        logger.addHandler(reasons)
        try:
            # yfinance is untyped: its download returns the frame the docstring describes.
            frame: pd.DataFrame = yf.download(
                tickers, interval=interval, auto_adjust=adjusted, group_by="column",
                progress=False, threads=False, session=session, **span,
            )  # fmt: skip
        finally:
            logger.removeHandler(reasons)
            logger.setLevel(level)
            yf.config.debug.hide_exceptions = hide
    return frame, reasons.by_ticker


def ticker_rows(
    frame: pd.DataFrame | None, ticker: str, reason: str | None, intraday: bool
) -> Rows:
    """One ticker's rows of a downloaded frame (:data:`ROWS`), or why there are none.

    Parameters
    ----------
    frame
        What ``yf.download`` returned; ``None`` if it raised.
    ticker
        The ticker, as Yahoo spells it.
    reason
        yfinance's reason for the ticker's failure, if it gave one.
    intraday
        Whether the bars are instants (zoned times) rather than dates.
    """
    if reason and not NO_BARS.search(reason):
        if TRANSIENT.search(reason):
            return Failure(SourceError, reason, transient=True)
        return Failure(BarDataError if REFUSED.search(reason) else SourceError, reason)
    block = _block(frame, ticker)
    if block is None or block.empty:  # right only when yfinance said there are no bars
        why = "yfinance gave no values for it, and no reason"
        return pl.DataFrame(schema=ROWS) if reason else Failure(SourceError, why)
    # Adj Close of an adjusted download belongs to the failed tickers (yfinance's empty frame).
    block = block[[c for c in block.columns if c in OHLCV or block[c].notna().any()]]
    # yf.download indexes its frames by time: a DatetimeIndex, zoned for intraday bars.
    index = cast("pd.DatetimeIndex", block.index)
    if intraday and index.tz is None:
        return Failure(SourceError, "intraday times without a time zone")
    ts = (index.tz_convert("UTC") if intraday else index).tz_localize(None).to_numpy()
    table = block.reset_index(drop=True)
    table.insert(0, index.name or "Date", [stamp.isoformat() for stamp in index])
    received = pl.from_pandas(table, nan_to_null=True)
    return received.select(
        pl.Series("ts", ts).dt.replace_time_zone("UTC"),
        *[(pl.col(c) if c in received.columns else pl.lit(None)).alias(c.lower()) for c in OHLCV],
        with_raw(received.columns),
    ).cast(ROWS)


def _block(frame: pd.DataFrame | None, ticker: str) -> pd.DataFrame | None:
    """One ticker's columns of a downloaded frame, less its all-empty rows; None if absent."""
    if frame is None or frame.columns.nlevels != 2 or ticker not in frame.columns.unique(1):
        return None
    # Columns are (Price, Ticker): a ticker's cross-section keeps every Price, so a frame.
    block = cast("pd.DataFrame", frame.xs(ticker, axis=1, level=1))
    return block.dropna(how="all")
