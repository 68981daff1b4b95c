"""Bar sources, one module each, behind one interface (:class:`BarSource`)."""

from collections.abc import Mapping
from typing import Any, Literal, TypeGuard

from attnviz.bars import BarDataError
from attnviz.sources.base import (
    BarRequest,
    BarSource,
    BatchSource,
    Received,
    SourceError,
    chunks,
)
from attnviz.sources.bybit import BybitSource
from attnviz.sources.files import FileSource
from attnviz.sources.sample import SampleSource
from attnviz.sources.yfinance import YFinanceSource

# The names as a type, so a flow parameter of this type is a drop-down in the Prefect UI.
SourceName = Literal["sample", "files", "bybit", "yfinance"]

SOURCES: Mapping[SourceName, type[BarSource]] = {
    "sample": SampleSource,
    "files": FileSource,
    "bybit": BybitSource,
    "yfinance": YFinanceSource,
}

__all__ = [
    "SOURCES",
    "BarRequest",
    "BarSource",
    "BatchSource",
    "Received",
    "SourceError",
    "SourceName",
    "chunks",
    "is_source_name",
    "make_source",
]


def is_source_name(name: str) -> TypeGuard[SourceName]:
    """Whether ``name`` names a source (a key of :data:`SOURCES`)."""
    return name in SOURCES


def make_source(name: str, options: Mapping[str, Any] | None = None) -> BarSource:
    """Build the source called ``name`` with its options (e.g. ``{"path": ...}`` for files).

    Raises
    ------
    BarDataError
        For an unknown source or options the source does not take.
    """
    if not is_source_name(name):
        raise BarDataError(f"unknown source {name!r}; expected one of {sorted(SOURCES)}")
    options = dict(options or {})
    try:
        return SOURCES[name](**options)
    except TypeError as error:
        # Credentials (filled from a secret by the task layer) never appear in a message.
        shown = {
            key: "<hidden>" if key == "credentials" else value for key, value in options.items()
        }
        raise BarDataError(f"source {name!r}: bad options {shown}: {error}") from None
