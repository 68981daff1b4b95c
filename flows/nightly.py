"""The nightly job: bring every series up to date, retrain, and explain the active models.

ingest -> validate -> train -> evaluate -> register -> analyse -> render -> store.
Training and analysis fan out as one task per model or series; everything that
writes to the warehouse runs one at a time (DuckDB has one writer).
"""

from dataclasses import dataclass
from typing import Any

import polars as pl
from prefect import flow

from attnviz import config
from attnviz.analysis import AnalysisConfig
from attnviz.catalogue import Catalogue, Group, load_catalogue
from attnviz.quality import DEFAULT_MAX_STEP
from attnviz.series import Moment, Series
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


def catalogue_models(catalogue: Catalogue) -> dict[str, tuple[list[Series], Group]]:
    """Model name -> (the series it trains on, its group's settings), over every group."""
    return {
        name: (members, group)
        for group in catalogue.groups.values()
        for name, members in model_groups(
            [entry.series for entry in group.series], group.pool
        ).items()
    }


@flow(name="nightly")
def nightly(
    catalogue: str | None = None,
    as_of: Moment | None = None,
    max_step: MaxStep = DEFAULT_MAX_STEP,
    max_rejected_share: MaxRejectedShare = DEFAULT_MAX_REJECTED_SHARE,
) -> NightlyReport:
    """Bring every catalogue series up to date, retrain and register its models, explain them.

    Args:
        catalogue: Catalogue file (YAML) naming the series, their sources and each group's
            training settings. Default: $ATTNVIZ_CATALOGUE or catalogues/sample.yaml.
        as_of: The moment the run stands at; only bars closed by then are used. Default: the
            start of the UTC day the run was scheduled on, so a retry or a second run that
            day is the same work and replaces the first one's rows.
        max_step: Largest ratio between consecutive closes (or a bar's high and low) allowed.
        max_rejected_share: The run fails (after loading the good bars) if a series' share of
            rejected rows is above this.
    """
    chosen = load_catalogue(catalogue or config.catalogue_path())
    as_of = as_of or scheduled_as_of("1d")
    parameters = {
        "catalogue": chosen.model_dump(mode="json"),
        "max_step": max_step,
        "max_rejected_share": max_rejected_share,
    }
    with recorded_run("nightly", parameters, as_of) as run_id:
        loads = ingest_series(
            run_id,
            chosen.select(),
            as_of=as_of,
            max_step=max_step,
            max_rejected_share=max_rejected_share,
        )
        models = catalogue_models(chosen)
        bars = {one: read_training_bars(one, as_of) for one in (e.series for e in chosen.entries)}
        fits = {
            name: train.submit(
                name, [bars[one] for one in members], group.features, group.model, group.training
            )
            for name, (members, group) in models.items()
        }
        registered = [
            register_model(
                run_id, as_of, name, models[name][0], fit.result(), models[name][1].promotion_margin
            )
            for name, fit in fits.items()
        ]
        summarise_models(registered)

        explained = {name: models_to_explain(name) for name in models}
        groups = {name: members for name, (members, _) in models.items()}
        written = explain(run_id, groups, bars, explained, chosen.analysis)
        return NightlyReport(loads=loads, models=registered, analytics=written)
