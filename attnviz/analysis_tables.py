"""Rows of the attention tables: each batch's, and the per-head summary.

The frames are shaped like the warehouse tables of the same names, keyed by ``ts``
(UTC: when the window's last bar opened) and without the run, series and model keys,
which are added when they are stored. The series-wide monitors that complete the window
rows are in :mod:`attnviz.monitors`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from attnviz import attention as att
from attnviz.attribution import ranks
from attnviz.workspace import Workspace


def utc(ts: np.ndarray) -> pl.Series:
    """Bar times (``datetime64``, UTC) as the ``ts`` column: microseconds, UTC-aware."""
    return pl.Series("ts", ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def gathered(labels: Sequence[str] | np.ndarray, index: np.ndarray) -> pl.Series:
    """``labels[index]`` as a column.

    Polars gathers strings far faster than it converts a numpy array of them.
    """
    return pl.Series(labels).gather(index)


def timestep_rows(
    ts: np.ndarray,
    a: torch.Tensor,
    mean: torch.Tensor,
    codes: torch.Tensor,
    k: int,
    workspace: Workspace,
) -> pl.DataFrame:
    """``attention_timestep`` rows: per (window, layer, head), and per layer for the head mean.

    Parameters
    ----------
    ts
        (B,) when each window's last bar opened.
    a
        (B, L, H, T, T) attention.
    mean
        (B, L, 1, T, T) its head mean, stored as head -1.
    codes
        (B, L, H + 1) pattern codes of the heads and of the head mean.
    k
        Bars counted as recent.
    workspace
        Where the entropy terms of every row are written (:func:`attention.mean_row_entropy`).
    """
    row = torch.cat([a[..., -1, :], mean[..., -1, :]], 2)
    n, layers, heads = row.shape[:3]
    head = np.arange(heads)
    head[-1] = -1
    confidence = att.confidence(row)
    values = {
        "entropy": att.entropy(row),
        "norm_entropy": 1 - confidence,
        "confidence": confidence,
        "mean_row_entropy": torch.cat(
            [
                att.mean_row_entropy(a, workspace.take("entropy terms", a.shape)),
                att.mean_row_entropy(mean, workspace.take("mean entropy terms", mean.shape)),
            ],
            2,
        ),
        "expected_distance": att.expected_distance(row),
        "recent_mass": att.recent_mass(row, k),
    }
    return pl.DataFrame(
        {
            "ts": utc(np.repeat(ts, layers * heads)),
            "layer": np.tile(np.repeat(np.arange(layers), heads), n),
            "head": np.tile(head, n * layers),
            **{name: value.reshape(-1).numpy() for name, value in values.items()},
            "pattern": gathered(att.PATTERNS, codes.reshape(-1).numpy()),
        }
    )


def score_rows(
    ts: np.ndarray,
    by_method: dict[str, torch.Tensor],
    column: str,
    labels: np.ndarray,
    ranked: bool,
) -> pl.DataFrame:
    """Rows ``(ts, <column>, method, score)`` of (B, K) scores by method, and the ``rank``.

    A window whose row of a method is NaN (the method did not score it) gets no rows of
    that method. ``feature_attribution`` rows are these with ``column="feature"``, ranked;
    ``position_importance`` rows, with ``column="lag"``, unranked.
    """
    scores = torch.stack(list(by_method.values()))  # (M, B, K): one frame for every method
    methods, n, k = scores.shape
    rows = pl.DataFrame(
        {
            "ts": utc(np.tile(np.repeat(ts, k), methods)),
            column: gathered(labels, np.tile(np.arange(k), methods * n)),
            "method": gathered(list(by_method), np.repeat(np.arange(methods), n * k)),
            "score": scores.reshape(-1).numpy().astype(np.float64),
        }
    )
    if ranked:
        rows = rows.with_columns(rank=ranks(scores).reshape(-1).numpy())
    return rows.filter(pl.col("score").is_not_nan())


def top_lags(scores: torch.Tensor, k: int) -> pl.Series:
    """The ``k`` strongest lags of each window by (B, T) ``scores``, strongest first.

    A window whose row is NaN (the method did not score it) gets no lags: ``[]``.
    """
    lags = scores.shape[-1] - 1 - scores.topk(k).indices
    scored = ~scores.isnan().any(-1)
    listed = pl.Series(lags.numpy()).cast(pl.List(pl.Int64))
    return listed.list.head(pl.lit(pl.Series(scored.numpy() * k)))


@dataclass(frozen=True)
class HeadTotals:
    """Per-head sums over a number of windows: what the head summary averages.

    Sums of batches add up (``first + second``), so the summary of a series does not
    need its windows' attention at once.

    Attributes
    ----------
    windows
        How many windows the sums are over.
    confidence
        (L, H) sum of each head's row-q confidence.
    specialisation
        (L,) sum of each layer's head specialisation (:func:`attention.specialisation`).
    patterns
        (L, H, P) how many windows each head spent in each pattern of :data:`attention.PATTERNS`.
    """

    windows: int
    confidence: torch.Tensor
    specialisation: torch.Tensor
    patterns: torch.Tensor

    @classmethod
    def of(cls, a: torch.Tensor, confidence: torch.Tensor, codes: torch.Tensor) -> "HeadTotals":
        """The sums of one batch: attention (B, L, H, T, T), confidence and codes (B, L, H)."""
        return cls(
            windows=len(a),
            confidence=confidence.sum(0),
            specialisation=att.specialisation(a).sum(0),
            patterns=F.one_hot(codes, len(att.PATTERNS)).sum(0),
        )

    def __add__(self, other: "HeadTotals") -> "HeadTotals":
        return HeadTotals(
            windows=self.windows + other.windows,
            confidence=self.confidence + other.confidence,
            specialisation=self.specialisation + other.specialisation,
            patterns=self.patterns + other.patterns,
        )


def head_summary(totals: HeadTotals) -> pl.DataFrame:
    """``head_summary`` rows of a series' per-head totals.

    Per (layer, head): the layer's mean specialisation, the head's dominant pattern and
    its share of the windows, and the head's mean confidence.
    """
    layers, heads = totals.confidence.shape
    counts = totals.patterns
    return pl.DataFrame(
        {
            "layer": np.repeat(np.arange(layers), heads),
            "head": np.tile(np.arange(heads), layers),
            "specialisation": np.repeat((totals.specialisation / totals.windows).numpy(), heads),
            "dominant_pattern": np.array(att.PATTERNS)[counts.argmax(-1).reshape(-1).numpy()],
            "pattern_share": (counts.max(-1).values / counts.sum(-1)).reshape(-1).numpy(),
            "mean_confidence": (totals.confidence / totals.windows).reshape(-1).numpy(),
        }
    )


@dataclass(frozen=True)
class BatchRows:
    """One batch's rows of each table, and its share of the per-head sums.

    The window rows lack the series-wide monitors (:func:`attnviz.monitors.with_monitors`),
    which need every window.
    """

    timestep: pl.DataFrame
    window: pl.DataFrame
    attribution: pl.DataFrame
    positions: pl.DataFrame
    totals: HeadTotals
