from contextlib import closing
from datetime import UTC, datetime

from attnviz.quality import validate_bars
from warehouse.bars import store_series
from warehouse.db import connect
from warehouse.runs import finish_run, get_run, start_run, work_key

AS_OF = datetime(2024, 2, 1, tzinfo=UTC)


def test_run_lifecycle_sums_its_series(bars) -> None:
    with closing(connect()) as con:
        start_run(con, "r1", "flow-run-1", "ingest", {"symbols": ["TEST"]}, AS_OF)
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
        start_run(con, "r1", "flow-run-1", "ingest", {}, AS_OF)
        result = validate_bars(bars(3), "1d")
        store_series(con, "r1", ("test", "TEST", "1d"), result.good, result.rejected, result.checks)
        finish_run(con, "r1", "failed", "boom")
        start_run(con, "r1", "flow-run-1", "ingest", {}, AS_OF)
        assert con.execute("SELECT count(*) FROM run_series WHERE run_id = 'r1'").fetchall() == [
            (0,)
        ]
        assert get_run(con, "r1")["status"] == "running"
        assert get_run(con, "nope") is None


def test_the_work_key_names_flow_and_as_of_and_ignores_parameter_order() -> None:
    key = work_key("ingest", {"symbols": ["A"], "interval": "1d"}, AS_OF)
    assert key.startswith("ingest-20240201T000000Z-")
    assert key == work_key("ingest", {"interval": "1d", "symbols": ["A"]}, AS_OF)
    assert key != work_key("ingest", {"interval": "1h", "symbols": ["A"]}, AS_OF)
    assert key != work_key("nightly", {"interval": "1d", "symbols": ["A"]}, AS_OF)
    assert key != work_key("ingest", {"symbols": ["A"], "interval": "1d"}, AS_OF.replace(day=2))


def test_starting_the_same_work_again_counts_attempts_and_keeps_one_row() -> None:
    with closing(connect()) as con:
        assert start_run(con, "r1", "flow-run-1", "ingest", {}, AS_OF) == 1
        finish_run(con, "r1", "failed", "boom")
        assert start_run(con, "r1", "flow-run-2", "ingest", {}, AS_OF) == 2
        run = get_run(con, "r1")
        [(rows,)] = con.execute("SELECT count(*) FROM runs").fetchall()
    assert rows == 1
    assert (run["status"], run["message"], run["ended_at"]) == ("running", None, None)
    assert (run["flow_run_id"], run["attempts"]) == ("flow-run-2", 2)
