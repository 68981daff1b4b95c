import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import polars as pl
import pytest

from attnviz.quality import validate_bars
from warehouse.bars import loaded_before, store_series
from warehouse.db import connect, migrations
from warehouse.runs import (
    EndStatus,
    RunRecord,
    finish_run,
    get_run,
    mark_crashed,
    reap_crashed_runs,
    start_run,
    work_key,
)

AS_OF = datetime(2024, 2, 1, tzinfo=UTC)
Bars = Callable[..., pl.DataFrame]


def recorded(con: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord:
    """The ``runs`` row of ``run_id``, which the test has started."""
    run = get_run(con, run_id)
    assert run is not None, f"no run {run_id}"
    return run


def test_run_lifecycle_sums_its_series(bars: Bars) -> None:
    with closing(connect()) as con:
        start_run(con, "r1", "flow-run-1", "ingest", {"symbols": ["TEST"]}, AS_OF)
        assert recorded(con, "r1").status == "running"
        for symbol in ("A", "B"):
            result = validate_bars(bars(3, symbol=symbol), "1d")
            store_series(
                con, "r1", ("test", symbol, "1d"), result.good, result.rejected, result.checks
            )
        finish_run(con, "r1", "succeeded")
        run = recorded(con, "r1")
    assert run.status == "succeeded"
    assert run.ended_at is not None and run.ended_at >= run.started_at
    assert (run.received, run.loaded, run.rejected) == (6, 6, 0)
    assert run.as_of == AS_OF and run.parameters["symbols"] == ["TEST"]


def test_each_attempt_records_its_phases_and_peak_memory() -> None:
    def phases(seconds: float) -> pl.DataFrame:
        return pl.DataFrame(
            {"phase": ["ingest", "train"], "seconds": [1.5, seconds], "tasks": [2, 1],
             "peak_rss_mb": [300.0, 800.0]}
        )  # fmt: skip

    with closing(connect()) as con:
        for attempt, seconds in ((1, 30.0), (2, 3.0)):
            start_run(con, "r1", f"flow-run-{attempt}", "nightly", {}, AS_OF)
            finish_run(con, "r1", "succeeded", phases=phases(seconds), peak_rss_mb=812.5)
        finish_run(con, "r1", "succeeded", phases=phases(4.0), peak_rss_mb=900.0)  # closed again
        stored = con.execute(
            "SELECT attempt, phase, seconds, tasks, peak_rss_mb FROM run_phases ORDER BY ALL"
        ).fetchall()
        peaks = con.execute("SELECT peak_rss_mb FROM run_attempts ORDER BY attempt").fetchall()
        assert recorded(con, "r1").peak_rss_mb == 900.0
    assert stored == [
        (1, "ingest", 1.5, 2, 300.0), (1, "train", 30.0, 1, 800.0),
        (2, "ingest", 1.5, 2, 300.0), (2, "train", 4.0, 1, 800.0),
    ]  # fmt: skip
    assert peaks == [(812.5,), (900.0,)]


@pytest.mark.parametrize(("ended", "kept"), [("succeeded", 0), ("failed", 1), ("crashed", 1)])
def test_restarting_a_run_clears_its_records_unless_it_did_not_finish(
    bars: Bars, ended: EndStatus | Literal["crashed"], kept: int
) -> None:
    with closing(connect()) as con:
        start_run(con, "r1", "flow-run-1", "ingest", {}, AS_OF)
        result = validate_bars(bars(3), "1d")
        store_series(con, "r1", ("test", "TEST", "1d"), result.good, result.rejected, result.checks)
        if ended == "crashed":
            mark_crashed(con)  # as the next run finds a run whose process died
        else:
            finish_run(con, "r1", ended, "boom")
        start_run(con, "r1", "flow-run-1", "ingest", {}, AS_OF)
        for table in ("run_series", "validation_results"):
            [(rows,)] = con.execute(f"SELECT count(DISTINCT run_id) FROM {table}").fetchall()
            assert rows == kept
        # What an unfinished attempt loaded is kept for the rerun, as loaded.
        earlier = loaded_before(con, "r1", ("test", "TEST", "1d"))
        assert (earlier is not None) == bool(kept)
        assert recorded(con, "r1").status == "running"
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
        run = recorded(con, "r1")
        [(rows,)] = con.execute("SELECT count(*) FROM runs").fetchall()
    assert rows == 1
    assert (run.status, run.message, run.ended_at) == ("running", None, None)
    assert (run.flow_run_id, run.attempts) == ("flow-run-2", 2)


# A run as recorded_run does it, without Prefect: the runs lock for its whole life, its row.
HOLD_A_RUN = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from warehouse.locks import file_lock, runs_lock_path, writer
from warehouse.runs import start_run
database = Path(sys.argv[1])
with file_lock(runs_lock_path(database), 5, holder="run r1"):
    with writer(database, 5) as con:
        start_run(con, "r1", "flow-run-1", "ingest", {}, datetime(2024, 2, 1, tzinfo=UTC))
    print("running", flush=True)
    time.sleep(60)
"""


def test_a_run_whose_process_died_is_marked_crashed_by_whoever_looks_next(
    tmp_path: Path,
) -> None:
    database, snapshot = tmp_path / "w.duckdb", tmp_path / "w-snapshot.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_A_RUN, str(database)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "running"
        assert reap_crashed_runs(database, snapshot) == []  # alive: its run is in progress
        with closing(connect(database, read_only=True)) as con:
            assert recorded(con, "r1").status == "running"
    finally:
        holder.kill()  # as kill -9 or the out-of-memory killer would
        holder.wait()

    assert reap_crashed_runs(database, snapshot) == ["r1"]
    assert reap_crashed_runs(database, snapshot) == []
    for published in (database, snapshot):  # readers of the snapshot see it too
        with closing(connect(published, read_only=True)) as con:
            run = recorded(con, "r1")
        assert (run.status, run.pid, run.ended_at) == ("crashed", holder.pid, None)
        assert run.crashed_noticed_at is not None and run.crashed_noticed_at >= run.started_at
        assert run.message is not None and f"its process (pid {holder.pid} on " in run.message


def test_a_warehouse_from_before_crashes_were_recorded_keeps_its_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "w.duckdb"
    with monkeypatch.context() as older:
        older.setattr("warehouse.db.migrations", lambda: [m for m in migrations() if m[0] < 6])
        with closing(connect(database)) as con:
            con.execute(
                """
                INSERT INTO runs (run_id, flow, parameters, as_of, started_at, ended_at, status,
                                  received, loaded, rejected, message, flow_run_id, attempts,
                                  not_closed)
                VALUES ('r1', 'ingest', '{"symbols": ["A"]}', $as_of, now(), now(), 'failed',
                        5, 3, 1, 'boom', 'flow-run-1', 2, 1),
                       ('r2', 'nightly', '{}', $as_of, now(), NULL, 'running',
                        NULL, NULL, NULL, NULL, 'flow-run-2', 1, NULL)
                """,
                {"as_of": AS_OF},
            )
            rows = con.execute("SELECT * FROM runs ORDER BY run_id").fetchall()
    with closing(connect(database)) as con:
        added = "pid, host, crashed_noticed_at, peak_rss_mb"  # by later migrations
        kept = f"SELECT * EXCLUDE ({added}) FROM runs ORDER BY run_id"
        assert con.execute(kept).fetchall() == rows
        assert [run.run_id for run in mark_crashed(con)] == ["r2"]
        assert recorded(con, "r2").status == "crashed"
        with pytest.raises(duckdb.ConstraintException):  # the other statuses are still refused
            con.execute("UPDATE runs SET status = 'lost' WHERE run_id = 'r1'")
        # The view that joins runs binds to the rebuilt table.
        assert con.execute("SELECT count(*) FROM latest_attention_window").fetchall() == [(0,)]
