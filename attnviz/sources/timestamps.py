"""Reading bar-open times from a file's column, without guessing what they mean.

Without ``ts_format`` a column is read only in a form with a single meaning:

* ISO 8601: ``2024-01-02``, ``2024-01-02T09:30``, ``2024-01-02 09:30:00.25``, each
  optionally ending in ``Z`` or an offset (``+02:00``, ``-0500``);
* integer epochs, whose unit the magnitude of the column's largest value tells
  (:data:`EPOCH_BANDS`); values within a few years of 1970, or between two bands, could
  be any unit;
* numeric dates (``/``, ``.`` or ``-`` between day, month and a 2- or 4-digit year,
  optionally followed by a time of day), whose order the whole column decides: a first
  field above 12 makes the column day-first, a second field above 12 month-first. A
  column where no field is above 12 (``01/02/2020``, ``03/04/2020``) could be either.

A column that could mean two things, mixes forms, or holds no value of any form is a
:class:`~attnviz.bars.BarDataError` that names the file, the column, lines and values,
and the ``ts_format`` to pass. Once the form is known, a value that does not fit it
(``n/a``, ``2024-02-30``) is read as no timestamp, and validation quarantines its row
(``ts_not_null``). ``ts_format`` is either a strftime format (``"%d/%m/%Y %H:%M"``)
or one of :data:`EPOCH_UNITS`; it is applied the same strict way, except that a format
that fits none of a column's values is an error: the format is wrong, not every row.

Which instant a value names: an offset in the value wins; epochs are UTC; any other
time of day is local time in ``timezone`` (a local time that a DST change skips or
repeats is read as no timestamp rather than guessed). A date without a time of day
names a trading day, not an instant: for intervals of a day or more it is that day at
00:00 UTC whatever ``timezone`` says, so a New York daily file lands on the UTC day
grid instead of at 05:00. Two-digit years read as strftime's ``%y`` does: 69-99 are
19xx, 00-68 are 20xx.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from attnviz.bars import UTC_TS, BarDataError, interval_duration

# Nanoseconds in one unit of each epoch format.
EPOCH_UNITS: dict[str, int] = {
    "epoch_s": 10**9,
    "epoch_ms": 10**6,
    "epoch_us": 10**3,
    "epoch_ns": 1,
}
# The unit an epoch column is in, told by its largest absolute value: [low, high).
# Seconds cover 1973-2286; each band ends well before the next begins, so a value
# between two bands (or near 1970) is ambiguous rather than rounded to a unit.
EPOCH_BANDS: tuple[tuple[int, int, str], ...] = (
    (10**8, 10**10, "epoch_s"),
    (10**11, 10**13, "epoch_ms"),
    (10**14, 10**16, "epoch_us"),
    (10**17, 10**19, "epoch_ns"),
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Microseconds since 1970 of the first and last instants a timestamp may hold (years 1-9999).
_MIN_US = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
_MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1
)

# The forms, as regular expressions that polars (Rust) and Python read alike.
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
_FORMS = {"iso": "ISO 8601", "epoch": "an integer epoch", "numeric": "a numeric date"}
# strftime directives that carry a time of day, or an offset.
_TIME_DIRECTIVE = re.compile(r"%[-_0^#]?[HIklMSTRXcrsfpP]|%[.:]?[0-9]*f")
_OFFSET_DIRECTIVE = re.compile(r"%[#:]*z")


@dataclass(frozen=True)
class Where:
    """The column timestamps are read from, for messages.

    Attributes
    ----------
    file, column
        The file, and the column's name as the file gives it.
    unit
        What the ``_line`` numbers count: ``"line"`` of a CSV file (the header is line 1)
        or ``"row"`` of a Parquet file (the first is row 1).
    """

    file: Path
    column: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.file}: column {self.column!r}"

    def at(self, line: int | None, value: object) -> str:
        """``line 7 ('01/02/2020')``: a value and where it is."""
        return f"{self.unit} {line} ({quote(value)})"


def quote(value: object, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters: a file's values are echoed, never dumped."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def check_ts_format(ts_format: str | None) -> str | None:
    """Return ``ts_format`` if it is an epoch unit or looks like a strftime format.

    Raises
    ------
    BarDataError
        For anything else (a strftime format has at least one ``%`` directive).
    """
    if ts_format is None or ts_format in EPOCH_UNITS or "%" in ts_format:
        return ts_format
    raise BarDataError(
        f"ts_format {ts_format!r} is neither a strftime format (e.g. '%d/%m/%Y') "
        f"nor one of {', '.join(EPOCH_UNITS)}"
    )


def timestamps(
    frame: pl.LazyFrame,
    column: str,
    where: Where,
    *,
    ts_format: str | None,
    timezone: str,
    interval: str,
) -> pl.Expr:
    """The expression that reads ``column`` as bar-open times in UTC.

    The form of the values is decided over the whole column, so ``frame`` holds all the
    file's rows: ``column`` and ``_line`` (where each row is, for messages). Values that
    do not fit the form become null.

    Parameters
    ----------
    frame
        The file's rows.
    column
        The column of ``frame`` to read.
    where
        The file and column, named in errors.
    ts_format
        A strftime format, one of :data:`EPOCH_UNITS`, or ``None``: decide from the values.
    timezone
        IANA zone of times of day without an offset.
    interval
        The bars' interval: from a day up, a date without a time is 00:00 UTC that day.

    Returns
    -------
    pl.Expr
        ``column`` read as :data:`attnviz.bars.UTC_TS`.

    Raises
    ------
    BarDataError
        If the column's type cannot hold times, its form is ambiguous, mixed or unknown,
        or ``ts_format`` fits none of its values.
    """
    dtype = frame.collect_schema()[column]
    values = pl.col(column)
    daily = interval_duration(interval) >= timedelta(days=1)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            return values.dt.convert_time_zone("UTC").cast(UTC_TS)
        return _local(values.cast(pl.Datetime("us")), timezone)
    if dtype == pl.Date:
        days = values.cast(pl.Datetime("us"))
        return days.dt.replace_time_zone("UTC") if daily else _local(days, timezone)
    if dtype.is_integer() and ts_format is None:
        unit = _epoch_unit(frame, values, where)
        return pl.lit(None, dtype=UTC_TS) if unit is None else _epochs(values.cast(pl.Int64), unit)
    if not (dtype.is_integer() or dtype == pl.String):
        raise BarDataError(
            f"{where}: timestamps of type {dtype} cannot be read; "
            "store them as dates, datetimes, integer epochs or text"
        )
    text = values.cast(pl.String).str.strip_chars()
    if ts_format in EPOCH_UNITS:
        read = _epochs(text.cast(pl.Int64, strict=False), ts_format)
    elif ts_format is not None:
        read = _formatted(text, ts_format, timezone, daily)
    else:
        return _decided(frame, text, where, timezone, daily)
    _check_some_fit(frame, text, read, where, ts_format)
    return read


def _local(local: pl.Expr, timezone: str) -> pl.Expr:
    """Naive times in ``timezone`` to UTC; times a DST change skips or repeats become null."""
    return (
        local.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
        .dt.convert_time_zone("UTC")
        .cast(UTC_TS)
    )


def _epochs(values: pl.Expr, unit: str) -> pl.Expr:
    """Integer epochs in ``unit`` to UTC; values past the years 1-9999 become null."""
    per_unit = EPOCH_UNITS[unit]
    if per_unit < 1000:  # nanoseconds: every Int64 lies within 1677-2262
        micros = values // (1000 // per_unit)
    else:
        factor = per_unit // 1000
        micros = pl.when(values.is_between(_MIN_US // factor, _MAX_US // factor)).then(
            values * factor
        )
    return micros.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _formatted(text: pl.Expr, ts_format: str, timezone: str, daily: bool) -> pl.Expr:
    """Text read strictly with a strftime format."""
    parsed = text.str.to_datetime(ts_format, strict=False, time_unit="us")
    if _OFFSET_DIRECTIVE.search(ts_format):
        return parsed.dt.convert_time_zone("UTC").cast(UTC_TS)
    if daily and not _TIME_DIRECTIVE.search(ts_format):
        return parsed.dt.replace_time_zone("UTC")
    return _local(parsed, timezone)


def _iso(text: pl.Expr, timezone: str, daily: bool, shapes: set[str]) -> pl.Expr:
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
    instant = _local(local, timezone)
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


def _numeric_as_iso(text: pl.Expr, day_first: bool) -> pl.Expr:
    """Numeric dates rewritten as ISO 8601 text, in the order the column was found to use."""
    parts = text.str.extract_groups(NUMERIC_DATE)
    first, second, year, time = (
        parts.struct.field(name) for name in ("first", "second", "year", "time")
    )
    day, month = (first, second) if day_first else (second, first)
    century = pl.when(year.cast(pl.Int64) < 69).then(pl.lit("20")).otherwise(pl.lit("19"))
    year = pl.when(year.str.len_chars() == 4).then(year).otherwise(pl.concat_str(century, year))
    date = pl.concat_str(year, pl.lit("-"), month.str.zfill(2), pl.lit("-"), day.str.zfill(2))
    return pl.when(time.is_null()).then(date).otherwise(pl.concat_str(date, pl.lit(" "), time))


def _decided(
    frame: pl.LazyFrame, text: pl.Expr, where: Where, timezone: str, daily: bool
) -> pl.Expr:
    """Read text in the one form its values take, after checking that form has one meaning."""
    value = pl.col("value")
    is_iso, is_epoch, is_numeric = pl.col("_iso"), pl.col("_epoch"), pl.col("_numeric")
    first, second = (value.str.extract(NUMERIC_DATE, group).cast(pl.Int64) for group in (1, 2))
    summary = (
        frame.select(pl.col("_line"), text.alias("value"))
        .filter(value != "")
        # Each form's test once, in its own column: the summary below uses them many times.
        .with_columns(value.str.contains(ISO_8601).alias("_iso"))
        .with_columns((~is_iso & value.str.contains(EPOCH)).alias("_epoch"))
        .with_columns((~is_iso & ~is_epoch & value.str.contains(NUMERIC_DATE)).alias("_numeric"))
        .select(
            _first_two(is_iso).alias("iso"),
            _first_two(is_epoch).alias("epoch"),
            _first_two(is_numeric).alias("numeric"),
            _first_two(~(is_iso | is_epoch | is_numeric)).alias("other"),
            *(
                (is_iso & value.str.contains(pattern)).any().alias(shape)
                for shape, pattern in ISO_SHAPES.items()
            ),
            pl.when(is_epoch).then(value.cast(pl.Int64, strict=False).abs()).max().alias("largest"),
            _first_two(is_numeric & (first > 12)).alias("day_first"),
            _first_two(is_numeric & (second > 12)).alias("month_first"),
        )
        .collect()
        .row(0, named=True)
    )
    known = [form for form in _FORMS if summary[form]]
    if not known and summary["other"]:
        line, value_ = summary["other"][0].values()
        raise BarDataError(
            f"{where}: {where.at(line, value_)} is not a timestamp that can be read without "
            "ts_format (ISO 8601 such as '2024-01-02 09:30', an integer epoch, or a numeric "
            "date such as '02/01/2024'); pass ts_format, e.g. '%d %b %Y %H:%M'"
        )
    if not known:  # no values at all: every row is quarantined for its missing ts
        return pl.lit(None, dtype=UTC_TS)
    if len(known) > 1:
        seen = "; ".join(
            f"{_FORMS[form]} at {where.at(*summary[form][0].values())}" for form in known
        )
        raise BarDataError(
            f"{where}: timestamps in more than one form ({seen}); "
            "write them in one form, or pass ts_format"
        )
    if known == ["iso"]:
        shapes = {shape for shape in ISO_SHAPES if summary[shape]}
        return _iso(text, timezone, daily, shapes)
    if known == ["epoch"]:
        unit = _unit(summary["largest"], summary["epoch"], where)
        return _epochs(text.cast(pl.Int64, strict=False), unit)
    day_first = _day_first(summary, where)
    return _iso(_numeric_as_iso(text, day_first), timezone, daily, {"date", "minutes", "fraction"})


def _first_two(seen: pl.Expr) -> pl.Expr:
    """Line and value of the first two rows where ``seen`` holds (a list, maybe empty).

    Found by position, so a column of millions of matches is not copied to keep two.
    """
    at = seen.arg_true().head(2)
    return pl.struct(pl.col("_line").gather(at), pl.col("value").gather(at)).implode()


def _epoch_unit(frame: pl.LazyFrame, values: pl.Expr, where: Where) -> str | None:
    """The unit of an integer column, told by its largest value; ``None`` if it has none."""
    summary = (
        frame.select(pl.col("_line"), values.cast(pl.Int64).alias("value"))
        .select(
            _first_two(pl.col("value").is_not_null()).alias("examples"),
            pl.col("value").abs().max().alias("largest"),
        )
        .collect()
        .row(0, named=True)
    )
    if not summary["examples"]:
        return None
    return _unit(summary["largest"], summary["examples"], where)


def _unit(largest: int | None, examples: list[dict], where: Where) -> str:
    """The epoch unit whose band holds ``largest``; outside every band it is an error."""
    for low, high, unit in EPOCH_BANDS:
        if largest is not None and low <= largest < high:
            return unit
    shown = " and ".join(where.at(*example.values()) for example in examples)
    raise BarDataError(
        f"{where}: the unit of these epochs cannot be told from their size ({shown}): "
        f"pass ts_format {', '.join(map(repr, list(EPOCH_UNITS)[:-1]))} or 'epoch_ns' "
        "(or a strftime format such as '%Y%m%d' if they are dates)"
    )


def _day_first(summary: dict, where: Where) -> bool:
    """Whether numeric dates are day-first, from the fields above 12 anywhere in the column."""
    day_first, month_first = summary["day_first"], summary["month_first"]
    if day_first and month_first:
        raise BarDataError(
            f"{where}: the day/month order contradicts itself: "
            f"{where.at(*day_first[0].values())} has a day first, "
            f"{where.at(*month_first[0].values())} a month first; pass ts_format"
        )
    if day_first or month_first:
        return bool(day_first)
    examples = summary["numeric"]
    shown = " and ".join(where.at(*example.values()) for example in examples)
    value = examples[0]["value"]
    raise BarDataError(
        f"{where}: day/month order is ambiguous: no field is above 12 ({shown}); pass "
        f"ts_format={_strftime(value, True)!r} (day first) or "
        f"ts_format={_strftime(value, False)!r} (month first)"
    )


def _strftime(value: str, day_first: bool) -> str:
    """The strftime format of a numeric date like ``value`` in the given order."""
    parts = re.fullmatch(NUMERIC_DATE, value)
    assert parts is not None  # only values of the numeric form get here
    separators = value[parts.end("first")], value[parts.end("second")]
    day, month = ("%d", "%m") if day_first else ("%m", "%d")
    year = "%Y" if len(parts["year"]) == 4 else "%y"
    time = parts["time"] or ""
    clock = "" if not time else " %H:%M" if time.count(":") == 1 else " %H:%M:%S"
    return f"{day}{separators[0]}{month}{separators[1]}{year}{clock}{'%.f' if '.' in time else ''}"


def _check_some_fit(
    frame: pl.LazyFrame, text: pl.Expr, read: pl.Expr, where: Where, ts_format: str
) -> None:
    """A ts_format that fits none of a column's values is the wrong format, not bad rows."""
    summary = (
        frame.select(pl.col("_line"), text.alias("value"), read.alias("read"))
        .filter(pl.col("value") != "")
        .select(
            pl.col("read").is_not_null().any().alias("fits"),
            pl.struct("_line", "value").first().alias("example"),
        )
        .collect()
    )
    if summary.height and summary["example"][0] is not None and not summary["fits"][0]:
        raise BarDataError(
            f"{where}: ts_format {ts_format!r} fits none of its values, e.g. "
            f"{where.at(*summary['example'][0].values())}"
        )
