"""The Great Expectations suite that every batch of bars passes before it loads.

The suite is defined here in code, on an ephemeral GX context (no GX files on
disk). It runs on one series at a time. Each expectation carries a short check
name (``meta["check"]``); a row that fails any check is quarantined with the
names of every check it failed, and the rest load.

Some checks need a value GX cannot compute row by row, or one that depends on
rows far away, so polars computes a helper column over the whole batch first:
``_grid_offset_s`` (seconds past the interval grid), ``_close_step``
(|ln(close / previous close)|; the first bar is compared with the last close
already in the warehouse, when there is one), ``_range_step`` (ln(high / low)),
``_key_count`` (how often the row's key occurs in the batch) and ``_ts_gap_s``
(seconds since the previous readable ts). With those, every expectation looks at
one row at a time, so a large batch is validated in chunks of :data:`CHUNK_ROWS`
rows and GX's working copies stay small whatever the batch size.

Magnitudes: a price must be finite and at most :data:`MAX_PRICE`, a volume finite
and at most :data:`MAX_VOLUME`; within a series, a bar's high may be at most
``max_step`` times its low. So ``Infinity``, ``1e309`` and a stray ``1e308`` are
quarantined even in a series' very first batch, where there is no earlier close
to compare with.

Rows a source already rejected (:attr:`attnviz.sources.base.Received.rejected`)
join the quarantine with the source's reasons, and each reason is reported with
the checks, so ``validation_results`` accounts for every rejected row.
"""

import math
import threading
from dataclasses import dataclass
from functools import cache
from typing import Annotated

import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl
from great_expectations.data_context.types.base import ProgressBarsConfig
from pydantic import Field

from attnviz.bars import (
    KEY,
    PRICES,
    RECEIVED_SCHEMA,
    SCHEMA,
    SYMBOL_PATTERN,
    VALUES,
    BarDataError,
    grid_offset_seconds,
)
from attnviz.sources.base import Received

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
# No traded instrument is quoted above a billion units of its currency, nor trades
# more than 1e18 units in one bar; past these a value is a unit or parsing error.
MAX_PRICE = 1e9
MAX_VOLUME = 1e18
MAX_TURNOVER = MAX_PRICE * MAX_VOLUME

CHECKS: dict[str, str] = {
    **{f"{c}_not_null": f"{c} is present and readable" for c in ("ts", *VALUES)},
    **{f"{c}_positive": f"{c} > 0" for c in PRICES},
    **{f"{c}_within_bound": f"{c} finite and <= {MAX_PRICE:g}" for c in PRICES},
    "volume_non_negative": "volume >= 0",
    "volume_within_bound": f"volume finite and <= {MAX_VOLUME:g}",
    "turnover_within_bound": f"turnover, where reported, a number in [0, {MAX_TURNOVER:g}]",
    "low_le_open": "low <= open",
    "low_le_close": "low <= close",
    "high_ge_open": "high >= open",
    "high_ge_close": "high >= close",
    "symbol_well_formed": "symbol matches the ticker pattern",
    "key_unique": "(source, symbol, interval, ts) occurs once",
    "ts_increasing": "ts is later than the previous row's ts",
    "ts_on_grid": "ts is aligned to the interval grid",
    "close_step_within_limit": "close within max_step x of the previous close",
    "range_within_limit": "high at most max_step x low",
}

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


def _expectations() -> list[gxe.Expectation]:
    def named(expectation: gxe.Expectation, check: str) -> gxe.Expectation:
        expectation.meta = {"check": check}
        return expectation

    return [
        *(
            named(gxe.ExpectColumnValuesToNotBeNull(column=c), f"{c}_not_null")
            for c in ("ts", *VALUES)
        ),
        *(
            named(
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, strict_min=True),
                f"{c}_positive",
            )
            for c in PRICES
        ),
        *(
            named(
                gxe.ExpectColumnValuesToBeBetween(column=c, max_value=MAX_PRICE),
                f"{c}_within_bound",
            )
            for c in PRICES
        ),
        named(
            gxe.ExpectColumnValuesToBeBetween(column="volume", min_value=0), "volume_non_negative"
        ),
        named(
            gxe.ExpectColumnValuesToBeBetween(column="volume", max_value=MAX_VOLUME),
            "volume_within_bound",
        ),
        named(
            gxe.ExpectColumnValuesToBeBetween(
                column="turnover", min_value=0, max_value=MAX_TURNOVER
            ),
            "turnover_within_bound",
        ),
        *(
            named(
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True),
                check,
            )
            for a, b, check in [
                ("open", "low", "low_le_open"),
                ("close", "low", "low_le_close"),
                ("high", "open", "high_ge_open"),
                ("high", "close", "high_ge_close"),
            ]
        ),
        named(
            gxe.ExpectColumnValuesToMatchRegex(column="symbol", regex=SYMBOL_PATTERN),
            "symbol_well_formed",
        ),
        named(gxe.ExpectColumnValuesToBeBetween(column="_key_count", max_value=1), "key_unique"),
        named(
            gxe.ExpectColumnValuesToBeBetween(column="_ts_gap_s", min_value=0, strict_min=True),
            "ts_increasing",
        ),
        named(
            gxe.ExpectColumnValuesToBeBetween(column="_grid_offset_s", min_value=0, max_value=0),
            "ts_on_grid",
        ),
        named(
            gxe.ExpectColumnValuesToBeBetween(
                column="_close_step", max_value={"$PARAMETER": "max_log_step"}
            ),
            "close_step_within_limit",
        ),
        named(
            gxe.ExpectColumnValuesToBeBetween(
                column="_range_step", max_value={"$PARAMETER": "max_log_step"}
            ),
            "range_within_limit",
        ),
    ]


@cache
def _batch_definition_and_suite() -> tuple[
    gx.core.batch_definition.BatchDefinition, gx.ExpectationSuite
]:
    """One ephemeral context per process: creating it costs about a second."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("bars").add_dataframe_asset("bars")
    suite = context.suites.add(gx.ExpectationSuite(name="bars", expectations=_expectations()))
    return asset.add_batch_definition_whole_dataframe("batch"), suite


# The GX context is shared by the threads Prefect runs tasks in; validate one batch at a time.
_lock = threading.Lock()


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
    if received.is_empty():
        checks = pl.DataFrame(
            {"check": list(CHECKS), "success": True, "unexpected_count": 0}, schema=CHECK_SCHEMA
        )
        return Validation(pl.DataFrame(schema=SCHEMA), _with_failed(received, []), checks)

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
    counts = dict.fromkeys(CHECKS, 0)
    for chunk in frame.drop("raw").iter_slices(CHUNK_ROWS):
        for check, rows in _run_suite(chunk, max_step).items():
            counts[check] += len(rows)
            for row in rows:
                failed.setdefault(row, []).append(check)

    # Select before filtering: a filter copies every column it keeps, and raw is the largest.
    is_bad = pl.col("_row").is_in(list(failed))
    bad = frame.filter(is_bad)
    return Validation(
        good=frame.select("_row", *SCHEMA).filter(~is_bad).drop("_row"),
        rejected=_with_failed(bad, [failed[row] for row in bad["_row"]]),
        checks=pl.DataFrame(
            {
                "check": list(counts),
                "success": [n == 0 for n in counts.values()],
                "unexpected_count": list(counts.values()),
            },
            schema=CHECK_SCHEMA,
        ),
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


def _run_suite(chunk: pl.DataFrame, max_step: float) -> dict[str, list[int]]:
    """Run the GX suite on one chunk; returns, per check, the ``_row`` of every failing row."""
    with _lock:
        batch_definition, suite = _batch_definition_and_suite()
        batch = batch_definition.get_batch(batch_parameters={"dataframe": chunk.to_pandas()})
        result = batch.validate(
            suite,
            expectation_parameters={"max_log_step": math.log(max_step)},
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["_row"]},
        )
    failing: dict[str, list[int]] = {}
    for outcome in result.results:
        check = outcome.expectation_config.meta["check"]
        if outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"check {check} could not run: {outcome.exception_info.get('exception_message')}"
            )
        indexes = outcome.result.get("unexpected_index_list") or []
        failing[check] = [int(index["_row"]) for index in indexes]
    return failing


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
    return frame.select(list(RECEIVED_SCHEMA)).with_columns(
        pl.Series("failed", failed, dtype=pl.List(pl.String))
    )
