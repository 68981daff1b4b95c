import math

import numpy as np
import pytest

from attnviz.features import Windows
from attnviz.metrics import auc, metrics, naive_predictions
from attnviz.objective import Forecast

WINDOWS = Windows(
    x=np.zeros((4, 1, 8)),
    next_return=np.array([0.01, -0.02, 0.03, -0.01]),
    direction=np.array([1.0, 0.0, 1.0, 0.0]),
    future_vol=np.array([0.01, 0.01, 0.02, 0.02]),
    trailing_vol=np.array([0.02, 0.02, 0.02, 0.02]),
    end_ts=np.arange(4),
)


def test_metrics_against_hand_computed_values() -> None:
    forecast = Forecast(ret=np.zeros(4), prob=np.array([0.9, 0.6, 0.4, 0.1]), vol=np.full(4, 0.01))
    scores = metrics(forecast, WINDOWS)
    assert scores["direction_accuracy"] == 0.5
    assert scores["direction_f1"] == pytest.approx(0.5)
    assert scores["direction_auc"] == pytest.approx(0.75)
    assert scores["return_mae"] == pytest.approx(0.0175)
    assert scores["return_mse"] == pytest.approx((0.0001 + 0.0004 + 0.0009 + 0.0001) / 4)
    assert scores["vol_mse"] == pytest.approx(0.0001 / 2)


def test_the_naive_forecast_calls_the_training_up_rate_and_trailing_volatility() -> None:
    naive = naive_predictions(WINDOWS, up_rate=0.6)
    np.testing.assert_array_equal(naive.prob, np.full(4, 0.6))
    np.testing.assert_array_equal(naive.vol, WINDOWS.trailing_vol)
    scores = metrics(naive, WINDOWS)
    assert scores["direction_accuracy"] == 0.5 and scores["direction_auc"] == 0.5
    assert scores["vol_mse"] == pytest.approx((0.0001 * 2 + 0) / 4)


def test_auc_ranks_ties_together_and_is_nan_with_one_class() -> None:
    assert auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.5, 0.5, 0.9])) == pytest.approx(0.875)
    assert math.isnan(auc(np.ones(3), np.arange(3)))
