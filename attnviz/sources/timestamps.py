"""Reading bar-open times from a file's column, without guessing what they mean.

Without ``ts_format`` a column is read only in a form with a single meaning:

* ISO 8601: ``2024-01-02``, ``2024-01-02T09:30``, ``2024-01-02 09:30:00.25``, each
  optionally ending in ``Z`` or an offset (``+02:00``, ``-0500``);
* integer epochs, whose unit the magnitude of the column's largest value tells
  (:data:`~attnviz.sources.timestamp_forms.EPOCH_BANDS`); values within a few years of
  1970, or between two bands, could be any unit;
* numeric dates (``/``, ``.`` or ``-`` between day, month and a 2- or 4-digit year,
  optionally followed by a time of day), whose order the whole column decides: a first
  field above 12 makes the column day-first, a second field above 12 month-first. A
  column where no field is above 12 (``01/02/2020``, ``03/04/2020``) could be either.

A column that could mean two things, mixes forms, or holds no value of any form is a
:class:`~attnviz.bars.BarDataError` that names the file, the column, lines and values,
and the ``ts_format`` to pass (:mod:`attnviz.sources.timestamp_forms` decides). Once the
form is known, a value that does not fit it (``n/a``, ``2024-02-30``) is read as no
timestamp, and validation quarantines its row (``ts_not_null``). ``ts_format`` is either
a strftime format (``"%d/%m/%Y %H:%M"``) or one of :data:`EPOCH_UNITS`; it is applied the
same strict way, except that a format that fits none of a column's values is an error:
the format is wrong, not every row.

Which instant a value names: an offset in the value wins; epochs are UTC; any other
time of day is local time in ``timezone`` (a local time that a DST change skips or
repeats is read as no timestamp rather than guessed). A date without a time of day
names a trading day, not an instant: for intervals of a day or more it is that day at
00:00 UTC whatever ``timezone`` says, so a New York daily file lands on the UTC day
grid instead of at 05:00. Two-digit years read as strftime's ``%y`` does: 69-99 are
19xx, 00-68 are 20xx. :mod:`attnviz.sources.instants` does the reading.
"""

from datetime import datetime, timedelta

import polars as pl

from attnviz.bars import UTC_TS, BarDataError, interval_duration
from attnviz.sources.instants import (
    EPOCH_UNITS,
    epochs_to_utc,
    formatted_to_utc,
    local_to_utc,
)
from attnviz.sources.messages import Where
from attnviz.sources.timestamp_forms import epoch_unit, read_in_its_form


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


def check_timezone(timezone: str) -> str:
    """Return ``timezone`` if it is an IANA zone polars knows.

    Raises
    ------
    BarDataError
        For any other name.
    """
    try:
        pl.select(pl.lit(datetime(2000, 1, 1)).dt.replace_time_zone(timezone))
    except pl.exceptions.PolarsError:
        raise BarDataError(
            f"files source: unknown timezone {timezone!r}; "
            "use an IANA name such as 'America/New_York' or 'UTC'"
        ) from None
    return timezone


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
        return local_to_utc(values.cast(pl.Datetime("us")), timezone)
    if dtype == pl.Date:
        days = values.cast(pl.Datetime("us"))
        return days.dt.replace_time_zone("UTC") if daily else local_to_utc(days, timezone)
    if dtype.is_integer() and ts_format is None:
        unit = epoch_unit(frame, values, where)
        if unit is None:
            return pl.lit(None, dtype=UTC_TS)
        return epochs_to_utc(values.cast(pl.Int64), unit)
    if not (dtype.is_integer() or dtype == pl.String):
        raise BarDataError(
            f"{where}: timestamps of type {dtype} cannot be read; "
            "store them as dates, datetimes, integer epochs or text"
        )
    text = values.cast(pl.String).str.strip_chars()
    if ts_format is None:
        return read_in_its_form(frame, text, where, timezone, daily)
    if ts_format in EPOCH_UNITS:
        read = epochs_to_utc(text.cast(pl.Int64, strict=False), ts_format)
    else:
        read = formatted_to_utc(text, ts_format, timezone, daily)
    _check_some_fit(frame, text, read, where, ts_format)
    return read


def _check_some_fit(
    frame: pl.LazyFrame, text: pl.Expr, read: pl.Expr, where: Where, ts_format: str
) -> None:
    """A ts_format that fits none of a column's values is the wrong format, not bad rows."""
    summary = (
        frame.select(pl.col("_line"), text.alias("value"), read.alias("read"))
        .filter(pl.col("value") != "")
        .select(
            pl.col("read").is_not_null().any().alias("fits"),
            pl.col("_line").first().alias("line"),
            pl.col("value").first(),
        )
        .collect()
    )
    if summary.height and summary["value"][0] is not None and not summary["fits"][0]:
        raise BarDataError(
            f"{where}: ts_format {ts_format!r} fits none of its values, e.g. "
            f"{where.at(summary['line'][0], summary['value'][0])}"
        )
