import copy
from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch
from pydantic import TypeAdapter, ValidationError

from attnviz.analysis import AnalysisConfig, analyze, reference_confidence
from attnviz.attention import PATTERNS
from attnviz.features import FEATURES, FeatureConfig, make_windows
from attnviz.importance import explained
from attnviz.model import ModelConfig
from attnviz.train import TrainConfig, fit_series

FEATURE_CONFIG = FeatureConfig(seq_len=16, horizon=3)
SETTINGS = AnalysisConfig(batch_size=7, ig_steps=8, explain_every=1)
# Flow and Integrated Gradients on the 5 newest and every 4th older window of the 45.
SAMPLED = replace(SETTINGS, explain_newest=5, explain_every=4)


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
    whole = analyze(trained, test, reference, config=replace(SETTINGS, batch_size=10_000))
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


def explained_ts(rows: pl.DataFrame, method: str) -> list:
    """The windows (ts) that have rows of ``method``."""
    return rows.filter(pl.col("method") == method)["ts"].unique().sort().to_list()


@pytest.mark.parametrize(("flow", "ig_steps"), [(True, 8), (False, 8), (True, 0)])
def test_the_window_rows_say_which_windows_have_flow_and_integrated_gradients(
    setup, flow: bool, ig_steps: int
) -> None:
    trained, test, reference = setup
    config = replace(SAMPLED, flow=flow, ig_steps=ig_steps)
    result = analyze(trained, test, reference, config=config)
    window, t, f = result.window, FEATURE_CONFIG.seq_len, len(FEATURES)
    sample = explained(len(test), config.explain_newest, config.explain_every)
    assert window["has_attention_flow"].to_list() == (sample & flow).tolist()
    assert window["has_integrated_gradients"].to_list() == (sample & bool(ig_steps)).tolist()
    with_flow = window.filter("has_attention_flow")["ts"].to_list()
    with_ig = window.filter("has_integrated_gradients")["ts"].to_list()
    assert window["flow_top_lags"].list.len().to_list() == [
        SETTINGS.top_k if has else 0 for has in window["has_attention_flow"]
    ]
    assert window["attention_ig_spearman"].is_nan().to_list() == [
        not has for has in window["has_integrated_gradients"]
    ]
    assert explained_ts(result.positions, "attention_flow") == with_flow
    assert explained_ts(result.positions, "integrated_gradients") == with_ig
    assert explained_ts(result.attribution, "integrated_gradients") == with_ig
    assert result.positions.height == (len(test) + len(with_flow) + len(with_ig)) * t
    assert result.attribution.height == (2 * len(test) + len(with_ig)) * f
    assert ("integrated_gradients" in result.latest.scores) == bool(ig_steps)


def test_a_sampled_windows_flow_and_integrated_gradients_are_those_of_a_full_run(setup) -> None:
    trained, test, reference = setup
    sampled = analyze(trained, test, reference, config=SAMPLED)
    full = analyze(trained, test, reference, config=SETTINGS)
    keys = {"positions": ["ts", "lag", "method"], "attribution": ["ts", "feature", "method"]}
    for name, key in keys.items():
        some, every = getattr(sampled, name), getattr(full, name)
        both = some.join(every, on=key, how="left", suffix="_full")
        assert both.height == some.height and both["score_full"].null_count() == 0
        # Integrated Gradients runs the model on fewer windows at once: equal up to rounding.
        np.testing.assert_allclose(both["score"], both["score_full"], rtol=0, atol=1e-6)
    picked = sampled.window.filter("has_integrated_gradients")
    assert picked.height < full.window.height
    np.testing.assert_allclose(
        picked["attention_ig_spearman"],
        full.window.join(picked.select("ts"), on="ts")["attention_ig_spearman"],
        rtol=0,
        atol=1e-6,
    )
    columns = ["ts", "flow_top_lags"]
    assert picked.select(columns).equals(full.window.join(picked.select("ts"), on="ts")[columns])


def test_the_sample_stays_put_as_windows_are_appended(setup) -> None:
    trained, test, reference = setup
    shorter = analyze(trained, test.take(np.arange(len(test) - 5)), reference, config=SAMPLED)
    longer = analyze(trained, test, reference, config=SAMPLED)
    older = shorter.window["ts"][-SAMPLED.explain_newest - 1]  # the newest of the older windows
    columns = ["ts", "has_attention_flow", "has_integrated_gradients", "flow_top_lags"]
    before, after = (
        analysis.window.filter(pl.col("ts") <= older).select(columns)
        for analysis in (shorter, longer)
    )
    assert before.equals(after) and before["has_attention_flow"].sum() >= 2
    for name in ("positions", "attribution"):
        before, after = (
            getattr(analysis, name).filter(pl.col("ts") <= older) for analysis in (shorter, longer)
        )
        assert before.equals(after)


def test_the_latest_window_has_integrated_gradients_only_if_explained(setup) -> None:
    trained, test, reference = setup
    unsampled = replace(SETTINGS, explain_newest=0, explain_every=len(test))  # the first only
    scores = analyze(trained, test, reference, config=unsampled).latest.scores
    assert set(scores) == {"attention_rollout", "attention_last_layer"}
    newest = replace(unsampled, explain_newest=1)
    scores = analyze(trained, test, reference, config=newest).latest.scores
    assert set(scores) == {"attention_rollout", "attention_last_layer", "integrated_gradients"}
