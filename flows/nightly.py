"""The nightly job: bring every series up to date, retrain, and explain the active models.

ingest -> validate -> train -> evaluate -> register -> analyse -> render -> store.
Training and analysis fan out as one task per model or series; everything that
writes to the warehouse runs one at a time (DuckDB has one writer).
"""

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import polars as pl
from prefect import flow
from pydantic import Field

from attnviz.analysis import AnalysisConfig
from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.quality import DEFAULT_MAX_STEP
from attnviz.series import SAMPLE_SERIES, Series
from attnviz.train import TrainConfig
from flows.ingest import DEFAULT_MAX_REJECTED_SHARE, MaxRejectedShare, MaxStep, ingest_series
from tasks.analyze import analyze_series, render, store, summarise_analysis
from tasks.runs import recorded_run, scheduled_as_of
from tasks.train import (
    models_to_explain,
    read_training_bars,
    register_model,
    summarise_models,
    train,
)
from warehouse.bars import SeriesLoad
from warehouse.models import ModelRow


@dataclass
class NightlyReport:
    """What a nightly run did: loads, model versions registered, analytics rows written."""

    loads: list[SeriesLoad]
    models: list[tuple[int, ModelRow]]
    analytics: dict[str, dict[str, int]]


def model_groups(series: list[Series], pool: bool) -> dict[str, list[Series]]:
    """Model name -> the series it trains on: one per series, or one per interval when pooled."""
    if not pool:
        return {one.label: [one] for one in series}
    groups: dict[str, list[Series]] = {}
    for one in series:
        groups.setdefault(one.interval, []).append(one)
    return {"+".join(one.label for one in group): group for group in groups.values()}


def explain(
    run_id: str,
    groups: dict[str, list[Series]],
    bars: dict[Series, pl.DataFrame],
    models: dict[str, tuple[dict[str, Any], dict[str, Any] | None]],
    settings: AnalysisConfig,
) -> dict[str, dict[str, int]]:
    """Analyse, render and store every series with its group's (model, previous model).

    Analyses fan out as tasks; rendering and storing run one series at a time as
    each analysis finishes. Returns the rows written per series label and table.
    """
    analyses = {
        one: (models[name][0], analyze_series.submit(one, bars[one], *models[name], settings))
        for name, group in groups.items()
        for one in group
    }
    results, written = [], {}
    for one, (active, future) in analyses.items():
        result = future.result()
        figures = render(run_id, one, result, bars[one])
        written[one.label] = store(run_id, one, active, result, figures)
        results.append((one, result, figures))
    summarise_analysis(results)
    return written


@flow(name="nightly")
def nightly(
    series: list[Series] = SAMPLE_SERIES,
    as_of: datetime | None = None,
    max_step: MaxStep = DEFAULT_MAX_STEP,
    max_rejected_share: MaxRejectedShare = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, dict[str, Any]] | None = None,
    pool: bool = False,
    features: FeatureConfig = FeatureConfig(),  # noqa: B008 (frozen dataclass, safe as default)
    model: ModelConfig = ModelConfig(),  # noqa: B008
    training: TrainConfig = TrainConfig(),  # noqa: B008
    promotion_margin: Annotated[float, Field(ge=0)] = 0.05,
    analysis: AnalysisConfig = AnalysisConfig(),  # noqa: B008
) -> NightlyReport:
    """Incrementally ingest and validate every series, then retrain and register models.

    Parameters
    ----------
    series
        The series to keep; default: the committed sample data.
    as_of
        The moment the run stands at; only bars closed by then are used. Default: the
        start of the UTC day the run was scheduled on, so a retry or a second run that
        day is the same work and replaces the first one's rows.
    max_step, max_rejected_share
        Validation limits, as in :func:`flows.ingest.ingest`.
    source_options
        Options per source name, e.g. ``{"files": {"path": "bars/"}}``.
    pool
        Train one model per interval on all its series instead of one per series.
    features, model, training
        Window, architecture and training settings.
    promotion_margin
        A new model replaces the active one unless its validation loss is worse by more than this.
    analysis
        Thresholds and batch size of the attention analytics.
    """
    as_of = as_of or scheduled_as_of("1d")
    parameters = {
        "series": [one.model_dump() for one in series],
        "max_step": max_step,
        "max_rejected_share": max_rejected_share,
        "source_options": source_options,
        "pool": pool,
        "features": asdict(features),
        "model": asdict(model),
        "training": asdict(training),
        "promotion_margin": promotion_margin,
        "analysis": asdict(analysis),
    }
    with recorded_run("nightly", parameters, as_of) as run_id:
        loads = ingest_series(
            run_id,
            series,
            as_of=as_of,
            max_step=max_step,
            max_rejected_share=max_rejected_share,
            source_options=source_options,
        )
        groups = model_groups(series, pool)
        bars = {one: read_training_bars(one, as_of) for one in series}
        fits = {
            name: train.submit(name, [bars[one] for one in group], features, model, training)
            for name, group in groups.items()
        }
        registered = [
            register_model(run_id, as_of, name, groups[name], fit.result(), promotion_margin)
            for name, fit in fits.items()
        ]
        summarise_models(registered)

        explained = {name: models_to_explain(name) for name in groups}
        written = explain(run_id, groups, bars, explained, analysis)
        return NightlyReport(loads=loads, models=registered, analytics=written)
