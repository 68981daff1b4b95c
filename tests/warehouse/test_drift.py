"""The drift flags of the newest window analysed with a version, which can call a full retrain."""

from contextlib import closing
from datetime import UTC, datetime, timedelta

import polars as pl
from analysis_rows import SERIES, TS, frames

from attnviz.series import Series
from warehouse.attention import store_analysis
from warehouse.db import connect
from warehouse.drift import newest_flags
from warehouse.runs import start_run

AAPL = Series(source=SERIES[0], symbol=SERIES[1], interval=SERIES[2])
IBM = Series(source="sample", symbol="IBM", interval="1d")


def windows(collapse: str, regime_change: str) -> dict[str, pl.DataFrame]:
    """``attention_window`` rows, one a day, with the flags given as strings of 0 and 1."""
    one = frames(0.1)["attention_window"].head(1)
    days = [TS[0] + timedelta(days=day) for day in range(len(collapse))]
    return {
        "attention_window": pl.concat([one] * len(days)).with_columns(
            pl.Series("ts", days),
            pl.Series("collapse", [bit == "1" for bit in collapse]),
            pl.Series("regime_change", [bit == "1" for bit in regime_change]),
        )
    }


def test_the_newest_window_of_the_newest_run_with_that_version_decides() -> None:
    with closing(connect()) as con:
        for day, run in enumerate(("r1", "r2", "r3"), start=1):
            start_run(con, run, f"flow-{run}", "nightly", {}, datetime(2024, 2, day, tzinfo=UTC))
        store_analysis(con, "r1", AAPL.key, ("m", 1), windows("0000", "0001"))
        store_analysis(con, "r2", AAPL.key, ("m", 1), windows("10000", "01000"))
        store_analysis(con, "r3", AAPL.key, ("m", 2), windows("000001", "000001"))
        store_analysis(con, "r1", IBM.key, ("m", 1), windows("01", "11"))
        later = datetime(2024, 3, 1, tzinfo=UTC)
        assert newest_flags(con, [AAPL, IBM], ("m", 1), later) == {
            "sample/AAPL/1d": [],  # r2's newest window is quiet; r1's alarm is older news
            "sample/IBM/1d": ["collapse", "regime_change"],
        }
        assert newest_flags(con, [AAPL, IBM], ("m", 2), later) == {
            "sample/AAPL/1d": ["collapse", "regime_change"]
        }
        assert newest_flags(con, [AAPL], ("m", 3), later) == {}
        # A run at r2's as-of (r2 again, or a backfill) reads only what came before it.
        on_r2 = datetime(2024, 2, 2, tzinfo=UTC)
        assert newest_flags(con, [AAPL], ("m", 1), on_r2) == {"sample/AAPL/1d": ["regime_change"]}
