"""The render task: draw a series' PNGs in worker processes and index them in ``figures``."""

import polars as pl
from prefect import task
from prefect.cache_policies import NO_CACHE

from attnviz import config
from attnviz.analysis import Analysis
from attnviz.faults import crash_point
from attnviz.plots.figures import render_figures
from attnviz.series import Series
from tasks.phases import phase


@task(name="render", task_run_name="render {series.label}", cache_policy=NO_CACHE)
@phase("render")
def render(run_id: str, series: Series, analysis: Analysis, bars: pl.DataFrame) -> pl.DataFrame:
    """Render the series' PNGs under ``<home>/figures/<run_id>/``; returns the ``figures`` rows."""
    crash_point("render")
    folder = (config.home() / "figures" / run_id / "_".join(series.key)).resolve()
    return render_figures(series, analysis, bars, folder)
