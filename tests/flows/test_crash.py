"""A run killed outright (kill -9, the out-of-memory killer, a CI timeout) or stopped (SIGTERM).

Nothing it started outlives it, nothing it held blocks the next run, its ``runs`` row
is marked crashed, and rerunning its work gives the warehouse one clean run gives.
"""

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from processes import alive, descendants, wait_for

from attnviz import config
from flows.ingest import ingest
from warehouse.db import connect
from warehouse.locks import file_lock, runs_lock_path

pytestmark = [pytest.mark.e2e]

AS_OF = datetime(2005, 1, 3, tzinfo=UTC)

# The work that crashes: it dies by SIGKILL as it starts loading (attnviz.faults).
CRASHING_INGEST = """
from datetime import UTC, datetime
from flows.ingest import ingest
ingest(symbols=["IBM", "MSFT"], as_of=datetime(2005, 1, 3, tzinfo=UTC))
"""


def sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with closing(connect(read_only=True)) as con:
        return con.execute(query, params or []).fetchall()


@pytest.mark.usefixtures("prefect_harness")
def test_a_killed_run_blocks_no_run_is_marked_crashed_and_its_rerun_replaces_its_rows(
    state_of: Callable[[Path], Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    # Blocked by the dead run, the next run would fail after 10 s instead of 600.
    monkeypatch.setenv("ATTNVIZ_WRITE_WAIT", "10")
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "ATTNVIZ_CRASH_AT": "load"}
    crashing = subprocess.Popen([sys.executable, "-c", CRASHING_INGEST], env=env)
    assert crashing.wait(300) == -signal.SIGKILL
    [(run_id, status)] = sql("SELECT run_id, status FROM runs")
    assert status == "running"  # nobody has looked yet

    ingest(symbols=["AAPL"], as_of=AS_OF)  # other work: nothing the dead run held is in its way
    [row] = sql(
        "SELECT status, ended_at, crashed_noticed_at > started_at, message FROM runs "
        "WHERE run_id = ?",
        [run_id],
    )
    assert row[:3] == ("crashed", None, True)
    assert f"its process (pid {crashing.pid} on " in row[3]

    ingest(symbols=["IBM", "MSFT"], as_of=AS_OF)  # the crashed work again
    assert sql("SELECT status, attempts FROM runs WHERE run_id = ?", [run_id]) == [("succeeded", 2)]
    # Each attempt keeps its own record: the crashed one, and the rerun with what it loaded.
    attempts = "SELECT attempt, status, loaded FROM run_attempts WHERE run_id = ? ORDER BY 1"
    [(loaded,)] = sql("SELECT sum(loaded) FROM run_series WHERE run_id = ?", [run_id])
    assert sql(attempts, [run_id]) == [(1, "crashed", None), (2, "succeeded", loaded)]
    after_crash = state_of(config.warehouse_path())
    monkeypatch.setenv("ATTNVIZ_DB", str(tmp_path / "clean.duckdb"))
    ingest(symbols=["AAPL"], as_of=AS_OF)
    ingest(symbols=["IBM", "MSFT"], as_of=AS_OF)
    assert state_of(config.warehouse_path()) == after_crash


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "SIGTERM"])
def test_nothing_the_command_starts_outlives_it(stop: signal.Signals, tmp_path: Path) -> None:
    database, log = tmp_path / "warehouse.duckdb", tmp_path / "attnviz.log"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "INFO"}
    env.pop("PREFECT_API_URL", None)  # as a user runs it: Prefect needs a temporary server
    command = [sys.executable, "-m", "attnviz.cli", "--db", str(database)]
    command += ["ingest", "--symbols", "AAPL", "--as-of", AS_OF.isoformat()]
    # The test holds the runs lock, so the run waits for it in the middle of its flow,
    # with its Prefect server up, and says so.
    with file_lock(runs_lock_path(database), 0, holder="the test"), log.open("wb") as output:
        attnviz = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: "for the runs lock" in log.read_text(),
                120,
                "the run to say that it waits for the runs lock",
            )
            assert (
                f"waiting up to 600 s for the runs lock {runs_lock_path(database)}, "
                "held by the test" in log.read_text()
            )
            started = descendants(attnviz.pid)
            assert started  # its Prefect server, at least
            attnviz.send_signal(stop)
            attnviz.wait(60)
        finally:
            if attnviz.poll() is None:
                attnviz.kill()
                attnviz.wait()
    wait_for(lambda: not alive(started), 10, f"{sorted(alive(started))} to end")
    if stop == signal.SIGTERM:
        assert attnviz.returncode == 128 + signal.SIGTERM  # an exit, after cleaning up
