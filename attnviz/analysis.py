"""Analyse a trained model over an evaluation period, window by window, in bounded memory.

``analyze`` streams the windows through the model in batches: each batch's
attention (B, L, H, T, T) is reduced to table rows at once and dropped, so
memory does not grow with the number of windows. It returns polars frames
shaped like the warehouse tables (without the run and series keys), and the
latest window's matrices for the figures.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from pydantic import Field

from attnviz import attention as att
from attnviz.attribution import attention_attribution, integrated_gradients, normalise, ranks
from attnviz.checkpoint import TrainedModel
from attnviz.features import FEATURES, Windows
from attnviz.maxflow import attention_flow

EVENT_FEATURES = [FEATURES.index("log_return"), FEATURES.index("volume_change")]


@dataclass(frozen=True)
class AnalysisConfig:
    """Knobs of the analysis.

    Attributes
    ----------
    batch_size
        Windows per batch: the memory bound.
    recent_k, top_k
        Bars counted as recent; size of the top-k position sets.
    periods
        Candidate periods (bars) of the periodic head pattern.
    event_z
        A bar is an event when its scaled |log return| or |volume change| exceeds this.
    collapse_floor, collapse_run
        A window is in collapse when, for ``collapse_run`` windows in a row, its calibrated
        confidence was below ``collapse_floor`` or a head had gone uniform: its row q is
        uniform (pattern ``uniform``) though it was not in most training windows.
    cusum_k, cusum_h
        Regime-change detector on the seed confidence (:func:`attention.cusum_changes`).
    flow
        Compute exact attention flow (the costliest measure after Integrated Gradients).
    ig_steps
        Integrated Gradients path steps; 0 skips Integrated Gradients.
    """

    batch_size: Annotated[int, Field(ge=1)] = 256
    recent_k: Annotated[int, Field(ge=1)] = 5
    top_k: Annotated[int, Field(ge=1)] = 5
    periods: tuple[Annotated[int, Field(ge=2)], ...] = (5, 24)
    event_z: Annotated[float, Field(gt=0)] = 2.0
    collapse_floor: Annotated[float, Field(ge=0, le=1)] = 0.05
    collapse_run: Annotated[int, Field(ge=1)] = 3
    cusum_k: Annotated[float, Field(ge=0)] = 0.5
    cusum_h: Annotated[float, Field(gt=0)] = 5.0
    flow: bool = True
    ig_steps: Annotated[int, Field(ge=0)] = 32


@dataclass(frozen=True)
class LatestWindow:
    """The newest window's matrices, which the figures draw.

    Attributes
    ----------
    ts
        When the window's last bar opened (UTC).
    attention
        Attention weights, (L, H, T, T).
    rollout
        Attention rollout with the residual mixed in, (T, T).
    scores
        Attribution method -> normalised score per feature, (F,).
    """

    ts: datetime
    attention: np.ndarray
    rollout: np.ndarray
    scores: dict[str, np.ndarray]


@dataclass
class Analysis:
    """Table rows of one series' evaluation period and the latest window's matrices."""

    timestep: pl.DataFrame
    window: pl.DataFrame
    attribution: pl.DataFrame
    positions: pl.DataFrame
    heads: pl.DataFrame
    latest: LatestWindow


def head_confidence(a: torch.Tensor) -> torch.Tensor:
    """Row q's confidence of every head, (B, L, H, T, T) -> (B, L, H)."""
    return att.confidence(a[..., -1, :])


@torch.no_grad()
def reference_confidence(
    trained: TrainedModel, windows: Windows, batch_size: int = 256
) -> torch.Tensor:
    """Per-head confidence (N, L, H) of ``windows`` (the training part): the calibration sample."""
    x = trained.prepare(windows).x
    return torch.cat(
        [
            head_confidence(
                att.stack(trained.model(x[i : i + batch_size], return_attention=True)[1])
            )
            for i in range(0, len(x), batch_size)
        ]
    )


def _utc(ts: np.ndarray) -> pl.Series:
    return pl.Series("ts", ts).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _timestep_rows(
    ts: np.ndarray, a: torch.Tensor, mean: torch.Tensor, codes: torch.Tensor, k: int
) -> pl.DataFrame:
    """Per (window, layer, head) rows of ``a`` and, as head -1, of the head mean ``mean``."""
    row = torch.cat([a[..., -1, :], mean[..., -1, :]], 2)
    n, layers, heads = row.shape[:3]
    head = np.arange(heads)
    head[-1] = -1
    values = {
        "entropy": att.entropy(row),
        "norm_entropy": 1 - att.confidence(row),
        "confidence": att.confidence(row),
        "mean_row_entropy": torch.cat([att.mean_row_entropy(a), att.mean_row_entropy(mean)], 2),
        "expected_distance": att.expected_distance(row),
        "recent_mass": att.recent_mass(row, k),
    }
    return pl.DataFrame(
        {
            "ts": _utc(np.repeat(ts, layers * heads)),
            "layer": np.tile(np.repeat(np.arange(layers), heads), n),
            "head": np.tile(head, n * layers),
            **{name: value.reshape(-1).numpy() for name, value in values.items()},
            "pattern": np.array(att.PATTERNS)[codes.reshape(-1).numpy()],
        }
    )


def _long(
    ts: np.ndarray, by_method: dict[str, torch.Tensor], column: str, labels: np.ndarray
) -> pl.DataFrame:
    """(B, K) scores per method -> rows (ts, <column>, method, score, rank)."""
    frames = []
    for method, scores in by_method.items():
        n, k = scores.shape
        frames.append(
            pl.DataFrame(
                {
                    "ts": _utc(np.repeat(ts, k)),
                    column: np.tile(labels, n),
                    "method": method,
                    "score": scores.reshape(-1).numpy().astype(np.float64),
                    "rank": ranks(scores).reshape(-1).numpy(),
                }
            )
        )
    return pl.concat(frames)


def _importance(
    model: torch.nn.Module,
    x: torch.Tensor,
    mean: torch.Tensor,
    mixed: torch.Tensor,
    config: AnalysisConfig,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor]:
    """Position importance and feature scores of a batch by each method, and their agreement.

    Returns (method -> (B, T) position scores, method -> (B, F) feature scores, (B,) Spearman
    correlation of the rollout and Integrated-Gradients feature scores, NaN without IG).
    """
    roll = att.rollout_mixed(mixed)[:, -1, :]
    positions = {"attention_rollout": roll}
    if config.flow:
        flow = attention_flow(mixed.double().numpy())
        positions["attention_flow"] = torch.from_numpy(flow).float()
    scores = {
        "attention_rollout": attention_attribution(x, roll),
        "attention_last_layer": attention_attribution(x, mean[:, -1, -1, :]),
    }
    agreement = torch.full((len(x),), torch.nan)
    if config.ig_steps:
        gradients = integrated_gradients(model, x, config.ig_steps)
        scores["integrated_gradients"] = normalise(gradients.abs().sum(1))
        positions["integrated_gradients"] = normalise(gradients.abs().sum(-1))
        agreement = att.spearman(scores["attention_rollout"], scores["integrated_gradients"])
    return positions, scores, agreement


def _top_lags(positions: dict[str, torch.Tensor], method: str, k: int) -> list[list[int]]:
    """The k strongest lags of each window by ``method``, strongest first; empty if not computed."""
    if method not in positions:
        return [[] for _ in range(len(positions["attention_rollout"]))]
    size = positions[method].shape[-1]
    return (size - 1 - positions[method].topk(k).indices).tolist()


def analyze(
    trained: TrainedModel,
    windows: Windows,
    reference: torch.Tensor,
    previous: TrainedModel | None = None,
    config: AnalysisConfig = AnalysisConfig(),
) -> Analysis:
    """Every attention measure of every window of one series' evaluation period.

    Parameters
    ----------
    trained
        The model to explain.
    windows
        Consecutive windows (one bar apart), oldest first.
    reference
        Per-head confidences of the training windows (:func:`reference_confidence`).
    previous
        The previously active model, to measure how attention moved across the retrain.
    config
        Thresholds and batch size.
    """
    if len(windows) == 0:
        raise ValueError("no windows to analyse")
    model = trained.model.eval()
    x_all = trained.prepare(windows).x
    x_before = previous.prepare(windows).x if previous is not None else None
    parts: dict[str, list[pl.DataFrame]] = {
        "timestep": [],
        "window": [],
        "attribution": [],
        "positions": [],
    }
    confidence_sum, specialisation_sum, pattern_counts = 0.0, 0.0, 0
    # A head that is uniform in most training windows is not "gone" uniform when it is again.
    usually_uniform = (reference <= 0.05).float().mean(0) >= 0.5
    carry: torch.Tensor | None = None

    for start in range(0, len(windows), config.batch_size):
        batch = slice(start, start + config.batch_size)
        x, ts = x_all[batch], windows.end_ts[batch]
        with torch.no_grad():
            predictions, attention = model(x, return_attention=True)
        a = att.stack(attention)
        size = a.shape[-1]

        confidence = head_confidence(a)
        events = (x[..., EVENT_FEATURES].abs() > config.event_z).any(-1)
        codes = att.pattern_class(a, events, config.recent_k, config.periods)
        uniform = codes == att.PATTERNS.index("uniform")
        mean = att.head_mean(a).unsqueeze(2)
        mixed = att.mixed_attention(mean[:, :, 0])
        codes_mean = att.pattern_class(mean, events, config.recent_k, config.periods)
        parts["timestep"].append(
            _timestep_rows(ts, a, mean, torch.cat([codes, codes_mean], 2), config.recent_k)
        )

        positions, scores, agreement = _importance(model, x, mean[:, :, 0], mixed, config)
        roll = positions["attention_rollout"]
        stability = att.consecutive_stability(roll, carry, config.top_k)
        carry = roll[-1]
        if x_before is not None:
            with torch.no_grad():
                _, before = previous.model(x_before[batch], return_attention=True)
            moved = att.jensen_shannon(roll, att.rollout(att.stack(before))[:, -1, :])
        else:
            moved = torch.full((len(x),), torch.nan)

        lags = np.arange(size - 1, -1, -1)
        parts["attribution"].append(_long(ts, scores, "feature", np.array(FEATURES)))
        parts["positions"].append(_long(ts, positions, "lag", lags).drop("rank"))

        parts["window"].append(
            pl.DataFrame(
                {
                    "ts": _utc(ts),
                    "seed_confidence": confidence.mean(dim=(1, 2)).numpy(),
                    "rollout_top_lags": _top_lags(positions, "attention_rollout", config.top_k),
                    "flow_top_lags": _top_lags(positions, "attention_flow", config.top_k),
                    "jsd_prev_window": stability["jsd"].numpy(),
                    "topk_jaccard_prev_window": stability["topk_jaccard"].numpy(),
                    "spearman_prev_window": stability["spearman"].numpy(),
                    "jsd_prev_model": moved.numpy(),
                    "attention_ig_spearman": agreement.numpy(),
                    "head_gone_uniform": (uniform & ~usually_uniform).flatten(1).any(1).numpy(),
                    "pred_return": predictions.ret.numpy() * trained.target_scale,
                    "pred_up_prob": predictions.direction_prob.numpy(),
                    "pred_vol": predictions.vol.numpy() * trained.target_scale,
                    "next_return": windows.next_return[batch],
                    "direction": windows.direction[batch],
                    "future_vol": windows.future_vol[batch],
                }
            )
        )
        confidence_sum = confidence_sum + confidence.sum(0)
        specialisation_sum = specialisation_sum + att.specialisation(a).sum(0)
        pattern_counts = pattern_counts + F.one_hot(codes, len(att.PATTERNS)).sum(0)

    window = _with_monitors(pl.concat(parts["window"]), reference, config)
    return Analysis(
        timestep=pl.concat(parts["timestep"]),
        window=window,
        attribution=pl.concat(parts["attribution"]),
        positions=pl.concat(parts["positions"]),
        heads=_head_summary(
            confidence_sum / len(windows), specialisation_sum / len(windows), pattern_counts
        ),
        latest=LatestWindow(
            ts=window["ts"][-1],
            attention=a[-1].numpy(),
            rollout=att.rollout_mixed(mixed[-1:])[0].numpy(),
            scores={name: value[-1].numpy() for name, value in scores.items()},
        ),
    )


def _with_monitors(
    window: pl.DataFrame, reference: torch.Tensor, config: AnalysisConfig
) -> pl.DataFrame:
    """Add calibrated confidence and the collapse and regime-change flags (series-wide)."""
    seed = torch.tensor(window["seed_confidence"].to_numpy())
    trained_seed = reference.mean(dim=(1, 2)).to(seed.dtype)
    calibrated = att.calibrate(seed, trained_seed)
    low = (calibrated < config.collapse_floor) | torch.tensor(
        window["head_gone_uniform"].to_numpy()
    )
    regime = att.cusum_changes(
        seed, trained_seed.mean().item(), trained_seed.std().item(), config.cusum_k, config.cusum_h
    )
    return window.with_columns(
        pl.Series("calibrated_confidence", calibrated.numpy()),
        pl.Series("collapse", att.sustained(low, config.collapse_run).numpy()),
        pl.Series("regime_change", regime.numpy()),
    )


def _head_summary(
    confidence: torch.Tensor, specialisation: torch.Tensor, counts: torch.Tensor
) -> pl.DataFrame:
    """Per (layer, head): layer specialisation, dominant pattern and its share, mean confidence."""
    layers, heads = confidence.shape
    dominant = counts.argmax(-1)
    return pl.DataFrame(
        {
            "layer": np.repeat(np.arange(layers), heads),
            "head": np.tile(np.arange(heads), layers),
            "specialisation": np.repeat(specialisation.numpy(), heads),
            "dominant_pattern": np.array(att.PATTERNS)[dominant.reshape(-1).numpy()],
            "pattern_share": (counts.max(-1).values / counts.sum(-1)).reshape(-1).numpy(),
            "mean_confidence": confidence.reshape(-1).numpy(),
        }
    )
