from contextlib import closing
from datetime import UTC, datetime

import polars as pl
import pytest

from warehouse.backtest import store_backtest
from warehouse.db import connect, insert_rows

TS = [datetime(2024, 1, d, tzinfo=UTC) for d in (2, 3)]
SERIES = ("sample", "AAPL", "1d")
KEYS = {"run_id": "r1", "source": "sample", "symbol": "AAPL", "interval": "1d"}


def frames(sharpe: float) -> dict[str, pl.DataFrame]:
    signals = pl.DataFrame(
        {
            "strategy": ["filtered_p70"] * 2,
            "ts": TS,
            "signal": [1, 0],
            "gate_open": [True, False],
            "confidence": [0.8, 0.2],
            "pred_up_prob": [0.6, 0.55],
            "pred_return": [0.001, 0.0005],
            "pred_vol": [0.01, 0.01],
            "position": [1.0, 0.0],
            "cost": [0.0002, 0.0002],
            "net_return": [0.01, None],
        },
        schema_overrides={"signal": pl.Int8},
    )
    strategies = pl.DataFrame(
        {
            "strategy": ["filtered_p70", "unfiltered"],
            "role": ["filtered", "transformer"],
            "threshold": [0.7, None],
            "chosen": [True, False],
            "significance": ["not significant at 5% (p = 0.41)", None],
        }
    )
    results = pl.DataFrame(
        {
            "strategy": ["filtered_p70", "filtered_p70", "unfiltered"],
            "metric": ["sharpe", "trades", "sharpe"],
            "value": [sharpe, 12.0, 0.1],
            "ci_low": [sharpe - 1, None, -0.9],
            "ci_high": [sharpe + 1, None, 1.1],
        }
    )
    return {"signals": signals, "backtest_strategies": strategies, "backtest_results": results}


def figures(*kinds: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "kind": list(kinds),
            "layer": None,
            "head": None,
            "ts_start": TS[0],
            "ts_end": TS[1],
            "path": [f"/figures/{kind}.png" for kind in kinds],
            "width": 800,
            "height": 600,
        },
        schema_overrides={"layer": pl.Int32, "head": pl.Int32},
    )


EQUITY = figures("equity_curves")


def test_a_rerun_replaces_the_series_backtest_and_the_view_puts_metrics_side_by_side() -> None:
    with closing(connect()) as con:
        store_backtest(con, "r1", SERIES, frames(0.5), EQUITY)
        written = store_backtest(con, "r1", SERIES, frames(0.7), EQUITY)
        store_backtest(con, "r1", ("sample", "IBM", "1d"), frames(0.2), EQUITY)
        assert written == {
            "signals": 2,
            "backtest_strategies": 2,
            "backtest_results": 3,
            "figures": 1,
        }
        rows = con.execute(
            """
            SELECT strategy, role, chosen, sharpe, sharpe_low, sharpe_high, trades, significance
            FROM strategy_comparison WHERE symbol = 'AAPL' ORDER BY strategy
            """
        ).fetchall()
    assert rows == [
        ("filtered_p70", "filtered", True, 0.7, pytest.approx(-0.3), 1.7, 12.0,
         "not significant at 5% (p = 0.41)"),
        ("unfiltered", "transformer", False, 0.1, -0.9, 1.1, None, None),
    ]  # fmt: skip


def test_a_failed_write_leaves_the_previous_backtest() -> None:
    with closing(connect()) as con:
        store_backtest(con, "r1", SERIES, frames(0.5), EQUITY)
        broken = frames(0.9)
        broken["backtest_strategies"] = broken["backtest_strategies"].with_columns(
            role=pl.lit("oracle")
        )
        with pytest.raises(Exception, match="CHECK"):
            store_backtest(con, "r1", SERIES, broken, EQUITY)
        [(sharpe,)] = con.execute(
            "SELECT value FROM backtest_results WHERE strategy = 'filtered_p70' "
            "AND metric = 'sharpe'"
        ).fetchall()
        assert sharpe == 0.5
        with pytest.raises(ValueError, match=r"unknown tables \['bars'\]"):
            store_backtest(con, "r1", SERIES, {"bars": frames(0.1)["signals"]}, EQUITY)


def test_the_backtest_replaces_its_own_figures_and_leaves_the_analysis_figures() -> None:
    with closing(connect()) as con:
        insert_rows(con, "figures", KEYS, figures("flow", "equity_curves"))
        store_backtest(
            con, "r1", SERIES, frames(0.5), figures("equity_curves", "random_distribution")
        )
        kinds = con.execute("SELECT kind FROM figures ORDER BY kind").fetchall()
        assert kinds == [("equity_curves",), ("flow",), ("random_distribution",)]
        with pytest.raises(ValueError, match=r"kinds \['flow'\] are not the backtest's"):
            store_backtest(con, "r1", SERIES, frames(0.5), figures("flow"))
