"""Bar sources, one module each, behind one interface (:class:`BarSource`)."""

from collections.abc import Mapping
from typing import Any, Literal

from attnviz.bars import BarDataError
from attnviz.sources.base import BarRequest, BarSource, Received, SourceError, chunks
from attnviz.sources.bybit import BybitSource
from attnviz.sources.files import FileSource
from attnviz.sources.sample import SampleSource
from attnviz.sources.yfinance import YFinanceSource

SOURCES: dict[str, type] = {
    "sample": SampleSource,
    "files": FileSource,
    "bybit": BybitSource,
    "yfinance": YFinanceSource,
}

# The names as a type, so a flow parameter of this type is a drop-down in the Prefect UI.
SourceName = Literal["sample", "files", "bybit", "yfinance"]

__all__ = [
    "SOURCES",
    "BarRequest",
    "BarSource",
    "Received",
    "SourceError",
    "SourceName",
    "chunks",
    "make_source",
]


def make_source(name: str, options: Mapping[str, Any] | None = None) -> BarSource:
    """Build the source called ``name`` with its options (e.g. ``{"path": ...}`` for files).

    Raises
    ------
    BarDataError
        For an unknown source or options the source does not take.
    """
    try:
        cls = SOURCES[name]
    except KeyError:
        raise BarDataError(f"unknown source {name!r}; expected one of {sorted(SOURCES)}") from None
    options = dict(options or {})
    try:
        return cls(**options)
    except TypeError as error:
        # Credentials (filled from a secret by the task layer) never appear in a message.
        shown = {
            key: "<hidden>" if key == "credentials" else value for key, value in options.items()
        }
        raise BarDataError(f"source {name!r}: bad options {shown}: {error}") from None
