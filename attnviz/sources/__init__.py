"""Bar sources, one module each, behind one interface (:class:`BarSource`)."""

from collections.abc import Mapping
from typing import Any, Literal

from attnviz.bars import BarDataError
from attnviz.sources.base import BarRequest, BarSource, Received, SourceError
from attnviz.sources.files import FileSource
from attnviz.sources.sample import SampleSource

SOURCES: dict[str, type] = {"sample": SampleSource, "files": FileSource}

# The names as a type, so a flow parameter of this type is a drop-down in the Prefect UI.
SourceName = Literal["sample", "files"]

__all__ = [
    "SOURCES",
    "BarRequest",
    "BarSource",
    "Received",
    "SourceError",
    "SourceName",
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
    try:
        return cls(**dict(options or {}))
    except TypeError as error:
        raise BarDataError(f"source {name!r}: bad options {dict(options or {})}: {error}") from None
