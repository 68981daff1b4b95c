from contextlib import closing
from datetime import UTC, datetime

from attnviz.quality import validate_bars
from warehouse.bars import store_series
from warehouse.db import connect
from warehouse.runs import finish_run, get_run, start_run

AS_OF = datetime(2024, 2, 1, tzinfo=UTC)


def test_run_lifecycle_sums_its_series(bars) -> None:
    with closing(connect()) as con:
        start_run(con, "r1", "ingest", {"symbols": ["TEST"]}, AS_OF)
        assert get_run(con, "r1")["status"] == "running"
        for symbol in ("A", "B"):
            result = validate_bars(bars(3, symbol=symbol), "1d")
            store_series(
                con, "r1", ("test", symbol, "1d"), result.good, result.rejected, result.checks
            )
        finish_run(con, "r1", "succeeded")
        run = get_run(con, "r1")
    assert run["status"] == "succeeded" and run["ended_at"] >= run["started_at"]
    assert (run["received"], run["loaded"], run["rejected"]) == (6, 6, 0)
    assert run["as_of"] == AS_OF and '"symbols": ["TEST"]' in run["parameters"]


def test_restarting_a_run_clears_its_previous_records(bars) -> None:
    with closing(connect()) as con:
        start_run(con, "r1", "ingest", {}, AS_OF)
        result = validate_bars(bars(3), "1d")
        store_series(con, "r1", ("test", "TEST", "1d"), result.good, result.rejected, result.checks)
        finish_run(con, "r1", "failed", "boom")
        start_run(con, "r1", "ingest", {}, AS_OF)
        assert con.execute("SELECT count(*) FROM run_series WHERE run_id = 'r1'").fetchall() == [
            (0,)
        ]
        assert get_run(con, "r1")["status"] == "running"
        assert get_run(con, "nope") is None
