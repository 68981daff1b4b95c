"""Charts of a backtest over a series' test period.

The equity curves of every strategy (with the drawdown of the one that matters
and of buy and hold), the filtered strategy's Sharpe ratio against the confidence
percentile that gates it, and where the strategy falls among random strategies
with the same exposure. Every return they show is net of costs, and each picture
says how much was charged.

A Sharpe ratio is NaN where a strategy made no trades: these renderers draw such
gaps and say so instead of refusing them.
"""

from collections.abc import Mapping, Sequence
from itertools import cycle
from pathlib import Path

import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from attnviz.plots.style import (
    HIGHLIGHT,
    LABEL_SIZE,
    TICK_SIZE,
    concise_dates,
    new_figure,
    save,
    set_title,
)

_BENCHMARK = "0.15"
# tab10 without its red (the highlight) and its grey (close to the benchmark's near-black).
_OTHERS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
# Equity curves go on a log scale once the best ends this many times above the worst.
_WIDE_RANGE = 3.0
# More strategies than this, and the legend leaves the panel for the figure's right edge.
_LEGEND_INSIDE = 4


def _costs(cost_bps: float) -> str:
    """The subtitle that says what every return shown was charged."""
    if not np.isfinite(cost_bps) or cost_bps < 0:
        raise ValueError(f"cost_bps must be a finite number >= 0; got {cost_bps}")
    return f"net of costs ({cost_bps:g} bps per side)"


def _sharpes(values: np.ndarray, name: str, length: int | None = None) -> np.ndarray:
    """``values``, Sharpe ratios, as a non-empty 1-D float array (of ``length``, if given).

    NaN (no trades) is allowed; a wrong shape or an infinity is a ValueError naming ``name``.
    """
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) == 0 or (length is not None and len(array) != length):
        expected = "(n,), n >= 1" if length is None else f"({length},)"
        raise ValueError(f"{name} must have shape {expected}; got shape {array.shape}")
    if np.isinf(array).any():
        raise ValueError(f"{name} holds infinite values; only NaN (no trades) may be missing")
    return array


def _note(axes: Axes, text: str) -> None:
    """Write ``text`` across ``axes``, above its middle: what a degenerate input leaves to say."""
    axes.text(
        0.5, 0.7, text, transform=axes.transAxes, ha="center", va="center", fontsize=12, color="0.4"
    )


def _legend_note(axes: Axes, text: str) -> None:
    """Add ``text`` to the legend of ``axes`` without a line: what there was nothing to draw for."""
    axes.plot([], [], " ", label=text)


def _finish(
    figure: Figure, panels: Sequence[Axes], subtitle: str, title: str, path: Path
) -> tuple[int, int]:
    """Give the panels their common look, ``subtitle`` over the first, ``title``; save the PNG."""
    panels[0].set_title(subtitle, fontsize=LABEL_SIZE + 1)
    for axes in panels:
        axes.tick_params(labelsize=TICK_SIZE + 1)
        axes.grid(alpha=0.3)
    set_title(figure, title)
    return save(figure, path)


def render_equity_curves(
    ts: np.ndarray,
    equity: Mapping[str, np.ndarray],
    path: Path,
    title: str,
    *,
    highlight: str,
    benchmark: str,
    cost_bps: float,
) -> tuple[int, int]:
    """Render every strategy's equity over the test period above two drawdown curves.

    The upper panel draws each strategy's equity (the growth of 1), on a log scale
    when the curves end far apart; ``highlight`` and ``benchmark`` stand out, the
    others are thinner. The lower panel draws the drawdown, ``1 - equity / running
    maximum``, of ``highlight`` and ``benchmark``, growing downwards.

    Parameters
    ----------
    ts
        (n,) datetime64 bar times of the test period, increasing.
    equity
        Strategy name -> (n,) equity, positive; the legend keeps this order after the
        two named below.
    highlight
        The strategy the picture is about (e.g. the filtered one), drawn in red.
    benchmark
        The strategy to beat (buy and hold), drawn in black.
    cost_bps
        Costs charged per side in basis points (commission and slippage), for the subtitle.

    Raises
    ------
    ValueError
        If ``ts`` is not datetime64, an equity curve does not fit it or is not positive,
        ``highlight`` and ``benchmark`` are not two strategies of ``equity``, or
        ``cost_bps`` is negative.
    """
    ts = np.asarray(ts)
    if ts.ndim != 1 or len(ts) == 0 or not np.issubdtype(ts.dtype, np.datetime64):
        raise ValueError(f"ts must be non-empty 1-D datetime64; got {ts.dtype}, shape {ts.shape}")
    curves = {name: np.asarray(values, dtype=float) for name, values in equity.items()}
    for name, curve in curves.items():
        if curve.shape != ts.shape or not (np.isfinite(curve) & (curve > 0)).all():
            raise ValueError(
                f"equity[{name!r}] must be {len(ts)} finite, positive values (the growth of 1), "
                f"one per bar of ts; got shape {curve.shape}"
            )
    for argument, name in (("highlight", highlight), ("benchmark", benchmark)):
        if name not in curves:
            raise ValueError(f"{argument} {name!r} is not a strategy of equity: {list(curves)}")
    if highlight == benchmark:
        raise ValueError(f"highlight and benchmark must be two strategies; both are {highlight!r}")
    subtitle = _costs(cost_bps)

    figure = new_figure(11.0, 7.0)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.4])
    others = [name for name in curves if name not in (highlight, benchmark)]
    looks = {name: (colour, 1.0, 2) for name, colour in zip(others, cycle(_OTHERS), strict=False)}
    looks[benchmark] = (_BENCHMARK, 1.8, 3)
    looks[highlight] = (HIGHLIGHT, 2.2, 4)
    for name in [highlight, benchmark, *others]:  # the legend's order; zorder sets the drawing's
        colour, width, zorder = looks[name]
        label = f"{name} ({curves[name][-1]:.2f})"
        top.plot(ts, curves[name], color=colour, linewidth=width, zorder=zorder, label=label)
    top.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    ends = [curve[-1] for curve in curves.values()]
    if max(ends) / min(ends) >= _WIDE_RANGE:
        top.set_yscale("log")
        # Ticks at 1, 2 and 5 times the powers of ten, written as plain numbers (0.5, not 5e-1).
        top.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        top.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:g}"))
        top.yaxis.set_minor_formatter(ticker.NullFormatter())
    top.set_ylabel("equity (growth of 1)", fontsize=LABEL_SIZE + 1)
    legend = {"fontsize": 8, "title": "strategy (final equity)", "title_fontsize": 8}
    if len(curves) <= _LEGEND_INSIDE:
        top.legend(loc="upper left", **legend)
    else:
        figure.legend(*top.get_legend_handles_labels(), loc="outside right upper", **legend)

    deepest = 0.0
    for name in (benchmark, highlight):
        colour, width, zorder = looks[name]
        drawdown = 100 * (1 - curves[name] / np.maximum.accumulate(curves[name]))
        deepest = max(deepest, float(drawdown.max()))
        label = f"{name} (max {drawdown.max():.1f}%)"
        bottom.plot(ts, drawdown, color=colour, linewidth=width * 0.7, zorder=zorder, label=label)
        if name == highlight:
            bottom.fill_between(ts, 0, drawdown, color=HIGHLIGHT, alpha=0.2, linewidth=0)
    # Drawdowns grow downwards from 0, under the curves they come from.
    bottom.set_ylim(max(1.1 * deepest, 1.0), 0)
    bottom.set_ylabel("drawdown (%)", fontsize=LABEL_SIZE + 1)
    bottom.legend(loc="lower left", fontsize=8)
    concise_dates(bottom)
    return _finish(figure, [top, bottom], subtitle, title, path)


def render_sharpe_by_percentile(
    percentiles: np.ndarray,
    sharpe: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    path: Path,
    title: str,
    *,
    unfiltered: Sequence[float],
    chosen: float | None,
    cost_bps: float,
    level: float = 0.95,
) -> tuple[int, int]:
    """Render the filtered strategy's Sharpe ratio, with its interval, at each confidence gate.

    The filtered strategy trades only when calibrated confidence reaches a percentile:
    its annualised Sharpe ratio on the test period at each, in the band of its interval,
    beside the unfiltered strategy's (dashed, in a grey band), zero and, dotted, the
    percentile chosen on validation. Percentiles without trades are crosses on zero.

    Parameters
    ----------
    percentiles
        (k,) the confidence percentiles of the gate, increasing.
    sharpe, low, high
        (k,) Sharpe ratio and interval bounds at each percentile; NaN for no trades.
    unfiltered
        The unfiltered strategy's (Sharpe ratio, low, high); NaN for no trades.
    chosen
        The percentile chosen on validation, one of ``percentiles``; None if none was.
    cost_bps
        Costs charged per side in basis points (commission and slippage), for the subtitle.
    level
        The intervals' confidence level, for the legend.

    Raises
    ------
    ValueError
        If ``percentiles`` is not finite and increasing, an array does not fit it or holds
        infinities, ``unfiltered`` is not three values, ``chosen`` is not a percentile, or
        ``cost_bps`` is negative.
    """
    percentiles = np.asarray(percentiles, dtype=float)
    if percentiles.ndim != 1 or len(percentiles) == 0 or not np.isfinite(percentiles).all():
        raise ValueError(f"percentiles must be non-empty, 1-D and finite; got {percentiles}")
    if not (np.diff(percentiles) > 0).all():
        raise ValueError(f"percentiles must be increasing; got {percentiles.tolist()}")
    sharpe, low, high = (
        _sharpes(values, name, len(percentiles))
        for values, name in ((sharpe, "sharpe"), (low, "low"), (high, "high"))
    )
    if len(unfiltered) != 3:
        raise ValueError(f"unfiltered must be (sharpe, low, high); got {tuple(unfiltered)}")
    base, base_low, base_high = _sharpes(np.asarray(unfiltered), "unfiltered")
    if chosen is not None and not np.isin(chosen, percentiles):
        raise ValueError(f"chosen {chosen} is not one of percentiles {percentiles.tolist()}")
    subtitle = _costs(cost_bps)

    figure = new_figure(9.0, 5.5)
    axes = figure.subplots()
    axes.axhline(0, color="0.3", linewidth=0.8)
    interval = f"{level:.0%} block-bootstrap interval"
    if np.isfinite(base):
        label = f"unfiltered: {base:.2f}"
        axes.axhline(base, color="0.3", linestyle="--", linewidth=1.3, label=label)
    else:
        _legend_note(axes, "unfiltered: no trades")
    if np.isfinite([base_low, base_high]).all():
        label = f"unfiltered's {interval}"
        axes.axhspan(base_low, base_high, color="0.5", alpha=0.15, linewidth=0, label=label)
    axes.fill_between(
        percentiles, low, high, color="tab:blue", alpha=0.25, linewidth=0, label=interval
    )
    # Each interval as a line too: one between two percentiles without trades has no band.
    axes.vlines(percentiles, low, high, color="tab:blue", linewidth=0.8)
    label = "filtered by calibrated confidence"
    axes.plot(percentiles, sharpe, "o-", color="tab:blue", label=label)
    idle = np.isnan(sharpe)
    if idle.any():
        label = "no trades at this percentile"
        axes.plot(percentiles[idle], 0 * percentiles[idle], "x", color="0.4", ms=9, label=label)
    if idle.all():
        _note(axes, "no trades at any percentile")
        if np.isnan(base):
            axes.set_ylim(-1, 1)  # nothing to scale to: an axis around zero, not +-0.05
    if chosen is None:
        _legend_note(axes, "no percentile chosen on validation")
    else:
        label = f"chosen on validation: percentile {chosen:g}"
        axes.axvline(chosen, color=HIGHLIGHT, linestyle=":", linewidth=1.6, label=label)
    if len(percentiles) <= 12:
        axes.set_xticks(percentiles, [f"{p:g}" for p in percentiles])
    axes.set_xlabel("trade only above this percentile of calibrated confidence", fontsize=10)
    axes.set_ylabel("annualised Sharpe ratio, test period", fontsize=LABEL_SIZE + 1)
    axes.legend(loc="best", fontsize=8)
    return _finish(figure, [axes], subtitle, title, path)


def render_random_distribution(
    draws: np.ndarray,
    value: float,
    path: Path,
    title: str,
    *,
    percentile: float,
    label: str,
    cost_bps: float,
) -> tuple[int, int]:
    """Render the Sharpe ratios of random strategies with the same exposure, and the strategy's.

    A histogram of the random strategies' annualised Sharpe ratios, the strategy's own
    in red; the legend says the share of draws below it, and counts those left out of
    the histogram for want of trades (NaN).

    Parameters
    ----------
    draws
        (m,) Sharpe ratios of the random strategies; NaN for one without trades.
    value
        The strategy's Sharpe ratio; NaN if it made no trades.
    percentile
        The share of ``draws`` below ``value``, 0 to 100; NaN if undefined.
    label
        The strategy's name.
    cost_bps
        Costs charged per side in basis points (commission and slippage), for the subtitle.

    Raises
    ------
    ValueError
        If ``draws`` is empty, not 1-D or holds infinities, ``value`` is infinite,
        ``percentile`` is outside 0 to 100, or ``cost_bps`` is negative.
    """
    draws = _sharpes(draws, "draws")
    (value,) = _sharpes(np.array([value]), "value")
    if not (np.isnan(percentile) or 0 <= percentile <= 100):
        raise ValueError(f"percentile must be within 0 to 100 (or NaN); got {percentile}")
    subtitle = _costs(cost_bps)

    figure = new_figure(9.0, 5.0)
    axes = figure.subplots()
    traded = draws[np.isfinite(draws)]
    if len(traded):
        idle = len(draws) - len(traded)
        counted = f"{len(traded)} random strategies, same exposure" + (
            f" ({idle} without trades left out)" if idle else ""
        )
        axes.hist(
            traded, bins="auto", color="0.65", edgecolor="white", linewidth=0.5, label=counted
        )
        axes.margins(y=0.2)  # room for the legend above the tallest bar
    else:
        _note(axes, f"none of the {len(draws)} random strategies traded")
        axes.set(xticks=[], yticks=[])
    if np.isnan(value):
        _legend_note(axes, f"{label}: no trades")
    else:
        below = "" if np.isnan(percentile) else f", above {percentile:.1f}% of the draws"
        axes.axvline(value, color=HIGHLIGHT, linewidth=2.2, label=f"{label}: {value:.2f}{below}")
    axes.set_xlabel("annualised Sharpe ratio, test period", fontsize=10)
    axes.set_ylabel("random strategies", fontsize=LABEL_SIZE + 1)
    axes.legend(loc="upper left", fontsize=8)
    return _finish(figure, [axes], subtitle, title, path)
