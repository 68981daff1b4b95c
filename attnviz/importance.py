"""Which bars and which features a batch of predictions rests on, by each method.

Positions (bars of the window) are scored by attention rollout, exact attention flow
(optional) and Integrated Gradients (optional); features by attention (rollout and the
last layer) and Integrated Gradients. Where both are computed, the Spearman correlation
of the rollout and the Integrated-Gradients feature scores says how far the two views
agree.

Flow and Integrated Gradients cost far more than the rest of the analysis (about 10-15 ms
a window each, against well under 1 ms), so they are computed only for the windows they
are asked for: :func:`explained` says which windows of an evaluation period those are.
"""

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from attnviz import attention as att
from attnviz.attribution import attention_attribution, integrated_gradients, normalise
from attnviz.maxflow import attention_flow


def explained(count: int, newest: int, every: int) -> np.ndarray:
    """Which of ``count`` consecutive windows, oldest first, get flow and Integrated Gradients.

    The ``newest`` windows, and of the older ones those whose position (0 for the oldest)
    is a multiple of ``every``. The positions count from the first window, so when new
    windows are appended at the end the older windows keep their place in the sample.

    Parameters
    ----------
    count
        How many windows.
    newest
        How many of the newest windows are always explained.
    every
        Spacing of the sample of the older windows; 1 explains every window.

    Returns
    -------
    np.ndarray
        (count,) booleans.
    """
    position = np.arange(count)
    picked: np.ndarray = (position >= count - newest) | (position % every == 0)
    return picked


@dataclass(frozen=True)
class Importance:
    """Scores of one batch of windows by method, each row normalised to sum to 1.

    Every method has a row for every window. Flow and Integrated Gradients score only the
    windows they are asked for (none when switched off); the rows of the other windows
    are NaN, and :meth:`has` tells them apart.

    Attributes
    ----------
    positions
        Method -> (B, T) importance of each bar of the window.
    features
        Method -> (B, F) importance of each feature.
    agreement
        (B,) Spearman correlation of the rollout and Integrated-Gradients feature
        scores; NaN for the windows without Integrated Gradients.
    """

    positions: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor]
    agreement: torch.Tensor

    def has(self, method: str) -> torch.Tensor:
        """(B,) whether each window's positions were scored by ``method``."""
        return ~self.positions[method].isnan().any(-1)

    def features_of(self, window: int) -> dict[str, torch.Tensor]:
        """Method -> (F,) feature scores of one window, by the methods that scored it."""
        return {
            method: scores[window]
            for method, scores in self.features.items()
            if not scores[window].isnan().any()
        }


def importance(
    model: nn.Module,
    x: torch.Tensor,
    mean: torch.Tensor,
    mixed: torch.Tensor,
    explain: torch.Tensor,
    flow: bool,
    ig_steps: int,
) -> Importance:
    """Position and feature importance of a batch by each method, and their agreement.

    Parameters
    ----------
    model
        The model whose predictions are explained (Integrated Gradients runs it again).
    x
        (B, T, F) scaled windows.
    mean
        (B, L, T, T) head-averaged attention.
    mixed
        (B, L, T, T) head-averaged attention mixed with the residual
        (:func:`attention.mixed_attention`).
    explain
        (B,) booleans: the windows that get flow and Integrated Gradients.
    flow
        Compute exact attention flow.
    ig_steps
        Integrated Gradients path steps; 0 skips Integrated Gradients.
    """
    roll = att.rollout_mixed(mixed)[:, -1, :]
    by_feature = {
        "attention_rollout": attention_attribution(x, roll),
        "attention_last_layer": attention_attribution(x, mean[:, -1, -1, :]),
    }
    # Each costly method runs on the rows it is asked for only: none when it is switched off.
    none = torch.zeros_like(explain)
    flow_rows, ig_rows = (explain if on else none for on in (flow, ig_steps > 0))
    flows = torch.from_numpy(attention_flow(mixed[flow_rows].double().numpy())).float()
    gradients = integrated_gradients(model, x[ig_rows], ig_steps).abs()
    ig_by_feature = normalise(gradients.sum(1))
    agreement = torch.full((len(x),), torch.nan, dtype=torch.float64)
    agreement[ig_rows] = att.spearman(by_feature["attention_rollout"][ig_rows], ig_by_feature)
    return Importance(
        positions={
            "attention_rollout": roll,
            "attention_flow": _scatter(flow_rows, flows),
            "integrated_gradients": _scatter(ig_rows, normalise(gradients.sum(-1))),
        },
        features=by_feature | {"integrated_gradients": _scatter(ig_rows, ig_by_feature)},
        agreement=agreement,
    )


def _scatter(rows: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """(E, K) scores of the windows ``rows`` picks, as (B, K) with NaN rows for the others."""
    scattered = torch.full((len(rows), scores.shape[-1]), torch.nan, dtype=scores.dtype)
    scattered[rows] = scores
    return scattered
