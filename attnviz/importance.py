"""Which bars and which features a batch of predictions rests on, by each method.

Positions (bars of the window) are scored by attention rollout, exact attention flow
(optional: the costliest measure after Integrated Gradients) and Integrated Gradients
(optional); features by attention (rollout and the last layer) and Integrated
Gradients. Where both are computed, the Spearman correlation of the rollout and the
Integrated-Gradients feature scores says how far the two views agree.
"""

from dataclasses import dataclass

import torch
from torch import nn

from attnviz import attention as att
from attnviz.attribution import attention_attribution, integrated_gradients, normalise
from attnviz.maxflow import attention_flow


@dataclass(frozen=True)
class Importance:
    """Scores of one batch of windows by method, each row normalised to sum to 1.

    Attributes
    ----------
    positions
        Method -> (B, T) importance of each bar of the window.
    features
        Method -> (B, F) importance of each feature.
    agreement
        (B,) Spearman correlation of the rollout and Integrated-Gradients feature
        scores; NaN when Integrated Gradients is not computed.
    """

    positions: dict[str, torch.Tensor]
    features: dict[str, torch.Tensor]
    agreement: torch.Tensor


def importance(
    model: nn.Module,
    x: torch.Tensor,
    mean: torch.Tensor,
    mixed: torch.Tensor,
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
    flow
        Compute exact attention flow.
    ig_steps
        Integrated Gradients path steps; 0 skips Integrated Gradients.
    """
    roll = att.rollout_mixed(mixed)[:, -1, :]
    positions = {"attention_rollout": roll}
    if flow:
        flows = attention_flow(mixed.double().numpy())
        positions["attention_flow"] = torch.from_numpy(flows).float()
    features = {
        "attention_rollout": attention_attribution(x, roll),
        "attention_last_layer": attention_attribution(x, mean[:, -1, -1, :]),
    }
    agreement = torch.full((len(x),), torch.nan)
    if ig_steps:
        gradients = integrated_gradients(model, x, ig_steps)
        features["integrated_gradients"] = normalise(gradients.abs().sum(1))
        positions["integrated_gradients"] = normalise(gradients.abs().sum(-1))
        agreement = att.spearman(features["attention_rollout"], features["integrated_gradients"])
    return Importance(positions, features, agreement)


def top_lags(positions: dict[str, torch.Tensor], method: str, k: int) -> list[list[int]]:
    """The ``k`` strongest lags of each window by ``method``, strongest first; [] if not computed.

    Parameters
    ----------
    positions
        Method -> (B, T) position scores (:attr:`Importance.positions`).
    method
        Which method's scores rank the lags.
    k
        How many lags per window.
    """
    if method not in positions:
        return [[] for _ in range(len(positions["attention_rollout"]))]
    size = positions[method].shape[-1]
    lags: list[list[int]] = (size - 1 - positions[method].topk(k).indices).tolist()
    return lags
