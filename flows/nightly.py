"""The nightly job: bring every series up to date, retrain, explain and backtest the models.

ingest -> validate -> train -> evaluate -> register -> analyse -> render -> store -> backtest.
Training and analysis fan out as one task per model or series; everything that
writes to the warehouse runs one at a time (DuckDB has one writer).
"""

from dataclasses import dataclass

import polars as pl
from prefect import flow

from attnviz import config
from attnviz.catalogue import load_catalogue
from attnviz.quality import (
    DEFAULT_MAX_REJECTED_SHARE,
    DEFAULT_MAX_STEP,
    MaxRejectedShare,
    MaxStep,
)
from attnviz.registry import ModelRecord
from attnviz.series import Moment
from flows.steps import backtest, explain, ingest_series
from tasks.runs import recorded_run, scheduled_as_of
from tasks.train import (
    models_to_explain,
    read_training_bars,
    register_model,
    summarise_models,
    train,
)
from warehouse.bars import SeriesLoad


@dataclass
class NightlyReport:
    """What a nightly run did: loads, versions registered, analytics rows, the comparison."""

    loads: list[SeriesLoad]
    models: list[ModelRecord]
    analytics: dict[str, dict[str, int]]
    backtests: pl.DataFrame  # the run's strategy_comparison rows


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
        models = chosen.models()
        bars = {one: read_training_bars(one, as_of) for one in (e.series for e in chosen.entries)}
        fits = {
            name: train.submit(
                name,
                [bars[one] for one in spec.series],
                spec.group.features,
                spec.group.model,
                spec.group.training,
            )
            for name, spec in models.items()
        }
        registered = [
            register_model(
                run_id,
                as_of,
                name,
                models[name].series,
                fit.result(),
                models[name].group.promotion_margin,
            )
            for name, fit in fits.items()
        ]
        summarise_models(registered)

        explained = {name: models_to_explain(name) for name in models}
        groups = {name: spec.series for name, spec in models.items()}
        written = explain(run_id, groups, bars, explained, chosen.analysis)
        tested = backtest(run_id, as_of, groups, bars, explained, chosen.analysis, chosen.backtest)
        return NightlyReport(loads=loads, models=registered, analytics=written, backtests=tested)
