"""Is a strategy's edge real? Block-bootstrap Sharpe intervals and Hansen's SPA verdict.

A backtest's Sharpe ratio comes from one path of prices. :func:`sharpe_interval` says how
far it could move had the market drawn another path like it; :func:`sharpe_difference` says
whether one strategy beats another on the same bars; :func:`spa_verdict` says whether the
best of a grid of strategies beats a benchmark once the size of the grid is accounted for.

Bar returns are autocorrelated (positions are held for several bars, volatility clusters),
so resampling single bars would understate the uncertainty. Every resample here is
``arch``'s stationary bootstrap (Politis & Romano, 1994): blocks of consecutive bars of
random length, whose mean length ``optimal_block_length`` estimates from the data (Politis
& White, 2004, with Patton's correction). Where several series are resampled together, the
block length is the longest any of them needs, so none is under-covered. Two strategies
compared with each other are resampled jointly (the same bars for both): what they share
cancels. Everything is seeded with a ``numpy.random.Generator``: the same seed gives the
same numbers.

Intervals are percentile intervals of the bootstrap draws. The two-sided p-value of a
difference is read from the same draws, as twice the smaller share of draws on either side
of zero, so a difference is significant at 1 - level when its interval excludes zero (up
to how finely the draws resolve the tails).

Inputs: fewer than 20 bars, non-finite returns or series of different lengths raise
``ValueError``. Constant returns (a strategy that never trades) are an answer, not an
error: their Sharpe ratio is undefined, so intervals come back NaN and the words say why.
A draw of a strategy that rarely trades can pick only its flat bars; such a draw has no
Sharpe ratio either, and the intervals use the draws that have one.

SPA caveat: arch 8.0's ``SPA`` records its ``studentize`` flag without applying it; the max
statistic compares the candidates' mean outperformance unscaled (White's Reality Check
with Hansen's recentring). That is still a valid test, less powerful when the candidates'
volatilities differ a lot, and it makes the candidate with the highest mean return the one
the test is about.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnviz.performance import sharpe_ratio

_MIN_BARS = 20  # below this, neither a block length nor a Sharpe ratio means much


@dataclass(frozen=True)
class Difference:
    """Sharpe(a) - Sharpe(b) on the same bars, with its bootstrap interval and p-value."""

    estimate: float
    low: float
    high: float
    p_value: float  # two-sided, of "no difference"
    significant: bool  # p_value < 1 - level: the interval excludes zero
    words: str  # e.g. "filtered minus unfiltered Sharpe 0.31 [-0.42, 1.05]: not significant ..."


@dataclass(frozen=True)
class Verdict:
    """Whether any candidate beats the benchmark, after accounting for how many were tried."""

    p_value: float  # SPA's consistent p-value
    best: str  # the candidate with the highest mean return
    significant: bool  # p_value < level
    words: str  # one sentence for a trader, saying so when nothing is significant


def sharpe_interval(
    returns: np.ndarray,
    bars_per_year: float,
    *,
    risk_free_rate: float = 0.0,
    level: float = 0.95,
    draws: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Annualised Sharpe ratio with a block-bootstrap percentile interval.

    Parameters
    ----------
    returns
        Net simple return per bar, oldest first.
    bars_per_year
        The series' own calendar (``backtest.bars_per_year``).
    risk_free_rate
        Annual, simple; per bar (1 + rate) ** (1 / bars_per_year) - 1.
    level
        Coverage of the interval.
    draws
        Bootstrap resamples.
    seed
        Seed of the resampling.

    Returns
    -------
    tuple[float, float, float]
        (sharpe, low, high); all NaN when the returns are constant.

    Raises
    ------
    ValueError
        If there are fewer than 20 returns or any is not finite.
    """
    series = _checked("returns", returns)
    sharpe = float(_sharpe(series, bars_per_year, risk_free_rate))
    if math.isnan(sharpe):
        return math.nan, math.nan, math.nan
    samples = _resampled(series, lambda x: _sharpe(x, bars_per_year, risk_free_rate), draws, seed)
    low, high, _ = _summary(samples, level)
    return sharpe, low, high


def sharpe_difference(
    a: np.ndarray,
    b: np.ndarray,
    bars_per_year: float,
    *,
    risk_free_rate: float = 0.0,
    level: float = 0.95,
    draws: int = 1000,
    seed: int = 0,
    names: tuple[str, str] = ("a", "b"),
) -> Difference:
    """Sharpe(a) - Sharpe(b), with a paired block bootstrap over the same bars.

    Parameters
    ----------
    a, b
        Net simple returns per bar of two strategies over the same bars, oldest first.
    bars_per_year
        The series' own calendar (``backtest.bars_per_year``).
    risk_free_rate
        Annual, simple.
    level
        Coverage of the interval; the difference is significant at 1 - level.
    draws
        Bootstrap resamples.
    seed
        Seed of the resampling.
    names
        What to call a and b in the words, e.g. ("filtered", "unfiltered").

    Returns
    -------
    Difference
        NaN numbers, not significant, and words saying why when either series is constant.

    Raises
    ------
    ValueError
        If a series has fewer than 20 returns or a non-finite one, or their lengths differ.
    """
    first = _checked(names[0], a)
    pair = np.column_stack([first, _checked(names[1], b, bars=len(first))])

    def difference(bars: np.ndarray) -> np.ndarray:
        sharpes = _sharpe(bars, bars_per_year, risk_free_rate)
        gap: np.ndarray = sharpes[:1] - sharpes[1:]
        return gap

    label = f"{names[0]} minus {names[1]} Sharpe"
    estimate = float(difference(pair)[0])
    if math.isnan(estimate):
        constant = " and ".join(name for name, x in zip(names, pair.T, strict=True) if _flat(x))
        words = f"{label} undefined: the returns of {constant} are constant (no trades?)"
        return Difference(math.nan, math.nan, math.nan, math.nan, False, words)
    low, high, p_value = _summary(_resampled(pair, difference, draws, seed), level)
    significant = p_value < 1 - level
    words = (
        f"{label} {estimate:.2f} [{low:.2f}, {high:.2f}]: "
        f"{'significant' if significant else 'not significant'} at {1 - level:.0%} "
        f"({_p_words(p_value)})"
    )
    return Difference(estimate, low, high, p_value, significant, words)


def spa_verdict(
    benchmark: np.ndarray,
    candidates: dict[str, np.ndarray],
    *,
    reps: int = 1000,
    seed: int = 0,
    level: float = 0.05,
    benchmark_name: str = "the benchmark",
) -> Verdict:
    """Hansen's test of superior predictive ability: whether any candidate beats the benchmark.

    SPA asks whether the best of all the candidates tried beats the benchmark by more than
    the best of that many lucky draws would, so trying more thresholds cannot manufacture
    an edge. It works on losses: the per-bar losses here are the negated net returns.

    Parameters
    ----------
    benchmark
        Net simple returns per bar of the benchmark strategy, oldest first.
    candidates
        Name -> net simple returns per bar over the same bars, e.g. one per threshold.
    reps
        Bootstrap resamples.
    seed
        Seed of the resampling.
    level
        Size of the test.
    benchmark_name
        What to call the benchmark in the words.

    Returns
    -------
    Verdict
        The consistent p-value; the best candidate by mean return; words for a trader.

    Raises
    ------
    ValueError
        If there is no candidate, a series has fewer than 20 returns or a non-finite one,
        or the lengths differ.
    """
    if not candidates:
        raise ValueError("spa_verdict needs at least one candidate")
    base = _checked(benchmark_name, benchmark)
    names = list(candidates)
    returns = np.column_stack([_checked(name, candidates[name], bars=len(base)) for name in names])
    best = names[int(np.argmax(returns.mean(axis=0)))]
    # A candidate equal to the benchmark on every bar cannot beat it, and its all-zero
    # outperformance would tie with the test statistic, which arch counts as evidence
    # (p-value = share of draws strictly above it): left out, it cannot fake a rejection.
    differs = np.any(returns != base[:, None], axis=0)
    p_value = _spa_p_value(base, returns[:, differs], reps, seed) if differs.any() else 1.0
    significant = p_value < level
    tried = f"{len(names)} candidate{'s' if len(names) > 1 else ''}"
    if significant:
        words = (
            f"{best} beats {benchmark_name}, and survives the adjustment for testing "
            f"{tried} (SPA {_p_words(p_value)})."
        )
    else:
        words = (
            f"No candidate beats {benchmark_name} once the {tried} tried are accounted for: "
            f"the best, {best}, is not significant at {level:.0%} (SPA {_p_words(p_value)})."
        )
    return Verdict(p_value, best, significant, words)


def _spa_p_value(benchmark: np.ndarray, candidates: np.ndarray, reps: int, seed: int) -> float:
    """SPA's consistent p-value for (bars, k) candidate returns against benchmark returns."""
    from arch.bootstrap import SPA  # see _resampled

    spa = SPA(
        -benchmark,
        -candidates,
        block_size=_block_length(candidates - benchmark[:, None]),  # what SPA resamples
        reps=reps,
        seed=np.random.default_rng(seed),
    )
    spa.compute()
    return float(spa.pvalues["consistent"])


def _sharpe(returns: np.ndarray, bars_per_year: float, risk_free_rate: float) -> np.ndarray:
    """Sharpe ratio of each column (bars along axis 0): :func:`attnviz.performance.sharpe_ratio`."""
    return sharpe_ratio(returns.T, bars_per_year, risk_free_rate)


def _flat(returns: np.ndarray) -> np.ndarray:
    """Whether each column (bars along axis 0) holds one value on every bar."""
    flat: np.ndarray = np.ptp(returns, axis=0) == 0
    return flat


def _resampled(
    data: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], draws: int, seed: int
) -> np.ndarray:
    """The statistic on ``draws`` stationary-bootstrap resamples of the bars (rows) of data."""
    # arch loads statsmodels (about a second); imported where used, so that reading a
    # catalogue (whose backtest settings live beside this) does not pay for it.
    from arch.bootstrap import StationaryBootstrap

    rng = np.random.default_rng(seed)
    bootstrap = StationaryBootstrap(_block_length(data), data, seed=rng)
    samples: np.ndarray = bootstrap.apply(statistic, reps=draws)[:, 0]
    return samples


def _block_length(data: np.ndarray) -> int:
    """Mean block length: the longest the varying columns of data need, at least 1 bar."""
    columns = data.reshape(len(data), -1)
    varying = columns[:, ~_flat(columns)]
    if varying.shape[1] == 0:  # nothing to estimate from (and arch would divide by zero)
        return 1
    from arch.bootstrap import optimal_block_length  # see _resampled

    lengths = optimal_block_length(varying)["stationary"].to_numpy()
    return math.ceil(float(np.nanmax(lengths, initial=1.0)))


def _summary(samples: np.ndarray, level: float) -> tuple[float, float, float]:
    """(low, high, two-sided p-value of zero) from the bootstrap draws that are defined."""
    defined = samples[np.isfinite(samples)]
    if defined.size == 0:
        return math.nan, math.nan, math.nan
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(defined, [tail, 100.0 - tail])
    p_value = min(1.0, 2.0 * min(np.mean(defined <= 0), np.mean(defined >= 0)))
    return float(low), float(high), float(p_value)


def _p_words(p_value: float) -> str:
    """A p-value as a reader sees it: two decimals, or "p < 0.01"."""
    return "p < 0.01" if p_value < 0.01 else f"p = {p_value:.2f}"


def _checked(name: str, returns: np.ndarray, bars: int | None = None) -> np.ndarray:
    """Returns as a float 1-D array, refused when too short, non-finite or of another length."""
    series = np.asarray(returns, dtype=float)
    if series.ndim != 1:
        raise ValueError(f"{name}: expected one return per bar, got an array of {series.shape}")
    if bars is not None and len(series) != bars:
        raise ValueError(f"{name}: {len(series)} bars, but the series it is compared to has {bars}")
    if len(series) < _MIN_BARS:
        raise ValueError(f"{name}: {len(series)} bars; the bootstrap needs at least {_MIN_BARS}")
    bad = int(np.count_nonzero(~np.isfinite(series)))
    if bad:
        raise ValueError(f"{name}: {bad} returns are NaN or infinite; drop or fill them first")
    return series
