import math

import numpy as np
import pytest

from attnviz.backtest import Backtest
from attnviz.performance import METRICS, performance, sharpe_ratio, sign_runs


def backtest_of(returns: list[float], position: list[float]) -> Backtest:
    net = np.array(returns)
    return Backtest(
        position=np.array(position),
        gross=net,
        cost=np.zeros_like(net),
        returns=net,
        equity=np.cumprod(1 + net),
    )


# Four bars, four bars a year (sqrt(4) = 2): long, long, flat, short.
#   equity 1.1, 0.88, 0.88, 1.1; mean r = 0.15 / 4 = 0.0375
#   deviations 0.0625, -0.2375, -0.0375, 0.2125: squares sum to 0.106875, var = 0.035625
RETURNS = [0.10, -0.20, 0.00, 0.25]
POSITION = [1.0, 1.0, 0.0, -1.0]
STD = math.sqrt(0.106875 / 3)


@pytest.fixture
def metrics() -> dict[str, float]:
    return performance(backtest_of(RETURNS, POSITION), bars_per_year=4.0)


def test_every_metric_is_reported_in_order(metrics: dict[str, float]) -> None:
    assert tuple(metrics) == METRICS


def test_total_and_annual_return(metrics: dict[str, float]) -> None:
    assert metrics["total_return"] == pytest.approx(0.1)
    assert metrics["annual_return"] == pytest.approx(0.1)  # four bars are one year
    half_year = performance(backtest_of(RETURNS, POSITION), bars_per_year=8.0)
    assert half_year["annual_return"] == pytest.approx(1.1**2 - 1)


def test_annual_volatility(metrics: dict[str, float]) -> None:
    assert metrics["annual_volatility"] == pytest.approx(STD * 2)  # 0.3775


def test_sharpe(metrics: dict[str, float]) -> None:
    assert metrics["sharpe"] == pytest.approx(0.0375 / STD * 2)  # 0.397


def test_sortino(metrics: dict[str, float]) -> None:
    # Only -0.2 falls short of 0: downside deviation sqrt(0.04 / 4) = 0.1.
    assert metrics["sortino"] == pytest.approx(0.0375 / 0.1 * 2)  # 0.75


def test_sharpe_and_sortino_subtract_the_risk_free_rate_per_bar() -> None:
    # 1.01 ** 4 - 1 a year is 0.01 a bar: excess returns 0.09, -0.21, -0.01, 0.24, mean 0.0275,
    # downside deviation sqrt((0.21 ** 2 + 0.01 ** 2) / 4).
    with_rate = performance(backtest_of(RETURNS, POSITION), 4.0, risk_free_rate=1.01**4 - 1)
    assert with_rate["sharpe"] == pytest.approx(0.0275 / STD * 2)
    assert with_rate["sortino"] == pytest.approx(0.0275 / math.sqrt(0.0442 / 4) * 2)


def test_max_drawdown_duration_and_calmar(metrics: dict[str, float]) -> None:
    # Peak 1.1 after bar 0; bars 1 and 2 sit at 0.88, 20% below; bar 3 is back at 1.1.
    assert metrics["max_drawdown"] == pytest.approx(0.2)
    assert metrics["max_drawdown_bars"] == 2
    assert metrics["calmar"] == pytest.approx(0.1 / 0.2)


def test_drawdown_counts_from_the_start_and_to_the_end() -> None:
    # Equity 0.9 (below the starting 1), 1.08 (a new peak), 1.026, 0.9747, 0.925965: the
    # deepest fall is from 1.08 to 0.925965, and it lasts the last three bars.
    result = performance(backtest_of([-0.1, 0.2, -0.05, -0.05, -0.05], [1.0] * 5), 252.0)
    assert result["max_drawdown"] == pytest.approx(1 - 0.925965 / 1.08)
    assert result["max_drawdown_bars"] == 3


def test_hit_rate_and_profit_factor_count_the_bars_in_the_market(
    metrics: dict[str, float],
) -> None:
    # In the market: bars 0, 1 and 3 with 0.1, -0.2, 0.25 (bar 2 is flat).
    assert metrics["hit_rate"] == pytest.approx(2 / 3)
    assert metrics["profit_factor"] == pytest.approx((0.1 + 0.25) / 0.2)


def test_trades_exposure_turnover_and_holding(metrics: dict[str, float]) -> None:
    # Position 0 -> 1 -> 1 -> 0 -> -1: three fills, three units traded over one year,
    # three bars in the market over two entries.
    assert metrics["trades"] == 3
    assert metrics["exposure"] == pytest.approx(3 / 4)
    assert metrics["turnover"] == pytest.approx(3.0)
    assert metrics["avg_holding_bars"] == pytest.approx(1.5)


def test_a_resize_is_a_trade_but_not_an_entry() -> None:
    # 0 -> 0.5 -> 0.8 -> 0.8 -> -0.3 -> 0: fills at bars 0, 1, 3 and 4 trading 0.5, 0.3,
    # 1.1 and 0.3 = 2.2 units in half a year; entries at 0 (from flat) and 3 (a flip).
    position = [0.5, 0.8, 0.8, -0.3, 0.0]
    result = performance(backtest_of([0.01] * 5, position), bars_per_year=10.0)
    assert result["trades"] == 4
    assert result["turnover"] == pytest.approx(4.4)
    assert result["avg_holding_bars"] == pytest.approx(4 / 2)


def test_a_strategy_that_never_trades() -> None:
    result = performance(backtest_of([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]), bars_per_year=252.0)
    assert {name: result[name] for name in METRICS if not math.isnan(result[name])} == {
        "total_return": 0.0,
        "annual_return": 0.0,
        "annual_volatility": 0.0,
        "max_drawdown": 0.0,
        "max_drawdown_bars": 0.0,
        "trades": 0.0,
        "exposure": 0.0,
        "turnover": 0.0,
    }  # sharpe, sortino, calmar, hit_rate, profit_factor and avg_holding_bars are NaN


def test_a_riskless_gain_has_no_ratio_rather_than_an_infinite_one() -> None:
    # Constant returns: zero volatility, no downside, no drawdown, no losing bar.
    result = performance(backtest_of([0.01] * 4, [1.0] * 4), bars_per_year=252.0)
    for name in ("sharpe", "sortino", "calmar", "profit_factor"):
        assert math.isnan(result[name]), name
    assert result["hit_rate"] == 1.0


def test_one_bar_has_no_volatility_or_sharpe() -> None:
    result = performance(backtest_of([0.02], [1.0]), bars_per_year=252.0)
    assert result["total_return"] == pytest.approx(0.02)
    assert math.isnan(result["annual_volatility"]) and math.isnan(result["sharpe"])


def test_equity_below_zero_has_no_annual_return() -> None:
    # A leveraged loss of 150%: equity -0.5, then -0.55.
    result = performance(backtest_of([-1.5, 0.1], [2.0, 2.0]), bars_per_year=252.0)
    assert result["total_return"] == pytest.approx(-1.55)
    assert math.isnan(result["annual_return"])


@pytest.mark.parametrize("bars", [0.0, -1.0, math.nan, math.inf])
def test_bars_per_year_must_be_positive(bars: float) -> None:
    with pytest.raises(ValueError):
        performance(backtest_of(RETURNS, POSITION), bars_per_year=bars)


def test_sharpe_ratio_takes_one_series_per_row() -> None:
    rows = np.array([RETURNS, [0.01] * 4, [0.02, -0.01, 0.03, 0.0]])
    sharpes = sharpe_ratio(rows, 4.0)
    assert sharpes.shape == (3,)
    assert sharpes[0] == pytest.approx(0.0375 / STD * 2)
    assert math.isnan(sharpes[1])
    assert sharpes[2] == pytest.approx(float(sharpe_ratio(rows[2], 4.0)))


def test_sign_runs_finds_stretches_of_one_sign() -> None:
    starts, lengths = sign_runs(np.array([0, 2, -1, -1, 0, 3]))
    assert starts.tolist() == [1, 2, 5] and lengths.tolist() == [1, 2, 1]
    starts, lengths = sign_runs(np.array([True, True, False, True]))
    assert starts.tolist() == [0, 3] and lengths.tolist() == [2, 1]
    assert sign_runs(np.zeros(3))[0].size == 0
