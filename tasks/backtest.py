"""Tasks of the backtest: compare a series' strategies, draw them, store them, publish the table."""

from datetime import datetime

import polars as pl
from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from attnviz import config
from attnviz.analysis import AnalysisConfig
from attnviz.checkpoint import TrainedModel
from attnviz.comparison import Comparison, ComparisonConfig, compare
from attnviz.faults import crash_point
from attnviz.forecasts import series_forecasts
from attnviz.plots.figures import plan_backtest_figures
from attnviz.plots.pool import render_jobs
from attnviz.registry import ModelsToExplain
from attnviz.series import Series
from tasks.phases import phase
from tasks.turns import open_warehouse
from warehouse.attention import analysed_windows
from warehouse.backtest import comparison_rows, store_backtest


@task(name="backtest", task_run_name="backtest {series.label}", cache_policy=NO_CACHE)
@phase("backtest")
def backtest_series(
    series: Series,
    bars: pl.DataFrame,
    models: ModelsToExplain,
    analysis: AnalysisConfig,
    settings: ComparisonConfig,
) -> Comparison:
    """Backtest every strategy of the series on the active model's newest analysis.

    The test windows are the ``attention_window`` rows the newest run wrote for this
    series and model version; the validation windows, which choose the filter, are
    forecast here from the model's checkpoint (:func:`attnviz.forecasts.series_forecasts`).

    Raises
    ------
    LookupError
        If no run has analysed the series with the active version yet.
    ValueError
        If the series cannot be judged (e.g. fewer than 20 test bars), naming it.
    """
    crash_point("backtest")
    active = models.active
    with open_warehouse() as con:
        found = analysed_windows(con, series.key, (active.name, active.version))
    if found is None:
        raise LookupError(
            f"{series.label}: no analysis of {active.name} v{active.version} to backtest; "
            "run the nightly (or backfill) first"
        )
    _, evaluated = found
    trained = TrainedModel.load(active.checkpoint)
    try:
        forecasts = series_forecasts(
            trained, bars, active.series_ranges[series.label], evaluated, series.label, analysis
        )
        comparison = compare(forecasts, settings)
    except ValueError as error:  # too few bars to judge, or no filter that ever traded
        raise ValueError(f"{series.label}: cannot backtest: {error}") from error
    get_run_logger().info(
        "%s: %d strategies backtested on %d test bars; chosen on validation: %s. %s",
        series.label,
        comparison.strategies.height,
        len(comparison.ts),
        comparison.chosen,
        comparison.verdict.words,
    )
    return comparison


@task(name="render-backtest", task_run_name="render backtest {series.label}", cache_policy=NO_CACHE)
@phase("render")
def render_backtest(
    run_id: str, series: Series, comparison: Comparison, settings: ComparisonConfig
) -> pl.DataFrame:
    """Draw the series' backtest PNGs in worker processes; returns their ``figures`` rows."""
    crash_point("render")
    folder = (config.home() / "figures" / run_id / "_".join(series.key)).resolve()
    plan = plan_backtest_figures(series, comparison, settings, folder)
    return plan.index(render_jobs(plan.jobs))


@task(name="store-backtest", task_run_name="store backtest {series.label}", cache_policy=NO_CACHE)
@phase("store")
def store(
    run_id: str, series: Series, comparison: Comparison, figures: pl.DataFrame
) -> dict[str, int]:
    """Write the series' signals, strategies, results and backtest figures in one transaction."""
    crash_point("store")
    frames = {
        "signals": comparison.signals,
        "backtest_strategies": comparison.strategies,
        "backtest_results": comparison.results,
    }
    with open_warehouse() as con:
        return store_backtest(con, run_id, series.key, frames, figures)


@task(name="summarise-backtest")
def summarise_backtest(run_id: str, as_of: datetime) -> pl.DataFrame:
    """Publish the run's ``strategy_comparison`` rows as a table artifact; returns them."""
    with open_warehouse() as con:
        rows = comparison_rows(con, run_id)
    create_table_artifact(
        rows.with_columns(pl.col(pl.Float64).round(4)).to_dicts(),
        key="strategy-comparison",
        description=f"Did the confidence filter help, and is it significant? (as of {as_of})",
    )
    return rows
