"""Timestamps read as UTC instants, once the form they are written in is known.

The forms a column may take without ``ts_format`` are regular expressions that polars
(Rust) and Python read alike: :data:`ISO_8601`, :data:`EPOCH` and :data:`NUMERIC_DATE`.
:mod:`attnviz.sources.timestamp_forms` decides which one a column is in; the functions
here read it, by the rules :mod:`attnviz.sources.timestamps` tells (an offset in a value
wins, epochs are UTC, other times of day are local to the file's zone).
"""

import re
from datetime import UTC, datetime, timedelta

import polars as pl

from attnviz.bars import UTC_TS

# Nanoseconds in one unit of each epoch format.
EPOCH_UNITS: dict[str, int] = {
    "epoch_s": 10**9,
    "epoch_ms": 10**6,
    "epoch_us": 10**3,
    "epoch_ns": 1,
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since 1970 of the first and last instants a timestamp may hold (years 1-9999).
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1
)

_TIME = r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
_ZONE = r"Z|[+-]\d{2}(?::?\d{2})?"
ISO_8601 = rf"^\d{{4}}-\d{{2}}-\d{{2}}(?:[T ]{_TIME}(?:{_ZONE})?)?$"
EPOCH = r"^-?\d{1,19}$"
NUMERIC_DATE = (
    rf"^(?P<first>\d{{1,2}})[/.-](?P<second>\d{{1,2}})[/.-](?P<year>\d{{4}}|\d{{2}})"
    rf"(?:[T ](?P<time>{_TIME}))?$"
)
# An offset, found after the seconds or minutes of a time of day: a date alone ends in
# digits (``-02``) that would pass for one.
OFFSET = rf"(?P<clock>:\d{{2}}(?:\.\d{{1,9}})?)({_ZONE})$"
# The shapes an ISO 8601 value takes, besides a full time of day to the second.
ISO_SHAPES = {
    "date": r"^\S{10}$",
    "minutes": r"^\S{10}[T ]\d{1,2}:\d{2}(?:[Z+-]|$)",
    "fraction": r"\.",
    "offset": OFFSET,
}
# strftime directives that carry a time of day, or an offset.
_TIME_DIRECTIVE = re.compile(r"%[-_0^#]?[HIklMSTRXcrsfpP]|%[.:]?[0-9]*f")
_OFFSET_DIRECTIVE = re.compile(r"%[#:]*z")


def local_to_utc(local: pl.Expr, timezone: str) -> pl.Expr:
    """Naive times in ``timezone`` to UTC; times a DST change skips or repeats become null."""
    return (
        local.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(UTC_TS)
    )


def epochs_to_utc(values: pl.Expr, unit: str) -> pl.Expr:
    """Integer epochs in ``unit`` (one of :data:`EPOCH_UNITS`) to UTC; past years 1-9999: null."""
    per_unit = EPOCH_UNITS[unit]
    if per_unit < 1000:  # nanoseconds: every Int64 lies within 1677-2262
        micros = values // (1000 // per_unit)
    else:
        factor = per_unit // 1000
        micros = pl.when(values.is_between(_MIN_US // factor, _MAX_US // factor)).then(
            values * factor
        )
    return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def formatted_to_utc(text: pl.Expr, ts_format: str, timezone: str, daily: bool) -> pl.Expr:
    """Text read strictly with a strftime format; what does not fit becomes null."""
    parsed = text.str.to_datetime(ts_format, strict=False, time_unit="us")
    if _OFFSET_DIRECTIVE.search(ts_format):
        return parsed.dt.convert_time_zone("UTC").cast(UTC_TS)
    if daily and not _TIME_DIRECTIVE.search(ts_format):
        return parsed.dt.replace_time_zone("UTC")
    return local_to_utc(parsed, timezone)


def iso_to_utc(text: pl.Expr, timezone: str, daily: bool, shapes: set[str]) -> pl.Expr:
    """ISO 8601 text to UTC: offsets honoured, dates of daily bars at 00:00 UTC.

    ``shapes`` are those the column's values take (:data:`ISO_SHAPES`). Every value is
    brought to the one shape ``YYYY-MM-DD HH:MM:SS[.f]`` and read with one format: only
    the shapes present cost time, and polars reads that format fastest.
    """
    local = text.str.replace(OFFSET, "$clock") if "offset" in shapes else text
    local = local.str.replace("T", " ", literal=True)
    date_only = text.str.len_chars() == 10
    if "date" in shapes:
        local = pl.when(date_only).then(local + " 00:00:00").otherwise(local)
    if "minutes" in shapes:
        local = local.str.replace(r"^(\S+ \d{1,2}:\d{2})$", "${1}:00")
    form = "%Y-%m-%d %H:%M:%S%.f" if "fraction" in shapes else "%Y-%m-%d %H:%M:%S"
    local = local.str.to_datetime(form, strict=False, time_unit="us")
    instant = local_to_utc(local, timezone)
    if daily and "date" in shapes:
        instant = pl.when(date_only).then(local.dt.replace_time_zone("UTC")).otherwise(instant)
    if "offset" in shapes:
        offset = text.str.extract(OFFSET, 2)
        from_offset = (local - _offset(offset)).dt.replace_time_zone("UTC")
        instant = pl.when(offset.is_not_null()).then(from_offset).otherwise(instant)
    return instant


def _offset(offset: pl.Expr) -> pl.Expr:
    """``Z``, ``+05:30``, ``-0500`` or ``+01`` as a duration; null when out of range."""
    digits = offset.str.replace_all(r"\D", "")
    hours = digits.str.slice(0, 2).cast(pl.Int64, strict=False).fill_null(0)
    minutes = digits.str.slice(2, 2).cast(pl.Int64, strict=False).fill_null(0)
    sign = pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
    return pl.when((hours < 24) & (minutes < 60)).then(
        pl.duration(minutes=sign * (hours * 60 + minutes))
    )


def numeric_as_iso(text: pl.Expr, day_first: bool) -> pl.Expr:
    """Numeric dates (:data:`NUMERIC_DATE`) rewritten as ISO 8601 text, in the given order.

    Two-digit years read as strftime's ``%y`` does: 69-99 are 19xx, 00-68 are 20xx.
    """
    parts = text.str.extract_groups(NUMERIC_DATE)
    first, second, year, time = (
        parts.struct.field(name) for name in ("first", "second", "year", "time")
    )
    day, month = (first, second) if day_first else (second, first)
    century = pl.when(year.cast(pl.Int64) < 69).then(pl.lit("20")).otherwise(pl.lit("19"))
    year = pl.when(year.str.len_chars() == 4).then(year).otherwise(pl.concat_str(century, year))
    date = pl.concat_str(year, pl.lit("-"), month.str.zfill(2), pl.lit("-"), day.str.zfill(2))
    return pl.when(time.is_null()).then(date).otherwise(pl.concat_str(date, pl.lit(" "), time))
