from contextlib import closing
from datetime import UTC, datetime

from analysis_rows import SERIES, frames

from warehouse.attention import analysed_windows, store_analysis
from warehouse.db import connect
from warehouse.runs import start_run

MODEL = "sample/AAPL/1d"


def test_the_newest_analysis_of_a_model_version_is_read_back_without_its_keys() -> None:
    with closing(connect()) as con:
        for run, day in (("later", 20), ("earlier", 10), ("other-version", 30)):
            start_run(con, run, f"flow-{run}", "nightly", {}, datetime(2024, 3, day, tzinfo=UTC))
        store_analysis(con, "later", SERIES, (MODEL, 1), frames(0.2))
        store_analysis(con, "earlier", SERIES, (MODEL, 1), frames(0.1))  # stored last, older as-of
        store_analysis(con, "other-version", SERIES, (MODEL, 2), frames(0.3))
        found = analysed_windows(con, SERIES, (MODEL, 1))
        assert analysed_windows(con, SERIES, (MODEL, 3)) is None
        assert analysed_windows(con, ("sample", "IBM", "1d"), (MODEL, 1)) is None
    assert found is not None
    run_id, rows = found
    assert run_id == "later"
    assert rows["seed_confidence"].to_list() == [0.2, 0.2]
    assert rows["ts"].is_sorted() and "run_id" not in rows.columns and "symbol" not in rows.columns
