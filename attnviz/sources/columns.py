"""Which of a file's columns is which, and how their values are read.

Each file holds bars of one interval. Required columns: a timestamp and open, high,
low, close, volume. Names are matched case-insensitively (and ignoring spaces around
them) against :data:`ALIASES` (``Date``, ``timestamp``, ``Close``, ``vol`` ... all work),
and a mapping such as ``{"ts": "Bar Time"}`` names any others. A ``Date`` and a ``Time``
column, with no other timestamp column, are read together as one timestamp (``ts_format``
then describes ``"<date> <time>"``). Two columns that could both be the one wanted
(``Close`` and ``close``) are an error, not a choice.

Values are trimmed of surrounding spaces; numbers are plain decimals (``NaN``, ``inf``
and ``1e309`` included, for validation to judge). A number with thousands separators
(``"1,234.5"``) is not read, since ``1,234`` is 1234 in one locale and 1.234 in another:
its row reaches validation without that value.
"""

from collections.abc import Mapping

import polars as pl

from attnviz.bars import VALUES, BarDataError
from attnviz.sources.messages import quote, shown
from attnviz.sources.tables import Head

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "datetime", "date", "open_time", "start"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
    "symbol": ("symbol", "ticker"),
    "interval": ("interval",),
}
REQUIRED = ("ts", *VALUES)


def check_mapping(mapping: Mapping[str, str] | None) -> dict[str, str]:
    """The user's mapping (canonical name -> the files' column), as a dict.

    Raises
    ------
    BarDataError
        If it maps a name that is not one of :data:`ALIASES`.
    """
    checked = dict(mapping or {})
    unknown = set(checked) - set(ALIASES)
    if unknown:
        raise BarDataError(
            f"files source: unknown column mapping {sorted(unknown)}; map any of {sorted(ALIASES)}"
        )
    return checked


def find_column(head: Head, canonical: str, mapping: Mapping[str, str]) -> str | None:
    """The file's column for ``canonical``, if any.

    Raises
    ------
    BarDataError
        If two columns could be it.
    """
    wanted = mapping.get(canonical)
    if wanted is not None:
        candidates = [name for name in head.header if name == wanted]
    else:
        keys = [name.strip().lower() for name in head.header]
        alias = next((a for a in ALIASES[canonical] if a in keys), None)
        candidates = [n for n, key in zip(head.header, keys, strict=True) if key == alias]
    if len(candidates) > 1:
        raise BarDataError(
            f"{head.file}: {len(candidates)} columns could be {canonical} "
            f"({', '.join(map(quote, candidates))}): keep one, or rename the others"
        )
    return candidates[0] if candidates else None


def resolve_columns(head: Head, mapping: Mapping[str, str]) -> dict[str, str]:
    """Canonical name -> the file's column, for every column the file has.

    ``time_of_day`` joins ``ts`` when the timestamp is a ``Date`` and a ``Time`` column.

    Raises
    ------
    BarDataError
        If a mapped column or a required one is absent, or two columns could be one.
    """
    resolved = {
        canonical: name
        for canonical in ALIASES
        if (name := find_column(head, canonical, mapping)) is not None
    }
    for canonical, wanted in mapping.items():
        if canonical not in resolved:
            raise BarDataError(
                f"{head.file}: mapped column {wanted!r} (for {canonical}) not found; "
                f"columns are {shown(head.header)}"
            )
    keys = {name.strip().lower(): name for name in head.header}
    one_column = (set(ALIASES["ts"]) - {"date", "time"}) & keys.keys()
    if "ts" not in mapping and {"date", "time"} <= keys.keys() and not one_column:
        resolved["ts"], resolved["time_of_day"] = keys["date"], keys["time"]
    missing = [canonical for canonical in REQUIRED if canonical not in resolved]
    if missing:
        raise BarDataError(
            f"{head.file}: missing column(s) {missing}; columns are "
            f"{shown(head.header)}. Map them with --column {missing[0]}=NAME on the "
            f"command line, or columns={{'{missing[0]}': NAME}} in source_options"
        )
    return resolved


def as_text(column: str) -> pl.Expr:
    """A column as trimmed text, whatever its type."""
    return pl.col(column).cast(pl.String).str.strip_chars()


def as_number(column: str, dtype: pl.DataType) -> pl.Expr:
    """A value column (of type ``dtype``) as a float; text that is not a plain number: null."""
    value = as_text(column) if dtype == pl.String else pl.col(column)
    return value.cast(pl.Float64, strict=False)
