"""The ``flag_shares`` view: how often each monitor flag is on, per run and series."""

from contextlib import closing
from datetime import UTC, datetime, timedelta

import polars as pl
from analysis_rows import SERIES, TS, frames

from warehouse.attention import store_analysis
from warehouse.db import connect, query
from warehouse.runs import start_run

IBM = ("sample", "IBM", "1d")


def windows(collapse: str, regime_change: str, head_gone_uniform: str) -> dict[str, pl.DataFrame]:
    """``attention_window`` rows, one a day, with the flags given as strings of 0 and 1."""
    one = frames(0.1)["attention_window"].head(1)
    days = [TS[0] + timedelta(days=day) for day in range(len(collapse))]
    flags = {
        "collapse": collapse,
        "regime_change": regime_change,
        "head_gone_uniform": head_gone_uniform,
    }
    rows = pl.concat([one] * len(days)).with_columns(
        pl.Series("ts", days),
        *(pl.Series(name, [bit == "1" for bit in bits]) for name, bits in flags.items()),
    )
    return {"attention_window": rows}


def test_the_view_gives_each_flags_share_of_a_runs_windows_per_series() -> None:
    with closing(connect()) as con:
        for run in ("r1", "r2"):
            start_run(con, run, f"flow-{run}", "nightly", {}, datetime(2024, 2, 1, tzinfo=UTC))
        store_analysis(con, "r1", SERIES, ("m", 1), windows("0111", "0100", "0000"))
        store_analysis(con, "r1", IBM, ("m", 1), windows("00", "00", "01"))
        store_analysis(con, "r2", SERIES, ("m", 2), windows("00000000", "00010000", "11000000"))
        shares = query(con, "SELECT * FROM flag_shares ORDER BY run_id, symbol")
    assert shares.columns == [
        "run_id",
        "source",
        "symbol",
        "interval",
        "windows",
        "collapse_share",
        "regime_change_share",
        "head_gone_uniform_share",
    ]
    assert shares.rows() == [
        ("r1", *SERIES, 4, 0.75, 0.25, 0.0),
        ("r1", *IBM, 2, 0.0, 0.0, 0.5),
        ("r2", *SERIES, 8, 0.0, 0.125, 0.25),
    ]
