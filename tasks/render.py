"""The render task: draw a series' PNGs in worker processes and index them in ``figures``."""

from datetime import datetime

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from attnviz import config
from attnviz.analysis import Analysis
from attnviz.faults import crash_point
from attnviz.features import FEATURES
from attnviz.render_pool import RenderJob, render_jobs
from attnviz.series import Series


def _labels(
    bars: pl.DataFrame, last: datetime, size: int, interval: str
) -> tuple[list[str], pl.Series]:
    """Tick labels of the ``size`` bars ending at ``last``, and their times."""
    times = bars.filter(pl.col("ts") <= last)["ts"].tail(size)
    fmt = "%Y-%m-%d" if interval in ("1d", "1w") else "%m-%d %H:%M"
    return times.dt.strftime(fmt).to_list(), times


@task(name="render", task_run_name="render {series.label}", cache_policy=NO_CACHE)
def render(run_id: str, series: Series, analysis: Analysis, bars: pl.DataFrame) -> pl.DataFrame:
    """Render the series' PNGs in worker processes; returns the ``figures`` rows."""
    crash_point("render")
    latest = analysis.latest
    labels, times = _labels(bars, latest.ts, latest.attention.shape[-1], series.interval)
    folder = (config.home() / "figures" / run_id / "_".join(series.key)).resolve()
    title = f"{series.symbol} {series.interval}, window ending {labels[-1]}"
    window = analysis.window.join(bars.select("ts", "close"), on="ts", how="left")
    heads = analysis.heads
    n_layers, n_heads = latest.attention.shape[:2]
    jobs = {
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
            "weights": latest.rollout,
            "labels": labels,
            "title": f"Attention flow diagram (rollout): {title}",
        },
        "timeline": {
            "ts": window["ts"].dt.replace_time_zone(None).to_numpy(),
            "close": window["close"].to_numpy(),
            "confidence": window["calibrated_confidence"].to_numpy(),
            "collapse": window["collapse"].to_numpy(),
            "regime": window["regime_change"].to_numpy(),
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
    sizes = render_jobs(
        [RenderJob(kind, folder / f"{kind}.png", kwargs) for kind, kwargs in jobs.items()]
    )
    spans = {
        kind: (times[0], times[-1]) for kind in ("attention_grid", "rollout", "flow", "attribution")
    }
    period = (window["ts"][0], window["ts"][-1])
    return pl.DataFrame(
        {
            "kind": list(jobs),
            "layer": None,
            "head": None,
            "ts_start": [spans.get(kind, period)[0] for kind in jobs],
            "ts_end": [spans.get(kind, period)[1] for kind in jobs],
            "path": [str(folder / f"{kind}.png") for kind in jobs],
            "width": [w for w, _ in sizes],
            "height": [h for _, h in sizes],
        },
        schema_overrides={"layer": pl.Int32, "head": pl.Int32},
    )
