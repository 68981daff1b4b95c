"""Writing the attention analytics of a run: all of a series' rows in one transaction."""

import duckdb
import polars as pl

from warehouse.db import query, replace_rows, transaction

TABLES = (
    "attention_timestep",
    "attention_window",
    "feature_attribution",
    "position_importance",
    "head_summary",
    "figures",
)


def store_analysis(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    series: tuple[str, str, str],
    model: tuple[str, int],
    frames: dict[str, pl.DataFrame],
) -> dict[str, int]:
    """Replace a run's analytics of one series with ``frames`` (table -> rows), atomically.

    Every table but ``figures`` also records the model version the rows came from.
    Readers see the previous rows or all the new ones, never a mix; a rerun of the
    same run replaces, never duplicates. Returns the row count written per table.

    Raises
    ------
    ValueError
        If a frame names a table that is not an analytics table.
    """
    source, symbol, interval = series
    keys = {"run_id": run_id, "source": source, "symbol": symbol, "interval": interval}
    versioned = {
        table: frame
        if table == "figures"
        else frame.with_columns(
            pl.lit(model[0]).alias("model_name"), pl.lit(model[1]).alias("model_version")
        )
        for table, frame in frames.items()
    }
    with transaction(con):
        return replace_rows(con, TABLES, keys, versioned)


def analysed_windows(
    con: duckdb.DuckDBPyConnection, series: tuple[str, str, str], model: tuple[str, int]
) -> tuple[str, pl.DataFrame] | None:
    """The newest run's ``attention_window`` rows of a series under one model version.

    Returns that run's id and its rows, oldest window first, or ``None`` if no run has
    analysed the series with that version. "Newest" is by the runs' as-of, then start,
    as in the ``latest_attention_window`` view.
    """
    source, symbol, interval = series
    newest = con.execute(
        """
        SELECT w.run_id FROM attention_window w JOIN runs r USING (run_id)
        WHERE w.source = ? AND w.symbol = ? AND w.interval = ?
          AND w.model_name = ? AND w.model_version = ?
        ORDER BY r.as_of DESC, r.started_at DESC LIMIT 1
        """,
        [source, symbol, interval, *model],
    ).fetchall()
    if not newest:
        return None
    [(run_id,)] = newest
    rows = query(
        con,
        """
        SELECT * EXCLUDE (run_id, model_name, model_version, source, symbol, interval)
        FROM attention_window
        WHERE run_id = ? AND source = ? AND symbol = ? AND interval = ?
        ORDER BY ts
        """,
        [run_id, *series],
    )
    return str(run_id), rows
