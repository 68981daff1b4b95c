import math

import numpy as np
import polars as pl
import pytest

from attnviz.strategy import (
    CHAPTER_RULES,
    DEFAULT_PERCENTILES,
    HOLD,
    LONG,
    SHORT,
    UNFILTERED,
    Rule,
    choose,
    filtered_rules,
    gate_open,
    select_on_validation,
    signals,
)

NAN = float("nan")


def windows(
    up_prob: list[float],
    predicted: list[float],
    calibrated: list[float] | None = None,
    seed: list[float] | None = None,
    collapse: list[bool | None] | None = None,
) -> pl.DataFrame:
    """attention_window-shaped rows; the gates default to wide open (confidence 1, no collapse)."""
    n = len(up_prob)
    return pl.DataFrame(
        {
            "pred_up_prob": up_prob,
            "pred_return": predicted,
            "calibrated_confidence": calibrated or [1.0] * n,
            "seed_confidence": seed or [1.0] * n,
            "collapse": collapse or [False] * n,
        },
        schema_overrides={"collapse": pl.Boolean},
    )


def test_direction_comes_from_probability_and_return_together() -> None:
    frame = windows(
        [0.7, 0.3, 0.7, 0.3, 0.5, 0.7, 0.3],
        [0.01, -0.01, -0.01, 0.01, 0.01, 0.0, 0.0],
    )
    # long, short, up-prob says up but return says down (hold), the reverse (hold), up-prob
    # exactly at 0.5 (hold: strictly above), return exactly 0 either way (hold: strictly beyond).
    assert signals(frame, UNFILTERED).tolist() == [LONG, SHORT, HOLD, HOLD, HOLD, HOLD, HOLD]
    assert signals(frame, UNFILTERED).dtype == np.int8


def test_min_return_and_probability_bands_hold_the_middle() -> None:
    rule = Rule("banded", up=0.6, down=0.4, min_return=0.001)
    frame = windows(
        [0.61, 0.59, 0.39, 0.41, 0.61, 0.39, 0.61],
        [0.002, 0.002, -0.002, -0.002, 0.001, -0.001, 0.0005],
    )
    # long; prob inside the band; short; prob inside the band; return not beyond 0.001 (x3).
    assert signals(frame, rule).tolist() == [LONG, HOLD, SHORT, HOLD, HOLD, HOLD, HOLD]


def test_the_gate_holds_below_the_threshold_and_trades_at_it() -> None:
    frame = windows([0.7, 0.7, 0.3, 0.3], [0.01] * 2 + [-0.01] * 2, calibrated=[0.69, 0.7] * 2)
    (p70,) = filtered_rules([70])
    assert signals(frame, p70).tolist() == [HOLD, LONG, HOLD, SHORT]
    # The calibrated gate does not look at the seed confidence, nor the seed gate at calibrated.
    seed_gate = Rule("seed", confidence="seed", threshold=0.5)
    low_seed = frame.with_columns(seed_confidence=0.4)
    assert signals(low_seed, p70).tolist() == [HOLD, LONG, HOLD, SHORT]
    assert signals(low_seed, seed_gate).tolist() == [HOLD] * 4


def test_the_gate_is_reported_whatever_the_direction() -> None:
    frame = windows([0.5, 0.7, 0.3], [0.0, 0.01, -0.01], calibrated=[0.9, 0.2, NAN])
    (p70,) = filtered_rules([70])
    assert gate_open(frame, p70).tolist() == [True, False, False]  # open even on a HOLD
    assert gate_open(frame, UNFILTERED).tolist() == [True, True, True]


def test_collapse_holds_only_when_the_rule_skips_it() -> None:
    frame = windows([0.7, 0.3, 0.7], [0.01, -0.01, 0.01], collapse=[True, True, False])
    skipping = Rule("skip", skip_collapse=True)
    assert signals(frame, UNFILTERED).tolist() == [LONG, SHORT, LONG]
    assert signals(frame, skipping).tolist() == [HOLD, HOLD, LONG]


@pytest.mark.parametrize(
    "column", ["pred_up_prob", "pred_return", "calibrated_confidence", "collapse"]
)
@pytest.mark.parametrize("missing", [NAN, None])
def test_a_nan_or_null_input_holds(column: str, missing: float | None) -> None:
    frame = windows([0.7, 0.3], [0.01, -0.01])
    gapped = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(missing).otherwise(pl.col(column)).alias(column)
    )
    rule = Rule("gated", confidence="calibrated", threshold=0.0, skip_collapse=True)
    assert signals(frame, rule).tolist() == [LONG, SHORT]
    assert signals(gapped, rule).tolist() == [HOLD, SHORT]


def test_a_nan_in_a_column_the_rule_does_not_read_changes_nothing() -> None:
    frame = windows([0.7, 0.3], [0.01, -0.01], seed=[NAN, NAN], collapse=[None, None])
    assert signals(frame, UNFILTERED).tolist() == [LONG, SHORT]


def test_missing_columns_are_named() -> None:
    frame = windows([0.7], [0.01]).drop("calibrated_confidence", "pred_return")
    with pytest.raises(ValueError, match=r"pred_return.*calibrated_confidence"):
        signals(frame, filtered_rules([50])[0])
    # A rule that reads neither confidence nor collapse does not need them.
    bare = windows([0.7], [0.01]).drop("calibrated_confidence", "seed_confidence", "collapse")
    assert signals(bare, UNFILTERED).tolist() == [LONG]


def test_no_windows_give_no_signals() -> None:
    assert signals(windows([], []), CHAPTER_RULES[0]).shape == (0,)


def test_the_chapter_rules_keep_the_chapter_numbers() -> None:
    assert [rule.name for rule in CHAPTER_RULES] == [
        "chapter_seed_0.3",
        "chapter_seed_0.5",
        "chapter_seed_0.7",
    ]
    for rule, threshold in zip(CHAPTER_RULES, (0.3, 0.5, 0.7), strict=True):
        assert (rule.up, rule.down, rule.min_return) == (0.6, 0.4, 0.001)
        assert (rule.confidence, rule.threshold, rule.skip_collapse) == ("seed", threshold, False)


def test_the_chapter_rule_gates_on_raw_seed_confidence() -> None:
    frame = windows(
        [0.65, 0.65, 0.35, 0.55],
        [0.002, 0.002, -0.002, 0.002],
        calibrated=[0.99] * 4,  # the calibrated percentile is high; the chapter never reads it
        seed=[0.29, 0.3, 0.5, 0.9],
    )
    low, middle, high = CHAPTER_RULES
    assert signals(frame, low).tolist() == [HOLD, LONG, SHORT, HOLD]  # 0.55 is inside the band
    assert signals(frame, middle).tolist() == [HOLD, HOLD, SHORT, HOLD]
    assert signals(frame, high).tolist() == [HOLD, HOLD, HOLD, HOLD]


def test_filtered_rules_turn_percentiles_into_calibrated_thresholds() -> None:
    rules = filtered_rules([50, 72.5])
    assert [rule.name for rule in rules] == ["filtered_p50", "filtered_p72.5"]
    assert [rule.threshold for rule in rules] == [0.5, 0.725]
    assert all(
        (rule.up, rule.down, rule.min_return, rule.confidence, rule.skip_collapse)
        == (0.5, 0.5, 0.0, "calibrated", False)
        for rule in rules
    )
    (skipping,) = filtered_rules([70], skip_collapse=True)
    assert (skipping.name, skipping.skip_collapse) == ("filtered_p70_skip_collapse", True)
    with pytest.raises(ValueError, match="101"):
        filtered_rules([50, 101])


def test_the_default_grid_and_the_unfiltered_rule() -> None:
    names = [rule.name for rule in filtered_rules(DEFAULT_PERCENTILES)]
    assert names == ["filtered_p50", "filtered_p60", "filtered_p70", "filtered_p80", "filtered_p90"]
    assert (UNFILTERED.confidence, UNFILTERED.up, UNFILTERED.min_return) == (None, 0.5, 0.0)


def test_rules_refuse_settings_that_make_no_sense() -> None:
    with pytest.raises(ValueError, match="min_return"):
        Rule("both ways", min_return=-0.01)
    with pytest.raises(ValueError, match="confidence column"):
        Rule("gate without a column", threshold=0.5)


GRID = filtered_rules([50, 70, 90])


def test_choose_takes_the_best_score() -> None:
    scores = {"filtered_p50": 0.1, "filtered_p70": 0.8, "filtered_p90": 0.3}
    assert choose(GRID, lambda rule: scores[rule.name]).name == "filtered_p70"


def test_choose_breaks_ties_by_the_lower_threshold() -> None:
    scores = {"filtered_p50": 0.2, "filtered_p70": 0.5, "filtered_p90": 0.5}
    assert choose(GRID[::-1], lambda rule: scores[rule.name]).name == "filtered_p70"
    # Equal score and threshold: the first listed wins.
    twins = [Rule("first"), Rule("second")]
    assert choose(twins, lambda _: 1.0).name == "first"


def test_choose_skips_rules_without_a_finite_score() -> None:
    scores = {"filtered_p50": NAN, "filtered_p70": -0.4, "filtered_p90": math.inf}
    assert choose(GRID, lambda rule: scores[rule.name]).name == "filtered_p70"
    with pytest.raises(ValueError, match="no rule has a finite score"):
        choose(GRID, lambda _: NAN)


def trading_windows(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return windows(
        rng.uniform(0, 1, n).tolist(),
        rng.normal(0, 0.01, n).tolist(),
        calibrated=rng.uniform(0, 1, n).tolist(),
    ).with_columns(next_return=pl.Series(rng.normal(0, 0.01, n)))


def hit_rate(frame: pl.DataFrame, rule: Rule) -> float:
    """A score a caller might use: the share of trades that went the right way (NaN if none)."""
    signal = signals(frame, rule)
    traded = signal != HOLD
    right = np.sign(frame["next_return"].to_numpy()[traded]) == signal[traded]
    return float(right.mean()) if traded.any() else NAN


def test_the_choice_sees_only_the_validation_windows() -> None:
    validation = trading_windows(200, seed=1)
    rules = [UNFILTERED, *filtered_rules(DEFAULT_PERCENTILES), *CHAPTER_RULES]
    seen: list[pl.DataFrame] = []

    def evaluate(frame: pl.DataFrame, rule: Rule) -> float:
        seen.append(frame)
        return hit_rate(frame, rule)

    chosen = select_on_validation(validation, rules, evaluate)
    assert seen and all(frame is validation for frame in seen)
    # The choice does depend on the windows it is given: a period where every trade was
    # wrong picks another rule (so the choice is no constant). The whole pipeline's choice
    # never moving with the test windows is tested on compare (test_comparison.py).
    wrong = trading_windows(500, seed=3).with_columns(next_return=-pl.col("pred_return"))
    assert select_on_validation(wrong, rules, evaluate) != chosen
