"""The train tasks' own logic: the training cache key and the models summary."""

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from records import model_record

from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.train import TrainConfig
from attnviz.warm_start import TrainingPlan
from tasks.train import _summary, _train_cache_key

FEATURES = FeatureConfig(seq_len=20, horizon=3)
MODEL = ModelConfig(d_model=16, n_heads=2, n_layers=1)
TRAINING = TrainConfig(epochs=2, batch_size=128)
AS_OF = datetime(2024, 1, 1, tzinfo=UTC)
FULL = TrainingPlan.full("no active version to start from", AS_OF)


def key(bars: list[pl.DataFrame], **changed: Any) -> str:
    """The train task's cache key for ``bars`` and the configs above, some ``changed``."""
    inputs = {
        "name": "sample/AAPL/1d",
        "bars": bars,
        "features": FEATURES,
        "model": MODEL,
        "training": TRAINING,
        "plan": FULL,
    }
    return _train_cache_key(None, inputs | changed)  # the key reads only the inputs


def test_the_same_bars_and_configs_give_the_same_key(random_walk) -> None:
    bars = random_walk(300, seed=1)
    assert key([bars]) == key([bars.clone()]) == key([random_walk(300, seed=1)])
    assert key([bars]).startswith("train-")


def test_other_bars_give_another_key(random_walk) -> None:
    bars = random_walk(300, seed=1)
    revised = bars.with_columns(  # one close revised
        pl.when(pl.int_range(pl.len()) == 150).then(101.0).otherwise(pl.col("close")).alias("close")
    )
    one_more = random_walk(301, seed=1)
    other_series = random_walk(300, seed=2)
    keys = {key([bars]), key([revised]), key([one_more]), key([other_series]), key([bars, bars])}
    assert len(keys) == 5


@pytest.mark.parametrize(
    "changed",
    [
        {"features": replace(FEATURES, horizon=5)},
        {"model": replace(MODEL, d_model=32)},
        {"training": replace(TRAINING, lr=1e-4)},
        {"training": replace(TRAINING, seed=1)},
        {"name": "sample/MSFT/1d"},
        {"plan": TrainingPlan.full("another day", AS_OF.replace(day=2))},
    ],
)
def test_any_config_change_gives_another_key(random_walk, changed: dict[str, Any]) -> None:
    bars = random_walk(300, seed=1)
    assert key([bars], **changed) != key([bars])


def test_a_warm_start_is_keyed_by_the_bytes_it_starts_from(random_walk, tmp_path: Path) -> None:
    bars = random_walk(300, seed=1)
    checkpoint = tmp_path / "v1.pt"
    checkpoint.write_bytes(b"weights of v1")
    warm = TrainingPlan("warm", "fine-tunes v1", model_record(checkpoint=checkpoint), AS_OF)
    before = key([bars], plan=warm)
    assert before != key([bars])
    assert key([bars], plan=warm) == before
    checkpoint.write_bytes(b"other weights")  # the same version, rewritten: not the same start
    assert key([bars], plan=warm) != before


def test_the_summary_shows_each_version_against_its_baselines() -> None:
    scores = {
        "direction_accuracy": 0.5123,
        "direction_auc": 0.49,
        "direction_f1": 0.6,
        "return_mse": 1.23456e-4,
        "vol_mse": 2e-5,
        "return_mae": 0.01,
    }
    model = model_record(
        version=2,
        metrics={"transformer": scores, "naive": scores | {"direction_auc": 0.5}},
        previous_val_loss=0.9,
        status="rejected",
        status_reason="worse than the active model",
        active_from=None,
        training="warm",
        warm_from=1,
        training_reason="fine-tunes v1 (trained from scratch 2 days before)",
    )
    assert _summary([model]).splitlines() == [
        "### sample/AAPL/1d v2: rejected",
        "",
        "worse than the active model. Trained warm: fine-tunes v1 (trained from scratch 2 days "
        "before).",
        "",
        "| model | direction_accuracy | direction_auc | direction_f1 | return_mse | vol_mse |",
        "|---|---:|---:|---:|---:|---:|",
        "| transformer | 0.5123 | 0.49 | 0.6 | 0.0001235 | 2e-05 |",
        "| naive | 0.5123 | 0.5 | 0.6 | 0.0001235 | 2e-05 |",
    ]
