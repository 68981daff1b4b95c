from contextlib import closing
from pathlib import Path

import duckdb
import polars as pl
import pytest
from analysis_rows import SERIES, TS, frames

from warehouse.attention import store_analysis
from warehouse.db import connect, migrations, query
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


def test_a_warehouse_from_before_sampled_explanations_says_which_old_windows_have_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "w.duckdb"
    old_windows = """
        INSERT INTO attention_window (run_id, model_name, model_version, source, symbol,
            interval, ts, seed_confidence, calibrated_confidence, rollout_top_lags,
            flow_top_lags, attention_ig_spearman, head_gone_uniform, collapse, regime_change,
            pred_return, pred_up_prob, pred_vol, next_return, direction, future_vol)
        SELECT 'r1', 'm', 1, 'sample', 'AAPL', '1d', TIMESTAMPTZ '2024-01-01' + to_days(day),
               0.6, 0.7, [0, 1], flow, ig, false, false, false, 0, 0.5, 0.01, 0, 1, 0.01
        FROM (VALUES (0, [3, 1], 0.4::DOUBLE), (1, [], 0.2), (2, [2, 0], 'NaN'), (3, [], 'NaN'))
             AS t(day, flow, ig)
    """
    with monkeypatch.context() as older:
        older.setattr("warehouse.db.migrations", lambda: [m for m in migrations() if m[0] < 11])
        with closing(connect(database)) as con:
            start_run(con, "r1", "flow-r1", "nightly", {}, TS[0])
            con.execute(old_windows)
            before = query(con, "SELECT * FROM attention_window ORDER BY ts")
    with closing(connect(database)) as con:
        flags = "has_attention_flow, has_integrated_gradients"
        assert con.execute(f"SELECT {flags} FROM attention_window ORDER BY ts").fetchall() == [
            (True, True),
            (False, True),
            (True, False),
            (False, False),
        ]
        kept = f"SELECT * EXCLUDE ({flags}) FROM attention_window ORDER BY ts"
        assert query(con, kept).equals(before)  # NaN equals NaN here
        # The views that read the table bind to the rebuilt one, new columns included.
        assert con.execute(f"SELECT {flags} FROM latest_attention_window").fetchall()
        assert con.execute("SELECT windows FROM flag_shares").fetchall() == [(4,)]
        with pytest.raises(duckdb.ConstraintException, match="has_attention_flow"):
            con.execute(old_windows.replace("r1", "r2"))  # new rows must say
