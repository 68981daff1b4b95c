"""The registry's rules: promotion, judging the active version, and the row a version gets."""

import math
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.registry import (
    Comparison,
    ModelRecord,
    ModelRow,
    compare_with_active,
    new_version,
    promotion,
)
from attnviz.series import Series
from attnviz.train import FitResult, TrainConfig, fit_series
from attnviz.warm_start import TrainingPlan

FEATURES = FeatureConfig(seq_len=20, horizon=3)
MODEL = ModelConfig(d_model=16, n_heads=2, n_layers=1, dropout=0.0)
SHORT = Series(source="test", symbol="AAA", interval="1h")
LONG = Series(source="test", symbol="BBB", interval="1h")
FIRST_BAR = datetime(2020, 1, 1, tzinfo=UTC)  # where every random walk starts, hourly


@pytest.mark.parametrize(
    ("val_loss", "active", "status", "reason"),
    [
        (1.0, None, "active", "no comparable active model"),
        (1.04, 1.0, "active", "within 5%"),
        (1.06, 1.0, "rejected", "worse than the active model's 1.0000 by more than 5%"),
        (math.nan, None, "rejected", "validation loss is nan"),
        (math.inf, 1.0, "rejected", "validation loss is inf"),
        (0.5, math.nan, "active", "the active model's validation loss is nan"),
    ],
)
def test_promotion_rule(val_loss: float, active: float | None, status: str, reason: str) -> None:
    decided, why = promotion(val_loss, active, margin=0.05)
    assert decided == status and reason in why


def test_an_active_model_that_cannot_be_read_is_replaced_but_never_by_a_nan_model() -> None:
    problem = "v1: cannot read checkpoint /m/x-v1.pt: RuntimeError: bad zip"
    status, why = promotion(1.0, None, margin=0.05, active_unreadable=problem)
    assert status == "active" and why.endswith(problem)
    assert promotion(math.nan, None, margin=0.05, active_unreadable=problem) == (
        "rejected",
        "validation loss is nan",
    )


AS_OF = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def fit(random_walk) -> FitResult:
    """One model on two pooled series of different lengths: their splits differ."""
    bars = [random_walk(500, seed=5), random_walk(700, seed=6)]
    return fit_series(bars, FEATURES, MODEL, TrainConfig(epochs=1), log=lambda _: None)


def version_of(fit: FitResult, comparison: Comparison, models: Path, version: int = 2) -> ModelRow:
    return new_version(
        fit,
        TrainingPlan.full("no active version to start from", AS_OF),
        comparison,
        0.05,
        name="test/pool/1h",
        version=version,
        series=[SHORT, LONG],
        run_id="run-2",
        models=models,
    )


def test_a_version_records_each_series_own_ranges_and_their_span(
    fit: FitResult, tmp_path: Path
) -> None:
    row = version_of(fit, Comparison(), tmp_path / "models")
    assert row.series == ["test/AAA/1h", "test/BBB/1h"] and row.interval == "1h"
    short, long = row.series_ranges["test/AAA/1h"], row.series_ranges["test/BBB/1h"]
    # The last window of a series ends `horizon` bars before its last bar, whose target it is.
    assert short["test"][1] == FIRST_BAR + timedelta(hours=500 - 1 - FEATURES.horizon)
    assert long["test"][1] == FIRST_BAR + timedelta(hours=700 - 1 - FEATURES.horizon)
    assert short["train"][0] == long["train"][0]  # the walks start together
    assert short["test"][0] < long["test"][0]  # each series is split on its own
    # The span of each part: the earliest start and the latest end over the series.
    assert row.ranges == {
        part: (min(short[part][0], long[part][0]), max(short[part][1], long[part][1]))
        for part in ("train", "val", "test")
    }
    assert row.ranges["test"] == (short["test"][0], long["test"][1])
    every_moment = [
        m for ranges in (short, long, row.ranges) for span in ranges.values() for m in span
    ]
    assert all(moment.utcoffset() == timedelta(0) for moment in every_moment)


def test_a_first_version_is_active_with_its_metrics_configs_and_checkpoint(
    fit: FitResult, tmp_path: Path
) -> None:
    row = version_of(fit, Comparison(), tmp_path / "models", version=1)
    assert (row.status, row.status_reason) == ("active", "no comparable active model")
    assert row.checkpoint == (tmp_path / "models" / "test_pool_1h-v1.pt").resolve()
    assert list(row.metrics) == ["transformer", "lstm", "naive"]
    assert row.metrics["transformer"] == fit.metrics["transformer"]
    assert row.val_loss == fit.transformer.best_val_loss and row.previous_val_loss is None
    assert row.windows == fit.windows
    assert row.hyperparameters == {
        "model": asdict(MODEL),
        "features": asdict(FEATURES),
        "training": asdict(TrainConfig(epochs=1)),
        "epochs_run": 1,
        "best_epoch": 0,
        "train_seconds": round(fit.transformer.seconds, 2),
    }


def active_record(row: ModelRow) -> ModelRecord:
    """``row`` as the registry would hold it while it is the active version."""
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    return ModelRecord(
        **vars(row), created_at=moment, active_from=moment, active_until=None, retired_by=None
    )


def test_an_active_model_with_the_same_features_is_judged_on_the_new_windows(
    fit: FitResult, tmp_path: Path
) -> None:
    active = active_record(version_of(fit, Comparison(), tmp_path, version=1))
    fit.trained.save(active.checkpoint)  # the active model is the new one's twin
    comparison = compare_with_active(fit, active)
    assert comparison.unreadable is None
    assert comparison.val_loss == pytest.approx(fit.transformer.best_val_loss, rel=1e-5)
    assert comparison.metrics == pytest.approx(fit.metrics["transformer"])

    row = version_of(fit, comparison, tmp_path)
    assert row.status == "active" and "within 5% of the active model's" in row.status_reason
    assert row.previous_val_loss == comparison.val_loss
    assert row.metrics["previous_active"] == comparison.metrics
    better = replace(comparison, val_loss=fit.transformer.best_val_loss / 2)
    assert version_of(fit, better, tmp_path).status == "rejected"


def test_an_active_model_with_other_features_is_not_compared(
    fit: FitResult, tmp_path: Path
) -> None:
    active = active_record(version_of(fit, Comparison(), tmp_path, version=1))
    other = replace(fit.trained, feature_config=replace(FEATURES, horizon=5))
    other.save(active.checkpoint)
    assert compare_with_active(fit, active) == Comparison()


def test_an_active_model_that_cannot_be_read_is_named_and_replaced(
    fit: FitResult, tmp_path: Path
) -> None:
    active = active_record(version_of(fit, Comparison(), tmp_path, version=1))
    active.checkpoint.write_bytes(b"not a model\n")
    comparison = compare_with_active(fit, active)
    problem = (
        f"v1: cannot read checkpoint {active.checkpoint}: "
        "ValueError: not a whole checkpoint: cut short or overwritten"
    )
    assert comparison == Comparison(unreadable=problem)
    row = version_of(fit, comparison, tmp_path)
    assert row.status == "active"
    assert row.status_reason == f"the active model cannot be judged and is replaced: {problem}"
    assert "previous_active" not in row.metrics and row.previous_val_loss is None


def test_without_an_active_model_there_is_nothing_to_compare(fit: FitResult) -> None:
    assert compare_with_active(fit, None) == Comparison()
