"""Writing a run's backtest of one series: signals, strategies, results and figures at once."""

import duckdb
import polars as pl

from warehouse.db import insert_rows, query, replace_rows, transaction

TABLES = ("signals", "backtest_strategies", "backtest_results")
# What a trader reads first of ``strategy_comparison``, in the artifact and on the command line.
COMPARISON_COLUMNS = (
    "symbol", "interval", "strategy", "role", "chosen", "total_return", "sharpe", "sharpe_low",
    "sharpe_high", "max_drawdown", "trades", "exposure", "random_percentile", "significance",
)  # fmt: skip
# The backtest's PNGs in ``figures``, beside the analysis' own (which it must leave alone).
FIGURE_KINDS = ("equity_curves", "sharpe_by_percentile", "random_distribution")


def store_backtest(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    series: tuple[str, str, str],
    frames: dict[str, pl.DataFrame],
    figures: pl.DataFrame,
) -> dict[str, int]:
    """Replace a run's backtest of one series with ``frames`` and ``figures``, atomically.

    ``frames`` maps the backtest tables to their rows; ``figures`` indexes the backtest's
    PNGs (kinds :data:`FIGURE_KINDS`), which replace the run's earlier backtest PNGs of
    the series and no other figure. Readers see the previous rows or all the new ones,
    never a mix; a rerun of the same run replaces, never duplicates. Returns the row
    count written per table.

    Raises
    ------
    ValueError
        If a frame names a table that is not a backtest table, or a figure is of
        another kind.
    """
    unknown = sorted(set(figures["kind"]) - set(FIGURE_KINDS))
    if unknown:
        raise ValueError(f"figures of kinds {unknown} are not the backtest's")
    source, symbol, interval = series
    keys = {"run_id": run_id, "source": source, "symbol": symbol, "interval": interval}
    with transaction(con):
        con.execute(
            "DELETE FROM figures WHERE run_id = ? AND source = ? AND symbol = ? "
            "AND interval = ? AND list_contains(?, kind)",
            [*keys.values(), list(FIGURE_KINDS)],
        )
        written = replace_rows(con, TABLES, keys, frames)
        written["figures"] = insert_rows(con, "figures", keys, figures)
    return written


def comparison_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """The ``strategy_comparison`` rows of run ``run_id``, series by series, in strategy order."""
    columns = ", ".join(COMPARISON_COLUMNS)
    return query(
        con,
        f"""
        SELECT {columns} FROM strategy_comparison
        WHERE run_id = ?
        ORDER BY source, symbol, interval,
                 list_position(['buy_and_hold', 'transformer', 'lstm', 'filtered', 'chapter',
                                'random'], role),
                 strategy
        """,
        [run_id],
    )
