import math

import numpy as np
import pytest

from attnviz.significance import sharpe_difference, sharpe_interval, spa_verdict

DAILY = 252.0  # bars per year of a stock's daily bars
DRAWS = 300  # enough for stable intervals, fast enough for a unit test


def noise(seed: int, bars: int = 500, mean: float = 0.0, std: float = 0.01) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, bars)


def ar1(seed: int, bars: int, phi: float, mean: float, std: float) -> np.ndarray:
    """Returns mean + x with x[t] = phi * x[t - 1] + e[t]: autocorrelated, like held positions."""
    shocks = np.random.default_rng(seed).normal(0.0, std, bars)
    x = np.empty(bars)
    x[0] = shocks[0]
    for t in range(1, bars):
        x[t] = phi * x[t - 1] + shocks[t]
    return mean + x


# --- The Sharpe ratio and its interval ---


def test_sharpe_is_mean_excess_over_std_annualised_with_the_risk_free_rate_per_bar() -> None:
    returns = noise(0, mean=0.001)
    per_bar = 1.05 ** (1 / DAILY) - 1  # 5% a year, compounded over the bars of a year
    expected = (returns.mean() - per_bar) / returns.std(ddof=1) * math.sqrt(DAILY)
    sharpe, _, _ = sharpe_interval(returns, DAILY, risk_free_rate=0.05, draws=DRAWS)
    assert sharpe == pytest.approx(expected, rel=1e-12)


def test_the_same_seed_gives_the_same_interval_and_another_seed_another() -> None:
    returns = noise(1, mean=0.0005)
    first = sharpe_interval(returns, DAILY, draws=DRAWS, seed=7)
    assert sharpe_interval(returns, DAILY, draws=DRAWS, seed=7) == first
    other = sharpe_interval(returns, DAILY, draws=DRAWS, seed=8)
    assert other[0] == first[0]  # the estimate does not depend on the resampling
    assert other[1:] != first[1:]


def test_the_interval_covers_the_true_sharpe_of_iid_samples_at_about_its_level() -> None:
    mean, std, bars = 0.001, 0.01, 500
    true_sharpe = mean / std * math.sqrt(DAILY)
    # Standard error of an annualised Sharpe ratio of i.i.d. normal returns (Lo, 2002).
    standard_error = math.sqrt(DAILY / bars * (1 + 0.5 * (mean / std) ** 2))
    intervals = [
        sharpe_interval(noise(seed, bars, mean, std), DAILY, draws=200, seed=seed)[1:]
        for seed in range(40)
    ]
    covered = sum(low <= true_sharpe <= high for low, high in intervals)
    assert covered >= 34  # 95% intervals: 38 of 40 expected
    # ... and not by being uselessly wide: about 2 * 1.96 standard errors.
    width = np.mean([high - low for low, high in intervals])
    assert width == pytest.approx(2 * 1.96 * standard_error, rel=0.25)


def test_autocorrelated_returns_get_a_wider_interval_than_the_same_returns_shuffled() -> None:
    returns = ar1(3, bars=1000, phi=0.5, mean=0.0005, std=0.01)
    shuffled = np.random.default_rng(4).permutation(returns)  # same values, no autocorrelation
    _, low, high = sharpe_interval(returns, DAILY, draws=DRAWS)
    _, low_iid, high_iid = sharpe_interval(shuffled, DAILY, draws=DRAWS)
    # The variance of a mean of AR(1) returns is (1 + phi) / (1 - phi) = 3 times the i.i.d.
    # one: a block bootstrap sees much of that, single bars would see none of it.
    assert high - low > 1.3 * (high_iid - low_iid)


def test_constant_returns_have_no_sharpe_ratio_and_no_interval() -> None:
    sharpe, low, high = sharpe_interval(np.zeros(100), DAILY, draws=DRAWS)
    assert math.isnan(sharpe) and math.isnan(low) and math.isnan(high)


@pytest.mark.parametrize(
    ("returns", "problem"),
    [
        (np.zeros(19), "at least 20"),
        (np.r_[noise(5, 50), np.nan], "NaN or infinite"),
        (np.r_[noise(5, 50), np.inf], "NaN or infinite"),
        (np.zeros((50, 2)), "one return per bar"),
    ],
)
def test_unusable_returns_are_refused_naming_the_problem(returns: np.ndarray, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        sharpe_interval(returns, DAILY, draws=DRAWS)


# --- The difference of two strategies on the same bars ---


def test_a_strategy_against_itself_differs_by_zero_with_p_one() -> None:
    returns = noise(6, mean=0.001)
    difference = sharpe_difference(returns, returns, DAILY, draws=DRAWS)
    assert (difference.estimate, difference.low, difference.high) == (0.0, 0.0, 0.0)
    assert difference.p_value == 1.0
    assert not difference.significant


def test_a_clear_edge_on_the_same_bars_is_significant_and_noise_is_not() -> None:
    unfiltered = noise(7)
    filtered = unfiltered + 0.001 + noise(8, std=0.002)  # the same market, plus an edge
    names = ("filtered", "unfiltered")
    edge = sharpe_difference(filtered, unfiltered, DAILY, draws=DRAWS, names=names)
    assert edge.estimate > 0 and edge.low > 0
    assert edge.significant and edge.p_value < 0.05
    assert edge.words.startswith("filtered minus unfiltered Sharpe")
    assert "significant at 5%" in edge.words and "not" not in edge.words

    lucky = unfiltered + noise(9, std=0.002)  # only noise on top
    none = sharpe_difference(lucky, unfiltered, DAILY, draws=DRAWS, names=names)
    assert none.low < 0 < none.high
    assert not none.significant and none.p_value >= 0.05
    assert f"not significant at 5% (p = {none.p_value:.2f})" in none.words


def test_the_pairs_are_resampled_jointly() -> None:
    # b is a plus small noise: resampled on the same bars the two Sharpe ratios move
    # together and their difference is tight; resampled apart it would be several times wider.
    a = noise(10)
    b = a + noise(11, std=0.001)
    difference = sharpe_difference(a, b, DAILY, draws=DRAWS)
    _, low, high = sharpe_interval(a, DAILY, draws=DRAWS)
    assert difference.high - difference.low < 0.2 * (high - low)


def test_the_difference_is_reproducible_with_a_seed() -> None:
    a, b = noise(12, mean=0.0005), noise(13)
    first = sharpe_difference(a, b, DAILY, draws=DRAWS, seed=1)
    assert sharpe_difference(a, b, DAILY, draws=DRAWS, seed=1) == first
    assert sharpe_difference(a, b, DAILY, draws=DRAWS, seed=2) != first


def test_a_strategy_that_never_trades_makes_the_difference_undefined_and_says_why() -> None:
    difference = sharpe_difference(
        np.zeros(100), noise(14, 100), DAILY, draws=DRAWS, names=("chapter", "unfiltered")
    )
    assert math.isnan(difference.estimate) and math.isnan(difference.p_value)
    assert not difference.significant
    assert "undefined" in difference.words and "chapter are constant" in difference.words


def test_series_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="b: 40 bars, but the series it is compared to has 50"):
        sharpe_difference(noise(15, 50), noise(16, 40), DAILY)


# --- Hansen's SPA across a grid of candidates ---


def test_a_real_edge_survives_the_grid() -> None:
    benchmark = noise(20)
    grid = {f"p{i}": benchmark + noise(30 + i, std=0.002) for i in range(19)}
    grid["edge"] = benchmark + 0.002 + noise(50, std=0.002)  # a clear positive drift
    verdict = spa_verdict(benchmark, grid, reps=DRAWS, benchmark_name="unfiltered")
    assert verdict.significant and verdict.p_value < 0.05
    assert verdict.best == "edge"
    assert verdict.words.startswith("edge beats unfiltered, and survives the adjustment")
    assert "20 candidates" in verdict.words


def test_a_grid_of_pure_noise_is_not_significant() -> None:
    benchmark = noise(21)
    grid = {f"p{i}": noise(60 + i) for i in range(20)}
    verdict = spa_verdict(benchmark, grid, reps=DRAWS)
    assert not verdict.significant and verdict.p_value >= 0.05
    best = max(grid, key=lambda name: grid[name].mean())
    assert verdict.best == best
    assert verdict.words.startswith("No candidate beats the benchmark once the 20 candidates")
    assert f"the best, {best}, is not significant at 5%" in verdict.words


def test_a_candidate_equal_to_the_benchmark_cannot_fake_a_rejection() -> None:
    # arch counts a draw tying with the statistic as evidence: a copy of the benchmark next
    # to worse candidates would give p = 0. It is left out of the test.
    benchmark = noise(22)
    worse = benchmark - 0.001 + noise(23, std=0.003)
    verdict = spa_verdict(benchmark, {"copy": benchmark, "worse": worse}, reps=DRAWS)
    assert not verdict.significant and verdict.p_value > 0.2
    assert spa_verdict(benchmark, {"copy": benchmark}, reps=DRAWS).p_value == 1.0


def test_the_verdict_is_reproducible_with_a_seed() -> None:
    benchmark = noise(24)
    grid = {f"p{i}": noise(70 + i, mean=0.0005) for i in range(5)}
    first = spa_verdict(benchmark, grid, reps=DRAWS, seed=3)
    assert spa_verdict(benchmark, grid, reps=DRAWS, seed=3) == first
    assert spa_verdict(benchmark, grid, reps=DRAWS, seed=4).p_value != first.p_value


def test_the_verdict_refuses_an_empty_grid_and_mismatched_candidates() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        spa_verdict(noise(25), {})
    with pytest.raises(ValueError, match="short: 30 bars, but the series it is compared to"):
        spa_verdict(noise(25), {"short": noise(26, 30)})
