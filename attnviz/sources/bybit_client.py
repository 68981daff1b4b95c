"""One page of Bybit v5 candles through pybit, with the retries pybit does not make.

Errors and limits
-----------------
pybit makes exactly one attempt per call and never sleeps; :class:`KlineClient` retries,
at most ``max_attempts`` calls per page in all. A rate limit (retCode 10006) waits until
Bybit's ``X-Bapi-Limit-Reset-Timestamp`` (at most 60 s; a backoff if it is missing or
past). A network error, a timeout, HTTP 5xx, retCode 10000/10016 (busy) or a body that is
not Bybit's JSON backs off exponentially (1, 2, 4 ... 30 s, jittered). HTTP 403 is Bybit's
IP rate limit, which retrying soon only prolongs: it fails at once. An unknown symbol is a
:class:`~attnviz.bars.BarDataError`; everything else a
:class:`~attnviz.sources.base.SourceError` whose message starts with the request's label
(source, category, symbol, interval and range).

Keys go to pybit and nowhere else: pybit's ``HTTP`` is a dataclass whose repr shows the
secret, so it is never part of a message or a repr of ours.
"""

import random
import time
from collections.abc import Callable, Mapping

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from attnviz.bars import BarDataError
from attnviz.sources.base import SourceError

CATEGORIES = ("spot", "linear", "inverse")
MAX_RATE_WAIT = 60.0
MAX_BACKOFF = 30.0
BUSY_CODES = {10000, 10016}
RATE_LIMITED = 10006
# pybit restores its default retry codes when given none: it gets one Bybit never sends.
_NO_RETRY_CODES = {-1}
# The query of one page: category, symbol, interval code, start and end (ms), limit.
Query = Mapping[str, str | int | None]


class _Retry(Exception):
    """A failed attempt worth another, after ``wait`` seconds (``None``: back off)."""

    def __init__(self, why: str, wait: float | None = None) -> None:
        super().__init__(why)
        self.wait = wait


class KlineClient:
    """pybit's ``get_kline``, retried as the module doc says.

    Parameters
    ----------
    category, endpoint, timeout, max_attempts, credentials, sleep
        As :class:`~attnviz.sources.bybit.BybitSource` takes them, checked there.
    """

    def __init__(
        self,
        category: str,
        endpoint: str | None,
        timeout: float,
        max_attempts: int,
        credentials: tuple[str, str] | None,
        sleep: Callable[[float], None],
    ) -> None:
        self.category = category
        self.timeout = timeout
        self.max_attempts = max_attempts
        self._sleep = sleep
        key, secret = credentials or (None, None)
        self.http = HTTP(
            api_key=key,
            api_secret=secret,
            timeout=timeout,
            max_retries=1,  # one attempt: its retry loop (and its sleeps) never run
            retry_codes=_NO_RETRY_CODES,
            force_retry=False,
        )
        if endpoint:
            self.http.endpoint = endpoint

    def page(self, query: Query, label: str) -> list[object]:
        """The rows of one page (``result.list``), as Bybit sent them.

        Parameters
        ----------
        query
            ``get_kline``'s parameters (pybit leaves out those that are ``None``).
        label
            The request, as messages name it.

        Raises
        ------
        BarDataError
            If Bybit does not list the symbol in the category.
        SourceError
            When Bybit refuses, or fails ``max_attempts`` times.
        """
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._attempt(query, label)
            except _Retry as retry:
                if attempt == self.max_attempts:
                    raise SourceError(
                        f"{label}: gave up after {attempt} attempts; last: {retry}"
                    ) from retry.__cause__
                jitter = 0.75 + random.random() / 2  # parallel fetches do not retry in step
                backoff = min(MAX_BACKOFF, 2.0 ** (attempt - 1) * jitter)
                self._sleep(backoff if retry.wait is None else retry.wait)
        raise AssertionError("unreachable: max_attempts >= 1")

    def _attempt(self, query: Query, label: str) -> list[object]:
        """One call: its rows, or the exception that says what to do about its failure."""
        try:
            answer: object = self.http.get_kline(**query)
        except InvalidRequestError as error:  # HTTP 200 with a retCode
            code: object = error.status_code
            message = str(error.message)
            if code == RATE_LIMITED:  # pybit keeps the headers: Bybit says when the limit resets
                wait = _reset_wait(error.resp_headers)
                raise _Retry(f"rate limited (retCode {code}: {message})", wait) from error
            if code in BUSY_CODES:
                raise _Retry(f"Bybit busy (retCode {code}: {message})") from error
            if code == 10001 and "symbol" in message.lower():
                raise BarDataError(
                    f"bybit {self.category} has no symbol {query['symbol']!r} (retCode {code}: "
                    f"{message}); check the symbol and the category ({', '.join(CATEGORIES)})"
                ) from None
            raise SourceError(f"{label}: Bybit refused: retCode {code}: {message}") from error
        except FailedRequestError as error:
            status: object = error.status_code
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
            endpoint = self.http.endpoint
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


def _reset_wait(headers: object) -> float | None:
    """Seconds until Bybit's rate-limit reset, at most a minute; ``None`` if unknown or past."""
    if not isinstance(headers, Mapping):
        return None
    try:
        reset_ms = int(headers.get("X-Bapi-Limit-Reset-Timestamp", ""))
    except (TypeError, ValueError):
        return None
    wait = reset_ms / 1000 - time.time()
    return min(wait, MAX_RATE_WAIT) if wait > 0 else None
