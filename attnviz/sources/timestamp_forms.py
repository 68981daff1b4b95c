"""Which form a timestamp column is written in, decided over the whole column.

Without ``ts_format`` a column is read only in a form with a single meaning (see
:mod:`attnviz.sources.timestamps`). One pass over the column finds, for each form, the
first two values in it, and what tells its meaning: the largest epoch (its unit), the
ISO 8601 shapes present, and the numeric dates with a field above 12 (their order).
A column that could mean two things, mixes forms, or holds no value of any form is an
error that shows those values with their lines, and names the ``ts_format`` to pass.
"""

import re
from dataclasses import dataclass
from typing import Any

import polars as pl

from attnviz.bars import UTC_TS, BarDataError
from attnviz.sources.instants import (
    EPOCH,
    EPOCH_UNITS,
    ISO_8601,
    ISO_SHAPES,
    NUMERIC_DATE,
    epochs_to_utc,
    iso_to_utc,
    numeric_as_iso,
)
from attnviz.sources.messages import Where

# The unit an epoch column is in, told by its largest absolute value: [low, high).
# Seconds cover 1973-2286; each band ends well before the next begins, so a value
# between two bands (or near 1970) is ambiguous rather than rounded to a unit.
EPOCH_BANDS: tuple[tuple[int, int, str], ...] = (
    (10**8, 10**10, "epoch_s"),
    (10**11, 10**13, "epoch_ms"),
    (10**14, 10**16, "epoch_us"),
    (10**17, 10**19, "epoch_ns"),
)
FORMS = {"iso": "ISO 8601", "epoch": "an integer epoch", "numeric": "a numeric date"}

# A value and the line (or row) it is on.
Example = tuple[int, object]


@dataclass(frozen=True)
class Survey:
    """What one pass over a text column found: for each form, its first two values.

    Attributes
    ----------
    found
        Form (a key of :data:`FORMS`, or ``"other"``) -> the first two values in it.
    shapes
        The :data:`~attnviz.sources.instants.ISO_SHAPES` the ISO 8601 values take.
    largest
        The largest absolute epoch, if any value is one.
    day_first, month_first
        The first two numeric dates with a first (second) field above 12.
    """

    found: dict[str, list[Example]]
    shapes: set[str]
    largest: int | None
    day_first: list[Example]
    month_first: list[Example]


def read_in_its_form(
    frame: pl.LazyFrame, text: pl.Expr, where: Where, timezone: str, daily: bool
) -> pl.Expr:
    """Read text in the one form its values take, after checking that form has one meaning.

    Raises
    ------
    BarDataError
        If the values take no form, several forms, or a form whose meaning they leave open.
    """
    survey = _survey(frame, text)
    known = [form for form in FORMS if survey.found[form]]
    if not known and survey.found["other"]:
        line, value = survey.found["other"][0]
        raise BarDataError(
            f"{where}: {where.at(line, value)} is not a timestamp that can be read without "
            "ts_format (ISO 8601 such as '2024-01-02 09:30', an integer epoch, or a numeric "
            "date such as '02/01/2024'); pass ts_format, e.g. '%d %b %Y %H:%M'"
        )
    if not known:  # no values at all: every row is quarantined for its missing ts
        return pl.lit(None, dtype=UTC_TS)
    if len(known) > 1:
        seen = "; ".join(f"{FORMS[form]} at {where.at(*survey.found[form][0])}" for form in known)
        raise BarDataError(
            f"{where}: timestamps in more than one form ({seen}); "
            "write them in one form, or pass ts_format"
        )
    if known == ["iso"]:
        return iso_to_utc(text, timezone, daily, survey.shapes)
    if known == ["epoch"]:
        unit = _unit(survey.largest, survey.found["epoch"], where)
        return epochs_to_utc(text.cast(pl.Int64, strict=False), unit)
    day_first = _day_first(survey, where)
    all_shapes = {"date", "minutes", "fraction"}
    return iso_to_utc(numeric_as_iso(text, day_first), timezone, daily, all_shapes)


def epoch_unit(frame: pl.LazyFrame, values: pl.Expr, where: Where) -> str | None:
    """The unit of an integer column, told by its largest value; ``None`` if it has none.

    Raises
    ------
    BarDataError
        If the largest value lies in no band of :data:`EPOCH_BANDS`.
    """
    summary = (
        frame.select(pl.col("_line"), values.cast(pl.Int64).alias("value"))
        .select(
            _first_two(pl.col("value").is_not_null()).alias("examples"),
            pl.col("value").abs().max().alias("largest"),
        )
        .collect()
        .row(0, named=True)
    )
    examples = _examples(summary["examples"])
    return _unit(summary["largest"], examples, where) if examples else None


def _survey(frame: pl.LazyFrame, text: pl.Expr) -> Survey:
    """One pass over the column: which forms its values take, and what tells their meaning."""
    value = pl.col("value")
    is_iso, is_epoch, is_numeric = pl.col("_iso"), pl.col("_epoch"), pl.col("_numeric")
    first, second = (value.str.extract(NUMERIC_DATE, group).cast(pl.Int64) for group in (1, 2))
    row = (
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
    return Survey(
        found={form: _examples(row[form]) for form in (*FORMS, "other")},
        shapes={shape for shape in ISO_SHAPES if row[shape]},
        largest=row["largest"],
        day_first=_examples(row["day_first"]),
        month_first=_examples(row["month_first"]),
    )


def _first_two(seen: pl.Expr) -> pl.Expr:
    """Line and value of the first two rows where ``seen`` holds (a list, maybe empty).

    Found by position, so a column of millions of matches is not copied to keep two.
    """
    at = seen.arg_true().head(2)
    return pl.struct(pl.col("_line").gather(at), pl.col("value").gather(at)).implode()


def _examples(found: list[dict[str, Any]]) -> list[Example]:
    """The structs :func:`_first_two` collects, as (line, value) pairs."""
    return [(example["_line"], example["value"]) for example in found]


def _unit(largest: int | None, examples: list[Example], where: Where) -> str:
    """The epoch unit whose band holds ``largest``; outside every band it is an error."""
    for low, high, unit in EPOCH_BANDS:
        if largest is not None and low <= largest < high:
            return unit
    shown = " and ".join(where.at(*example) for example in examples)
    raise BarDataError(
        f"{where}: the unit of these epochs cannot be told from their size ({shown}): "
        f"pass ts_format {', '.join(map(repr, list(EPOCH_UNITS)[:-1]))} or 'epoch_ns' "
        "(or a strftime format such as '%Y%m%d' if they are dates)"
    )


def _day_first(survey: Survey, where: Where) -> bool:
    """Whether numeric dates are day-first, from the fields above 12 anywhere in the column."""
    day_first, month_first = survey.day_first, survey.month_first
    if day_first and month_first:
        raise BarDataError(
            f"{where}: the day/month order contradicts itself: "
            f"{where.at(*day_first[0])} has a day first, "
            f"{where.at(*month_first[0])} a month first; pass ts_format"
        )
    if day_first or month_first:
        return bool(day_first)
    examples = survey.found["numeric"]
    shown = " and ".join(where.at(*example) for example in examples)
    value = str(examples[0][1])
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
