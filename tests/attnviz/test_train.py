import copy
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pytest
import torch

from attnviz.features import FeatureConfig
from attnviz.model import AttentionTransformer, ModelConfig, Predictions
from attnviz.objective import Prepared, multitask_loss
from attnviz.train import TrainConfig, TrainingDiverged, fit_series, split_series, train_model

FEATURES = FeatureConfig(seq_len=20, horizon=3)
MODEL = ModelConfig(d_model=16, n_heads=2, n_layers=1, dropout=0.0)
TRAIN = TrainConfig(epochs=6, batch_size=64, lr=3e-3, patience=3)


def chance_bound(n: int) -> float:
    """Half-width of a 4-sigma band around 50% accuracy on n windows.

    On a random walk each test window's direction is a fair coin independent of
    everything the window contains, so the number of correct calls is
    Binomial(n, 1/2) whatever the model does: sd = 0.5 / sqrt(n). Four sd leaves a
    false alarm chance of about 6e-5.
    """
    return 4 * 0.5 / math.sqrt(n)


def test_random_walk_direction_accuracy_is_indistinguishable_from_chance(random_walk) -> None:
    fit = fit_series([random_walk(3000, seed=1)], FEATURES, MODEL, TRAIN, log=lambda _: None)
    n_test = fit.windows["test"]
    assert n_test > 300
    assert abs(fit.metrics["transformer"]["direction_accuracy"] - 0.5) < chance_bound(n_test)
    assert abs(fit.metrics["lstm"]["direction_accuracy"] - 0.5) < chance_bound(n_test)


def test_the_random_walk_test_catches_a_one_bar_leak(
    monkeypatch: pytest.MonkeyPatch, random_walk
) -> None:
    """Leak r(t+1) into the inputs, as the chapter's code did, and the bound is blown."""
    import attnviz.features as features

    honest = features.compute_features

    def leaky(bars: pl.DataFrame, config: FeatureConfig) -> pl.DataFrame:
        return honest(bars, config).with_columns(pl.col("log_return").shift(-1).fill_null(0.0))

    monkeypatch.setattr(features, "compute_features", leaky)
    fit = fit_series([random_walk(3000, seed=1)], FEATURES, MODEL, TRAIN, log=lambda _: None)
    assert fit.metrics["transformer"]["direction_accuracy"] - 0.5 > chance_bound(
        fit.windows["test"]
    )


def test_training_is_deterministic_and_records_its_progress(random_walk) -> None:
    bars = [random_walk(600, seed=2)]
    config = TrainConfig(epochs=2, batch_size=32)
    lines: list[str] = []
    first = fit_series(bars, FEATURES, MODEL, config, log=lines.append)
    second = fit_series(bars, FEATURES, MODEL, config, log=lambda _: None)
    for name, tensor in first.trained.model.state_dict().items():
        torch.testing.assert_close(tensor, second.trained.model.state_dict()[name], rtol=0, atol=0)
    assert first.metrics == second.metrics
    assert lines[0].startswith("AttentionTransformer epoch 1/2: train ")
    assert len(first.transformer.history) == 2 and math.isfinite(first.transformer.best_val_loss)


def test_fits_in_concurrent_threads_equal_fits_one_at_a_time(random_walk) -> None:
    """Each fit draws its shuffles and dropout masks from its own generator, not the global one."""
    series = [[random_walk(500, seed=seed)] for seed in (3, 4)]
    with_dropout = ModelConfig(d_model=16, n_heads=2, n_layers=2, dropout=0.2)
    config = TrainConfig(epochs=3, batch_size=32)

    def fit(bars: list[pl.DataFrame]) -> dict[str, torch.Tensor]:
        fitted = fit_series(bars, FEATURES, with_dropout, config, log=lambda _: None).trained
        assert fitted.lstm is not None
        return fitted.model.state_dict() | {
            f"lstm.{key}": value for key, value in fitted.lstm.state_dict().items()
        }

    one_at_a_time = [fit(bars) for bars in series]
    with ThreadPoolExecutor(2) as threads:
        concurrent = list(threads.map(fit, series))
    for alone, together in zip(one_at_a_time, concurrent, strict=True):
        for name, tensor in alone.items():
            torch.testing.assert_close(together[name], tensor, rtol=0, atol=0)


def test_early_stopping_keeps_the_best_epoch(random_walk) -> None:
    fit = fit_series(
        [random_walk(800, seed=3)],
        FEATURES,
        MODEL,
        TrainConfig(epochs=40, patience=2, lr=1e-2),
        log=lambda _: None,
    )
    history = fit.transformer.history
    assert fit.transformer.stopped_early and len(history) < 40
    assert fit.transformer.best_val_loss == min(h["val_loss"] for h in history)
    assert len(history) - 1 - fit.transformer.best_epoch == 2


def random_data(n: int, seed: int) -> Prepared:
    """``n`` windows of noise shaped like the quick model's inputs."""
    generator = torch.Generator().manual_seed(seed)
    return Prepared(
        x=torch.randn(n, FEATURES.seq_len, 8, generator=generator),
        ret=torch.randn(n, generator=generator),
        direction=(torch.rand(n, generator=generator) > 0.5).float(),
        vol=torch.rand(n, generator=generator),
    )


def test_the_loss_weighs_each_task_by_its_weight() -> None:
    data = random_data(64, seed=3)
    zeros = torch.zeros(64, dtype=data.ret.dtype)
    total, parts = multitask_loss(
        Predictions(ret=zeros, direction_logit=zeros, vol=zeros), data, (2.0, 0.5, 3.0)
    )
    assert parts["return"] == pytest.approx(float((data.ret**2).mean()))
    assert parts["direction"] == pytest.approx(math.log(2))  # a logit of 0 says 1/2 to any label
    assert parts["vol"] == pytest.approx(float((data.vol**2).mean()))
    assert total.item() == pytest.approx(
        2 * parts["return"] + 0.5 * parts["direction"] + 3 * parts["vol"]
    )


@pytest.mark.parametrize("part", ["train", "val"])
def test_a_loss_that_is_nan_from_the_start_fails_naming_the_model(part: str) -> None:
    data = {"train": random_data(256, seed=1), "val": random_data(64, seed=2)}
    data[part].ret[5] = math.nan  # one bad target poisons its batch's loss
    model = AttentionTransformer(MODEL)
    with pytest.raises(TrainingDiverged) as raised:
        train_model(model, data["train"], data["val"], TRAIN, log=lambda _: None, name="a/B/1d")
    message = str(raised.value)
    assert message.startswith("a/B/1d: AttentionTransformer training diverged: ")
    loss = {"train": "training loss nan at batch", "val": "validation loss nan"}[part]
    assert loss in message and message.endswith(
        "in epoch 1, before any epoch ended with a finite validation loss, so there are no "
        "weights to keep (check the bars for extreme values, or lower the learning rate)"
    )


def test_a_fit_that_diverges_fails_naming_the_model(random_walk) -> None:
    exploding = TrainConfig(epochs=2, lr=1e6, grad_clip=1e30, weight_decay=0.0)
    with pytest.raises(TrainingDiverged, match=r"^x/Y/1d: AttentionTransformer training diverged"):
        fit_series([random_walk(600, seed=1)], FEATURES, MODEL, exploding, lambda _: None, "x/Y/1d")


def test_a_loss_that_turns_nan_stops_training_and_keeps_the_best_weights() -> None:
    train, val = random_data(256, seed=1), random_data(64, seed=2)
    model = AttentionTransformer(MODEL)
    after_first: list[dict[str, torch.Tensor]] = []
    lines: list[str] = []

    def poison_after_the_first_epoch(line: str) -> None:
        lines.append(line)
        if not after_first:
            after_first.append(copy.deepcopy(model.state_dict()))
            train.x[:] = math.inf  # every later forward pass gives NaN

    result = train_model(model, train, val, TRAIN, log=poison_after_the_first_epoch)
    assert result.stopped_early and len(result.history) == 1 and result.best_epoch == 0
    assert result.diverged == "training loss nan at batch 1 in epoch 2"
    assert math.isfinite(result.best_val_loss)
    assert "keeping the weights of epoch 1" in lines[-1]
    for name, tensor in model.state_dict().items():
        assert torch.isfinite(tensor).all()
        torch.testing.assert_close(tensor, after_first[0][name], rtol=0, atol=0)


def test_pooled_series_are_split_each_on_its_own_then_joined(random_walk) -> None:
    one, two = random_walk(500, seed=5), random_walk(700, seed=6)
    pooled, ranges = split_series([one, two], FEATURES)
    alone = [split_series([bars], FEATURES)[0] for bars in (one, two)]
    assert ranges == [split_series([bars], FEATURES)[1][0] for bars in (one, two)]
    assert ranges[0]["test"] != ranges[1]["test"]  # each series keeps its own split
    for part in ("train", "val", "test"):
        assert len(pooled[part]) == sum(len(a[part]) for a in alone)
        np.testing.assert_array_equal(pooled[part].x, np.concatenate([a[part].x for a in alone]))
