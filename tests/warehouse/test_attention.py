from contextlib import closing

import polars as pl
import pytest
from analysis_rows import SERIES, TS, frames

from warehouse.attention import store_analysis
from warehouse.db import connect
from warehouse.runs import start_run


def test_a_rerun_replaces_its_rows_and_views_show_the_newest_run() -> None:
    with closing(connect()) as con:
        for run in ("r1", "r2"):
            start_run(con, run, f"flow-{run}", "nightly", {}, TS[0])
        store_analysis(con, "r1", SERIES, ("sample/AAPL/1d", 1), frames(0.1))
        store_analysis(con, "r1", SERIES, ("sample/AAPL/1d", 1), frames(0.2))  # rerun of r1
        assert con.execute(
            "SELECT count(*), max(seed_confidence) FROM attention_window"
        ).fetchall() == [(2, 0.2)]
        written = store_analysis(con, "r2", SERIES, ("sample/AAPL/1d", 2), frames(0.3))
        assert written == {"attention_window": 2, "position_importance": 2}
        latest = con.execute(
            "SELECT DISTINCT run_id, model_version FROM latest_attention_window"
        ).fetchall()
        daily = con.execute(
            "SELECT day, windows, collapse_windows FROM attention_daily ORDER BY day"
        ).fetchall()
    assert latest == [("r2", 2)]
    assert [(str(day), n, c) for day, n, c in daily] == [("2024-01-02", 1, 0), ("2024-01-03", 1, 1)]


def test_a_failed_write_leaves_the_previous_rows() -> None:
    with closing(connect()) as con:
        start_run(con, "r1", "flow-r1", "nightly", {}, TS[0])
        store_analysis(con, "r1", SERIES, ("m", 1), frames(0.1))
        broken = frames(0.2)
        broken["position_importance"] = broken["position_importance"].with_columns(
            score=pl.lit(None, pl.Float64)
        )
        with pytest.raises(Exception, match="NOT NULL"):
            store_analysis(con, "r1", SERIES, ("m", 1), broken)
        assert con.execute("SELECT max(seed_confidence) FROM attention_window").fetchall() == [
            (0.1,)
        ]
        with pytest.raises(ValueError, match=r"unknown tables \[.bars.\]"):
            store_analysis(con, "r1", SERIES, ("m", 1), {"bars": frames(0.1)["attention_window"]})
