"""The nightly job: bring every series up to date, retrain, explain and backtest the models.

ingest -> validate -> train -> evaluate -> register -> analyse -> render -> store -> backtest.
Fetches run concurrently (sources are slow, the machine is idle meanwhile).
Trainings run concurrently too, as many as there are cores, each on one torch
thread (:func:`train_models`). Analyses and backtests run one task at a time
with all the cores. Everything that writes to the warehouse runs one at a time
(DuckDB has one writer).
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import polars as pl
import torch
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from attnviz import config
from attnviz.catalogue import ModelSpec, load_catalogue
from attnviz.quality import (
    DEFAULT_MAX_REJECTED_SHARE,
    DEFAULT_MAX_STEP,
    MaxRejectedShare,
    MaxStep,
)
from attnviz.registry import ModelRecord
from attnviz.series import Moment, Series
from attnviz.train import FitResult
from attnviz.warm_start import TrainingPlan
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


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch threads (a setting of the whole process)."""
    outer = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(outer)


def train_models(
    models: dict[str, ModelSpec],
    bars: dict[Series, pl.DataFrame],
    plans: dict[str, TrainingPlan],
) -> dict[str, FitResult]:
    """Train every model, as many at a time as the process has cores, each on one torch thread.

    These networks are small: on two cores four trainings two at a time, on one thread
    each, took 26 s, and one at a time on both threads 31 to 35 s. Each training shuffles
    and draws its dropout from its own generator (:mod:`attnviz.train`), and one thread
    each makes its arithmetic the same on any number of cores: a night is reproducible.
    The models with the most bars start first, so that a small one finishes last.
    """
    cores = os.cpu_count() or 1
    largest_first = sorted(
        models, key=lambda name: -sum(bars[s].height for s in models[name].series)
    )
    runner: ThreadPoolTaskRunner[FitResult] = ThreadPoolTaskRunner(max_workers=cores)
    with torch_threads(1), runner:
        futures = {}
        for name in largest_first:
            spec = models[name]
            futures[name] = runner.submit(
                train,
                {
                    "name": name,
                    "bars": [bars[one] for one in spec.series],
                    "features": spec.group.features,
                    "model": spec.group.model,
                    "training": spec.group.training,
                    "plan": plans[name],
                },
            )
        return {name: futures[name].result() for name in models}


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
        plans = {name: training_plan(run_id, as_of, name, spec) for name, spec in models.items()}
        fits = train_models(models, bars, plans)
        registered = [
            register_model(
                run_id,
                as_of,
                name,
                spec.series,
                fits[name],
                plans[name],
                spec.group.promotion_margin,
            )
            for name, spec in models.items()
        ]
        summarise_models(registered)

        explained = {name: models_to_explain(name) for name in models}
        groups = {name: spec.series for name, spec in models.items()}
        written = explain(run_id, groups, bars, explained, chosen.analysis)
        tested = backtest(run_id, as_of, groups, bars, explained, chosen.analysis, chosen.backtest)
        return NightlyReport(loads=loads, models=registered, analytics=written, backtests=tested)
