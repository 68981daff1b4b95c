"""Writing the attention analytics of a run: all of a series' rows in one transaction."""

import duckdb
import polars as pl

from warehouse.db import transaction

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

    Readers see the previous rows or all the new ones, never a mix; a rerun of the
    same run replaces, never duplicates. Returns the row count written per table.
    """
    source, symbol, interval = series
    keys = {"run_id": run_id, "source": source, "symbol": symbol, "interval": interval}
    model_keys = {"model_name": model[0], "model_version": model[1]}
    written = {}
    with transaction(con):
        for table in TABLES:
            con.execute(
                f"DELETE FROM {table} "
                "WHERE run_id = ? AND source = ? AND symbol = ? AND interval = ?",
                list(keys.values()),
            )
        for table, frame in frames.items():
            if table not in TABLES:
                raise ValueError(f"unknown analytics table {table!r}")
            extra = keys if table == "figures" else {**keys, **model_keys}
            rows = frame.with_columns(pl.lit(value).alias(name) for name, value in extra.items())
            con.register("rows_in", rows)
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM rows_in")
            finally:
                con.unregister("rows_in")
            written[table] = rows.height
    return written
