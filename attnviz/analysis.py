"""Analyse a trained model over an evaluation period, window by window, in bounded memory.

``analyze`` is a short loop: :class:`BatchStep` turns each batch of windows into its
table rows (:mod:`attnviz.analysis_tables`) and per-head sums, so a batch's attention
(B, L, H, T, T) is dropped once measured, its memory reused by the next batch
(:mod:`attnviz.workspace`), and memory does not grow with the number of windows; what
one batch hands the next is a :class:`Carry`. The rows are then joined, the series-wide
monitors added and the sums averaged into the head summary: polars frames shaped like
the warehouse tables (without the run and series keys), and the latest window's
matrices for the figures.
"""

import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Annotated

import numpy as np
import polars as pl
import torch
from pydantic import Field

from attnviz import attention as att
from attnviz.analysis_tables import (
    BatchRows,
    HeadTotals,
    head_summary,
    score_rows,
    timestep_rows,
    top_lags,
    utc,
)
from attnviz.checkpoint import TrainedModel
from attnviz.features import FEATURES, Windows
from attnviz.importance import explained, importance
from attnviz.model import AttentionTransformer, Predictions
from attnviz.monitors import Calibration, with_monitors
from attnviz.workspace import Workspace

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
    false_alarm_rate
        The monitors' thresholds keep each flag on in at most this share of the
        validation windows (:meth:`attnviz.monitors.Calibration.fit`).
    collapse_run
        A window is in collapse when, for this many windows in a row, its calibrated
        confidence was low or a head had gone uniform.
    cusum_k
        Allowance of the regime-change CUSUM on the seed confidence, in standard
        deviations (:func:`attention.cusum_changes`).
    flow
        Compute exact attention flow (the costliest measure after Integrated Gradients).
    ig_steps
        Integrated Gradients path steps (Gauss-Legendre, captum's default); 0 skips
        Integrated Gradients. With 16, the completeness gap (the attributions' sum against
        the change of the logit) of the default model, trained or not, was at float
        rounding (2e-7), and feature scores within 1e-7 of 256 steps'.
    explain_newest, explain_every
        Flow and Integrated Gradients (where switched on) are computed for the newest
        ``explain_newest`` windows of the evaluation period, and for the older ones whose
        position, counted from its first window (0), is a multiple of ``explain_every``:
        a sample that stays put as windows are appended night after night
        (:func:`attnviz.importance.explained`). ``explain_every=1`` explains every window.
    """

    batch_size: Annotated[int, Field(ge=1)] = 256
    recent_k: Annotated[int, Field(ge=1)] = 5
    top_k: Annotated[int, Field(ge=1)] = 5
    periods: tuple[Annotated[int, Field(ge=2)], ...] = (5, 24)
    event_z: Annotated[float, Field(gt=0)] = 2.0
    false_alarm_rate: Annotated[float, Field(gt=0, lt=1)] = 0.05
    collapse_run: Annotated[int, Field(ge=1)] = 3
    cusum_k: Annotated[float, Field(ge=0)] = 0.5
    flow: bool = True
    ig_steps: Annotated[int, Field(ge=0)] = 16
    explain_newest: Annotated[int, Field(ge=0)] = 8
    explain_every: Annotated[int, Field(ge=1)] = 500


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
        Attribution method -> normalised score per feature, (F,); the methods computed
        for this window (Integrated Gradients only where it was explained).
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


@dataclass(frozen=True)
class Carry:
    """What a batch hands on: its last window's rollout row and matrices.

    Attributes
    ----------
    rollout_row
        (T,) attention rollout row of the batch's last window: the next window's
        stability is measured against it.
    latest
        The batch's last window's matrices; the last batch's are the figures'.
    """

    rollout_row: torch.Tensor
    latest: LatestWindow


@torch.no_grad()
def attend(
    model: AttentionTransformer,
    x: torch.Tensor,
    workspace: Workspace | None = None,
    name: str = "attention",
) -> tuple[Predictions, torch.Tensor]:
    """The model's predictions for windows ``x`` and its attention, (B, L, H, T, T).

    With a ``workspace``, the attention is written into its block ``name``, which the next
    call with that name overwrites; else into fresh memory.
    """
    predictions, attention = model(x, return_attention=True)
    shape = (len(x), len(attention), *attention["layer_0"].shape[1:])
    return predictions, att.stack(attention, workspace.take(name, shape) if workspace else None)


def reference_confidence(
    trained: TrainedModel, windows: Windows, batch_size: int = 256
) -> torch.Tensor:
    """Per-head confidence (N, L, H) of ``windows``: the calibration sample (validation part)."""
    x, workspace = trained.prepare(windows).x, Workspace()
    return torch.cat(
        [
            att.head_confidence(attend(trained.model, x[i : i + batch_size], workspace)[1])
            for i in range(0, len(x), batch_size)
        ]
    )


@dataclass(frozen=True)
class BatchStep:
    """Every measure of one batch of consecutive windows, as table rows.

    Attributes
    ----------
    trained
        The model explained.
    previous
        The previously active model, to measure how attention moved across the retrain.
    calibration
        The monitors fitted on the validation windows: which heads' going uniform is news.
    config
        Thresholds and switches.
    workspace
        Where each batch's largest tensors live, in the memory of the batch before: its
        attention is overwritten by the next batch's.
    """

    trained: TrainedModel
    previous: TrainedModel | None
    calibration: Calibration
    config: AnalysisConfig
    workspace: Workspace = field(default_factory=Workspace)

    def __call__(
        self, windows: Windows, explain: np.ndarray, carry: Carry | None
    ) -> tuple[BatchRows, Carry]:
        """The rows of ``windows``, and what the next batch needs of them.

        ``explain`` (B,) says which windows get flow and Integrated Gradients. ``carry``
        is what the batch before handed on; ``None`` for the first batch, whose first
        window then has no stability scores (NaN).
        """
        config, ts, model = self.config, windows.end_ts, self.trained.model
        x = self.trained.prepare(windows).x
        predictions, a = attend(model, x, self.workspace)
        confidence = att.head_confidence(a)
        events = (x[..., EVENT_FEATURES].abs() > config.event_z).any(-1)
        codes = att.pattern_class(a, events, config.recent_k, config.periods)
        mean = att.head_mean(a).unsqueeze(2)
        mixed = att.mixed_attention(mean[:, :, 0])
        codes_all = torch.cat(
            [codes, att.pattern_class(mean, events, config.recent_k, config.periods)], 2
        )
        found = importance(
            model, x, mean[:, :, 0], mixed, torch.from_numpy(explain), config.flow, config.ig_steps
        )
        roll = found.positions["attention_rollout"]
        stability = att.consecutive_stability(
            roll, carry.rollout_row if carry else None, config.top_k
        )
        window = pl.DataFrame(
            {
                "ts": utc(ts),
                "seed_confidence": confidence.mean(dim=(1, 2)).numpy(),
                "rollout_top_lags": top_lags(found.positions["attention_rollout"], config.top_k),
                "flow_top_lags": top_lags(found.positions["attention_flow"], config.top_k),
                "has_attention_flow": found.has("attention_flow").numpy(),
                "jsd_prev_window": stability["jsd"].numpy(),
                "topk_jaccard_prev_window": stability["topk_jaccard"].numpy(),
                "spearman_prev_window": stability["spearman"].numpy(),
                "jsd_prev_model": self._moved(windows, roll).numpy(),
                "attention_ig_spearman": found.agreement.numpy(),
                "has_integrated_gradients": found.has("integrated_gradients").numpy(),
                "head_gone_uniform": self.calibration.gone_uniform(confidence).numpy(),
                "pred_return": predictions.ret.numpy() * self.trained.target_scale,
                "pred_up_prob": predictions.direction_prob.numpy(),
                "pred_vol": predictions.vol.numpy() * self.trained.target_scale,
                "next_return": windows.next_return,
                "direction": windows.direction,
                "future_vol": windows.future_vol,
            }
        )
        lags = np.arange(a.shape[-1] - 1, -1, -1)
        rows = BatchRows(
            timestep=timestep_rows(ts, a, mean, codes_all, config.recent_k, self.workspace),
            window=window,
            attribution=score_rows(ts, found.features, "feature", np.array(FEATURES), True),
            positions=score_rows(ts, found.positions, "lag", lags, False),
            totals=HeadTotals.of(a, confidence, codes),
        )
        latest = LatestWindow(
            ts=window["ts"][-1],
            attention=a[-1].clone().numpy(),  # a copy, not a view of the whole batch's memory
            rollout=att.rollout_mixed(mixed[-1:])[0].numpy(),
            scores={name: value.numpy() for name, value in found.features_of(-1).items()},
        )
        return rows, Carry(rollout_row=roll[-1], latest=latest)

    def _moved(self, windows: Windows, roll: torch.Tensor) -> torch.Tensor:
        """(B,) divergence of each rollout row from the previous model's; NaN without one."""
        if self.previous is None:
            return torch.full((len(roll),), torch.nan)
        x = self.previous.prepare(windows).x
        _, before = attend(self.previous.model, x, self.workspace, "previous attention")
        return att.jensen_shannon(roll, att.rollout(before)[:, -1, :])


def fit_monitors(reference: torch.Tensor, config: AnalysisConfig) -> Calibration:
    """The monitors fitted on the per-head confidences (N, L, H) of the validation windows."""
    return Calibration.fit(
        reference,
        false_alarm_rate=config.false_alarm_rate,
        collapse_run=config.collapse_run,
        cusum_k=config.cusum_k,
    )


def analyze(
    trained: TrainedModel,
    windows: Windows,
    reference: torch.Tensor,
    previous: TrainedModel | None = None,
    config: AnalysisConfig = AnalysisConfig(),
) -> Analysis:
    """Every attention measure of every window of one series' evaluation period.

    Exact attention flow and Integrated Gradients, the costly ones, are computed for the
    newest windows and a sample of the older ones (``config.explain_newest`` and
    ``config.explain_every``); the window rows say which have them.

    Parameters
    ----------
    trained
        The model to explain.
    windows
        The evaluation period: consecutive windows (one bar apart), oldest first. The
        sample of older windows that get flow and Integrated Gradients counts from its first.
    reference
        Per-head confidences of the validation windows (:func:`reference_confidence`),
        which the monitors are calibrated on.
    previous
        The previously active model, to measure how attention moved across the retrain.
    config
        Thresholds and batch size.

    Raises
    ------
    ValueError
        If there are no windows.
    """
    trained.model.eval()
    calibration = fit_monitors(reference, config)
    step = BatchStep(trained, previous, calibration, config)
    parts: list[BatchRows] = []
    carry: Carry | None = None
    explain = explained(len(windows), config.explain_newest, config.explain_every)
    for batch in _batches(len(windows), config.batch_size):
        rows, carry = step(windows.take(batch), explain[batch], carry)
        parts.append(rows)
    if carry is None:
        raise ValueError("no windows to analyse")
    window = pl.concat(part.window for part in parts)
    return Analysis(
        timestep=pl.concat(part.timestep for part in parts),
        window=with_monitors(window, calibration),
        attribution=pl.concat(part.attribution for part in parts),
        positions=pl.concat(part.positions for part in parts),
        heads=head_summary(reduce(operator.add, (part.totals for part in parts))),
        latest=carry.latest,
    )


def _batches(count: int, size: int) -> Iterator[np.ndarray]:
    """Indices of ``count`` windows in consecutive batches of ``size`` (the last may be smaller)."""
    for start in range(0, count, size):
        yield np.arange(start, min(start + size, count))
