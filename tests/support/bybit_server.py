"""A loopback Bybit: ``GET /v5/market/kline`` in Bybit v5's exact wire format, plus scripted faults.

A real HTTP server (127.0.0.1, a free port, a daemon thread), so pybit's ``requests`` session
talks to it as it would to ``https://api.bybit.com``::

    with BybitServer() as server:
        server.add_candles("BTCUSDT", "60", random_walk(start_ms, 2500, "60"))
        server.faults.append(rate_limit(reset_ms=now_ms + 1500))  # the next request is refused
        source = BybitSource(endpoint=server.url)
        ...
        assert [r["end"] for r in server.requests] == [...]

Kline semantics (Bybit's): rows are ``[startTime ms, open, high, low, close, volume, turnover]``,
every value a string; the answer holds the rows with ``start <= startTime <= end`` (each bound
optional), the NEWEST ``limit`` of them (default 200, at most 1000), newest first. An unknown
``(category, symbol, interval)`` is HTTP 200 with ``retCode 10001 "Not supported symbols"``;
a bad category, interval or number is ``retCode 10001`` too, with another message. The store
holds whatever rows you give it: a series whose newest row opens in the current interval has
a forming candle, as live Bybit does (:func:`random_walk` with ``until_ms=now``).

Faults: each request first takes the next entry of :attr:`BybitServer.faults` (if any) and
answers with it instead of the data; :meth:`BybitServer.repeat` answers every later request
with one (see :mod:`bybit_faults`).

The interval arguments take a Bybit code (``"60"``) or an attnviz name (``"1h"``).
"""

import calendar
import json
import random
import threading
import time
from collections import deque
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bybit_faults import Fault, Row

KLINE_PATH = "/v5/market/kline"
CATEGORIES = ("spot", "linear", "inverse")
# Bybit interval codes and their length in ms; "M" (calendar month) has none.
STEPS_MS: dict[str, int | None] = {
    **{code: int(code) * 60_000 for code in ("1", "3", "5", "15", "30", "60", "120")},
    **{code: int(code) * 60_000 for code in ("240", "360", "720")},
    "D": 86_400_000,
    "W": 7 * 86_400_000,
    "M": None,
}
# attnviz's interval names, accepted wherever a Bybit code is (``"1h"`` is ``"60"``).
CODES = {
    **{f"{n}m": str(n) for n in (1, 3, 5, 15, 30)},
    **{f"{n}h": str(n * 60) for n in (1, 2, 4, 6, 12)},
    **{"1d": "D", "1w": "W", "1M": "M"},
}


def open_times(start_ms: int, count: int, interval: str = "60") -> list[int]:
    """``count`` consecutive open times (ms) from ``start_ms``; months step by the calendar."""
    step = STEPS_MS[CODES.get(interval, interval)]
    if step is not None:
        return [start_ms + i * step for i in range(count)]
    first = datetime.fromtimestamp(start_ms / 1000, UTC)
    times = []
    for i in range(count):
        year, month = divmod(first.month - 1 + i, 12)
        moment = datetime(first.year + year, month + 1, 1, tzinfo=UTC)
        times.append(calendar.timegm(moment.timetuple()) * 1000)
    return times


def random_walk(
    start_ms: int | None,
    count: int,
    interval: str = "60",
    *,
    seed: int = 0,
    price: str = "100.00",
    until_ms: int | None = None,
) -> list[Row]:
    """A deterministic candle series in Bybit's shape, OLDEST first (the store's order).

    Parameters
    ----------
    start_ms
        Open time of the first candle (ms); or ``None`` with ``until_ms``.
    count
        How many candles.
    interval
        A Bybit interval code (``"1"`` ... ``"720"``, ``"D"``, ``"W"``, ``"M"``) or an attnviz
        interval name (``"1h"``).
    seed, price
        The walk's seed and its first open (a decimal string; prices keep two decimals).
    until_ms
        Instead of ``start_ms``: the series ends with the candle containing this moment
        (pass the current time to get a forming candle). Not for ``"M"``.

    Returns
    -------
    list
        Rows ``[start, open, high, low, close, volume, turnover]``, all strings, exact decimals
        (turnover is volume times close, to 4 decimals).
    """
    interval = CODES.get(interval, interval)
    if start_ms is None:
        step = STEPS_MS[interval]
        if until_ms is None or step is None:
            raise ValueError("give start_ms, or until_ms with a fixed-length interval")
        origin = 4 * 86_400_000 if interval == "W" else 0  # weeks open on Monday
        start_ms = (until_ms - origin) // step * step + origin - (count - 1) * step
    rng = random.Random(seed)
    cents = Decimal("0.01")
    close = Decimal(price)
    rows = []
    for t in open_times(start_ms, count, interval):
        open_ = close
        close = max(cents, open_ + Decimal(rng.randint(-100, 100)) * cents)
        high = max(open_, close) + Decimal(rng.randint(0, 50)) * cents
        low = max(cents, min(open_, close) - Decimal(rng.randint(0, 50)) * cents)
        volume = Decimal(rng.randint(1, 100_000)) / 1000
        turnover = (volume * close).quantize(Decimal("0.0001"))
        rows.append([str(t), *(str(v) for v in (open_, high, low, close, volume, turnover))])
    return rows


class BybitServer:
    """Bybit's kline endpoint on loopback: candles in memory, faults on a script, requests kept.

    Attributes
    ----------
    url
        The base URL (``http://127.0.0.1:PORT``): a pybit ``HTTP().endpoint``, or
        ``BybitSource(endpoint=...)``.
    candles
        ``{(category, symbol, interval code): rows}``; fill it with :meth:`add_candles`.
    faults
        A queue of faults (see the module docstring); each request takes the first one.
    requests
        The query parameters of every request, in order (values as strings).
    """

    def __init__(self) -> None:
        self.candles: dict[tuple[str, str, str], list[Row]] = {}
        self.faults: deque[Fault] = deque()
        self.requests: list[dict[str, str]] = []
        self._repeat: Fault | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        # A short poll, so that stop() (and each test's teardown) does not wait half a second.
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._running = False

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:43121`` (still valid after :meth:`stop`)."""
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def add_candles(
        self, symbol: str, interval: str, rows: list[Row], category: str = "linear"
    ) -> None:
        """Add rows (any order) to a series, replacing rows with the same start time.

        ``interval`` is a Bybit code (``"60"``) or an attnviz interval name (``"1h"``).
        """
        interval = CODES.get(interval, interval)
        with self._lock:
            held = {row[0]: row for row in self.candles.get((category, symbol, interval), [])}
            held.update({row[0]: list(row) for row in rows})
            self.candles[(category, symbol, interval)] = sorted(
                held.values(), key=lambda row: int(row[0])
            )

    def repeat(self, fault: Fault | None) -> None:
        """Answer EVERY later request with ``fault`` (``None`` ends it); queued faults go first."""
        self._repeat = fault

    def start(self) -> "BybitServer":
        """Start serving (the context manager does this)."""
        self._thread.start()
        self._running = True
        return self

    def stop(self) -> None:
        """Stop serving and close the port: later requests find the connection refused."""
        if self._running:
            self._stopping.set()
            self._http.shutdown()
            self._running = False
        self._http.server_close()

    def __enter__(self) -> "BybitServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kline(self, params: dict[str, str]) -> dict[str, Any]:
        """The JSON body Bybit would answer to a kline request with these query parameters."""
        category = params.get("category", "linear")
        if category not in CATEGORIES:
            return _envelope(10001, "Illegal category", {})
        interval = params.get("interval", "")
        if interval not in STEPS_MS:
            return _envelope(10001, "Invalid period!", {})
        try:
            start = int(params["start"]) if "start" in params else None
            end = int(params["end"]) if "end" in params else None
            limit = min(max(int(params.get("limit", 200)), 1), 1000)
        except ValueError:
            return _envelope(10001, "params error: start, end and limit are integers", {})
        symbol = params.get("symbol", "")
        with self._lock:
            rows = self.candles.get((category, symbol, interval))
        if rows is None:
            return _envelope(10001, "Not supported symbols", {})
        chosen = [
            row
            for row in rows
            if (start is None or int(row[0]) >= start) and (end is None or int(row[0]) <= end)
        ]
        newest_first = chosen[::-1][:limit]
        return _envelope(0, "OK", {"category": category, "symbol": symbol, "list": newest_first})

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self.faults:
                return self.faults.popleft()
        return self._repeat

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query, keep_blank_values=True))
                with server._lock:
                    server.requests.append(params)
                fault = server._next_fault()
                if fault is not None and fault.delay:
                    server._stopping.wait(fault.delay)
                if fault is not None and fault.body is not None:
                    return self._send(fault.status, fault.body, fault.headers, "text/html")
                if fault is not None and fault.status != 200:
                    return self._send(fault.status, b"", fault.headers, "text/html")
                if parts.path != KLINE_PATH:
                    return self._send(404, b"<html>404 page not found</html>", {}, "text/html")
                if fault is not None and fault.ret_code:
                    answer = _envelope(fault.ret_code, fault.ret_msg, {})
                elif fault is not None and fault.rows is not None:
                    result = {
                        "category": params.get("category", "linear"),
                        "symbol": params.get("symbol", ""),
                        "list": fault.rows,
                    }
                    answer = _envelope(0, "OK", result)
                else:
                    answer = server.kline(params)
                headers = fault.headers if fault is not None else {}
                self._send(200, json.dumps(answer).encode(), headers, "application/json")

            def _send(self, code: int, raw: bytes, headers: dict[str, str], kind: str) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(raw)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:  # the client gave up (timed out) before the answer
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


def _envelope(code: int, msg: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "retCode": code,
        "retMsg": msg,
        "result": result,
        "retExtInfo": {},
        "time": int(time.time() * 1000),
    }
