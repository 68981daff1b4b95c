"""Scripted answers for the loopback Bybit (:mod:`bybit_server`): errors, delays, odd pages.

Each request to the server first takes the next fault of ``BybitServer.faults`` (if any) and
answers with it instead of the data; ``BybitServer.repeat`` answers every later request with
one fault (``server.repeat(status(502))``: an outage). Build them with :func:`retcode`,
:func:`rate_limit`, :func:`status`, :func:`delay`, :func:`body`, :func:`empty_page` and
:func:`page`.
"""

from dataclasses import dataclass, field
from typing import Any

# Bybit's usual texts for its error codes.
MESSAGES = {
    10000: "Server Timeout",
    10001: "params error",
    10006: "Too many visits!",
    10016: "Service is restarting",
}

Row = list[Any]


@dataclass(frozen=True)
class Fault:
    """One scripted answer: a status, a retCode, extra headers, a raw body, a delay or a page."""

    status: int = 200
    ret_code: int = 0
    ret_msg: str = "OK"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    delay: float = 0.0
    rows: list[Row] | None = None


def retcode(code: int, msg: str | None = None) -> Fault:
    """HTTP 200 with Bybit error ``code`` (``msg`` defaults to Bybit's usual text)."""
    return Fault(ret_code=code, ret_msg=msg or MESSAGES.get(code, "error"))


def rate_limit(reset_ms: int | None = None) -> Fault:
    """retCode 10006, with ``X-Bapi-Limit-Reset-Timestamp: reset_ms`` when given."""
    headers = {} if reset_ms is None else {"X-Bapi-Limit-Reset-Timestamp": str(reset_ms)}
    return Fault(ret_code=10006, ret_msg=MESSAGES[10006], headers=headers)


def status(code: int) -> Fault:
    """An HTTP error status with an HTML body (403 is Bybit's IP rate limit)."""
    return Fault(status=code, body=f"<html><h1>{code}</h1></html>".encode())


def delay(seconds: float) -> Fault:
    """Answer normally, but only after ``seconds`` (longer than a client timeout: a timeout)."""
    return Fault(delay=seconds)


def body(raw: bytes, code: int = 200) -> Fault:
    """Answer ``raw`` bytes as they are (e.g. ``b"<html>not json</html>"``)."""
    return Fault(status=code, body=raw)


def empty_page() -> Fault:
    """retCode 0 with an empty ``list``."""
    return Fault(rows=[])


def page(rows: list[Row]) -> Fault:
    """retCode 0 with exactly ``rows`` as the ``list`` (sent as given, whatever was asked)."""
    return Fault(rows=list(rows))
