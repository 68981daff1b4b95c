"""Does focused attention make better trades? One series' strategies, baselines and verdict.

Every strategy is backtested on the same test windows with the same costs and fill rule
(:mod:`attnviz.backtest`):

* ``buy_and_hold``: long one unit all along;
* ``unfiltered``: the Transformer's own rule, every window;
* ``lstm``: the same rule on the LSTM baseline's forecasts (when its checkpoint has one);
* ``filtered_p50`` ... ``filtered_p90``: the Transformer's rule traded only where calibrated
  confidence reaches that percentile; the one with the best Sharpe on the VALIDATION windows
  is the chosen filter (:func:`attnviz.strategy.select_on_validation`), the test windows never
  take part in the choice;
* ``chapter_seed_0.3`` ... ``0.7``: the chapter's rule with its own numbers;
* ``random_same_exposure``: random strategies with the chosen filter's exposure (seeded
  draws; its row holds their median Sharpe and the range of ``level`` of them, 95%).

Each Sharpe gets a block-bootstrap interval, each strategy its Sharpe difference from the
unfiltered Transformer (paired, same bars), and the filter grid as a whole Hansen's SPA
verdict against the unfiltered Transformer, so "the filter helps" is said only when it
survives having tried every percentile (:mod:`attnviz.significance`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
import polars as pl
from pydantic import Field

from attnviz.backtest import (
    Backtest,
    BacktestConfig,
    backtest,
    bars_per_year,
    percentile_of,
    random_same_exposure,
    sizes,
)
from attnviz.performance import performance
from attnviz.significance import Verdict, sharpe_difference, sharpe_interval, spa_verdict
from attnviz.strategy import (
    CHAPTER_RULES,
    DEFAULT_PERCENTILES,
    UNFILTERED,
    Rule,
    filtered_rules,
    gate_open,
    select_on_validation,
    signals,
)


@dataclass(frozen=True)
class ComparisonConfig:
    """How the strategies of a series are compared (the catalogue's ``backtest`` section).

    Attributes
    ----------
    trading
        Sizing, costs and the risk-free rate.
    percentiles
        The calibrated-confidence percentiles of the filter grid.
    skip_collapse
        The filtered strategies also hold where the collapse flag is on.
    random_draws, bootstrap_draws
        Random strategies drawn; bootstrap resamples per interval and per SPA test.
    level
        Coverage of the intervals (0.95: significance at 5%).
    seed
        Seed of every random draw, so a rerun gives the same verdict.
    """

    trading: BacktestConfig = field(default_factory=BacktestConfig)
    percentiles: tuple[Annotated[float, Field(ge=0, le=100)], ...] = DEFAULT_PERCENTILES
    skip_collapse: bool = False
    random_draws: Annotated[int, Field(ge=100)] = 1000
    bootstrap_draws: Annotated[int, Field(ge=100)] = 1000
    level: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    seed: int = 0


@dataclass(frozen=True)
class SeriesForecasts:
    """What the comparison of one series reads.

    Attributes
    ----------
    validation, test
        ``attention_window``-shaped rows (``ts``, ``pred_up_prob``, ``pred_return``,
        ``pred_vol``, ``calibrated_confidence``, ``seed_confidence``, ``collapse``) of the
        validation windows and of the evaluation period, oldest first, one bar apart.
    lstm_validation, lstm_test
        The LSTM baseline's forecasts (``ts``, ``pred_up_prob``, ``pred_return``,
        ``pred_vol``) of the same windows; ``None`` when its checkpoint has no LSTM.
    bars
        The series' bars (``ts``, ``open``, ``close``), covering every window and the bar
        after the last one when it has closed.
    """

    validation: pl.DataFrame
    test: pl.DataFrame
    lstm_validation: pl.DataFrame | None
    lstm_test: pl.DataFrame | None
    bars: pl.DataFrame


@dataclass(frozen=True)
class Comparison:
    """The comparison of one series, as tables and as what its figures draw.

    Attributes
    ----------
    chosen
        The filtered strategy chosen on the validation windows.
    signals, strategies, results
        Rows of the ``signals``, ``backtest_strategies`` and ``backtest_results`` tables.
    ts
        Bar time (UTC) of each test return: the bar after each decision.
    equity
        Strategy -> equity over the test period, net of costs.
    grid
        The filter grid: ``percentile``, ``sharpe``, ``low``, ``high``.
    random_sharpes
        The random strategies' Sharpe ratios.
    verdict
        The SPA verdict of the filter grid against the unfiltered Transformer.
    """

    chosen: str
    signals: pl.DataFrame
    strategies: pl.DataFrame
    results: pl.DataFrame
    ts: pl.Series
    equity: dict[str, np.ndarray]
    grid: pl.DataFrame
    random_sharpes: np.ndarray
    verdict: Verdict


@dataclass(frozen=True)
class _Prices:
    """The bars a set of windows trades on: m decisions need m + 1 bars (see ``backtest``)."""

    open_: np.ndarray
    close: np.ndarray
    ts: pl.Series  # bar time of each result, the bar after each decision (UTC)
    decisions: int  # windows whose next bar has closed: the last may still be waiting


@dataclass(frozen=True)
class _Run:
    """One strategy on the test windows."""

    name: str
    role: str
    rule: Rule | None  # None for buy and hold
    rows: pl.DataFrame
    signal: np.ndarray
    target: np.ndarray  # signal x size, one per window (the last may not be filled yet)
    result: Backtest


def compare(forecasts: SeriesForecasts, config: ComparisonConfig) -> Comparison:
    """Backtest every strategy and baseline of one series on its test windows, and judge them.

    Raises
    ------
    ValueError
        If the windows are not consecutive bars of ``forecasts.bars``, or there are too few
        test bars for a bootstrap (20).
    """
    trading = config.trading
    per_year = bars_per_year(forecasts.bars["ts"].dt.replace_time_zone(None).to_numpy())
    validation_prices = _prices(forecasts.validation, forecasts.bars)
    test_prices = _prices(forecasts.test, forecasts.bars)

    def strategy(
        name: str, role: str, rule: Rule | None, rows: pl.DataFrame, prices: _Prices
    ) -> _Run:
        signal = np.ones(rows.height, np.int8) if rule is None else signals(rows, rule)
        target = signal * sizes(signal, rows["pred_vol"].to_numpy(), trading)
        result = backtest(prices.open_, prices.close, target[: prices.decisions], trading)
        return _Run(name, role, rule, rows, signal, target, result)

    def validation_sharpe(rows: pl.DataFrame, rule: Rule) -> float:
        result = strategy(rule.name, "filtered", rule, rows, validation_prices).result
        return performance(result, per_year, trading.risk_free_rate)["sharpe"]

    grid = filtered_rules(config.percentiles, skip_collapse=config.skip_collapse)
    chosen = select_on_validation(forecasts.validation, grid, validation_sharpe)

    test = forecasts.test
    runs = [
        strategy("buy_and_hold", "buy_and_hold", None, test, test_prices),
        strategy(UNFILTERED.name, "transformer", UNFILTERED, test, test_prices),
    ]
    if forecasts.lstm_test is not None:
        runs.append(strategy("lstm", "lstm", Rule("lstm"), forecasts.lstm_test, test_prices))
    runs += [strategy(rule.name, "filtered", rule, test, test_prices) for rule in grid]
    runs += [strategy(rule.name, "chapter", rule, test, test_prices) for rule in CHAPTER_RULES]
    by_name = {run.name: run for run in runs}
    unfiltered = by_name[UNFILTERED.name].result.returns

    random_sharpes = random_same_exposure(
        test_prices.open_,
        test_prices.close,
        by_name[chosen.name].result.position,
        trading,
        config.random_draws,
        config.seed,
        bars_per_year=per_year,
    )
    verdict = spa_verdict(
        unfiltered,
        {rule.name: by_name[rule.name].result.returns for rule in grid},
        reps=config.bootstrap_draws,
        seed=config.seed,
        benchmark_name="the unfiltered Transformer",
    )
    results, significance = [], {}
    for run in runs:
        rows, words = _judged(run, unfiltered, per_year, config)
        results.append(rows)
        significance[run.name] = words
    chosen_sharpe = performance(by_name[chosen.name].result, per_year, trading.risk_free_rate)
    results.append(_random_rows(random_sharpes, chosen_sharpe["sharpe"], chosen.name, config.level))
    significance[chosen.name] = f"{significance[chosen.name]}; {verdict.words}"

    strategies = pl.DataFrame(
        {
            "strategy": [*(run.name for run in runs), "random_same_exposure"],
            "role": [*(run.role for run in runs), "random"],
            "threshold": [
                *(run.rule.threshold if run.rule and run.rule.confidence else None for run in runs),
                None,
            ],
            "chosen": [*(run.name == chosen.name for run in runs), False],
            "significance": [*(significance[run.name] for run in runs), None],
        },
        schema_overrides={"threshold": pl.Float64},
    )
    frame = pl.concat(results)
    return Comparison(
        chosen=chosen.name,
        signals=pl.concat([_signal_rows(one) for one in runs]),
        strategies=strategies,
        results=frame,
        ts=test_prices.ts,
        equity={run.name: run.result.equity for run in runs},
        grid=_grid(frame, grid, config.percentiles),
        random_sharpes=random_sharpes,
        verdict=verdict,
    )


def _prices(rows: pl.DataFrame, bars: pl.DataFrame) -> _Prices:
    """The bars under ``rows``' windows and the one after, if it has closed."""
    index = bars.with_row_index("bar").join(rows.select("ts"), on="ts", how="semi")["bar"]
    if index.len() != rows.height or (
        index.len() > 1 and not (index.diff().drop_nulls() == 1).all()
    ):
        raise ValueError("the windows are not consecutive bars of the series")
    first, last = int(index[0]), int(index[-1])
    end = min(last + 2, bars.height)  # the bar after the last window, when it has closed
    chosen = bars.slice(first, end - first)
    return _Prices(
        open_=chosen["open"].to_numpy(),
        close=chosen["close"].to_numpy(),
        ts=chosen["ts"].slice(1),
        decisions=chosen.height - 1,
    )


def _judged(
    run: _Run, unfiltered: np.ndarray, per_year: float, config: ComparisonConfig
) -> tuple[pl.DataFrame, str | None]:
    """A strategy's metrics rows (Sharpe with its interval) and its significance in words."""
    trading = config.trading
    metrics = performance(run.result, per_year, trading.risk_free_rate)
    _, low, high = sharpe_interval(
        run.result.returns,
        per_year,
        risk_free_rate=trading.risk_free_rate,
        level=config.level,
        draws=config.bootstrap_draws,
        seed=config.seed,
    )
    names = list(metrics)
    values = [metrics[name] for name in names]
    lows = [low if name == "sharpe" else None for name in names]
    highs = [high if name == "sharpe" else None for name in names]
    words = None
    if run.name != UNFILTERED.name:
        difference = sharpe_difference(
            run.result.returns,
            unfiltered,
            per_year,
            risk_free_rate=trading.risk_free_rate,
            level=config.level,
            draws=config.bootstrap_draws,
            seed=config.seed,
            names=(run.name, UNFILTERED.name),
        )
        names.append("sharpe_minus_unfiltered")
        values.append(difference.estimate)
        lows.append(difference.low)
        highs.append(difference.high)
        words = difference.words
    return (
        pl.DataFrame(
            {
                "strategy": run.name,
                "metric": names,
                "value": values,
                "ci_low": lows,
                "ci_high": highs,
            },
            schema_overrides={"value": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64},
        ),
        words,
    )


def _random_rows(
    draws: np.ndarray, chosen_sharpe: float, chosen: str, level: float
) -> pl.DataFrame:
    """The random baseline's median Sharpe and central range, and where the chosen filter falls."""
    finite = draws[np.isfinite(draws)]
    tails = [50 * (1 - level), 50 * (1 + level)]
    median, low, high = (
        (float(np.median(finite)), *map(float, np.percentile(finite, tails)))
        if finite.size
        else (np.nan, np.nan, np.nan)
    )
    return pl.DataFrame(
        {
            "strategy": ["random_same_exposure", chosen],
            "metric": ["sharpe", "random_percentile"],
            "value": [median, percentile_of(chosen_sharpe, draws)],
            "ci_low": [low, None],
            "ci_high": [high, None],
        },
        schema_overrides={"value": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64},
    )


def _grid(
    results: pl.DataFrame, grid: Sequence[Rule], percentiles: Sequence[float]
) -> pl.DataFrame:
    """The filter grid's Sharpe ratios with their intervals, by percentile."""
    sharpe = results.filter(pl.col("metric") == "sharpe")
    order = pl.DataFrame(
        {"strategy": [rule.name for rule in grid], "percentile": list(percentiles)}
    )
    return order.join(sharpe, on="strategy", how="left").select(
        "percentile", sharpe="value", low="ci_low", high="ci_high"
    )


def _signal_rows(run: _Run) -> pl.DataFrame:
    """The ``signals`` rows of one strategy: every test window, its position and what it earned."""
    rows, result = run.rows, run.result
    n, decisions = rows.height, len(run.result.returns)
    gate = gate_open(rows, run.rule) if run.rule is not None else np.ones(n, dtype=bool)
    column = None if run.rule is None or run.rule.confidence is None else run.rule.confidence
    confidence = (
        rows[f"{column}_confidence"]
        if column is not None
        else pl.Series([None] * n, dtype=pl.Float64)
    )

    def padded(values: np.ndarray) -> list[float | None]:
        # The last window's next bar may not have closed yet: no fill, no return.
        return [*values.tolist(), *([None] * (n - decisions))]

    return pl.DataFrame(
        {
            "strategy": run.name,
            "ts": rows["ts"],
            "signal": run.signal,
            "gate_open": gate,
            "confidence": confidence,
            "pred_up_prob": rows["pred_up_prob"],
            "pred_return": rows["pred_return"],
            "pred_vol": rows["pred_vol"],
            "position": run.target,
            "cost": padded(result.cost),
            "net_return": padded(result.returns),
        },
        schema_overrides={
            "signal": pl.Int8,
            **dict.fromkeys(
                ("confidence", "pred_up_prob", "pred_return", "pred_vol", "position", "cost",
                 "net_return"),
                pl.Float64,
            ),
        },
    )  # fmt: skip
