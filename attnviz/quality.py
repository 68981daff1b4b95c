"""Validating one series' batch of bars: which rows load, which are quarantined and why.

Every batch passes the Great Expectations suite of :mod:`attnviz.quality_suite` before
it loads. A row that fails any check is quarantined with the names of every check it
failed, and the rest load.

Some checks need a value GX cannot compute row by row, or one that depends on rows far
away, so polars computes helper columns over the whole batch first (the suite's module
names them); the close step of the first bar is measured against the last close already
in the warehouse, when there is one. With those, every expectation looks at one row at a
time, so a large batch is validated in chunks of :data:`CHUNK_ROWS` rows and GX's working
copies stay small whatever the batch size.

Rows a source already rejected (:attr:`attnviz.sources.base.Received.rejected`)
join the quarantine with the source's reasons, and each reason is reported with
the checks, so ``validation_results`` accounts for every rejected row.
"""

from dataclasses import dataclass
from typing import Annotated

import polars as pl
from pydantic import Field

from attnviz.bars import KEY, RECEIVED_SCHEMA, SCHEMA, BarDataError, grid_offset_seconds
from attnviz.quality_suite import CHECKS, run_suite
from attnviz.sources.base import REJECTED, Received

# A close more than 3x, or less than a third, of the previous one is flagged.
# Not 2x: AAPL really fell 52% on 2000-09-29 (in the sample data), while an
# unadjusted 2:1 split looks the same; 3x still catches 3:1+ splits and typos.
DEFAULT_MAX_STEP = 3.0
# A run fails (after loading the good bars) when a series' rejected share is above this.
DEFAULT_MAX_REJECTED_SHARE = 0.05

# The limits as flow parameter types, so that the Prefect UI refuses a value out of range.
MaxStep = Annotated[float, Field(gt=1)]
MaxRejectedShare = Annotated[float, Field(ge=0, le=1)]

# Rows GX validates at once: bounds its pandas copy and result lists (~100 MB), while a
# chunk stays large enough that GX's fixed cost per validation (~0.1 s) does not matter.
CHUNK_ROWS = 200_000

# One row per check in Validation.checks.
CHECK_SCHEMA = {"check": pl.String, "success": pl.Boolean, "unexpected_count": pl.Int64}


@dataclass(frozen=True)
class Validation:
    """The outcome of validating one batch.

    Attributes
    ----------
    good
        Rows that passed every check, in :data:`attnviz.bars.SCHEMA`.
    rejected
        Rows that failed, as received (:data:`attnviz.bars.RECEIVED_SCHEMA`) plus
        ``failed``: the names of the checks each failed.
    checks
        One row per check: ``check``, ``success``, ``unexpected_count``.
    not_closed
        Rows the source read that had not closed by the as-of (neither loaded nor rejected).
    """

    good: pl.DataFrame
    rejected: pl.DataFrame
    checks: pl.DataFrame
    not_closed: int = 0

    @property
    def received(self) -> int:
        """Every row the source read: ``loaded + rejected + not_closed``."""
        return self.good.height + self.rejected.height + self.not_closed


def validate_bars(
    received: pl.DataFrame,
    interval: str,
    previous_close: float | None = None,
    max_step: float = DEFAULT_MAX_STEP,
) -> Validation:
    """Run the bar suite on one series' received bars and split them into good and rejected.

    Parameters
    ----------
    received
        Bars of a single (source, symbol, interval) in :data:`RECEIVED_SCHEMA`, in arrival order.
    interval
        The series' interval, for the grid check.
    previous_close
        Close of the last bar already stored before this batch, for the step check of its first bar.
    max_step
        Largest allowed ratio between consecutive closes, either way (must be > 1).

    Returns
    -------
    Validation
        Good rows, rejected rows with the checks they failed, and per-check results.

    Raises
    ------
    BarDataError
        If the frame lacks a column or has one of the wrong type.
    """
    if max_step <= 1:
        raise BarDataError(f"max_step must be > 1, got {max_step}")
    _check_columns(received)
    received = received.select(list(RECEIVED_SCHEMA))
    counts = dict.fromkeys(CHECKS, 0)
    if received.is_empty():
        return Validation(pl.DataFrame(schema=SCHEMA), _with_failed(received, []), _checks(counts))

    ts = pl.col("ts")
    previous = pl.col("close").shift(1, fill_value=previous_close)
    frame = (
        received.with_row_index("_row")
        .with_columns(
            grid_offset_seconds(ts, interval).alias("_grid_offset_s"),
            (pl.col("close") / previous).log().abs().alias("_close_step"),
            (pl.col("high") / pl.col("low")).log().alias("_range_step"),
            (ts - ts.forward_fill().shift(1)).dt.total_seconds().alias("_ts_gap_s"),
            # GX counts NaN as missing, and turnover may be missing: make a NaN fail the bound.
            pl.col("turnover").fill_nan(float("inf")),
        )
        .pipe(_with_key_count)
    )
    failed: dict[int, list[str]] = {}
    for chunk in frame.drop("raw").iter_slices(CHUNK_ROWS):
        for check, rows in run_suite(chunk, max_step).items():
            counts[check] += len(rows)
            for row in rows:
                failed.setdefault(row, []).append(check)

    # Select before filtering: a filter copies every column it keeps, and raw is the largest.
    is_bad = pl.col("_row").is_in(list(failed))
    bad = frame.filter(is_bad)
    return Validation(
        good=frame.select("_row", *SCHEMA).filter(~is_bad).drop("_row"),
        rejected=_with_failed(bad, [failed[row] for row in bad["_row"]]),
        checks=_checks(counts),
    )


def validate_received(
    received: Received,
    interval: str,
    previous_close: float | None = None,
    max_step: float = DEFAULT_MAX_STEP,
) -> Validation:
    """Validate what a source read: its bars through the suite, its own rejections added.

    Parameters are those of :func:`validate_bars`; ``received`` is a source's
    :class:`~attnviz.sources.base.Received`. Each reason the source gave becomes a
    failed check in ``checks``, counted like the suite's own.
    """
    validation = validate_bars(received.bars, interval, previous_close, max_step)
    reasons = (
        received.rejected.select(pl.col("failed").explode().alias("check"))
        .group_by("check", maintain_order=True)
        .agg(pl.lit(False).alias("success"), pl.len().cast(pl.Int64).alias("unexpected_count"))
    )
    return Validation(
        good=validation.good,
        rejected=pl.concat(
            [received.rejected.select(validation.rejected.columns), validation.rejected]
        ),
        checks=pl.concat([validation.checks, reasons]),
        not_closed=received.not_closed,
    )


def _with_key_count(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``_key_count``, how often each row's key occurs (null where ts is unreadable).

    Hashing every key of a large batch costs more memory than the batch's numbers, so
    only the rows whose ts repeats (found by sorting one column) are counted by their
    whole key; every other row's key is unique.
    """
    ordered = frame["ts"].drop_nulls().sort()
    repeated = ordered.filter(ordered == ordered.shift(1)).unique()
    counts = frame.filter(pl.col("ts").is_in(repeated.implode())).select(
        "_row", pl.len().over(KEY).cast(pl.Int64).alias("_key_count")
    )
    unique = pl.when(pl.col("ts").is_not_null()).then(pl.lit(1, pl.Int64)).alias("_key_count")
    return frame.with_columns(unique).update(counts, on="_row")


def _checks(counts: dict[str, int]) -> pl.DataFrame:
    """One row per check: its name, whether no row failed it, and how many did."""
    return pl.DataFrame(
        {
            "check": list(counts),
            "success": [count == 0 for count in counts.values()],
            "unexpected_count": list(counts.values()),
        },
        schema=CHECK_SCHEMA,
    )


def _check_columns(received: pl.DataFrame) -> None:
    """Sources deliver typed frames; a frame of other types is a programming error, said plainly."""
    missing = [name for name in RECEIVED_SCHEMA if name not in received.columns]
    if missing:
        raise BarDataError(f"received bars lack column(s) {missing}")
    for name, dtype in RECEIVED_SCHEMA.items():
        if received.schema[name] != dtype:
            raise BarDataError(
                f"received bars: column {name!r} is {received.schema[name]}, expected {dtype}"
            )


def _with_failed(frame: pl.DataFrame, failed: list[list[str]]) -> pl.DataFrame:
    """``frame``'s received columns, and ``failed``: the checks each row failed."""
    return frame.select(list(RECEIVED_SCHEMA)).with_columns(
        pl.Series("failed", failed, dtype=REJECTED["failed"])
    )
