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
from attnviz.comparison import Comparison, ComparisonConfig
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


def plan_backtest_figures(
    series: Series, comparison: Comparison, config: ComparisonConfig, folder: Path
) -> FigurePlan:
    """Decide the series' three backtest PNGs, all over its test period.

    The equity curves of every strategy (the chosen filter and buy and hold drawn
    out, with their drawdowns), the filter's Sharpe ratio against the confidence
    percentile beside the unfiltered Transformer's, and the random same-exposure
    strategies' Sharpe ratios with the chosen filter's.
    """
    name = f"{series.symbol} {series.interval}"
    cost_bps = config.trading.cost_bps + config.trading.slippage_bps
    results = comparison.results
    grid, chosen = comparison.grid, comparison.chosen

    def value(strategy: str, metric: str, column: str = "value") -> float:
        row = results.filter((pl.col("strategy") == strategy) & (pl.col("metric") == metric))
        return float(row[column][0]) if row.height and row[column][0] is not None else float("nan")

    [chosen_threshold] = comparison.strategies.filter(pl.col("chosen"))["threshold"]
    figures = {
        "equity_curves": {
            "ts": comparison.ts.dt.replace_time_zone(None).to_numpy(),
            "equity": comparison.equity,
            "title": f"{name}: equity of every strategy over the test period",
            "highlight": chosen,
            "benchmark": "buy_and_hold",
            "cost_bps": cost_bps,
        },
        "sharpe_by_percentile": {
            "percentiles": grid["percentile"].to_numpy(),
            "sharpe": grid["sharpe"].to_numpy(),
            "low": grid["low"].to_numpy(),
            "high": grid["high"].to_numpy(),
            "title": f"{name}: Sharpe of the confidence-filtered strategy by percentile",
            "unfiltered": tuple(
                value("unfiltered", "sharpe", column) for column in ("value", "ci_low", "ci_high")
            ),
            "chosen": 100 * chosen_threshold,
            "cost_bps": cost_bps,
            "level": config.level,
        },
        "random_distribution": {
            "draws": comparison.random_sharpes,
            "value": value(chosen, "sharpe"),
            "title": f"{name}: {chosen} against random strategies with its exposure",
            "percentile": value(chosen, "random_percentile"),
            "label": chosen,
            "cost_bps": cost_bps,
        },
    }
    span = (comparison.ts[0], comparison.ts[-1])
    return FigurePlan(
        jobs=[RenderJob(kind, folder / f"{kind}.png", kwargs) for kind, kwargs in figures.items()],
        spans=[span] * len(figures),
    )
