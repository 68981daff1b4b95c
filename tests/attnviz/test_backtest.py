import tracemalloc

import numpy as np
import pytest

from attnviz.backtest import (
    BacktestConfig,
    backtest,
    bars_per_year,
    percentile_of,
    random_positions,
    random_same_exposure,
    sizes,
)
from attnviz.performance import performance, sign_runs

FREE = BacktestConfig(cost_bps=0.0, slippage_bps=0.0)

# Three bars: the decisions are taken at the closes of bars 0 and 1, bar 2 comes after.
#   bar 1: gap   = open 105 / close 100 - 1 =  0.05,  intra = close 84   / open 105 - 1 = -0.2
#   bar 2: gap   = open 63  / close 84  - 1 = -0.25,  intra = close 75.6 / open 63  - 1 =  0.2
OPEN = np.array([99.0, 105.0, 63.0])
CLOSE = np.array([100.0, 84.0, 75.6])


def test_a_long_earns_nothing_of_the_bar_it_was_decided_on() -> None:
    # LONG at bar 0's close, filled at bar 1's open: bar 0 is not in the result and bar 1's
    # +5% gap happens before the fill. Flat at bar 1's close, filled at bar 2's open: the
    # long is still held through bar 2's -25% gap.
    result = backtest(OPEN, CLOSE, np.array([1.0, 0.0]), FREE)
    np.testing.assert_allclose(result.gross, [-0.2, -0.25])
    np.testing.assert_array_equal(result.position, [1.0, 0.0])


def test_a_position_entered_later_misses_the_gap_before_its_fill() -> None:
    # LONG at bar 1's close: bar 2's -25% gap is before the fill, only its +20% is earned.
    result = backtest(OPEN, CLOSE, np.array([0.0, 1.0]), FREE)
    np.testing.assert_allclose(result.gross, [0.0, 0.2])


def test_a_held_position_earns_close_to_close() -> None:
    # Bar 2: (1 - 0.25) * (1 + 0.2) - 1 = -0.1 = 75.6 / 84 - 1, gap and intrabar compounded.
    result = backtest(OPEN, CLOSE, np.array([1.0, 1.0]), FREE)
    np.testing.assert_allclose(result.gross, [-0.2, -0.1])
    np.testing.assert_allclose(result.equity, [0.8, 0.72])


def test_a_flip_from_long_to_short_pays_two_sides() -> None:
    # 3 + 2 = 5 bps a side. Bar 1: entry, one side, 0.0005. Bar 2: +1 to -1, two sides, 0.001;
    # the long earns the gap and the short the intrabar move: (1 - 0.25) * (1 - 0.2) - 1 = -0.4.
    config = BacktestConfig(cost_bps=3.0, slippage_bps=2.0)
    result = backtest(OPEN, CLOSE, np.array([1.0, -1.0]), config)
    np.testing.assert_allclose(result.gross, [-0.2, -0.4])
    np.testing.assert_allclose(result.cost, [0.0005, 0.001])
    np.testing.assert_allclose(result.returns, [-0.2005, -0.401])
    np.testing.assert_allclose(result.equity, [0.7995, 0.7995 * 0.599])


def test_costs_are_paid_per_side_on_the_size_traded() -> None:
    # Flat prices: the returns are the costs alone, 1 + 1 bps a side by default. Entering
    # 0.5 pays 0.0001, resizing to 1.5 pays 0.0002, holding nothing, exiting 0.0003.
    prices = np.full(5, 50.0)
    result = backtest(prices, prices, np.array([0.5, 1.5, 1.5, 0.0]), BacktestConfig())
    np.testing.assert_allclose(result.cost, [0.0001, 0.0002, 0.0, 0.0003])
    np.testing.assert_allclose(result.returns, -result.cost)


def test_unit_sizing_trades_one_unit_and_holds_nothing() -> None:
    signal = np.array([1, -1, 0, 1], dtype=np.int8)
    w = sizes(signal, np.array([0.02, 0.005, 0.01, 0.0]), BacktestConfig())
    np.testing.assert_array_equal(w, [1.0, 1.0, 0.0, 1.0])


def test_volatility_sizing_aims_at_the_target_and_is_capped_at_max_leverage() -> None:
    # 0.01 / 0.02 = 0.5; 0.01 / 0.005 = 2, capped at 1.5; HOLD takes 0; a predicted
    # volatility of 0 takes the cap.
    config = BacktestConfig(sizing="volatility", target_vol=0.01, max_leverage=1.5)
    signal = np.array([1, -1, 0, 1], dtype=np.int8)
    w = sizes(signal, np.array([0.02, 0.005, 0.01, 0.0]), config)
    np.testing.assert_array_equal(w, [0.5, 1.5, 0.0, 1.5])
    np.testing.assert_array_equal(signal * w, [0.5, -1.5, 0.0, 1.5])


@pytest.mark.parametrize(
    ("signal", "vol"),
    [([1, 2], [0.01, 0.01]), ([1, 0], [0.01, -0.01]), ([1, 0], [np.nan, 0.01]), ([1], [0.01, 0])],
)
def test_sizes_refuses_bad_signals_and_volatilities(signal: list[int], vol: list[float]) -> None:
    with pytest.raises(ValueError):
        sizes(np.array(signal), np.array(vol), BacktestConfig(sizing="volatility"))


def test_no_return_depends_on_a_later_bar_or_decision() -> None:
    rng = np.random.default_rng(0)
    m = 6
    open_, close = 100 + rng.random(m + 1), 100 + rng.random(m + 1)
    target = rng.choice([-1.0, 0.0, 1.0], m)
    before = backtest(open_, close, target, BacktestConfig())
    for k in range(1, m + 1):
        # Bar k is result k - 1. Change every bar after k and every decision from bar k's close.
        later_open, later_close, later_target = open_.copy(), close.copy(), target.copy()
        later_open[k + 1 :] *= 1.5
        later_close[k + 1 :] *= 0.5
        later_target[k:] = -later_target[k:] + 0.5
        after = backtest(later_open, later_close, later_target, BacktestConfig())
        for field in ("position", "gross", "cost", "returns", "equity"):
            np.testing.assert_array_equal(getattr(after, field)[:k], getattr(before, field)[:k])
        assert (after.returns[k:] != before.returns[k:]).all()  # the change does reach them


@pytest.mark.parametrize(
    ("open_", "close", "target"),
    [
        ([1.0, 1.0], [1.0, 1.0], [1.0, 1.0]),  # m decisions need m + 1 bars
        ([1.0], [1.0], []),
        ([1.0, 0.0], [1.0, 1.0], [1.0]),
        ([1.0, 1.0], [1.0, np.nan], [1.0]),
        ([1.0, 1.0], [1.0, 1.0], [np.inf]),
    ],
)
def test_backtest_refuses_inputs_that_do_not_line_up(
    open_: list[float], close: list[float], target: list[float]
) -> None:
    with pytest.raises(ValueError):
        backtest(np.array(open_), np.array(close), np.array(target), BacktestConfig())


def test_bars_per_year_on_three_daily_bars() -> None:
    # Two bars' steps in two days: 2 / (2 / 365.25).
    ts = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[us]")
    assert bars_per_year(ts) == pytest.approx(365.25)


def test_bars_per_year_of_a_stock_trading_on_weekdays_except_holidays() -> None:
    # NYSE 2023: 260 weekdays less 10 holidays, 250 sessions from Jan 3 to Dec 29 (360 days).
    holidays = ["2023-01-02", "2023-01-16", "2023-02-20", "2023-04-07", "2023-05-29"]
    holidays += ["2023-06-19", "2023-07-04", "2023-09-04", "2023-11-23", "2023-12-25"]
    days = np.arange("2023-01-01", "2024-01-01", dtype="datetime64[D]")
    ts = days[np.is_busday(days, holidays=holidays)].astype("datetime64[us]")
    assert ts.size == 250
    assert bars_per_year(ts) == pytest.approx(249 / 360 * 365.25)  # 252.6


def test_bars_per_year_of_a_market_trading_every_hour() -> None:
    ts = np.arange("2024-01-01T00", "2024-03-01T00", dtype="datetime64[h]")
    assert bars_per_year(ts) == pytest.approx(365.25 * 24)  # 8,766


def test_bars_per_year_of_fx_trading_every_weekday_hour() -> None:
    # 52 weeks of 5 x 24 hourly bars, Monday 00:00 to Friday 23:00: 6,240 bars over 51 weeks,
    # 4 days and 23 hours.
    hours = np.arange("2024-01-01T00", "2024-12-28T00", dtype="datetime64[h]")
    ts = hours[np.is_busday(hours.astype("datetime64[D]"))]
    assert ts.size == 6240
    span_days = 51 * 7 + 4 + 23 / 24
    assert bars_per_year(ts) == pytest.approx(6239 / span_days * 365.25)  # 6,296


@pytest.mark.parametrize(
    "ts",
    [
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        np.array(["2024-01-02", "2024-01-01"], dtype="datetime64[D]"),
        np.array(["2024-01-01", "2024-01-01"], dtype="datetime64[D]"),
        np.array([1.0, 2.0]),
    ],
)
def test_bars_per_year_refuses_what_is_not_a_calendar(ts: np.ndarray) -> None:
    with pytest.raises(ValueError):
        bars_per_year(ts)


def test_random_positions_keep_the_bars_in_the_market_and_their_sizes() -> None:
    target = np.array([0.0, 0.5, 0.8, 0.0, -1.2, 0.0, 0.0, 1.0, 1.0, 0.0])
    positions = random_positions(target, 200, np.random.default_rng(3))
    assert positions.shape == (200, 10)
    for row in positions:
        np.testing.assert_array_equal(np.sort(np.abs(row)), np.sort(np.abs(target)))
    assert (positions < 0).any() and (positions > 0).any()


def test_random_positions_keep_a_holding_period_whole_and_place_it_anywhere() -> None:
    # One 3-bar long in 6 bars: 4 places times 2 directions, each a single 3-bar stretch.
    target = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 0.0])
    positions = random_positions(target, 400, np.random.default_rng(4))
    stretches = [sign_runs(row) for row in positions]
    assert all(lengths.tolist() == [3] for _, lengths in stretches)
    assert {int(starts[0]) for starts, _ in stretches} == {0, 1, 2, 3}
    assert set(positions.sum(axis=1)) == {-3.0, 3.0}  # long or short


def test_random_same_exposure_backtests_each_random_strategy_like_the_target() -> None:
    rng = np.random.default_rng(5)
    open_, close = 100 + rng.random(9), 100 + rng.random(9)
    target = np.array([0.0, 1.0, 1.0, 0.0, -1.0, 0.0, 0.0, 1.0])
    config = BacktestConfig(cost_bps=5.0, risk_free_rate=0.02)
    sharpes = random_same_exposure(open_, close, target, config, 20, 7, bars_per_year=252.0)
    positions = random_positions(target, 20, np.random.default_rng(7))
    expected = [
        performance(backtest(open_, close, row, config), 252.0, 0.02)["sharpe"] for row in positions
    ]
    np.testing.assert_allclose(sharpes, expected, rtol=1e-12)


def test_random_same_exposure_is_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(6)
    open_, close = 100 + rng.random(31), 100 + rng.random(31)
    target = rng.choice([-1.0, 0.0, 1.0], 30)
    draw = [random_same_exposure(open_, close, target, BacktestConfig(), seed=s) for s in (1, 1, 2)]
    assert draw[0].shape == (1000,)
    np.testing.assert_array_equal(draw[0], draw[1])
    assert not np.array_equal(draw[0], draw[2], equal_nan=True)


def test_random_same_exposure_without_a_position_has_no_ratio() -> None:
    prices = 100 + np.random.default_rng(8).random(5)
    sharpes = random_same_exposure(prices, prices, np.zeros(4), BacktestConfig(), draws=3)
    assert np.isnan(sharpes).all()


def test_random_same_exposure_bounds_its_memory_on_a_long_series() -> None:
    # 1,000 draws of 10,000 bars are 80 MB per float array at once; in chunks the peak stays
    # a fraction of that.
    rng = np.random.default_rng(9)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 10_001)))
    target = rng.choice([-1.0, 0.0, 1.0], 10_000)
    tracemalloc.start()
    try:
        sharpes = random_same_exposure(prices, prices * 1.001, target, BacktestConfig())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sharpes.shape == (1000,) and np.isfinite(sharpes).all()
    assert peak < 200e6


@pytest.mark.parametrize(
    ("value", "expected"), [(2.5, 50.0), (2.0, 25.0), (0.0, 0.0), (5.0, 100.0)]
)
def test_percentile_of_counts_the_draws_strictly_below(value: float, expected: float) -> None:
    assert percentile_of(value, np.array([4.0, 1.0, np.nan, 3.0, 2.0])) == expected


def test_percentile_of_without_a_number_is_nan() -> None:
    assert np.isnan(percentile_of(np.nan, np.array([1.0, 2.0])))
    assert np.isnan(percentile_of(1.0, np.array([np.nan])))
