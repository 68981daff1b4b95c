from dataclasses import replace

import numpy as np
import polars as pl
import pytest
import torch

from attnviz.analysis import AnalysisConfig, fit_monitors
from attnviz.attention import calibrate
from attnviz.monitors import CUSUM_H_GRID, FLAGS, Calibration, flag_shares, with_monitors


def drifting(rng: np.random.Generator, n: int, level: float) -> torch.Tensor:
    """(n,) confidence around ``level``, autocorrelated as a model's is, never uniform."""
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.9 * noise[i - 1] + rng.normal(0, 0.02)
    return torch.from_numpy(np.clip(level + noise, 0.06, 1)).float()


def heads(sharp: torch.Tensor, *uniform_in: slice) -> torch.Tensor:
    """(n, 1, H) per-head confidences: a head per slice, then a head uniform in every window.

    A slice's head is uniform (confidence 0) in the windows it names, ``sharp`` elsewhere.
    """
    columns = []
    for windows in uniform_in:
        column = sharp.clone()
        column[windows] = 0.0
        columns.append(column)
    return torch.stack([*columns, torch.zeros_like(sharp)], 1)[:, None, :]


def monitored(confidence: torch.Tensor, calibration: Calibration) -> pl.DataFrame:
    """The monitors' columns of windows with per-head confidences (N, L, H)."""
    window = pl.DataFrame(
        {
            "seed_confidence": confidence.mean(dim=(1, 2)).numpy(),
            "head_gone_uniform": calibration.gone_uniform(confidence).numpy(),
        }
    )
    return with_monitors(window, calibration)


def fitted(reference: torch.Tensor, rate: float = 0.05) -> Calibration:
    """The monitors calibrated on ``reference`` with the default run and allowance."""
    return fit_monitors(reference, AnalysisConfig(false_alarm_rate=rate))


@pytest.mark.parametrize(
    ("rate", "watched"),
    [
        (0.01, [True, False, False, False]),
        (0.05, [True, True, False, False]),
        (0.2, [True, True, True, False]),
    ],
)
def test_each_flag_is_on_in_at_most_the_false_alarm_rate_of_the_validation_windows(
    rate: float, watched: list[bool]
) -> None:
    n = 400
    # Heads uniform in no window, 2%, 10% and every window of the validation part.
    validation = heads(
        drifting(np.random.default_rng(1), n, 0.3), slice(0), slice(100, 108), slice(200, 240)
    )
    calibration = fitted(validation, rate)
    assert calibration.watched.flatten().tolist() == watched
    shares = flag_shares(monitored(validation, calibration))
    assert all(share <= rate for share in shares.values()), shares
    # Each threshold is the loosest within the rate: the next looser one flags too often.
    calibrated = calibrate(calibration.seed, calibration.seed)
    higher_floor = calibrated[calibrated > calibration.collapse_floor].min().item()
    looser = replace(calibration, collapse_floor=higher_floor)
    assert flag_shares(monitored(validation, looser))["collapse"] > rate
    assert calibration.collapse_floor > 0
    if calibration.cusum_h > CUSUM_H_GRID[0]:  # at rates above 1/21 the first is within
        lower_h = CUSUM_H_GRID[CUSUM_H_GRID.index(calibration.cusum_h) - 1]
        looser = replace(calibration, cusum_h=lower_h)
        assert flag_shares(monitored(validation, looser))["regime_change"] > rate


def test_a_rare_rate_raises_the_cusum_threshold() -> None:
    validation = heads(drifting(np.random.default_rng(2), 400, 0.3), slice(0))
    strict, lax = fitted(validation, 0.001), fitted(validation, 0.05)
    assert strict.cusum_h > lax.cusum_h == CUSUM_H_GRID[0]  # 1 in 21 windows at most, at 5%
    assert not monitored(validation, strict)["regime_change"].any()


def test_calibrating_on_validation_follows_the_drift_that_training_windows_call_collapse() -> None:
    rng = np.random.default_rng(3)
    # Attention sharper on the training windows than ever since, and a head that never was
    # uniform there goes uniform now and then, as often in the validation as in the test part.
    training = heads(drifting(rng, 1000, 0.5), slice(0))
    validation = heads(drifting(rng, 300, 0.2), slice(50, 140))
    test = heads(drifting(rng, 300, 0.2), slice(120, 210))
    by_training = flag_shares(monitored(test, fitted(training)))
    by_validation = flag_shares(monitored(test, fitted(validation)))
    assert by_training["collapse"] > 0.95 and by_training["head_gone_uniform"] == 0.3
    assert by_validation["collapse"] < 0.15 and by_validation["head_gone_uniform"] == 0
    assert set(by_validation) == set(FLAGS)
