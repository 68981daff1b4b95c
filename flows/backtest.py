"""Backtest the active models on demand: the strategy comparison of their newest analyses.

Nothing is fetched, trained or analysed: for each catalogue model the flow reads the
series' bars, the active version and its newest ``attention_window`` rows, and
compares the strategies as the nightly run does, under a run of its own (so the
nightly's rows stay as they were). Running it again for the same moment replaces its
rows.
"""

import polars as pl
from prefect import flow

from attnviz import config
from attnviz.catalogue import load_catalogue
from attnviz.series import Moment, Symbol
from flows.steps import backtest as backtest_step
from tasks.runs import recorded_run, scheduled_as_of
from tasks.train import models_to_explain, read_training_bars


@flow(name="backtest")
def backtest(
    catalogue: str | None = None,
    symbols: list[Symbol] | None = None,
    as_of: Moment | None = None,
) -> pl.DataFrame:
    """Compare the strategies of the active models on their newest analyses.

    Args:
        catalogue: Catalogue file (YAML) whose models to backtest, with its backtest settings.
            Default: $ATTNVIZ_CATALOGUE or catalogues/sample.yaml.
        symbols: Backtest only the models of these symbols. Default: every model.
        as_of: Bars closed by then are used. Default: the start of the current UTC day.

    Returns:
        The run's strategy_comparison rows, series by series.
    """
    chosen = load_catalogue(catalogue or config.catalogue_path())
    as_of = as_of or scheduled_as_of("1d")
    # A symbol the catalogue lacks is refused here, named, before any run.
    models = {name: spec.series for name, spec in chosen.models(symbols).items()}
    parameters = {"catalogue": chosen.model_dump(mode="json"), "symbols": symbols}
    with recorded_run("backtest", parameters, as_of) as run_id:
        series = [one for members in models.values() for one in members]
        bars = {one: read_training_bars(one, as_of) for one in series}
        active = {name: models_to_explain(name) for name in models}
        return backtest_step(run_id, as_of, models, bars, active, chosen.analysis, chosen.backtest)
