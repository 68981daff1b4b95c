"""Tasks of the attention analytics: analyse a series, store it, summarise the run's analyses."""

from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from attnviz.analysis import Analysis, AnalysisConfig
from attnviz.checkpoint import TrainedModel
from attnviz.evaluation_period import analyze_period
from attnviz.faults import crash_point
from attnviz.features import FEATURES
from attnviz.monitors import flag_shares
from attnviz.registry import ModelRecord, ModelsToExplain
from attnviz.series import Series
from tasks.cache import CACHE_EXPIRATION, cache_key, file_digest, frame_digest
from tasks.phases import phase
from tasks.turns import open_warehouse
from warehouse.attention import store_analysis


def _checkpoint_digest(record: ModelRecord) -> str | None:
    """Digest of a version's checkpoint bytes, or None if it is gone (the analysis then says so)."""
    try:
        return file_digest(record.checkpoint)
    except OSError:
        return None


def _analysis_cache_key(context: TaskRunContext, inputs: dict[str, Any]) -> str:
    """The series, its bars' content, both checkpoints' bytes, its split and the settings."""
    series: Series = inputs["series"]
    models: ModelsToExplain = inputs["models"]
    return cache_key(
        "analyze",
        series.label,
        frame_digest(inputs["bars"]),
        _checkpoint_digest(models.active),
        models.active.series_ranges[series.label],
        _checkpoint_digest(models.previous) if models.previous else None,
        asdict(inputs["settings"]),
    )


@task(
    name="analyze",
    task_run_name="analyze {series.label}",
    cache_key_fn=_analysis_cache_key,
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
@phase("analyse")
def analyze_series(
    series: Series, bars: pl.DataFrame, models: ModelsToExplain, settings: AnalysisConfig
) -> Analysis:
    """Analyse the active model on the series' evaluation period (``bars``: all its bars).

    What is evaluated, what calibrates and when the previous model is compared with are
    decided in :mod:`attnviz.evaluation_period`. Cached by the bars, the checkpoints'
    bytes, the series' split and the settings, like training.

    Raises
    ------
    CheckpointError
        If the active model's checkpoint cannot be read, naming it.
    """
    crash_point("analyse")
    logger = get_run_logger()
    trained = TrainedModel.load(models.active.checkpoint)
    result = analyze_period(trained, bars, models, series.label, settings, warn=logger.warning)
    shares = ", ".join(f"{flag} {share:.1%}" for flag, share in flag_shares(result.window).items())
    logger.info(
        "%s: %d windows analysed with %s v%d; flags on: %s",
        series.label,
        result.window.height,
        models.active.name,
        models.active.version,
        shares,
    )
    return result


@task(name="store-analysis", task_run_name="store {series.label}", cache_policy=NO_CACHE)
@phase("store")
def store(
    run_id: str, series: Series, model: ModelRecord, analysis: Analysis, figures: pl.DataFrame
) -> dict[str, int]:
    """Write the series' analytics and figure index in one transaction."""
    crash_point("store")
    frames = {
        "attention_timestep": analysis.timestep,
        "attention_window": analysis.window,
        "feature_attribution": analysis.attribution,
        "position_importance": analysis.positions,
        "head_summary": analysis.heads,
        "figures": figures,
    }
    with open_warehouse() as con:
        return store_analysis(con, run_id, series.key, (model.name, model.version), frames)


def summary_markdown(results: list[tuple[Series, Analysis, pl.DataFrame]]) -> str:
    """The run's analyses in markdown: a table of the series, then links to their PNGs.

    Per series: the latest window's calibrated confidence and collapse flag, the regime
    changes, the share of the evaluation windows each flag is on (a flag that is always
    on says nothing), and the latest window's top feature by rollout and by IG.
    """
    lines = [
        "| series | latest window | calibrated confidence | collapse | regime changes "
        "| collapse on | regime change on | head gone uniform on | top feature (rollout / IG) |",
        "|---|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for series, analysis, _ in results:
        last = analysis.window.row(-1, named=True)
        top = {
            method: FEATURES[int(np.argmax(scores))]
            for method, scores in analysis.latest.scores.items()
        }
        changes = int(analysis.window["regime_change"].sum())
        shares = flag_shares(analysis.window)
        lines.append(
            f"| {series.label} | {last['ts']} | {last['calibrated_confidence']:.2f} "
            f"| {'yes' if last['collapse'] else 'no'} | {changes} "
            f"| {shares['collapse']:.1%} | {shares['regime_change']:.1%} "
            f"| {shares['head_gone_uniform']:.1%} "
            f"| {top['attention_rollout']} / {top.get('integrated_gradients', 'n/a')} |"
        )
    lines += ["", "**Figures**", ""]
    for series, _, figures in results:
        links = ", ".join(
            f"[{kind}](file://{path})" for kind, path in figures.select("kind", "path").iter_rows()
        )
        lines.append(f"- {series.label}: {links}")
    return "\n".join(lines)


@task(name="summarise-analysis")
def summarise_analysis(results: list[tuple[Series, Analysis, pl.DataFrame]]) -> str:
    """Publish :func:`summary_markdown` of the run's analyses: artifact ``attention-summary``."""
    markdown = summary_markdown(results)
    create_markdown_artifact(
        markdown, key="attention-summary", description="Attention analytics per series"
    )
    return markdown
