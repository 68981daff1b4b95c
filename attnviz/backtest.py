"""Mark-to-market backtest of target positions, and a random baseline with the same exposure.

The fill rule. A window ends at bar t and its prediction is known at the close of bar t, so
the target position p[t] = s[t] * w[t] (signal in {-1, 0, +1} times size) is decided then.
It is filled at the open of bar t + 1 and marked to market at every close after. Bar k
therefore earns the gross simple return

    gross[k] = (1 + p[k-2] * gap[k]) * (1 + p[k-1] * intra[k]) - 1

with gap[k] = open[k] / close[k-1] - 1, the move between bars that the position held before
the fill still earns, and intra[k] = close[k] / open[k] - 1. No position uses the bar it was
decided on, and no decision sees the bar it is filled in. Each fill costs
|p[k-1] - p[k-2]| * (cost_bps + slippage_bps) / 1e4, taken from bar k's return: a flip from
+1 to -1 pays two sides. A position still open after the last bar pays no exit cost.

Alignment. m decisions take m + 1 bars, and result i is bar i + 1, the bar window i predicts:

    bar        0      1      2      ...    m
    decision   p[0]   p[1]   p[2]   ...    -
    result     -      [0]    [1]    ...    [m-1]

Annualisation reads the series' own calendar (:func:`bars_per_year`), never a constant such
as 252; the metrics are in :mod:`attnviz.performance`.
"""

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from attnviz.performance import sharpe_ratio, sign_runs

_YEAR = np.timedelta64(int(365.25 * 24 * 3600), "s")
# Positions held at once by the random baseline, draws times bars: bounds its memory (~8 MB
# per array) whatever the length of the series.
_CHUNK = 2**20


@dataclass(frozen=True)
class BacktestConfig:
    """How targets become positions and what trading costs.

    Attributes
    ----------
    cost_bps, slippage_bps
        Commission and slippage per side, in basis points of the traded notional.
    sizing
        ``"unit"``: every trade is one unit. ``"volatility"``: the size is
        min(target_vol / predicted volatility, max_leverage).
    target_vol
        Volatility per bar that volatility sizing aims at.
    max_leverage
        Largest size volatility sizing may take.
    risk_free_rate
        Annual simple risk-free rate for the Sharpe and Sortino ratios.
    """

    cost_bps: float = 1.0
    slippage_bps: float = 1.0
    sizing: Literal["unit", "volatility"] = "unit"
    target_vol: float = 0.01
    max_leverage: float = 1.0
    risk_free_rate: float = 0.0

    def __post_init__(self) -> None:
        if not (self.cost_bps >= 0 and self.slippage_bps >= 0):
            raise ValueError("cost_bps and slippage_bps must be >= 0")
        if not (self.target_vol > 0 and self.max_leverage > 0):
            raise ValueError("target_vol and max_leverage must be > 0")
        if self.sizing not in ("unit", "volatility"):
            raise ValueError(f"sizing must be 'unit' or 'volatility', got {self.sizing!r}")

    @property
    def cost_per_side(self) -> float:
        """What a fill of one unit costs, as a fraction of the notional."""
        return (self.cost_bps + self.slippage_bps) / 1e4


def bars_per_year(ts: np.ndarray) -> float:
    """Bars per year as the series trades: (n - 1) / span in years of 365.25 days.

    Measured on the stored bar open times ``ts`` (datetime64, oldest first), so a stock's
    daily bars give about 252, a 24/5 FX hourly series about 6,250 and a 24/7 crypto hourly
    series 8,766.

    Raises
    ------
    ValueError
        If ``ts`` is not datetime64, has fewer than two bars or is not strictly increasing.
    """
    if ts.dtype.kind != "M":
        raise ValueError(f"ts must be datetime64, got {ts.dtype}")
    if ts.size < 2:
        raise ValueError(f"bars_per_year needs at least two bars, got {ts.size}")
    if not (np.diff(ts) > np.timedelta64(0)).all():
        raise ValueError("ts must be strictly increasing")
    return float((ts.size - 1) / ((ts[-1] - ts[0]) / _YEAR))


def sizes(signal: np.ndarray, predicted_vol: np.ndarray, config: BacktestConfig) -> np.ndarray:
    """The size w[t] >= 0 of each decision; the target position is ``signal * sizes(...)``.

    Parameters
    ----------
    signal
        (m,) decisions in {-1, 0, +1}.
    predicted_vol
        (m,) predicted volatility per bar of each window (read with volatility sizing only).
        A prediction of 0 takes ``max_leverage``.
    config
        The sizing rule.

    Returns
    -------
    np.ndarray
        (m,) float sizes: 0 where the signal is 0 (HOLD), otherwise 1 with unit sizing and
        min(target_vol / predicted_vol, max_leverage) with volatility sizing.

    Raises
    ------
    ValueError
        If a signal is not -1, 0 or 1, the shapes differ, or volatility sizing meets a
        predicted volatility that is negative or not a number.
    """
    if not np.isin(signal, (-1, 0, 1)).all():
        raise ValueError("signal must hold only -1, 0 and 1")
    if predicted_vol.shape != signal.shape:
        raise ValueError(f"shapes differ: signal {signal.shape}, vol {predicted_vol.shape}")
    trading: np.ndarray = signal != 0
    if config.sizing == "unit":
        return trading.astype(np.float64)
    vol = predicted_vol.astype(np.float64)
    if not (vol >= 0).all():  # also refuses NaN
        raise ValueError("predicted_vol must be >= 0 for volatility sizing")
    # target / 0 is infinite, which the cap turns into max_leverage.
    with np.errstate(divide="ignore"):
        size = np.minimum(config.target_vol / vol, config.max_leverage)
    return np.where(trading, size, 0.0)


@dataclass(frozen=True)
class Backtest:
    """A backtest, one entry per bar after a decision (result i is bar i + 1).

    Attributes
    ----------
    position
        Position held over the bar's open..close, after the fill at its open: p[i].
    gross
        Simple return before costs.
    cost
        Cost of the fill at the bar's open, |p[i] - p[i-1]| * cost per side (p[-1] = 0).
    returns
        Net simple return, gross - cost.
    equity
        Cumulative product of 1 + returns: the value at the bar's close of 1 invested
        before the first bar.
    """

    position: np.ndarray
    gross: np.ndarray
    cost: np.ndarray
    returns: np.ndarray
    equity: np.ndarray


def backtest(
    open_: np.ndarray, close: np.ndarray, target: np.ndarray, config: BacktestConfig
) -> Backtest:
    """Mark to market the target positions under the fill rule (see the module docstring).

    Parameters
    ----------
    open_, close
        (m + 1,) prices of bars 0..m: the m bars of the decisions and the bar after the last.
    target
        (m,) target positions, ``target[t]`` decided at the close of bar t.
    config
        Costs per side.

    Returns
    -------
    Backtest
        m entries, entry i for bar i + 1.

    Raises
    ------
    ValueError
        If the lengths do not line up, there is no decision, a price is not positive or a
        target is not finite.
    """
    gap, intra = _moves(open_, close, target)
    position = target.astype(np.float64)
    gross, cost = _gross_and_cost(gap, intra, position, config.cost_per_side)
    returns = gross - cost
    return Backtest(position, gross, cost, returns, np.cumprod(1 + returns))


def random_positions(target: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Random strategies with the target's exposure: its holding periods shuffled.

    The target's stretches of same-signed positions keep their lengths and sizes, and so the
    bars in the market, the sizing and the trades they cost. Each of the ``draws`` rows puts
    them in a random order, at random places (every split of the flat bars into the gaps
    before, between and after them equally likely) and gives each a random direction.
    Shuffling single bars instead would split every holding period into one-bar trades,
    whose extra costs would make the baseline easy to beat.

    Returns
    -------
    np.ndarray
        (draws, m) positions; each row has as many non-zero entries as ``target``, with the
        same absolute values.
    """
    starts, lengths = sign_runs(target)
    runs, flat = starts.size, target.size - lengths.sum()
    order = rng.permuted(np.broadcast_to(np.arange(runs), (draws, runs)), axis=1)
    direction = rng.choice([-1.0, 1.0], size=(draws, runs))
    # Stars and bars: the stretches take `runs` distinct slots of flat + runs, in order; the
    # j-th stretch (counting from 0) then has slot - j flat bars before it.
    slots = np.sort(rng.random((draws, flat + runs)).argsort(axis=1)[:, :runs], axis=1)
    length = lengths[order]
    before = np.cumsum(length, axis=1) - length  # bars in the market before each stretch
    new_start = slots - np.arange(runs) + before

    # Every bar in the market, stretch after stretch: which (draw, stretch) it belongs to,
    # and how far into that stretch it lies.
    stretch = np.repeat(np.arange(draws * runs), length.ravel()).reshape(draws, -1)
    offset = np.arange(stretch.shape[1]) - before.ravel()[stretch]
    source = starts[order.ravel()[stretch]] + offset
    positions = np.zeros((draws, target.size))
    np.put_along_axis(
        positions,
        new_start.ravel()[stretch] + offset,
        direction.ravel()[stretch] * np.abs(target[source]),
        axis=1,
    )
    return positions


def random_same_exposure(
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    config: BacktestConfig,
    draws: int = 1000,
    seed: int = 0,
    *,
    bars_per_year: float = 1.0,
) -> np.ndarray:
    """Sharpe ratios of random strategies with the target's exposure, on the same bars.

    Each draw is a row of :func:`random_positions`, backtested like the target with the same
    costs. The same seed gives the same ratios; draws are made in chunks of bounded memory.

    Parameters
    ----------
    open_, close, target, config
        As for :func:`backtest`; ``config.risk_free_rate`` enters the ratios.
    draws
        Number of random strategies (>= 1).
    seed
        Seed of the random generator.
    bars_per_year
        Annualises the ratios. Pass the series' :func:`bars_per_year` to compare them with
        ``performance(...)["sharpe"]``; the default 1 gives ratios per bar.

    Returns
    -------
    np.ndarray
        (draws,) Sharpe ratios; NaN for a strategy that is flat all along (a target
        without a position gives only NaN).

    Raises
    ------
    ValueError
        As for :func:`backtest`, or if ``draws`` < 1.
    """
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    gap, intra = _moves(open_, close, target)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK // target.size)
    sharpes = []
    for first in range(0, draws, per_chunk):
        positions = random_positions(target, min(per_chunk, draws - first), rng)
        gross, cost = _gross_and_cost(gap, intra, positions, config.cost_per_side)
        sharpes.append(sharpe_ratio(gross - cost, bars_per_year, config.risk_free_rate))
    return np.concatenate(sharpes)


def percentile_of(value: float, distribution: np.ndarray) -> float:
    """Where ``value`` falls in ``distribution``: the percentage of its draws strictly below.

    NaN draws are left out; NaN if ``value`` is NaN or no draw is a number.
    """
    draws = distribution[~np.isnan(distribution)]
    if math.isnan(value) or draws.size == 0:
        return math.nan
    return float(100 * np.mean(draws < value))


def _moves(
    open_: np.ndarray, close: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The gap and intrabar return of bars 1..m, after checking the inputs line up."""
    if target.ndim != 1 or target.size == 0:
        raise ValueError(f"target must be a non-empty 1-d array, got shape {target.shape}")
    if open_.shape != (target.size + 1,) or close.shape != open_.shape:
        raise ValueError(
            f"{target.size} decisions need {target.size + 1} bars of open and close, "
            f"got {open_.shape} and {close.shape}"
        )
    if not ((open_ > 0).all() and (close > 0).all()):  # also refuses NaN
        raise ValueError("prices must be positive numbers")
    if not np.isfinite(target).all():
        raise ValueError("target positions must be finite")
    gap = open_[1:] / close[:-1] - 1
    intra = close[1:] / open_[1:] - 1
    return gap, intra


def _gross_and_cost(
    gap: np.ndarray, intra: np.ndarray, position: np.ndarray, cost_per_side: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gross returns and costs of (..., m) positions, one strategy per row."""
    before = np.zeros_like(position)  # held into the bar's open: flat before the first fill
    before[..., 1:] = position[..., :-1]
    gross = (1 + before * gap) * (1 + position * intra) - 1
    cost = np.abs(position - before) * cost_per_side
    return gross, cost
