"""Which input features a prediction rests on: through attention, and through gradients.

Two views that need not agree, so attnviz stores both and their rank correlation:

* attention attribution (the chapter's): each feature's absolute (scaled) value
  at each bar, weighted by how much the model attends to that bar, summed over bars;
* Integrated Gradients (Sundararajan et al. 2017, via captum) of the direction
  logit, from the all-zero input (the training mean, after scaling).
"""

import torch
from captum.attr import IntegratedGradients
from torch import nn


def normalise(scores: torch.Tensor) -> torch.Tensor:
    """Scale non-negative scores to sum to 1 over the last dimension."""
    return scores / scores.sum(-1, keepdim=True).clamp_min(1e-12)


def attention_attribution(x: torch.Tensor, importance: torch.Tensor) -> torch.Tensor:
    """(B, T, F) scaled inputs, (B, T) position importance -> (B, F) feature scores summing to 1."""
    return normalise((importance.unsqueeze(-1) * x.abs()).sum(1))


def integrated_gradients(
    model: nn.Module, x: torch.Tensor, n_steps: int = 16, internal_batch_size: int = 128
) -> torch.Tensor:
    """(B, T, F) Integrated Gradients of the direction logit with respect to every input value.

    ``internal_batch_size`` bounds memory: captum evaluates the ``n_steps`` points of
    the path for all windows in chunks of that many inputs (at least one point per
    window). No windows give an empty (0, T, F) result without running the model.
    """
    if len(x) == 0:  # captum would divide its internal batch by the number of windows
        return torch.zeros_like(x)
    model.eval()
    explainer = IntegratedGradients(lambda inputs: model(inputs).direction_logit)
    gradients: torch.Tensor = explainer.attribute(  # captum declares no types
        x,
        baselines=torch.zeros_like(x),
        n_steps=n_steps,
        # captum takes at least one path point per window at once (and warns when asked for less)
        internal_batch_size=max(internal_batch_size, len(x)),
    )
    return gradients.detach()


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Rank of each score over the last dimension, 1 = largest."""
    return scores.argsort(-1, descending=True).argsort(-1) + 1
