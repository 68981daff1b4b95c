import copy
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from attnviz.analysis import AnalysisConfig, analyze, reference_confidence
from attnviz.attention import PATTERNS, calibrate
from attnviz.features import FEATURES, FeatureConfig, make_windows
from attnviz.model import ModelConfig
from attnviz.monitors import (
    CUSUM_H_GRID,
    FLAGS,
    Calibration,
    flag_shares,
    with_monitors,
)
from attnviz.train import TrainConfig, fit_series

FEATURE_CONFIG = FeatureConfig(seq_len=16, horizon=3)
SETTINGS = AnalysisConfig(batch_size=7, ig_steps=8)


@pytest.fixture(scope="module")
def setup(random_walk):
    bars = random_walk(400, seed=7)
    fit = fit_series(
        [bars],
        FEATURE_CONFIG,
        ModelConfig(d_model=16, n_heads=2, n_layers=3, dropout=0.0),
        TrainConfig(epochs=1),
        log=lambda _: None,
    )
    windows = make_windows(bars, FEATURE_CONFIG)
    reference = reference_confidence(fit.trained, windows.take(np.arange(200)))
    return fit.trained, fit.test, reference


def test_every_window_gets_every_row(setup) -> None:
    trained, test, reference = setup
    result = analyze(trained, test, reference, config=SETTINGS)
    n, t, f = len(test), FEATURE_CONFIG.seq_len, len(FEATURES)
    assert result.window.height == n
    assert result.timestep.height == n * 3 * (2 + 1)  # layers x (heads + head mean)
    assert set(result.timestep["head"]) == {-1, 0, 1}
    assert result.attribution.height == n * f * 3
    assert result.positions.height == n * t * 3
    assert result.heads.height == 3 * 2
    assert set(result.timestep["pattern"]) <= set(PATTERNS)
    sums = result.attribution.group_by("ts", "method").agg(pl.col("score").sum())["score"]
    np.testing.assert_allclose(sums.to_numpy(), 1, atol=1e-5)
    rollout = (
        result.positions.filter(pl.col("method") == "attention_rollout")
        .group_by("ts")
        .agg(pl.col("score").sum())
    )
    np.testing.assert_allclose(rollout["score"].to_numpy(), 1, atol=1e-5)
    flow = result.positions.filter(pl.col("method") == "attention_flow")["score"]
    assert flow.min() >= 0 and flow.max() <= 1 + 1e-6
    window = result.window
    assert window["calibrated_confidence"].is_between(0, 1).all()
    assert window["ts"].to_list() == sorted(window["ts"].to_list())
    assert window["jsd_prev_window"].is_nan().to_list() == [True] + [False] * (n - 1)
    assert all(len(lags) == SETTINGS.top_k for lags in window["rollout_top_lags"])
    assert result.latest.attention.shape == (3, 2, t, t)


def test_batching_does_not_change_any_number(setup) -> None:
    trained, test, reference = setup
    small = analyze(trained, test, reference, config=SETTINGS)
    whole = analyze(trained, test, reference, config=AnalysisConfig(batch_size=10_000, ig_steps=8))
    keys = {
        "timestep": ["ts", "layer", "head"],
        "window": ["ts"],
        "attribution": ["ts", "feature", "method"],
        "positions": ["ts", "lag", "method"],
        "heads": ["layer", "head"],
    }
    for name, key in keys.items():
        left, right = getattr(small, name).sort(key), getattr(whole, name).sort(key)
        assert left.columns == right.columns
        for column in left.columns:
            if left[column].dtype.is_float():
                np.testing.assert_allclose(
                    left[column].to_numpy(), right[column].to_numpy(), atol=1e-5, rtol=1e-4
                )
            else:
                assert left[column].to_list() == right[column].to_list(), (name, column)


def test_a_windows_analytics_use_only_that_window(setup) -> None:
    trained, test, reference = setup
    full = analyze(trained, test, reference, config=SETTINGS)
    later = analyze(trained, test.take(np.arange(10, len(test))), reference, config=SETTINGS)
    cut = full.window["ts"][10]
    keys = {
        "timestep": ["ts", "layer", "head"],
        "attribution": ["ts", "feature", "method"],
        "positions": ["ts", "lag", "method"],
    }
    for name, key in keys.items():
        left = getattr(full, name).filter(pl.col("ts") >= cut).sort(key)
        right = getattr(later, name).sort(key)
        value = "score" if "score" in left.columns else "entropy"
        np.testing.assert_allclose(left[value].to_numpy(), right[value].to_numpy(), atol=1e-5)
    # So do the per-window columns; only the comparison with the window before needs that window.
    left = full.window.filter(pl.col("ts") >= cut)
    for column in [
        "seed_confidence",
        "attention_ig_spearman",
        "pred_return",
        "pred_up_prob",
        "pred_vol",
    ]:
        np.testing.assert_allclose(
            left[column].to_numpy(), later.window[column].to_numpy(), atol=1e-5
        )
    np.testing.assert_allclose(
        left["jsd_prev_window"].to_numpy()[1:],
        later.window["jsd_prev_window"].to_numpy()[1:],
        atol=1e-6,
    )


def test_previous_model_gives_cross_retrain_stability(setup) -> None:
    trained, test, reference = setup
    alone = analyze(trained, test, reference, config=SETTINGS)
    against_itself = analyze(trained, test, reference, previous=trained, config=SETTINGS)
    assert alone.window["jsd_prev_model"].is_nan().all()
    np.testing.assert_allclose(against_itself.window["jsd_prev_model"].to_numpy(), 0, atol=1e-6)
    retrained = copy.deepcopy(trained)
    with torch.no_grad():  # sharper queries: the same bars, attended otherwise
        for layer in retrained.model.layers:
            layer.attn.qkv.weight[: layer.attn.proj.in_features] *= 4
    moved = analyze(trained, test, reference, previous=retrained, config=SETTINGS).window
    assert (moved["jsd_prev_model"] > 1e-4).all()
    # Only that column compares with the previous model.
    assert moved.drop("jsd_prev_model").equals(alone.window.drop("jsd_prev_model"))


def test_nothing_to_analyse_is_a_clear_error(setup) -> None:
    trained, test, reference = setup
    with pytest.raises(ValueError, match="no windows"):
        analyze(trained, test.take(np.arange(0)), reference)


def test_collapse_needs_a_head_to_go_uniform_not_to_stay_uniform(setup) -> None:
    trained, test, _ = setup
    blind = copy.deepcopy(trained)
    with torch.no_grad():  # zero queries and keys: every head attends uniformly
        for layer in blind.model.layers:
            width = layer.attn.proj.in_features
            layer.attn.qkv.weight[: 2 * width] = 0
            layer.attn.qkv.bias[: 2 * width] = 0
    shape = (50, 3, 2)
    was_sharp = analyze(blind, test, torch.full(shape, 0.5), config=SETTINGS).window
    always_uniform = analyze(blind, test, torch.zeros(shape), config=SETTINGS).window
    assert was_sharp["head_gone_uniform"].all()
    assert was_sharp["collapse"].to_list() == [False] * (SETTINGS.collapse_run - 1) + [True] * (
        len(test) - SETTINGS.collapse_run + 1
    )
    assert not always_uniform["head_gone_uniform"].any() and not always_uniform["collapse"].any()


def drifting(rng: np.random.Generator, n: int, level: float) -> torch.Tensor:
    """(n,) confidence around ``level``, autocorrelated as a model's is, never uniform."""
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.9 * noise[i - 1] + rng.normal(0, 0.02)
    return torch.from_numpy(np.clip(level + noise, 0.06, 1)).float()


def heads(sharp: torch.Tensor, *uniform_in: slice) -> torch.Tensor:
    """(n, 1, H) per-head confidences: a head per slice, then a head uniform in every window.

    A slice's head is uniform (confidence 0) in the windows it names, ``sharp`` elsewhere.
    """
    columns = []
    for windows in uniform_in:
        column = sharp.clone()
        column[windows] = 0.0
        columns.append(column)
    return torch.stack([*columns, torch.zeros_like(sharp)], 1)[:, None, :]


def monitored(confidence: torch.Tensor, calibration: Calibration) -> pl.DataFrame:
    """The monitors' columns of windows with per-head confidences (N, L, H)."""
    window = pl.DataFrame(
        {
            "seed_confidence": confidence.mean(dim=(1, 2)).numpy(),
            "head_gone_uniform": calibration.gone_uniform(confidence).numpy(),
        }
    )
    return with_monitors(window, calibration)


def fitted(reference: torch.Tensor, rate: float = 0.05) -> Calibration:
    """The monitors calibrated on ``reference`` with the default run and allowance."""
    return Calibration.fit(
        reference,
        false_alarm_rate=rate,
        collapse_run=SETTINGS.collapse_run,
        cusum_k=SETTINGS.cusum_k,
    )


@pytest.mark.parametrize(
    ("rate", "watched"),
    [
        (0.01, [True, False, False, False]),
        (0.05, [True, True, False, False]),
        (0.2, [True, True, True, False]),
    ],
)
def test_each_flag_is_on_in_at_most_the_false_alarm_rate_of_the_validation_windows(
    rate: float, watched: list[bool]
) -> None:
    n = 400
    # Heads uniform in no window, 2%, 10% and every window of the validation part.
    validation = heads(
        drifting(np.random.default_rng(1), n, 0.3), slice(0), slice(100, 108), slice(200, 240)
    )
    calibration = fitted(validation, rate)
    assert calibration.watched.flatten().tolist() == watched
    shares = flag_shares(monitored(validation, calibration))
    assert all(share <= rate for share in shares.values()), shares
    # Each threshold is the loosest within the rate: the next looser one flags too often.
    calibrated = calibrate(calibration.seed, calibration.seed)
    higher_floor = calibrated[calibrated > calibration.collapse_floor].min().item()
    looser = replace(calibration, collapse_floor=higher_floor)
    assert flag_shares(monitored(validation, looser))["collapse"] > rate
    assert calibration.collapse_floor > 0
    if calibration.cusum_h > CUSUM_H_GRID[0]:  # at rates above 1/21 the first is within
        lower_h = CUSUM_H_GRID[CUSUM_H_GRID.index(calibration.cusum_h) - 1]
        looser = replace(calibration, cusum_h=lower_h)
        assert flag_shares(monitored(validation, looser))["regime_change"] > rate


def test_a_rare_rate_raises_the_cusum_threshold() -> None:
    validation = heads(drifting(np.random.default_rng(2), 400, 0.3), slice(0))
    strict, lax = fitted(validation, 0.001), fitted(validation, 0.05)
    assert strict.cusum_h > lax.cusum_h == CUSUM_H_GRID[0]  # 1 in 21 windows at most, at 5%
    assert not monitored(validation, strict)["regime_change"].any()


def test_calibrating_on_validation_follows_the_drift_that_training_windows_call_collapse() -> None:
    rng = np.random.default_rng(3)
    # Attention sharper on the training windows than ever since, and a head that never was
    # uniform there goes uniform now and then, as often in the validation as in the test part.
    training = heads(drifting(rng, 1000, 0.5), slice(0))
    validation = heads(drifting(rng, 300, 0.2), slice(50, 140))
    test = heads(drifting(rng, 300, 0.2), slice(120, 210))
    by_training = flag_shares(monitored(test, fitted(training)))
    by_validation = flag_shares(monitored(test, fitted(validation)))
    assert by_training["collapse"] > 0.95 and by_training["head_gone_uniform"] == 0.3
    assert by_validation["collapse"] < 0.15 and by_validation["head_gone_uniform"] == 0
    assert set(by_validation) == set(FLAGS)


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_the_false_alarm_rate_is_a_share_strictly_between_0_and_1(rate: float) -> None:
    assert TypeAdapter(AnalysisConfig).validate_python({"false_alarm_rate": 0.01})
    with pytest.raises(ValidationError, match="false_alarm_rate"):
        TypeAdapter(AnalysisConfig).validate_python({"false_alarm_rate": rate})
