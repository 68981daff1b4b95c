"""What a network is given and how it is scored: scaled windows, the multi-task loss, forecasts.

Training, model selection and analysis all go through these, so a model is judged
the same way wherever it is judged.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attnviz.features import Scaler, Windows
from attnviz.model import Predictions

# Windows scored at once when a whole split part is evaluated: bounded memory on long series.
# At 1024, each of the default Transformer's largest activations (the MLP's, the attention)
# took about 60 MB, and an evaluation peaked at about 300 MB; at 256, a quarter of that.
EVAL_BATCH = 256


@dataclass(frozen=True)
class Prepared:
    """One split part ready for a model: scaled inputs and targets in training units.

    Attributes
    ----------
    x
        (n, seq_len, n_features) scaled inputs.
    ret, direction, vol
        (n,) next return and future volatility over the target scale, and the 0/1 direction.
    """

    x: torch.Tensor
    ret: torch.Tensor
    direction: torch.Tensor
    vol: torch.Tensor

    @classmethod
    def of(cls, windows: Windows, scaler: Scaler, target_scale: float) -> "Prepared":
        """``windows`` with inputs scaled by ``scaler`` and targets divided by ``target_scale``."""
        return cls(
            x=torch.from_numpy(scaler.transform(windows.x)),
            ret=torch.from_numpy(windows.next_return / target_scale),
            direction=torch.from_numpy(windows.direction),
            vol=torch.from_numpy(windows.future_vol / target_scale),
        )

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index: torch.Tensor) -> "Prepared":
        """The windows at ``index``."""
        return Prepared(self.x[index], self.ret[index], self.direction[index], self.vol[index])


@dataclass(frozen=True)
class Forecast:
    """A model's forecasts for a set of windows, in real units.

    Attributes
    ----------
    ret
        (n,) predicted next log return.
    prob
        (n,) probability that the next return is positive.
    vol
        (n,) predicted future volatility.
    """

    ret: np.ndarray
    prob: np.ndarray
    vol: np.ndarray


def multitask_loss(
    predictions: Predictions, target: Prepared, weights: tuple[float, float, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of return MSE, direction BCE and volatility MSE; also each part.

    Parameters
    ----------
    predictions
        The network's outputs, in training units.
    target
        The windows they are for.
    weights
        Weights of the return, direction and volatility terms.

    Returns
    -------
    tuple
        The weighted loss (a scalar tensor to differentiate) and each term's value.
    """
    parts = {
        "return": F.mse_loss(predictions.ret, target.ret),
        "direction": F.binary_cross_entropy_with_logits(
            predictions.direction_logit, target.direction
        ),
        "vol": F.mse_loss(predictions.vol, target.vol),
    }
    return_weight, direction_weight, vol_weight = weights
    total = (
        return_weight * parts["return"]
        + direction_weight * parts["direction"]
        + vol_weight * parts["vol"]
    )
    return total, {name: loss.item() for name, loss in parts.items()}


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, data: Prepared, weights: tuple[float, float, float], rescale: float = 1.0
) -> float:
    """Multi-task loss of ``model`` over ``data`` in eval mode.

    ``rescale`` converts the model's return and volatility outputs into the units of
    ``data`` (its own target scale over the data's), so models trained with
    different target scales are judged on the same footing.
    """
    model.eval()
    total = 0.0
    for start in range(0, len(data), EVAL_BATCH):
        part = data.batch(torch.arange(start, min(start + EVAL_BATCH, len(data))))
        out = model(part.x)
        out = Predictions(
            ret=out.ret * rescale, direction_logit=out.direction_logit, vol=out.vol * rescale
        )
        loss, _ = multitask_loss(out, part, weights)
        total += loss.item() * len(part)
    return total / len(data)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, target_scale: float) -> Forecast:
    """Forecasts for scaled windows ``x``, in real units (log return, probability, volatility)."""
    model.eval()
    parts = [model(x[start : start + EVAL_BATCH]) for start in range(0, len(x), EVAL_BATCH)]
    return Forecast(
        ret=torch.cat([p.ret for p in parts]).numpy() * target_scale,
        prob=torch.cat([p.direction_prob for p in parts]).numpy(),
        vol=torch.cat([p.vol for p in parts]).numpy() * target_scale,
    )
