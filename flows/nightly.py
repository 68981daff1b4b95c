"""The nightly job: bring every series up to date, retrain, explain and backtest the models.

ingest -> validate -> train -> evaluate -> register -> analyse -> render -> store -> backtest.
Fetches run concurrently (sources are slow, the machine is idle meanwhile). The
CPU-heavy work (training, analysis, backtests) runs one task at a time with all
the cores: on two cores that is about 1.5x slower than five trainings in threads,
but concurrent trainings share torch's random generator (so no night could be
reproduced) and each holds its own memory. Everything that writes to the warehouse
runs one at a time (DuckDB has one writer).
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
    training_plan,
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
        registered: list[ModelRecord] = []
        for name, spec in models.items():
            plan = training_plan(run_id, as_of, name, spec)
            group = spec.group
            fit = train(
                name,
                [bars[one] for one in spec.series],
                group.features,
                group.model,
                group.training,
                plan,
            )
            registered.append(
                register_model(run_id, as_of, name, spec.series, fit, plan, group.promotion_margin)
            )
        summarise_models(registered)

        explained = {name: models_to_explain(name) for name in models}
        groups = {name: spec.series for name, spec in models.items()}
        written = explain(run_id, groups, bars, explained, chosen.analysis)
        tested = backtest(run_id, as_of, groups, bars, explained, chosen.analysis, chosen.backtest)
        return NightlyReport(loads=loads, models=registered, analytics=written, backtests=tested)
