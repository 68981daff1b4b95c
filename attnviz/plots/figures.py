"""What each PNG of a series is given, and the ``figures`` rows that index the PNGs.

A series gets six PNGs per run. Four show its latest window, labelled with the
window's bar times: the attention grid (every head of every layer), the
attention rollout, the flow diagram and the attribution bars. The flow diagram
draws the attention between positions that each layer's heads make together
(their mean), not the rollout: with the residual mixed in, the rollout is mostly
each position's weight on itself. Two PNGs cover the evaluation period: the
confidence timeline and the head panel.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from attnviz.analysis import Analysis
from attnviz.features import FEATURES
from attnviz.plots.pool import RenderJob, render_jobs
from attnviz.series import Series

# The PNGs of the latest window; the others cover the evaluation period.
_LATEST_WINDOW = ("attention_grid", "rollout", "flow", "attribution")


@dataclass(frozen=True)
class FigurePlan:
    """The PNGs of one series: what to render, and the time span each PNG covers.

    Attributes
    ----------
    jobs
        One render job per PNG.
    spans
        (first, last) bar time each PNG shows, in job order.
    """

    jobs: list[RenderJob]
    spans: list[tuple[datetime, datetime]]

    def index(self, sizes: Sequence[tuple[int, int]]) -> pl.DataFrame:
        """The ``figures`` rows of the rendered PNGs, given their (width, height) in job order."""
        if len(sizes) != len(self.jobs):
            raise ValueError(f"got {len(sizes)} sizes for {len(self.jobs)} PNGs")
        return pl.DataFrame(
            {
                "kind": [job.kind for job in self.jobs],
                "layer": None,
                "head": None,
                "ts_start": [start for start, _ in self.spans],
                "ts_end": [end for _, end in self.spans],
                "path": [str(job.path) for job in self.jobs],
                "width": [width for width, _ in sizes],
                "height": [height for _, height in sizes],
            },
            schema_overrides={"layer": pl.Int32, "head": pl.Int32},
        )


def plan_figures(
    series: Series, analysis: Analysis, bars: pl.DataFrame, folder: Path
) -> FigurePlan:
    """Decide the series' PNGs: which renderer draws what, into ``folder/<kind>.png``.

    Parameters
    ----------
    series
        The series, for titles and the format of its bar times.
    analysis
        Its analysis: the latest window's matrices and the evaluation period's rows.
    bars
        Its bars (at least ``ts`` and ``close``), for the window's times and the prices.
    folder
        Where the PNGs go.
    """
    latest, heads = analysis.latest, analysis.heads
    times = bars.filter(pl.col("ts") <= latest.ts)["ts"].tail(latest.attention.shape[-1])
    fmt = "%Y-%m-%d" if series.interval in ("1d", "1w") else "%m-%d %H:%M"
    labels = times.dt.strftime(fmt).to_list()
    title = f"{series.symbol} {series.interval}, window ending {labels[-1]}"
    period = analysis.window.join(bars.select("ts", "close"), on="ts", how="left")
    n_layers, n_heads = latest.attention.shape[:2]
    figures = {
        "attention_grid": {
            "attention": latest.attention,
            "labels": labels,
            "title": f"Attention: {title}",
        },
        "rollout": {
            "rollout": latest.rollout,
            "labels": labels,
            "title": f"Attention rollout: {title}",
        },
        "flow": {
            "weights": latest.attention.mean(axis=1),
            "labels": labels,
            "title": f"Attention flow, heads averaged: {title}",
        },
        "timeline": {
            "ts": period["ts"].dt.replace_time_zone(None).to_numpy(),
            "close": period["close"].to_numpy(),
            "confidence": period["calibrated_confidence"].to_numpy(),
            "collapse": period["collapse"].to_numpy(),
            "regime": period["regime_change"].to_numpy(),
            "title": f"{series.symbol} {series.interval}: calibrated confidence, evaluation period",
        },
        "attribution": {
            "features": list(FEATURES),
            "scores": latest.scores,
            "title": f"Feature attribution by method: {title}",
        },
        "heads": {
            "specialisation": heads.filter(pl.col("head") == 0)["specialisation"].to_numpy(),
            "head_confidence": heads["mean_confidence"].to_numpy().reshape(n_layers, n_heads),
            "patterns": heads["dominant_pattern"].to_numpy().reshape(n_layers, n_heads).tolist(),
            "title": f"{series.symbol} {series.interval}: heads over the evaluation period",
        },
    }
    in_window, in_period = (times[0], times[-1]), (period["ts"][0], period["ts"][-1])
    return FigurePlan(
        jobs=[RenderJob(kind, folder / f"{kind}.png", kwargs) for kind, kwargs in figures.items()],
        spans=[in_window if kind in _LATEST_WINDOW else in_period for kind in figures],
    )


def render_figures(
    series: Series,
    analysis: Analysis,
    bars: pl.DataFrame,
    folder: Path,
    processes: int | None = None,
) -> pl.DataFrame:
    """Render the series' PNGs into ``folder`` (see :func:`plan_figures`); their ``figures`` rows.

    ``processes`` is passed to :func:`~attnviz.plots.pool.render_jobs`.
    """
    plan = plan_figures(series, analysis, bars, folder)
    return plan.index(render_jobs(plan.jobs, processes))
