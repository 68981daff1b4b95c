"""When a nightly fine-tunes the active version, and what a warm start trains."""

import copy
import json
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from records import model_record

from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.series import Series
from attnviz.train import TrainConfig, fit_series
from attnviz.warm_start import TrainingPlan, plan_training, readable_start

FEATURES = FeatureConfig(seq_len=20, horizon=3)
MODEL = ModelConfig(d_model=16, n_heads=2, n_layers=1)
TRAINING = TrainConfig(epochs=3, batch_size=64, warm_epochs=1, full_retrain_days=7)
SETTINGS = (FEATURES, MODEL, TRAINING)
SERIES = [Series(source="sample", symbol="AAPL", interval="1d")]
FULL_AT = datetime(2024, 1, 1, tzinfo=UTC)
TONIGHT = FULL_AT + timedelta(days=3)


def stored_settings(settings: tuple[FeatureConfig, ModelConfig, TrainConfig]) -> object:
    """The settings as the registry stores them (JSON, tuples as lists)."""
    features, model, training = settings
    return json.loads(
        json.dumps(
            {"features": asdict(features), "model": asdict(model), "training": asdict(training)}
        )
    )


def active(**fields: object) -> object:
    """Version 4, trained with today's settings, its weights from a full training on FULL_AT."""
    return model_record(
        **(
            {"version": 4, "hyperparameters": stored_settings(SETTINGS), "full_trained_at": FULL_AT}
            | fields
        )
    )


def plan(flagged: dict[str, list[str]] | None = None, **changed: object) -> TrainingPlan:
    settings = {"active": active(), "series": SERIES, "settings": SETTINGS, "as_of": TONIGHT}
    settings |= changed
    return plan_training(
        settings["active"], settings["series"], settings["settings"], settings["as_of"],
        flagged or {},
    )  # fmt: skip


def test_an_unchanged_recent_version_is_fine_tuned() -> None:
    warm = plan()
    assert (warm.kind, warm.start.version, warm.full_trained_at) == ("warm", 4, FULL_AT)
    assert warm.reason == "fine-tunes v4 (trained from scratch 3 days before)"


@pytest.mark.parametrize(
    ("changed", "reason"),
    [
        ({"active": None}, "no active version to start from"),
        ({"settings": (FEATURES, MODEL, replace(TRAINING, warm_epochs=0))}, "warm starts are off"),
        ({"settings": (FEATURES, replace(MODEL, d_model=32), TRAINING)}, "settings changed"),
        ({"settings": (replace(FEATURES, horizon=5), MODEL, TRAINING)}, "settings changed"),
        ({"settings": (FEATURES, MODEL, replace(TRAINING, lr=1e-4))}, "settings changed"),
        (
            {"series": [Series(source="sample", symbol="MSFT", interval="1d")]},
            "the series changed since v4",
        ),
        (
            {"as_of": FULL_AT + timedelta(days=7)},
            "from scratch 7 days before (full retrain every 7",
        ),
        ({"active": active(full_trained_at=None)}, "before warm starts were recorded"),
    ],
)
def test_a_full_retrain_comes_when_warm_start_would_be_wrong(
    changed: dict[str, object], reason: str
) -> None:
    full = plan(**changed)
    as_of = changed.get("as_of", TONIGHT)
    assert (full.kind, full.start, full.full_trained_at) == ("full", None, as_of)
    assert reason in full.reason


def test_the_drift_monitors_call_for_a_full_retrain_when_asked_to() -> None:
    assert plan({"sample/AAPL/1d": ["regime_change"]}).kind == "warm"  # off by default
    watching = (FEATURES, MODEL, replace(TRAINING, retrain_on_drift=True))
    so = {"settings": watching, "active": active(hyperparameters=stored_settings(watching))}
    assert plan({"sample/AAPL/1d": []}, **so).kind == "warm"
    full = plan({"sample/AAPL/1d": ["regime_change"]}, **so)
    assert full.kind == "full"
    assert "monitors flag the newest window analysed with v4 (sample/AAPL/1d: regime_change)" in (
        full.reason
    )


def test_a_start_that_cannot_be_read_becomes_a_full_retrain(tmp_path: Path) -> None:
    broken = tmp_path / "v4.pt"
    broken.write_bytes(b"not a checkpoint")
    warm = plan(active=active(checkpoint=broken))
    full = readable_start(warm, TONIGHT)
    assert (full.kind, full.start, full.full_trained_at) == ("full", None, TONIGHT)
    assert full.reason.startswith("v4 cannot be fine-tuned: ") and str(broken) in full.reason
    assert readable_start(plan(active=None), TONIGHT).kind == "full"


@pytest.fixture(scope="module")
def yesterday(random_walk):
    """A model trained from scratch on all but the last 5 bars, and the bars of tonight."""
    bars = random_walk(800, seed=3)
    return fit_series([bars.head(-5)], FEATURES, MODEL, TRAINING, log=lambda _: None), bars


def test_a_warm_start_fine_tunes_the_start_for_warm_epochs(yesterday, tmp_path: Path) -> None:
    before, bars = yesterday
    path = tmp_path / "v4.pt"
    before.trained.save(path)
    assert readable_start(plan(active=active(checkpoint=path)), TONIGHT).kind == "warm"
    start_weights = copy.deepcopy(before.trained.model.state_dict())
    lines: list[str] = []
    warm = fit_series([bars], FEATURES, MODEL, TRAINING, log=lines.append, start=before.trained)
    assert [len(warm.transformer.history), len(warm.lstm.history)] == [1, 1]
    assert "AttentionTransformer epoch 1/1" in lines[0]
    # The start is left untouched; the warm weights are its weights, moved by the epoch:
    # with a learning rate of almost 0 they stay where the start was.
    untouched = before.trained.model.state_dict()
    assert all(torch.equal(value, untouched[name]) for name, value in start_weights.items())
    still = fit_series(
        [bars], FEATURES, MODEL, replace(TRAINING, lr=1e-12), lambda _: None, start=before.trained
    )

    def distance(weights: dict[str, torch.Tensor]) -> float:
        return sum(float((weights[name] - value).norm()) for name, value in start_weights.items())

    assert distance(still.trained.model.state_dict()) < 1e-6
    assert distance(warm.trained.model.state_dict()) > 1e-3
    again = fit_series([bars], FEATURES, MODEL, TRAINING, log=lambda _: None, start=before.trained)
    assert again.transformer.history == warm.transformer.history  # seeded: reproducible


def test_a_warm_start_keeps_its_start_when_no_epoch_beats_it_on_validation(yesterday) -> None:
    """Fine-tuning that only hurts (here a learning rate far too high) is thrown away."""
    before, bars = yesterday
    harmful = replace(TRAINING, lr=5.0, warm_epochs=2)
    warm = fit_series([bars], FEATURES, MODEL, harmful, log=lambda _: None, start=before.trained)
    assert before.trained.lstm is not None and warm.trained.lstm is not None
    for kept, start in (
        (warm.trained.model, before.trained.model),
        (warm.trained.lstm, before.trained.lstm),
    ):
        assert all(
            torch.equal(value, start.state_dict()[name])
            for name, value in kept.state_dict().items()
        )
    assert warm.transformer.best_epoch == warm.lstm.best_epoch == -1
    assert all(
        epoch["val_loss"] > warm.transformer.best_val_loss for epoch in warm.transformer.history
    )


def test_a_warm_start_scales_with_the_new_training_part_only(yesterday) -> None:
    """The scaler and target scale are the new split's, whatever the start was fitted on."""
    before, bars = yesterday
    scratch = fit_series([bars], FEATURES, MODEL, replace(TRAINING, epochs=1), log=lambda _: None)
    warm = fit_series([bars], FEATURES, MODEL, TRAINING, log=lambda _: None, start=before.trained)
    assert np.array_equal(warm.trained.scaler.mean, scratch.trained.scaler.mean)
    assert np.array_equal(warm.trained.scaler.std, scratch.trained.scaler.std)
    assert warm.trained.target_scale == scratch.trained.target_scale
    assert not np.array_equal(warm.trained.scaler.mean, before.trained.scaler.mean)


def test_a_warm_start_refuses_another_architecture(yesterday) -> None:
    before, bars = yesterday
    with pytest.raises(ValueError, match="a warm start needs"):
        fit_series(
            [bars], FEATURES, replace(MODEL, d_model=32), TRAINING, lambda _: None,
            start=before.trained,
        )  # fmt: skip
