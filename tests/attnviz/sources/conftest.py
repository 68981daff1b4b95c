"""Fixtures of the Bybit source tests: the loopback server, a recording sleep, no keys."""

from collections.abc import Iterator

import pytest
from bybit_kit import Sleeps
from bybit_server import BybitServer


@pytest.fixture
def server() -> Iterator[BybitServer]:
    with BybitServer() as running:
        yield running


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(autouse=True)
def no_bybit_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys in the environment of whoever runs the tests never reach a source."""
    monkeypatch.delenv("BYBIT_API_KEY", raising=False)
    monkeypatch.delenv("BYBIT_API_SECRET", raising=False)
