"""The Great Expectations suite for bars: one expectation per named check.

The suite is defined here in code, on an ephemeral GX context (no GX files on disk).
Each expectation carries a short check name (``meta["check"]``, described in
:data:`CHECKS`), and every one of them looks at one row at a time: what depends on
other rows (the previous close, repeated keys, the order of ``ts``) comes in helper
columns that :mod:`attnviz.quality` computes over the whole batch first:
``_grid_offset_s`` (seconds past the interval grid), ``_close_step`` (|ln(close /
previous close)|), ``_range_step`` (ln(high / low)), ``_key_count`` (how often the
row's key occurs in the batch) and ``_ts_gap_s`` (seconds since the previous readable
ts). The largest step allowed is a parameter of each run, ``max_log_step``.

Magnitudes: a price must be finite and at most :data:`MAX_PRICE`, a volume finite
and at most :data:`MAX_VOLUME`; within a series, a bar's high may be at most
``max_step`` times its low. So ``Infinity``, ``1e309`` and a stray ``1e308`` are
quarantined even in a series' very first batch, where there is no earlier close
to compare with.
"""

import math
import threading
from functools import cache

import great_expectations as gx
import polars as pl
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.expectations.core.expect_column_pair_values_a_to_be_greater_than_b import (
    ExpectColumnPairValuesAToBeGreaterThanB,
)
from great_expectations.expectations.core.expect_column_values_to_be_between import (
    ExpectColumnValuesToBeBetween,
)
from great_expectations.expectations.core.expect_column_values_to_match_regex import (
    ExpectColumnValuesToMatchRegex,
)
from great_expectations.expectations.core.expect_column_values_to_not_be_null import (
    ExpectColumnValuesToNotBeNull,
)
from great_expectations.expectations.expectation import Expectation

from attnviz.bars import PRICES, SYMBOL_PATTERN, VALUES

# No traded instrument is quoted above a billion units of its currency, nor trades
# more than 1e18 units in one bar; past these a value is a unit or parsing error.
MAX_PRICE = 1e9
MAX_VOLUME = 1e18
MAX_TURNOVER = MAX_PRICE * MAX_VOLUME
# The step limit, filled in by each run from its max_step.
MAX_LOG_STEP = {"$PARAMETER": "max_log_step"}
# A bound of a check: a number, a run's parameter, or none.
Bound = float | dict[str, str] | None

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

# The GX context is shared by the threads Prefect runs tasks in; validate one batch at a time.
_lock = threading.Lock()


def run_suite(chunk: pl.DataFrame, max_step: float) -> dict[str, list[int]]:
    """Run the suite on rows with their helper columns and ``_row``, their index.

    Parameters
    ----------
    chunk
        Received bars (without ``raw``) plus the helper columns and ``_row``.
    max_step
        Largest allowed ratio between consecutive closes, and between high and low.

    Returns
    -------
    dict
        Per check, the ``_row`` of every row that failed it.

    Raises
    ------
    RuntimeError
        If GX could not run a check.
    """
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
        config = outcome.expectation_config
        assert config is not None and config.meta  # every result names its expectation's check
        check = str(config.meta["check"])
        if outcome.exception_info.get("raised_exception"):
            raise RuntimeError(
                f"check {check} could not run: {outcome.exception_info.get('exception_message')}"
            )
        indexes = outcome.result.get("unexpected_index_list") or []
        failing[check] = [int(index["_row"]) for index in indexes]
    return failing


@cache
def _batch_definition_and_suite() -> tuple[BatchDefinition[None], gx.ExpectationSuite]:
    """One ephemeral context per process: creating it costs about a second."""
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("bars").add_dataframe_asset("bars")
    suite = context.suites.add(gx.ExpectationSuite(name="bars", expectations=_expectations()))
    return asset.add_batch_definition_whole_dataframe("batch"), suite


def _expectations() -> list[Expectation]:
    """The suite's expectations, in the order of :data:`CHECKS`."""
    pairs = [
        ("open", "low", "low_le_open"),
        ("close", "low", "low_le_close"),
        ("high", "open", "high_ge_open"),
        ("high", "close", "high_ge_close"),
    ]
    return [
        *(
            _named(f"{c}_not_null", ExpectColumnValuesToNotBeNull(column=c))
            for c in ("ts", *VALUES)
        ),
        *(_between(f"{c}_positive", c, low=0, above_low=True) for c in PRICES),
        *(_between(f"{c}_within_bound", c, high=MAX_PRICE) for c in PRICES),
        _between("volume_non_negative", "volume", low=0),
        _between("volume_within_bound", "volume", high=MAX_VOLUME),
        _between("turnover_within_bound", "turnover", low=0, high=MAX_TURNOVER),
        *(
            _named(
                check,
                ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True),
            )
            for a, b, check in pairs
        ),
        _named(
            "symbol_well_formed",
            ExpectColumnValuesToMatchRegex(column="symbol", regex=SYMBOL_PATTERN),
        ),
        _between("key_unique", "_key_count", high=1),
        _between("ts_increasing", "_ts_gap_s", low=0, above_low=True),
        _between("ts_on_grid", "_grid_offset_s", low=0, high=0),
        _between("close_step_within_limit", "_close_step", high=MAX_LOG_STEP),
        _between("range_within_limit", "_range_step", high=MAX_LOG_STEP),
    ]


def _named(check: str, expectation: Expectation) -> Expectation:
    """``expectation``, carrying its check's name."""
    expectation.meta = {"check": check}
    return expectation


def _between(
    check: str, column: str, low: Bound = None, high: Bound = None, *, above_low: bool = False
) -> Expectation:
    """The check that ``column``'s values lie in ``[low, high]`` (``(low, high]``: above_low)."""
    expectation = ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high, strict_min=above_low
    )
    return _named(check, expectation)
