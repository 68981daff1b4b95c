from dataclasses import replace
from datetime import UTC

import numpy as np
import polars as pl
import pytest

from attnviz.analysis import AnalysisConfig
from attnviz.features import FeatureConfig
from attnviz.forecasts import series_forecasts
from attnviz.model import ModelConfig
from attnviz.registry import Ranges
from attnviz.train import TrainConfig, fit_series

FEATURES = FeatureConfig(seq_len=16, horizon=3)


@pytest.fixture(scope="module")
def fitted(random_walk):
    bars = random_walk(500, seed=11)
    fit = fit_series(
        [bars], FEATURES, ModelConfig(d_model=16, n_heads=2, n_layers=1), TrainConfig(epochs=1),
        log=lambda _: None,
    )  # fmt: skip
    ranges: Ranges = {
        part: tuple(moment.astype("datetime64[us]").item().replace(tzinfo=UTC) for moment in ends)
        for part, ends in fit.ranges[0].items()
    }
    return bars, fit, ranges


def test_validation_windows_are_forecast_and_calibrated_on_themselves(fitted) -> None:
    bars, fit, ranges = fitted
    test_ts = pl.DataFrame({"ts": bars["ts"]}).filter(pl.col("ts") >= ranges["test"][0])
    evaluated = test_ts.head(test_ts.height - 10)  # an analysis older than the newest bars
    found = series_forecasts(fit.trained, bars, ranges, evaluated, "test/X/1h", AnalysisConfig())
    validation = found.validation
    assert validation.height == fit.windows["val"]
    assert validation["ts"].min() == ranges["val"][0] and validation["ts"].max() == ranges["val"][1]
    # Calibrated against themselves, the validation windows' percentiles spread over [0, 1].
    calibrated = validation["calibrated_confidence"].to_numpy()
    assert calibrated.min() < 0.05 and calibrated.max() > 0.95
    assert validation["collapse"].mean() <= AnalysisConfig().false_alarm_rate
    np.testing.assert_allclose(
        validation["pred_up_prob"].to_numpy(), fit.trained.predict(fit.val).prob, rtol=1e-6
    )
    assert found.test is evaluated
    assert found.lstm_test is not None and found.lstm_validation is not None
    assert found.lstm_test["ts"].to_list() == evaluated["ts"].to_list()
    assert not np.allclose(found.lstm_validation["pred_up_prob"], validation["pred_up_prob"])
    assert found.bars.columns == ["ts", "open", "close"]


def test_a_checkpoint_without_the_lstm_leaves_its_strategy_out(fitted) -> None:
    bars, fit, ranges = fitted
    evaluated = pl.DataFrame({"ts": bars["ts"]}).filter(pl.col("ts") >= ranges["test"][0])
    old = replace(fit.trained, lstm=None)
    found = series_forecasts(old, bars, ranges, evaluated, "test/X/1h", AnalysisConfig())
    assert found.lstm_validation is None and found.lstm_test is None
