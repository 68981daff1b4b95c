"""The series-wide monitors of the window rows: collapse, a head gone uniform, regime change.

They are calibrated on the validation windows (:class:`Calibration`): those end just
before the evaluation period and were not trained on, so the model reads them as it
reads the evaluation period. Each flag's threshold is chosen for a stated false-alarm
rate there, so a flag that is on says something.
"""

import math
from dataclasses import dataclass

import polars as pl
import torch

from attnviz import attention as att

FLAGS: tuple[str, ...] = ("collapse", "regime_change", "head_gone_uniform")
"""The monitors' flags: boolean columns of the window rows."""

UNIFORM_CONFIDENCE = 0.05
"""A head is uniform when its row-q confidence is at most this (as in pattern ``uniform``)."""

CUSUM_H_GRID: tuple[float, ...] = (*(0.5 * step for step in range(1, 101)), math.inf)
"""CUSUM thresholds tried, in standard deviations, most sensitive first; infinity never alarms."""


@dataclass(frozen=True)
class Calibration:
    """What the monitors compare with, and their thresholds: fitted on the validation windows.

    The validation windows end just before the evaluation period and were not trained on,
    so the model reads them as it reads the evaluation period; the training windows, which
    it fitted, look otherwise (sharper attention) and would flag most new windows.

    Attributes
    ----------
    seed
        (N,) seed confidence of each validation window: calibrated confidence is a
        percentile among these, and the CUSUM starts from their mean and standard deviation.
    watched
        (L, H) the heads whose going uniform is flagged (``head_gone_uniform``).
    collapse_floor, collapse_run
        A window is in collapse when, for ``collapse_run`` windows in a row, its calibrated
        confidence was below ``collapse_floor`` or a watched head was uniform.
    cusum_k, cusum_h
        The regime-change CUSUM's allowance and threshold (:func:`attention.cusum_changes`).
    """

    seed: torch.Tensor
    watched: torch.Tensor
    collapse_floor: float
    collapse_run: int
    cusum_k: float
    cusum_h: float

    @classmethod
    def fit(
        cls, reference: torch.Tensor, *, false_alarm_rate: float, collapse_run: int, cusum_k: float
    ) -> "Calibration":
        """Fit the monitors to the per-head confidences (N, L, H) of the validation windows.

        The validation windows are taken as a stretch where nothing happened: each flag's
        threshold is the loosest that keeps the flag on in at most ``false_alarm_rate`` of them.

        1. ``watched``: heads are taken from the one uniform in the fewest validation windows
           up, as long as together they were uniform in at most that share. A head uniform
           most of the time (most heads of a model trained on noisy returns) is no news.
        2. ``collapse_floor``: the highest at which collapse, the watched heads included,
           stays within that share.
        3. ``cusum_h``: the lowest of :data:`CUSUM_H_GRID` at which the CUSUM alarms within
           that share. It relearns for 20 windows after an alarm, so it alarms in at most one
           window in 21 whatever ``h``: a rate above 1/21 leaves ``h`` at the grid's first value.

        With fewer than 1 / ``false_alarm_rate`` validation windows (20 at 5%) a flag may be
        on in none of them, and the thresholds are as strict as that demands.
        """
        watched = _rarely_uniform(reference <= UNIFORM_CONFIDENCE, false_alarm_rate)
        seed = reference.mean(dim=(1, 2))
        gone = _any_watched_uniform(reference, watched)
        calibrated = att.calibrate(seed, seed)
        floor = 0.0  # collapse from the watched heads alone, within the rate by step 1
        # Each distinct validation value is a floor that flags one more set of them; a higher
        # floor only adds windows in collapse, so stop at the first that flags too many.
        for candidate in sorted(set(calibrated.tolist())):
            if _share(_collapse(calibrated, gone, candidate, collapse_run)) > false_alarm_rate:
                break
            floor = candidate
        h = next(
            h for h in CUSUM_H_GRID if _share(_alarms(seed, seed, cusum_k, h)) <= false_alarm_rate
        )
        return cls(seed, watched, floor, collapse_run, cusum_k, h)

    def gone_uniform(self, confidence: torch.Tensor) -> torch.Tensor:
        """(B,) whether a watched head is uniform, from per-head confidences (B, L, H)."""
        return _any_watched_uniform(confidence, self.watched)


def with_monitors(window: pl.DataFrame, calibration: Calibration) -> pl.DataFrame:
    """The window rows of a whole series with its calibrated confidence, collapse and regime flags.

    Parameters
    ----------
    window
        Every window row of the series, oldest first, with ``head_gone_uniform`` from
        :meth:`Calibration.gone_uniform`.
    calibration
        The monitors fitted on the series' validation windows.
    """
    seed = torch.tensor(window["seed_confidence"].to_numpy())
    calibrated = att.calibrate(seed, calibration.seed.to(seed.dtype))
    gone = torch.tensor(window["head_gone_uniform"].to_numpy())
    collapse = _collapse(calibrated, gone, calibration.collapse_floor, calibration.collapse_run)
    regime = _alarms(seed, calibration.seed, calibration.cusum_k, calibration.cusum_h)
    return window.with_columns(
        pl.Series("calibrated_confidence", calibrated.numpy()),
        pl.Series("collapse", collapse.numpy()),
        pl.Series("regime_change", regime.numpy()),
    )


def flag_shares(window: pl.DataFrame) -> dict[str, float]:
    """Flag -> the share of the window rows in which it is on, for each of :data:`FLAGS`."""
    return {flag: _share(torch.tensor(window[flag].to_numpy())) for flag in FLAGS}


def _rarely_uniform(uniform: torch.Tensor, rate: float) -> torch.Tensor:
    """(N, L, H) -> (L, H): heads taken rarest first while together uniform in <= ``rate``."""
    flat = uniform.flatten(1)
    rarest_first = flat.float().mean(0).argsort(stable=True)
    # Column j: whether any of the j + 1 rarest heads is uniform; its share only grows with j.
    any_of = flat[:, rarest_first].long().cummax(dim=1).values
    taken = int((any_of.float().mean(0) <= rate).sum())
    watched = torch.zeros(flat.shape[1], dtype=torch.bool)
    watched[rarest_first[:taken]] = True
    return watched.reshape(uniform.shape[1:])


def _any_watched_uniform(confidence: torch.Tensor, watched: torch.Tensor) -> torch.Tensor:
    """(B,) whether any ``watched`` head (L, H) is uniform, from per-head confidences (B, L, H)."""
    return ((confidence <= UNIFORM_CONFIDENCE) & watched).flatten(1).any(1)


def _collapse(calibrated: torch.Tensor, gone: torch.Tensor, floor: float, run: int) -> torch.Tensor:
    """(N,) collapse: for ``run`` windows in a row, calibrated below ``floor`` or ``gone``."""
    return att.sustained((calibrated < floor) | gone, run)


def _alarms(series: torch.Tensor, reference: torch.Tensor, k: float, h: float) -> torch.Tensor:
    """(N,) regime changes of ``series``: the CUSUM from the mean and std of ``reference``."""
    return att.cusum_changes(series, reference.mean().item(), reference.std().item(), k, h)


def _share(flags: torch.Tensor) -> float:
    """The share of ``flags`` that are on."""
    return flags.double().mean().item()
