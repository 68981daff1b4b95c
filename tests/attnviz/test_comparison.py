from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from attnviz.backtest import BacktestConfig
from attnviz.comparison import ComparisonConfig, SeriesForecasts, compare
from attnviz.performance import METRICS

N_BARS = 320
VALIDATION, TEST = slice(40, 160), slice(180, N_BARS)  # the last test window's bar is the last bar
FAST = ComparisonConfig(random_draws=100, bootstrap_draws=100)


def forecasts(seed: int = 0, test_seed: int | None = None) -> SeriesForecasts:
    """A random walk of daily bars with forecasts that know nothing (low seed confidence)."""
    rng = np.random.default_rng(seed)
    ts = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(days=i) for i in range(N_BARS)]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, N_BARS)))
    bars = pl.DataFrame(
        {"ts": ts, "open": close * np.exp(rng.normal(0, 0.002, N_BARS)), "close": close}
    )

    def rows(part: slice, rng: np.random.Generator) -> pl.DataFrame:
        n = len(range(*part.indices(N_BARS)))
        return pl.DataFrame(
            {
                "ts": ts[part],
                "pred_up_prob": rng.uniform(0.3, 0.7, n),
                "pred_return": rng.normal(0, 0.002, n),
                "pred_vol": np.full(n, 0.01),
                "calibrated_confidence": rng.uniform(0, 1, n),
                "seed_confidence": rng.uniform(0, 0.25, n),
                "collapse": np.zeros(n, dtype=bool),
            }
        )

    validation = rows(VALIDATION, rng)
    test = rows(TEST, rng if test_seed is None else np.random.default_rng(test_seed))
    lstm = [
        frame.drop("calibrated_confidence", "seed_confidence", "collapse")
        for frame in (validation, test)
    ]
    return SeriesForecasts(validation, test, lstm[0], lstm[1], bars)


@pytest.fixture(scope="module")
def compared():
    return compare(forecasts(), FAST)


def test_every_strategy_is_backtested_on_the_same_test_windows(compared) -> None:
    names = compared.strategies["strategy"].to_list()
    assert names[:3] == ["buy_and_hold", "unfiltered", "lstm"]
    assert [n for n in names if n.startswith("filtered_p")] == [
        f"filtered_p{p:g}" for p in (50, 60, 70, 80, 90)
    ]
    assert names[-4:] == ["chapter_seed_0.3", "chapter_seed_0.5", "chapter_seed_0.7",
                          "random_same_exposure"]  # fmt: skip
    test_windows = N_BARS - TEST.start
    assert compared.signals.group_by("strategy").len()["len"].to_list() == [test_windows] * 11
    # The last window's next bar has not closed: decided, not yet filled.
    last = compared.signals.filter(pl.col("ts") == compared.signals["ts"].max())
    assert last["net_return"].is_null().all() and last["cost"].is_null().all()
    assert len(compared.ts) == test_windows - 1
    metrics = compared.results.filter(pl.col("strategy") == "unfiltered")["metric"].to_list()
    assert metrics == list(METRICS)


def test_the_chapter_rule_is_shown_never_trading_on_low_raw_confidence(compared) -> None:
    trades = compared.results.filter(pl.col("metric") == "trades")
    chapter = trades.filter(pl.col("strategy").str.starts_with("chapter"))
    assert chapter["value"].to_list() == [0.0, 0.0, 0.0]
    assert trades.filter(pl.col("strategy") == "buy_and_hold")["value"].to_list() == [1.0]


def test_the_filter_is_chosen_on_validation_whatever_the_test_windows_hold() -> None:
    chosen = {compare(forecasts(test_seed=seed), FAST).chosen for seed in (1, 2, 3)}
    assert len(chosen) == 1
    assert compare(forecasts(seed=7), FAST).strategies.filter(pl.col("chosen")).height == 1


def test_a_rerun_with_the_same_seed_gives_the_same_verdict(compared) -> None:
    again = compare(forecasts(), FAST)
    assert again.results.equals(compared.results) and again.strategies.equals(compared.strategies)
    assert np.array_equal(again.random_sharpes, compared.random_sharpes, equal_nan=True)


def test_costs_are_charged_in_every_return(compared) -> None:
    dear = compare(forecasts(), replace(FAST, trading=BacktestConfig(cost_bps=20, slippage_bps=5)))

    def total(result: pl.DataFrame, strategy: str) -> float:
        row = result.filter((pl.col("strategy") == strategy) & (pl.col("metric") == "total_return"))
        return float(row["value"][0])

    for strategy in ("buy_and_hold", "unfiltered", "lstm"):
        assert total(dear.results, strategy) < total(compared.results, strategy)
    # Buy and hold fills once, at the first bar: only that bar's net return differs.
    first = compared.signals.filter(pl.col("strategy") == "buy_and_hold").row(0, named=True)
    gross = first["net_return"] + first["cost"]
    assert first["cost"] == pytest.approx(0.0002)
    assert (1 + total(dear.results, "buy_and_hold")) / (
        1 + total(compared.results, "buy_and_hold")
    ) == pytest.approx((1 + gross - 0.0025) / (1 + gross - 0.0002), rel=1e-12)


def test_the_random_baseline_and_the_grid_are_reported(compared) -> None:
    percentile = compared.results.filter(pl.col("metric") == "random_percentile")
    assert percentile["strategy"].to_list() == [compared.chosen]
    assert 0 <= percentile["value"][0] <= 100
    assert compared.grid["percentile"].to_list() == [50.0, 60.0, 70.0, 80.0, 90.0]
    assert compared.random_sharpes.shape == (100,)
    assert compared.verdict.words


def test_windows_that_are_not_consecutive_bars_are_refused() -> None:
    data = forecasts()
    gappy = replace(data, test=data.test.filter(pl.int_range(pl.len()) != 5))
    with pytest.raises(ValueError, match="not consecutive bars"):
        compare(gappy, FAST)


def test_too_few_test_bars_to_judge_is_a_clear_error() -> None:
    data = forecasts()
    short = replace(data, test=data.test.head(12), lstm_test=data.lstm_test.head(12))
    with pytest.raises(ValueError, match="12 bars; the bootstrap needs at least 20"):
        compare(short, FAST)
