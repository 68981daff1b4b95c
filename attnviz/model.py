"""The attention Transformer whose attention attnviz explains, and the LSTM it is compared with.

One calm file in the manner of nanoGPT's ``model.py``: a config dataclass, the
layers, the model. Encoder layers are pre-LN and written out so that each
head's attention probabilities can be returned:

* ``model(x)`` takes the fast path (``scaled_dot_product_attention``) and returns
  :class:`Predictions`;
* ``model(x, return_attention=True)`` computes softmax(QK^T / sqrt(d)) explicitly
  and returns ``(Predictions, {"layer_0": (batch, heads, seq, seq), ...})``.

In eval mode both paths give the same predictions. Attention is not causal
inside a window: every bar of a window is already in the past of its
prediction, which is made from the last position (the query row q = T - 1).

Every dropout mask, the LSTM's between its layers included, is drawn by
:func:`dropout` from the generator the training thread set with
:func:`dropout_generator`, so that trainings in concurrent threads are each
reproducible (torch's own dropouts all draw from one global generator).
"""

import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the Transformer (and of the LSTM baseline's hidden state)."""

    input_dim: Annotated[int, Field(ge=1)] = 8
    d_model: Annotated[int, Field(ge=1)] = 64
    n_heads: Annotated[int, Field(ge=1)] = 4
    n_layers: Annotated[int, Field(ge=1)] = 3
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    max_len: Annotated[int, Field(ge=1)] = 512
    ff_mult: Annotated[int, Field(ge=1)] = 4


@dataclass
class Predictions:
    """What a model predicts for each window.

    Attributes
    ----------
    ret
        (batch,) next-bar log return, in units of the training return scale.
    direction_logit
        (batch,) logit of P(next return > 0); train on it, not on the probability.
    vol
        (batch,) realised volatility of the next bars (>= 0), in the same units as ``ret``.
    """

    ret: torch.Tensor
    direction_logit: torch.Tensor
    vol: torch.Tensor

    @property
    def direction_prob(self) -> torch.Tensor:
        """(batch,) P(next return > 0)."""
        return torch.sigmoid(self.direction_logit)


_thread = threading.local()


@contextmanager
def dropout_generator(generator: torch.Generator) -> Iterator[None]:
    """Draw this thread's dropout masks from ``generator`` inside the block."""
    outer = getattr(_thread, "generator", None)
    _thread.generator = generator
    try:
        yield
    finally:
        _thread.generator = outer


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout, its mask drawn from this thread's generator (:func:`dropout_generator`).

    Outside :func:`dropout_generator` the mask comes from torch's global generator.
    Each element is kept when 16 random bits are at least ``p`` in units of 2**-16 (so
    ``p`` is rounded to the nearest such unit) and scaled by 1 / (1 - that ``p``). The
    bits come 64 to a draw: drawing one random number per element, as ``F.dropout``
    does, took a third of a training step of the default Transformer on CPU.
    """
    if not training or p == 0:
        return x
    dropped = min(round(p * 2**16), 2**16 - 1)
    words = torch.randint(
        -(2**63),
        2**63 - 1,
        ((x.numel() + 3) // 4,),
        generator=getattr(_thread, "generator", None),
        dtype=torch.int64,
        device=x.device,
    )
    bits = words.view(torch.int16)[: x.numel()].view(x.shape)  # uniform on -2**15 .. 2**15 - 1
    keep = bits >= dropped - 2**15
    return x * (keep.to(x.dtype) * (2**16 / (2**16 - dropped)))


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose mask comes from :func:`dropout`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with elements zeroed with probability ``p`` and the rest scaled, in training."""
        return dropout(x, self.p, self.training)


class PredictionHeads(nn.Module):
    """Return, direction and volatility heads on one summary vector per window."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, 3)

    def forward(self, h: torch.Tensor) -> Predictions:
        """Predictions from (batch, width) summary vectors."""
        ret, logit, vol = self.out(self.norm(h)).unbind(-1)
        return Predictions(ret=ret, direction_logit=logit, vol=F.softplus(vol))


class SelfAttention(nn.Module):
    """Multi-head self-attention that can hand back its probabilities."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.d_model % config.n_heads:
            raise ValueError(
                f"d_model {config.d_model} is not divisible by n_heads {config.n_heads}"
            )
        self.n_heads = config.n_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout

    def forward(
        self, x: torch.Tensor, return_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend over (batch, seq, width) inputs; the probabilities only if asked for."""
        batch, seq, width = x.shape
        q, k, v = (
            t.view(batch, seq, self.n_heads, width // self.n_heads).transpose(1, 2)
            for t in self.qkv(x).split(width, dim=-1)
        )
        if return_attention or (self.training and self.dropout):
            # Explicit, also in training: the fast path would draw its dropout mask itself.
            probs = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.size(-1)), dim=-1)
            out = dropout(probs, self.dropout, self.training) @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(q, k, v)
        attended = self.proj(out.transpose(1, 2).reshape(batch, seq, width))
        return attended, probs if return_attention else None


class EncoderLayer(nn.Module):
    """Pre-LN Transformer encoder layer: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.ff_mult * config.d_model),
            nn.GELU(),
            nn.Linear(config.ff_mult * config.d_model, config.d_model),
        )
        self.drop = Dropout(config.dropout)

    def forward(
        self, x: torch.Tensor, return_attention: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The layer's output and, if asked for, its attention probabilities."""
        attended, probs = self.attn(self.norm1(x), return_attention)
        x = x + self.drop(attended)
        return x + self.drop(self.mlp(self.norm2(x))), probs


def sinusoidal_positions(max_len: int, width: int) -> torch.Tensor:
    """(max_len, width) fixed sinusoidal position encodings (Vaswani et al. 2017)."""
    position = torch.arange(max_len).unsqueeze(1)
    frequency = torch.exp(torch.arange(0, width, 2) * (-math.log(10000.0) / width))
    table = torch.zeros(max_len, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency)
    return table


class AttentionTransformer(nn.Module):
    """Transformer encoder over a window of bar features, predicting from the last bar.

    Parameters
    ----------
    config
        Sizes; ``AttentionTransformer(ModelConfig(d_model=32))`` or keyword arguments
        ``AttentionTransformer(input_dim=8, d_model=64, n_heads=4, n_layers=3, dropout=0.1)``.
    """

    positions: torch.Tensor  # (max_len, d_model) fixed encodings: a buffer, not a parameter

    def __init__(self, config: ModelConfig | None = None, **sizes: Any) -> None:
        super().__init__()
        self.config = config or ModelConfig(**sizes)
        self.input = nn.Linear(self.config.input_dim, self.config.d_model)
        self.register_buffer(
            "positions",
            sinusoidal_positions(self.config.max_len, self.config.d_model),
            persistent=False,
        )
        self.drop = Dropout(self.config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(self.config) for _ in range(self.config.n_layers))
        self.heads = PredictionHeads(self.config.d_model)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> Predictions | tuple[Predictions, dict[str, torch.Tensor]]:
        """Predict from (batch, seq, input_dim) windows; optionally return all attention."""
        h = self.drop(self.input(x) + self.positions[: x.size(1)])
        attention: dict[str, torch.Tensor] = {}
        for index, layer in enumerate(self.layers):
            h, probs = layer(h, return_attention)
            if return_attention:
                attention[f"layer_{index}"] = probs
        predictions: Predictions = self.heads(h[:, -1])
        return (predictions, attention) if return_attention else predictions


class LSTMBaseline(nn.Module):
    """The chapter's comparison model: a two-layer LSTM with the same heads and no attention.

    The layers are two one-layer ``nn.LSTM``s with :func:`dropout` between them, which is
    what ``nn.LSTM(num_layers=2, dropout=p)`` computes, but with the mask drawn from the
    thread's generator. Checkpoints of that two-layer module load as they are.
    """

    def __init__(self, config: ModelConfig | None = None, **sizes: Any) -> None:
        super().__init__()
        self.config = config or ModelConfig(**sizes)
        self.lower = nn.LSTM(self.config.input_dim, self.config.d_model, batch_first=True)
        self.upper = nn.LSTM(self.config.d_model, self.config.d_model, batch_first=True)
        self.heads = PredictionHeads(self.config.d_model)
        self.register_load_state_dict_pre_hook(_from_two_layer_lstm)  # type: ignore[no-untyped-call]

    def forward(self, x: torch.Tensor) -> Predictions:
        """Predict from (batch, seq, input_dim) windows."""
        lower, _ = self.lower(x)
        out, _ = self.upper(dropout(lower, self.config.dropout, self.training))
        predictions: Predictions = self.heads(out[:, -1])
        return predictions


def _from_two_layer_lstm(
    module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *_: Any
) -> None:
    """Rename a two-layer ``lstm``'s weights (``lstm.weight_ih_l1``) to ``upper.weight_ih_l0``."""
    old = f"{prefix}lstm."
    for key in [key for key in state_dict if key.startswith(old)]:
        name, layer = key.removeprefix(old).rsplit("_l", 1)
        state_dict[f"{prefix}{('lower', 'upper')[int(layer)]}.{name}_l0"] = state_dict.pop(key)
