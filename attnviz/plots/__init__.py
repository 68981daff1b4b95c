"""PNG renderers for attention, rollout and flow, confidence, attributions, heads and backtests.

The contract every renderer keeps (their own docstrings say only what is theirs):

* a pure function over numpy arrays (and label strings), drawn with
  matplotlib's object API (a :class:`~matplotlib.figure.Figure` on an Agg
  canvas), never ``pyplot``: importing or calling it changes no global matplotlib
  state, so it is safe in notebooks and in threads (one figure per call, or per
  thread for the attention grid);
* it takes the PNG's ``path`` and ``title`` (besides what it draws), and writes
  the PNG to ``path`` atomically (see :func:`attnviz.atomic.replacing`),
  as a world-readable file, creating the folder; a failed render leaves no file;
* it returns the PNG's ``(width, height)`` in pixels;
* it raises :class:`ValueError` naming the argument for input of the wrong
  shape, non-finite values, or labels that do not match the positions.

Modules, one per kind of picture: :mod:`~attnviz.plots.grid` (attention heatmaps),
:mod:`~attnviz.plots.flow` (the flow diagram), :mod:`~attnviz.plots.charts` (timeline,
attribution bars, head panel), :mod:`~attnviz.plots.backtest` (equity curves, Sharpe by
confidence percentile, random strategies), with what they share in :mod:`~attnviz.plots.style`.
:mod:`~attnviz.plots.pool` renders many PNGs in worker processes, and
:mod:`~attnviz.plots.figures` decides what each PNG of a series is given.
"""

from attnviz.plots.backtest import (
    render_equity_curves,
    render_random_distribution,
    render_sharpe_by_percentile,
)
from attnviz.plots.charts import (
    render_attribution_bars,
    render_confidence_timeline,
    render_head_panel,
)
from attnviz.plots.flow import render_flow_diagram
from attnviz.plots.grid import AttentionGridRenderer, render_attention_grid, render_rollout
from attnviz.plots.pool import RENDERERS, RenderJob, render_jobs

__all__ = [
    "RENDERERS",
    "AttentionGridRenderer",
    "RenderJob",
    "render_attention_grid",
    "render_attribution_bars",
    "render_confidence_timeline",
    "render_equity_curves",
    "render_flow_diagram",
    "render_head_panel",
    "render_jobs",
    "render_random_distribution",
    "render_rollout",
    "render_sharpe_by_percentile",
]
