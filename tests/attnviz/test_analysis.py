import copy

import numpy as np
import polars as pl
import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from attnviz.analysis import AnalysisConfig, analyze, reference_confidence
from attnviz.attention import PATTERNS
from attnviz.features import FEATURES, FeatureConfig, make_windows
from attnviz.model import ModelConfig
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


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_the_false_alarm_rate_is_a_share_strictly_between_0_and_1(rate: float) -> None:
    assert TypeAdapter(AnalysisConfig).validate_python({"false_alarm_rate": 0.01})
    with pytest.raises(ValidationError, match="false_alarm_rate"):
        TypeAdapter(AnalysisConfig).validate_python({"false_alarm_rate": rate})
