"""Recorded Yahoo answers, in the shapes yfinance 1.7 gives them.

Two levels:

- Frames as ``yf.download`` returns them, for :class:`attnviz.sources.yfinance.YFinanceSource`
  fed through an injected ``download``: :func:`history` builds one ticker's frame as
  ``Ticker.history`` hands it to ``yf.download``, :func:`failed` a failed ticker's
  (``utils.empty_df()``), and :func:`combine` does what ``yfinance/multi.py`` does with them
  (daily dates made naive, every ticker reindexed to the union of the timestamps, columns
  ``(Price, Ticker)`` sorted). :class:`Recorded` is the injected ``download``.
- Yahoo's chart API itself, for a test through yfinance: :class:`YahooAdapter` answers the
  cookie, crumb and ``v8/finance/chart/<TICKER>`` requests yfinance makes, on a
  ``requests.Session`` passed as ``session=``; :func:`isolated_yfinance` keeps yfinance's
  process-wide state (its caches, its session singleton) to one test.

``test_fixture_frames_are_what_yf_download_returns`` checks the first against the second.
"""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import requests
from requests.adapters import BaseAdapter

NEW_YORK = "America/New_York"
Bar = tuple[float | None, float | None, float | None, float | None, int | None]

# The reasons yf.download logs for a failed ticker (an exception's repr, "$TICKER: " removed).
NO_TIMEZONE = "YFTzMissingError('possibly delisted; no timezone found')"
DELISTED = "YFPricesMissingError('No data found, symbol may be delisted')"
RATE_LIMITED = "YFRateLimitError('Too Many Requests. Rate limited. Try after a while.')"
DNS_ERROR = (
    "DNSError('Failed to perform, curl: (6) Could not resolve host: query2.finance.yahoo.com. "
    "See https://curl.se/libcurl/c/libcurl-errors.html first for more details.')"
)
TIMEOUT = (
    "Timeout('Failed to perform, curl: (28) Operation timed out after 10001 milliseconds with "
    "0 bytes received. See https://curl.se/libcurl/c/libcurl-errors.html first for more details.')"
)


def no_prices(interval: str, start: object, end: object) -> str:
    """Yahoo knows the ticker but has no bar in the range (a weekend, a holiday)."""
    debug = f"({interval} {start} -> {end})"
    return f"YFPricesMissingError('possibly delisted; no price data found  {debug}')"


def history(
    stamps: list[str],
    bars: list[Bar],
    *,
    intraday: bool = False,
    tz: str = NEW_YORK,
    adj_close: list[float | None] | None = None,
) -> pd.DataFrame:
    """One ticker's frame as ``Ticker.history`` hands it to ``yf.download``.

    ``stamps`` are dates (daily and longer: exchange midnights, named ``Date``) or UTC
    times (intraday: shown in ``tz``, named ``Datetime``). ``adj_close`` given: the
    ``auto_adjust=False`` shape. A missing volume is 0, as yfinance fills it.
    """
    index = pd.DatetimeIndex(stamps, name="Datetime" if intraday else "Date")
    index = index.tz_localize("UTC").tz_convert(tz) if intraday else index.tz_localize(tz)
    values = np.array([[np.nan if v is None else v for v in bar[:4]] for bar in bars])
    frame = pd.DataFrame(
        values.reshape(-1, 4), index=index, columns=["Open", "High", "Low", "Close"]
    )
    if adj_close is not None:
        frame["Adj Close"] = [np.nan if v is None else v for v in adj_close]
    frame["Volume"] = np.array([bar[4] or 0 for bar in bars], dtype=np.int64)
    return frame


def failed() -> pd.DataFrame:
    """A failed ticker's frame (``yfinance.utils.empty_df()``): no rows, six columns."""
    columns = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    return pd.DataFrame(index=pd.Index([], name="Date"), data=dict.fromkeys(columns, np.nan))


def combine(frames: dict[str, pd.DataFrame], *, intraday: bool = False) -> pd.DataFrame:
    """What ``yf.download(..., group_by="column")`` makes of per-ticker frames (multi.py)."""
    frames = {ticker: frame.copy() for ticker, frame in frames.items()}
    filled = [frame for frame in frames.values() if not frame.empty]
    if not intraday:  # ignore_tz: daily and longer bars are dates
        for frame in filled:
            frame.index = frame.index.tz_localize(None)
    elif filled:  # one zone for all: the most common one
        zones, counts = np.unique([str(frame.index.tz) for frame in filled], return_counts=True)
        for frame in filled:
            frame.index = frame.index.tz_convert(zones[counts.argmax()])
    index = pd.DatetimeIndex([])
    for frame in filled:
        index = frame.index if index.empty else index.union(frame.index)
    data = pd.concat(
        [frame.reindex(index) for frame in frames.values()],
        axis=1,
        sort=True,
        keys=list(frames),
        names=["Ticker", "Price"],
    )
    data.columns = data.columns.swaplevel(0, 1)
    return data.sort_index(level=0, axis=1)


@dataclass(frozen=True)
class Call:
    """One call of the injected ``download``."""

    tickers: list[str]
    interval: str
    start: datetime | None
    end: datetime | None
    adjusted: bool


Answer = tuple[pd.DataFrame, dict[str, str]] | Exception | Callable[[Call], Any]


@dataclass
class Recorded:
    """An injected ``download`` answering from a script, recording every call.

    Each call takes the next answer; the last one answers all later calls. An answer is
    ``(frame, reasons)``, an exception to raise, or a function of the :class:`Call`.
    """

    answers: list[Answer]
    calls: list[Call] = field(default_factory=list)

    def __call__(
        self,
        tickers: list[str],
        interval: str,
        start: datetime | None,
        end: datetime | None,
        adjusted: bool,
    ) -> tuple[pd.DataFrame, dict[str, str]]:
        call = Call(list(tickers), interval, start, end, adjusted)
        self.calls.append(call)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if callable(answer):
            answer = answer(call)
        if isinstance(answer, Exception):
            raise answer
        return answer


# --- Yahoo's chart API, for yfinance itself ---------------------------------------------


class UnexpectedRequest(AssertionError):
    """yfinance asked for something the canned Yahoo does not answer."""


@dataclass
class Ticker:
    """A ticker's canned history: bars as (UTC time, open, high, low, close, volume, adjclose)."""

    bars: list[tuple[str, float, float, float, float, int, float]]
    zone: str = NEW_YORK
    gmtoffset: int = -18000
    granularity_s: int = 86400


class YahooAdapter(BaseAdapter):
    """Answers, offline, the requests yfinance 1.7 makes for ``yf.download``.

    ``https://fc.yahoo.com`` (the cookie) with an empty 200, ``query1/v1/test/getcrumb``
    with a crumb, and ``query2/v8/finance/chart/<TICKER>``: with ``range`` (yfinance's
    time-zone probe) the meta only, with ``period1``/``period2`` the bars in that range.
    Anything else is recorded in :attr:`unexpected` and raises.
    """

    def __init__(self, tickers: dict[str, Ticker]) -> None:
        super().__init__()
        self.tickers = tickers
        self.urls: list[str] = []
        self.unexpected: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        self.urls.append(request.url or "")
        symbol = url.path.removeprefix("/v8/finance/chart/")
        if url.netloc == "fc.yahoo.com":
            body = ""
        elif (url.netloc, url.path) == ("query1.finance.yahoo.com", "/v1/test/getcrumb"):
            body = "canned-crumb"
        elif url.netloc == "query2.finance.yahoo.com" and symbol in self.tickers:
            body = json.dumps(self.chart(symbol, parse_qs(url.query)))
        else:
            self.unexpected.append(request.url or "")
            raise UnexpectedRequest(f"no canned answer for {request.url}")
        response = requests.Response()
        response.status_code, response.url, response.request = 200, request.url or "", request
        response._content, response.encoding = body.encode(), "utf-8"
        return response

    def close(self) -> None:
        pass

    def chart(self, symbol: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """The ``v8/finance/chart`` answer: ``chart.result[0]`` with meta, times, quotes."""
        ticker = self.tickers[symbol]
        times = [int(datetime.fromisoformat(f"{bar[0]}+00:00").timestamp()) for bar in ticker.bars]
        meta: dict[str, Any] = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": "NMS",
            "instrumentType": "EQUITY",
            "gmtoffset": ticker.gmtoffset,
            "timezone": "EST",
            "exchangeTimezoneName": ticker.zone,
            "priceHint": 2,
            "dataGranularity": "1d",
            "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "5y", "max"],
        }
        if "range" in query:
            return {"chart": {"result": [{"meta": meta}], "error": None}}
        first, last = int(query["period1"][0]), int(query["period2"][0])
        rows = [(t, bar) for t, bar in zip(times, ticker.bars, strict=True) if first <= t < last]
        # Intraday answers carry each day's regular session; yfinance drops bars outside it.
        days: dict[str, list[int]] = {}
        for t, bar in rows:
            days.setdefault(bar[0][:10], []).append(t)
        meta["tradingPeriods"] = [
            [
                {
                    "timezone": "EST",
                    "gmtoffset": ticker.gmtoffset,
                    "start": min(ts),
                    "end": max(ts) + ticker.granularity_s,
                }
            ]
            for ts in days.values()
        ]
        quote = {
            name: [bar[k] for _, bar in rows]
            for k, name in enumerate(("open", "high", "low", "close", "volume"), start=1)
        }
        return {
            "chart": {
                "result": [
                    {
                        "meta": meta,
                        "timestamp": [t for t, _ in rows],
                        "indicators": {
                            "quote": [quote],
                            "adjclose": [{"adjclose": [bar[6] for _, bar in rows]}],
                        },
                    }
                ],
                "error": None,
            }
        }


def yahoo_session(adapter: YahooAdapter) -> requests.Session:
    """A ``requests.Session`` whose every request goes to ``adapter``, never to a network."""
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


@contextmanager
def isolated_yfinance(cache_dir: Path) -> Iterator[None]:
    """yfinance's process-wide state kept to one block.

    Its caches (time zones, cookies, ISINs; by default in the user's cache folder) live in
    ``cache_dir``, and its session singleton (``YfData``: the session, cookie and crumb of
    the last ``yf.download``) is a fresh one; both are put back afterwards.
    """
    from yfinance import cache
    from yfinance.data import YfData

    def use(location: str) -> None:
        cache.set_cache_location(location)
        # The cache objects hold their database once opened: make them open it again.
        cache._TzCacheManager._tz_cache = None
        cache._CookieCacheManager._Cookie_cache = None
        cache._ISINCacheManager._isin_cache = None

    location = cache._TzDBManager.get_location()
    earlier = YfData._instances.pop(YfData, None)
    YfData.cache_get.cache_clear()
    use(str(cache_dir))
    try:
        yield
    finally:
        YfData._instances.pop(YfData, None)
        if earlier is not None:
            YfData._instances[YfData] = earlier
        YfData.cache_get.cache_clear()
        use(location)
