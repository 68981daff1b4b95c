"""Performance of a backtest: the standard metrics, each defined where it is computed.

Every metric reads the per-bar net returns and positions of a :class:`~attnviz.backtest.Backtest`
and the series' own ``bars_per_year`` (see :func:`attnviz.backtest.bars_per_year`). A metric
that is undefined on the data at hand (a ratio over zero volatility, a hit rate without a bar
in the market) is NaN: never an error and never infinite, so a table of metrics always loads.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the backtest builds on the Sharpe ratio here: import its type only
    from attnviz.backtest import Backtest

METRICS = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_bars",
    "calmar",
    "hit_rate",
    "profit_factor",
    "trades",
    "exposure",
    "turnover",
    "avg_holding_bars",
)

# A standard deviation below this is a flat series, not a tiny risk: dividing by the rounding
# noise of a constant series would give a huge, meaningless ratio.
_FLAT = 1e-12


def performance(
    result: Backtest, bars_per_year: float, risk_free_rate: float = 0.0
) -> dict[str, float]:
    """The metrics of one backtest, keyed and ordered as :data:`METRICS`.

    With r the n per-bar net returns, p the positions, equity the cumulative product of
    1 + r (starting from 1 before the first bar), bpy = ``bars_per_year`` and a bar *in the
    market* one with a non-zero position over its open..close:

    * ``total_return``: equity at the end / 1 - 1.
    * ``annual_return``: (1 + total_return) ** (bpy / n) - 1; NaN if the equity ends below
      zero (possible with leverage).
    * ``annual_volatility``: std(r, ddof=1) * sqrt(bpy); NaN with one bar.
    * ``sharpe``: see :func:`sharpe_ratio`.
    * ``sortino``: mean(r - rf) / sqrt(mean(min(r - rf, 0) ** 2)) * sqrt(bpy), with rf the
      risk-free rate per bar; NaN when no bar falls short of rf.
    * ``max_drawdown``: max(1 - equity / running max of equity), a positive fraction (0.2
      is a 20% fall from a peak); the starting 1 is the first peak. 0 without a fall.
    * ``max_drawdown_bars``: the longest stretch of consecutive bars below a previous peak.
    * ``calmar``: annual_return / max_drawdown; NaN without a drawdown.
    * ``hit_rate``: share of the bars in the market with a net return above 0; NaN with none.
    * ``profit_factor``: sum of the gains / |sum of the losses| over the bars in the market;
      NaN without a losing bar.
    * ``trades``: fills, i.e. bars whose position differs from the one before (a flip from
      +1 to -1 is one fill of two sides; with volatility sizing a resize is a fill too).
    * ``exposure``: share of the bars in the market.
    * ``turnover``: sum |p[k] - p[k-1]| (from flat before the first bar) per year, i.e. times
      bpy / n: 2.0 is two full units traded a year.
    * ``avg_holding_bars``: bars in the market / entries, an entry being a bar that starts a
      stretch of same-signed positions (from flat, or a flip); NaN without one.

    Parameters
    ----------
    result
        The backtest (at least one bar).
    bars_per_year
        Bars per year of the series' calendar.
    risk_free_rate
        Annual simple risk-free rate; per bar it is (1 + rate) ** (1 / bpy) - 1.

    Returns
    -------
    dict[str, float]
        One value per name of :data:`METRICS`, in that order; ``trades`` and
        ``max_drawdown_bars`` are whole numbers.

    Raises
    ------
    ValueError
        If ``bars_per_year`` is not a positive number.
    """
    _check_bars_per_year(bars_per_year)
    returns, position, equity = result.returns, result.position, result.equity
    n = returns.size
    total = float(equity[-1] - 1)
    annual = (1 + total) ** (bars_per_year / n) - 1 if total >= -1 else math.nan
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    # Rounding in the cumulative product can leave a bar a hair under a peak it regained.
    drawdown = np.where(equity < peak * (1 - _FLAT), 1 - equity / peak, 0.0)
    max_drawdown = float(drawdown.max())
    underwater = sign_runs(drawdown > 0)[1]

    excess = returns - _risk_free_per_bar(risk_free_rate, bars_per_year)
    downside = math.sqrt(np.mean(np.minimum(excess, 0.0) ** 2))

    in_market = position != 0
    held = returns[in_market]
    losses = -held[held < 0].sum()
    change = np.abs(np.diff(position, prepend=0.0))
    entries = sign_runs(position)[0].size
    values = {
        "total_return": total,
        "annual_return": annual,
        "annual_volatility": returns.std(ddof=1) * math.sqrt(bars_per_year) if n > 1 else math.nan,
        "sharpe": float(sharpe_ratio(returns, bars_per_year, risk_free_rate)),
        "sortino": _ratio(excess.mean(), downside) * math.sqrt(bars_per_year),
        "max_drawdown": max_drawdown,
        "max_drawdown_bars": underwater.max(initial=0),
        "calmar": _ratio(annual, max_drawdown),
        "hit_rate": np.mean(held > 0) if held.size else math.nan,
        "profit_factor": held[held > 0].sum() / losses if losses > 0 else math.nan,
        "trades": np.count_nonzero(change),
        "exposure": np.mean(in_market),
        "turnover": change.sum() * bars_per_year / n,
        "avg_holding_bars": in_market.sum() / entries if entries else math.nan,
    }
    return {name: float(values[name]) for name in METRICS}


def sharpe_ratio(
    returns: np.ndarray, bars_per_year: float, risk_free_rate: float = 0.0
) -> np.ndarray:
    """Annualised Sharpe ratio of per-bar returns along the last axis.

    Sharpe = mean(r - rf) / std(r, ddof=1) * sqrt(bars_per_year), with rf the risk-free rate
    per bar, (1 + risk_free_rate) ** (1 / bars_per_year) - 1. NaN (never infinite) with fewer
    than two bars or a flat series (standard deviation below 1e-12).

    Parameters
    ----------
    returns
        (..., n) per-bar simple returns: one series, or one per row.
    bars_per_year
        Bars per year of the series' calendar.
    risk_free_rate
        Annual simple risk-free rate.

    Returns
    -------
    np.ndarray
        (...) Sharpe ratios: a 0-d array for one series.

    Raises
    ------
    ValueError
        If ``bars_per_year`` is not a positive number.
    """
    _check_bars_per_year(bars_per_year)
    if returns.shape[-1] < 2:
        return np.full(returns.shape[:-1], math.nan)
    excess = returns.mean(axis=-1) - _risk_free_per_bar(risk_free_rate, bars_per_year)
    sharpe: np.ndarray = _ratio(excess, returns.std(axis=-1, ddof=1)) * math.sqrt(bars_per_year)
    return sharpe


def sign_runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stretches of consecutive same-signed non-zero values (True counts as positive).

    Parameters
    ----------
    values
        (n,) numbers or booleans.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        The first index and the length of each stretch, in order: ``[0, 2, -1, -1, 0, 3]``
        has stretches starting at 1 (length 1), 2 (length 2) and 5 (length 1).
    """
    sign = np.sign(values.astype(np.float64))
    # Indices where the sign differs from the previous value (flat before and after the
    # series): each stretch starts at one and ends just before the next.
    changes = np.flatnonzero(np.diff(sign, prepend=0.0, append=0.0))
    starts, lengths = changes[:-1], np.diff(changes)
    nonzero = sign[starts] != 0
    return starts[nonzero], lengths[nonzero]


def _ratio(numerator: np.ndarray | float, denominator: np.ndarray | float) -> np.ndarray:
    """Numerator / denominator, NaN where the denominator is flat (below ``_FLAT``)."""
    flat = np.asarray(denominator) < _FLAT
    return np.where(flat, math.nan, np.divide(numerator, np.where(flat, 1.0, denominator)))


def _risk_free_per_bar(risk_free_rate: float, bars_per_year: float) -> float:
    return float((1 + risk_free_rate) ** (1 / bars_per_year) - 1)


def _check_bars_per_year(bars_per_year: float) -> None:
    if not (math.isfinite(bars_per_year) and bars_per_year > 0):
        raise ValueError(f"bars_per_year must be a positive number, got {bars_per_year}")
