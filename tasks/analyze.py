"""Tasks of the attention analytics: analyse a series, render its figures, store it all."""

import json
from dataclasses import asdict
from typing import Any

import numpy as np
import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from attnviz.analysis import Analysis, AnalysisConfig, analyze, reference_confidence
from attnviz.checkpoint import CheckpointError, TrainedModel
from attnviz.faults import crash_point
from attnviz.features import FEATURES, make_windows
from attnviz.series import Series
from tasks.cache import CACHE_EXPIRATION, cache_key, file_digest, frame_digest
from tasks.turns import open_warehouse
from warehouse.attention import store_analysis


def _checkpoint_digest(path: str) -> str | None:
    """Digest of a checkpoint's bytes, or None if it is gone (the analysis then says so)."""
    try:
        return file_digest(path)
    except OSError:
        return None


def _analysis_cache_key(context: TaskRunContext, inputs: dict[str, Any]) -> str:
    active, previous = inputs["active"], inputs["previous"]
    return cache_key(
        "analyze",
        inputs["series"].label,
        frame_digest(inputs["bars"]),
        _checkpoint_digest(active["checkpoint"]),
        active["series_ranges"],
        _checkpoint_digest(previous["checkpoint"]) if previous else None,
        asdict(inputs["settings"]),
    )


def _previous_model(previous: dict[str, Any] | None, active: TrainedModel) -> TrainedModel | None:
    """The previous model, if it reads the same windows as ``active`` and its checkpoint loads.

    Without it, attention moved across the retrain is not measured (NaN); an unreadable
    checkpoint of a retired model is no reason to fail the analysis of the active one.
    """
    if previous is None:
        return None
    try:
        before = TrainedModel.load(previous["checkpoint"])
    except CheckpointError as error:
        get_run_logger().warning(
            "%s v%d, the previous model: %s; attention moved across the retrain is not measured",
            previous["name"],
            previous["version"],
            error,
        )
        return None
    return before if before.feature_config == active.feature_config else None


@task(
    name="analyze",
    task_run_name="analyze {series.label}",
    cache_key_fn=_analysis_cache_key,
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
def analyze_series(
    series: Series,
    bars: pl.DataFrame,
    active: dict[str, Any],
    previous: dict[str, Any] | None,
    settings: AnalysisConfig,
) -> Analysis:
    """Analyse the active model on the series' evaluation period (``bars``: all its bars).

    The evaluation period is every window of the series ending at or after its test
    start in the model's split: its test part and any bars that arrived since the
    model was trained. Confidence is calibrated against the series' training windows.
    Attention moved across the retrain is measured only when the previous model reads
    the same windows (same feature config) and its checkpoint can be read. Cached by
    the bars, the checkpoints' bytes and the settings, like training.

    Raises
    ------
    CheckpointError
        If the active model's checkpoint cannot be read, naming it.
    """
    crash_point("analyse")
    trained = TrainedModel.load(active["checkpoint"])
    windows = make_windows(bars, trained.feature_config)
    ends = windows.end_ts.astype("datetime64[us]")
    ranges = json.loads(active["series_ranges"])[series.label]
    train_start, train_end = (np.datetime64(moment, "us") for moment in ranges["train"])
    test_start = np.datetime64(ranges["test"][0], "us")
    train = np.flatnonzero((ends >= train_start) & (ends <= train_end))
    if len(train) == 0:
        raise ValueError(f"{series.label}: no windows in the model's training period any more")
    reference = reference_confidence(trained, windows.take(train))
    before = _previous_model(previous, trained)
    evaluation = ends >= test_start
    result = analyze(trained, windows.take(np.flatnonzero(evaluation)), reference, before, settings)
    get_run_logger().info(
        "%s: %d windows analysed with %s v%d",
        series.label,
        result.window.height,
        active["name"],
        active["version"],
    )
    return result


@task(name="store-analysis", task_run_name="store {series.label}", cache_policy=NO_CACHE)
def store(
    run_id: str, series: Series, active: dict[str, Any], analysis: Analysis, figures: pl.DataFrame
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
        return store_analysis(con, run_id, series.key, (active["name"], active["version"]), frames)


@task(name="summarise-analysis")
def summarise_analysis(results: list[tuple[Series, Analysis, pl.DataFrame]]) -> str:
    """Publish a markdown artifact: latest confidence, flags, top features, links to the PNGs."""
    lines = [
        "| series | latest window | calibrated confidence | collapse | regime changes "
        "| top feature (rollout / IG) |",
        "|---|---|---:|---|---:|---|",
    ]
    for series, analysis, _ in results:
        last = analysis.window.row(-1, named=True)
        top = {
            method: FEATURES[int(np.argmax(scores))]
            for method, scores in analysis.latest.scores.items()
        }
        changes = int(analysis.window["regime_change"].sum())
        lines.append(
            f"| {series.label} | {last['ts']} | {last['calibrated_confidence']:.2f} "
            f"| {'yes' if last['collapse'] else 'no'} | {changes} "
            f"| {top['attention_rollout']} / {top.get('integrated_gradients', 'n/a')} |"
        )
    lines += ["", "**Figures**", ""]
    for series, _, figures in results:
        links = ", ".join(
            f"[{kind}](file://{path})" for kind, path in figures.select("kind", "path").iter_rows()
        )
        lines.append(f"- {series.label}: {links}")
    markdown = "\n".join(lines)
    create_markdown_artifact(
        markdown, key="attention-summary", description="Attention analytics per series"
    )
    return markdown
