"""Test metrics of a set of forecasts, and the naive forecast every model must beat."""

import math

import numpy as np
from scipy.stats import rankdata

from attnviz.features import Windows
from attnviz.objective import Forecast


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties share ranks); NaN with one class only."""
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def metrics(forecast: Forecast, windows: Windows) -> dict[str, float]:
    """Test metrics of one set of forecasts against the windows' realised targets.

    Returns
    -------
    dict
        ``return_mse``, ``return_mae``, ``direction_accuracy``, ``direction_f1`` (up is
        the positive class), ``direction_auc`` and ``vol_mse``.
    """
    up = forecast.prob > 0.5
    actual = windows.direction == 1
    true_pos = float((up & actual).sum())
    precision = true_pos / up.sum() if up.any() else 0.0
    recall = true_pos / actual.sum() if actual.any() else 0.0
    return {
        "return_mse": float(np.mean((forecast.ret - windows.next_return) ** 2)),
        "return_mae": float(np.mean(np.abs(forecast.ret - windows.next_return))),
        "direction_accuracy": float(np.mean(up == actual)),
        "direction_f1": 2 * precision * recall / (precision + recall)
        if precision + recall
        else 0.0,
        "direction_auc": auc(windows.direction, forecast.prob),
        "vol_mse": float(np.mean((forecast.vol - windows.future_vol) ** 2)),
    }


def naive_predictions(windows: Windows, up_rate: float) -> Forecast:
    """The naive forecast: zero return, the training up-rate, and the trailing volatility."""
    n = len(windows)
    return Forecast(ret=np.zeros(n), prob=np.full(n, up_rate), vol=windows.trailing_vol)
