"""The nightly job: bring every series up to date, retrain, and explain the active models.

ingest -> validate -> train -> evaluate -> register -> analyse -> render -> store.
Training and analysis fan out as one task per model or series; everything that
writes to the warehouse runs one at a time (DuckDB has one writer).
"""

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import flow

from attnviz.analysis import AnalysisConfig
from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.series import SAMPLE_SERIES, Series
from attnviz.train import TrainConfig
from flows.ingest import (
    DEFAULT_MAX_REJECTED_SHARE,
    DEFAULT_MAX_STEP,
    ingest_series,
    recorded_run,
)
from tasks.analyze import analyze_series, render, store, summarise_analysis
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


@flow(name="nightly")
def nightly(
    series: list[Series] = SAMPLE_SERIES,
    as_of: datetime | None = None,
    max_step: float = DEFAULT_MAX_STEP,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, dict[str, Any]] | None = None,
    pool: bool = False,
    features: FeatureConfig = FeatureConfig(),  # noqa: B008 (frozen dataclass, safe as default)
    model: ModelConfig = ModelConfig(),  # noqa: B008
    training: TrainConfig = TrainConfig(),  # noqa: B008
    promotion_margin: float = 0.05,
    analysis: AnalysisConfig = AnalysisConfig(),  # noqa: B008
) -> NightlyReport:
    """Incrementally ingest and validate every series, then retrain and register models.

    Parameters
    ----------
    series
        The series to keep; default: the committed sample data.
    as_of
        The moment the run stands at (default now); only bars closed by then enter.
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
    as_of = as_of or datetime.now(UTC)
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
        bars = {one: read_training_bars(one) for one in series}
        fits = {
            name: train.submit(name, [bars[one] for one in group], features, model, training)
            for name, group in groups.items()
        }
        registered = [
            register_model(run_id, name, groups[name], fit.result(), promotion_margin)
            for name, fit in fits.items()
        ]
        summarise_models(registered)

        explained = {name: models_to_explain(name) for name in groups}
        analyses = {
            one: (
                explained[name][0],
                analyze_series.submit(one, bars[one], *explained[name], analysis),
            )
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
        return NightlyReport(loads=loads, models=registered, analytics=written)
