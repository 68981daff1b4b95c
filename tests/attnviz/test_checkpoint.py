from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from attnviz.checkpoint import CheckpointError, TrainedModel
from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.train import FitResult, TrainConfig, fit_series

FEATURES = FeatureConfig(seq_len=20, horizon=3)
MODEL = ModelConfig(d_model=16, n_heads=2, n_layers=1, dropout=0.0)


@pytest.fixture(scope="module")
def fit(random_walk) -> FitResult:
    bars = [random_walk(600, seed=4)]
    return fit_series(bars, FEATURES, MODEL, TrainConfig(epochs=1), log=lambda _: None)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, fit: FitResult) -> Path:
    path = tmp_path_factory.mktemp("home") / "models" / "m-v1.pt"
    fit.trained.save(path)
    return path


def test_a_saved_model_loads_back_and_predicts_the_same(fit: FitResult, saved: Path) -> None:
    assert [p.name for p in saved.parent.iterdir()] == ["m-v1.pt"]  # no temporary left behind
    loaded = TrainedModel.load(saved)
    assert loaded.feature_config == FEATURES and loaded.target_scale == fit.trained.target_scale
    np.testing.assert_array_equal(loaded.predict(fit.test).ret, fit.trained.predict(fit.test).ret)
    np.testing.assert_array_equal(loaded.predict(fit.test).prob, fit.trained.predict(fit.test).prob)
    weights = fit.train_config.loss_weights
    same_units = loaded.validation_loss(fit.val, weights, fit.trained.target_scale)
    assert same_units == pytest.approx(fit.transformer.best_val_loss, rel=1e-5)


def test_the_lstm_baseline_is_kept_and_predicts_as_it_did_in_training(
    fit: FitResult, saved: Path
) -> None:
    from attnviz.objective import predict

    loaded = TrainedModel.load(saved)
    forecast = loaded.predict_lstm(fit.test)
    assert forecast is not None and fit.trained.lstm is not None
    x = fit.trained.prepare(fit.test).x
    np.testing.assert_array_equal(
        forecast.prob, predict(fit.trained.lstm, x, loaded.target_scale).prob
    )
    assert not np.array_equal(forecast.prob, loaded.predict(fit.test).prob)  # not the Transformer


def test_a_checkpoint_written_before_the_lstm_was_kept_loads_without_it(
    fit: FitResult, tmp_path: Path
) -> None:
    path = tmp_path / "old-v1.pt"
    replace(fit.trained, lstm=None).save(path)
    old = TrainedModel.load(path)
    assert old.lstm is None and old.predict_lstm(fit.test) is None
    np.testing.assert_array_equal(old.predict(fit.test).prob, fit.trained.predict(fit.test).prob)


def test_a_loss_in_other_target_units_rescales_the_models_outputs(
    fit: FitResult, saved: Path
) -> None:
    """Judged in units twice as large, every error term but the direction's shrinks four-fold."""
    loaded, scale = TrainedModel.load(saved), fit.trained.target_scale
    weights = (1.0, 0.0, 1.0)  # return and volatility only: the squared errors
    own = loaded.validation_loss(fit.val, weights, scale)
    assert loaded.validation_loss(fit.val, weights, 2 * scale) == pytest.approx(own / 4, rel=1e-5)


@pytest.mark.parametrize(
    ("damage", "cause"),
    [
        ("truncated", "not a whole checkpoint: cut short or overwritten"),
        ("garbage", "not a whole checkpoint: cut short or overwritten"),
        ("empty", "not a whole checkpoint: cut short or overwritten"),
        ("missing", "No such file or directory"),
    ],
)
def test_a_checkpoint_that_cannot_be_read_is_named_with_the_cause(
    saved: Path, tmp_path: Path, damage: str, cause: str
) -> None:
    path = tmp_path / "m-v1.pt"
    whole = saved.read_bytes()
    contents = {"truncated": whole[: len(whole) // 2], "garbage": b"not a model\n", "empty": b""}
    if damage in contents:
        path.write_bytes(contents[damage])
    with pytest.raises(CheckpointError) as raised:
        TrainedModel.load(path)
    message = str(raised.value)
    assert message.startswith(f"cannot read checkpoint {path}: ") and cause in message
    assert "\n" not in message  # one line, not torch's paragraph


def test_a_checkpoint_that_cannot_be_written_names_the_folder_and_leaves_nothing(
    saved: Path, tmp_path: Path
) -> None:
    trained = TrainedModel.load(saved)
    (tmp_path / "home").write_text("a file where the models folder should go")
    path = tmp_path / "home" / "models" / "m-v1.pt"
    with pytest.raises(CheckpointError, match=f"cannot write checkpoint {path}: .*: {path.parent}"):
        trained.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["home"]
