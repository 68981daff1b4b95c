"""Fault injection: a nightly killed at every stage, a full disk, a read-only home, bad models.

ARCHITECTURE.md, "Faults": a crash at any point (``kill -9``) leaves nothing that
blocks the next run, no lock, slot or process outlives its holder, the crashed run
is recorded as crashed, and rerunning the same work gives the warehouse one clean
run gives. Each test here runs real nightlies in processes of their own, killed
for real by :func:`attnviz.faults.crash_point`, and compares every column of every
table (found from ``duckdb_columns()``, so a new table is covered without a change
here) with one uninterrupted run's, and every file the runs wrote beside it.

The runs are small (one series of a few hundred bars, the quick model) and report
to one Prefect server for the module. They are forked from a driver that has
imported the pipeline once (``nightly_driver.py``), which saves 5-7 s of imports
a run; each scenario has its own warehouse and its own task caches, so a crash in
training or analysis is not skipped by a cache another scenario filled.
"""

import hashlib
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from processes import alive, descendants

from attnviz.analysis import AnalysisConfig
from attnviz.faults import STAGES
from attnviz.series import Series
from catalogues import write_catalogue
from flows.api_server import local_server
from warehouse.runs import reap_crashed_runs

pytestmark = pytest.mark.e2e

DRIVER = Path(__file__).with_name("nightly_driver.py")
AS_OF = datetime(2003, 1, 1, tzinfo=UTC)  # AAPL from 2000: 712 bars, 422/90/90 windows
NEXT_DAY = datetime(2003, 1, 2, tzinfo=UTC)
# The least analysis that still fills every table: no attention flow, no Integrated Gradients.
ANALYSIS = AnalysisConfig(flow=False, ig_steps=0)
# A lock or slot left behind makes the next run wait this long, then fail.
WRITE_WAIT = "20"
# How long a process the run started may take to notice that the run has gone.
GRACE_SECONDS = 5

# The Prefect task in which each crash point sits (its task run name starts with this).
STAGE_TASKS = {
    "fetch": "fetch",
    "validate": "validate",
    "load": "load",
    "train": "train",
    "register": "register",
    "analyse": "analyze",
    "render": "render",
    "store": "store",
    "backtest": "backtest",
    "publish": "publish-snapshot",
}

# Columns that differ between two attempts at the same work however right the
# pipeline is: wall-clock times, the Prefect flow run and process, the attempt count.
PER_ATTEMPT_COLUMNS = {
    "started_at",
    "ended_at",
    "loaded_at",
    "rejected_at",
    "resolved_at",
    "applied_at",
    "created_at",
    "crashed_noticed_at",
    "flow_run_id",
    "attempts",
    "pid",
    "peak_rss_mb",
}
# Keys of JSON columns that hold a wall-clock measurement.
PER_ATTEMPT_KEYS = {("models", "hyperparameters"): {"train_seconds"}}
# Files compared by their rows, not their bytes (DuckDB's layout depends on its history).
DATABASE_SUFFIXES = (".duckdb", ".duckdb.wal")

Row = tuple[Any, ...]  # a table row as DuckDB returns it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Outcome:
    """How one run ended: its pid, exit code (minus the signal if killed), output, processes.

    ``started`` holds (pid, start time) of every process seen below the run while it ran.
    """

    pid: int
    returncode: int
    log: str
    started: set[tuple[int, int]]

    def leftovers(self) -> list[str]:
        """Command lines of the processes the run started that are still alive a while after it."""
        deadline = time.monotonic() + GRACE_SECONDS
        while True:
            running = alive(self.started)
            if not running or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        return [Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ") for pid, _ in running]

    def finished_tasks(self) -> list[str]:
        """The task of every task run that completed, in order (its run name's first word).

        Prefect names a task run ``<task>-<3 hex digits>`` unless the task names it.
        """
        return re.findall(
            r"Task run '([\w-]+?)(?:-[0-9a-f]{3})?(?: [^']*)?' - Finished in state Completed",
            self.log,
        )


class Driver:
    """Runs small nightlies in processes forked from ``nightly_driver.py``."""

    def __init__(self, api_url: str, folder: Path, parameters: dict[str, Any]) -> None:
        env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(folder / "prefect"),
            "PREFECT_LOGGING_LEVEL": "INFO",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
        }
        for inherited in ("ATTNVIZ_HOME", "ATTNVIZ_DB", "ATTNVIZ_CRASH_AT"):
            env.pop(inherited, None)  # every request sets its own
        self.parameters = parameters
        self.process = subprocess.Popen(
            [sys.executable, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests, self.answers = self.process.stdin, self.process.stdout

    def run(
        self,
        place: Path,
        name: str,
        *,
        crash_at: str | None = None,
        env: dict[str, str | None] | None = None,
        max_file_bytes: int | None = None,
        timeout: float = 120,
        **parameters: Any,
    ) -> Outcome:
        """Run the nightly on the warehouse in ``place/var``, its output to ``place/<name>.log``.

        ``place/results`` holds the task caches, shared by the runs of one place as
        they are by the runs of one Prefect home. Watches the processes the run
        starts until it ends.
        """
        log = place / f"{name}.log"
        request = {
            "env": {
                "ATTNVIZ_HOME": str(place / "var"),
                "ATTNVIZ_DB": None,
                "ATTNVIZ_CRASH_AT": crash_at,
                "ATTNVIZ_WRITE_WAIT": WRITE_WAIT,
                **(env or {}),
            },
            "storage": str(place / "results"),
            "log": str(log),
            "parameters": {**self.parameters, **parameters},
            "max_file_bytes": max_file_bytes,
        }
        started = time.monotonic()
        self.requests.write(json.dumps(request, default=str) + "\n")
        self.requests.flush()
        pid = json.loads(self.answers.readline())["pid"]
        seen: set[tuple[int, int]] = set()
        late = False
        while not select.select([self.answers], [], [], 0.05)[0]:
            seen |= descendants(pid)
            if not late and time.monotonic() - started > timeout:
                os.killpg(pid, signal.SIGKILL)  # its status still comes, and is read below
                late = True
        status = json.loads(self.answers.readline())["status"]
        if late:
            pytest.fail(f"{name} ran longer than {timeout} s; see {log}")
        return Outcome(pid, os.waitstatus_to_exitcode(status), log.read_text(), seen)

    def close(self) -> None:
        self.requests.close()
        self.process.wait(30)


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory, quick: dict[str, Any]) -> Iterator[Driver]:
    """A Prefect server for the module, and the driver whose runs report to it."""
    folder = tmp_path_factory.mktemp("faults")
    env = {
        **os.environ,
        "PREFECT_HOME": str(folder / "server"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    env.pop("PREFECT_API_URL", None)
    aapl = Series(source="sample", symbol="AAPL", interval="1d")
    parameters = {
        "catalogue": write_catalogue(folder / "catalogue.yaml", [aapl], ANALYSIS, **quick),
        "as_of": AS_OF.isoformat(),
    }
    with local_server(free_port(), log=folder / "server.log", env=env) as api_url:
        driver = Driver(api_url, folder, parameters)
        try:
            yield driver
        finally:
            driver.close()


# --- what a run leaves ----------------------------------------------------------------------


def _normalised(value: Any, home: Path, keys: set[str]) -> Any:
    """``value`` with the run's folder written as ``<home>``, NaN as a string, ``keys`` removed."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, str):
        if keys:
            value = json.dumps({k: v for k, v in json.loads(value).items() if k not in keys})
        return value.replace(str(home.resolve()), "<home>").replace(str(home), "<home>")
    if isinstance(value, list):
        return tuple(_normalised(item, home, set()) for item in value)
    return value


def warehouse_rows(database: Path, home: Path) -> dict[str, list[Row]]:
    """Every table's rows, sorted, without the columns that differ per attempt.

    The attempt history (``run_attempts``, ``run_series_attempts``, ``run_phases``) is left
    out: it records each attempt by design. Paths under ``home`` read ``<home>``, so two runs in
    two folders compare equal.
    """
    with duckdb.connect(str(database), read_only=True) as con:
        tables = con.execute(
            """
            SELECT c.table_name, list(c.column_name ORDER BY c.column_index)
            FROM duckdb_columns() c
            JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
            WHERE c.database_name = current_database()
              AND c.table_name NOT IN ('run_attempts', 'run_series_attempts', 'run_phases')
            GROUP BY ALL
            """
        ).fetchall()
        contents = {}
        for table, columns in tables:
            kept = [column for column in columns if column not in PER_ATTEMPT_COLUMNS]
            keys = [PER_ATTEMPT_KEYS.get((table, column), set()) for column in kept]
            selected = ", ".join(f'"{column}"' for column in kept)
            rows = con.execute(f"SELECT {selected} FROM {table}")
            contents[table] = sorted(
                (
                    tuple(_normalised(v, home, k) for v, k in zip(row, keys, strict=True))
                    for row in rows.fetchall()
                ),
                key=repr,
            )
        return contents


def files(home: Path) -> dict[str, str]:
    """Digest of every file under ``home`` but the databases, by relative path."""
    return {
        str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(home.rglob("*"))
        if path.is_file() and not path.name.endswith(DATABASE_SUFFIXES)
    }


@dataclass(frozen=True)
class Contents:
    """What a run leaves in its home: the rows of the warehouse and its snapshot, other files.

    Files are compared by digest: checkpoints, figures, and whatever else is left there.
    """

    rows: dict[str, list[Row]]
    snapshot: dict[str, list[Row]]
    files: dict[str, str]

    @classmethod
    def of(cls, home: Path) -> "Contents":
        snapshot = home / "warehouse-snapshot.duckdb"
        return cls(
            warehouse_rows(home / "warehouse.duckdb", home),
            warehouse_rows(snapshot, home) if snapshot.exists() else {},
            files(home),
        )

    def differences(self, other: "Contents") -> dict[str, Any]:
        """Per table or file that differs: a few rows (or the digests) found on each side."""
        found: dict[str, Any] = {}
        tables = [("", self.rows, other.rows), ("snapshot ", self.snapshot, other.snapshot)]
        for where, rows, others in tables:
            for table in rows.keys() | others.keys():
                mine, theirs = rows.get(table, []), others.get(table, [])
                if mine != theirs:
                    found[where + table] = {
                        "only here": [row for row in mine if row not in theirs][:3],
                        "only there": [row for row in theirs if row not in mine][:3],
                    }
        for name in self.files.keys() | other.files.keys():
            if self.files.get(name) != other.files.get(name):
                found[name] = (self.files.get(name), other.files.get(name))
        return found


def sql(home: Path, query: str, params: list[Any] | None = None) -> list[Row]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(query, params or []).fetchall()


def runs(home: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        cursor = con.execute("SELECT * FROM runs")
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def flow_failure(log: str) -> str:
    """The reason the flow run's final state gives for its failure."""
    [reason] = re.findall(r"Flow run '[^']*' - Finished in state Failed\((.*)\)$", log, re.M)
    return str(reason)


@dataclass(frozen=True)
class CleanRun:
    """One uninterrupted run of the work: where it ran, and what it left there then."""

    place: Path
    contents: Contents


@pytest.fixture(scope="module")
def clean(driver: Driver, tmp_path_factory: pytest.TempPathFactory) -> CleanRun:
    """The uninterrupted run every other scenario is compared with."""
    place = tmp_path_factory.mktemp("clean")
    outcome = driver.run(place, "clean")
    assert outcome.returncode == 0, outcome.log
    assert outcome.leftovers() == []
    contents = Contents.of(place / "var")
    assert all(contents.rows[table] for table in ("bars", "models", "attention_window", "figures"))
    assert contents.snapshot == contents.rows
    return CleanRun(place, contents)


# --- kill -9 at every stage -----------------------------------------------------------------


# A known gap, left open (see the closing note of issue 9): the run is closed as succeeded
# before it publishes, so its rerun is a deliberate rerun that reads the sources again.
PUBLISHED_WORK_IS_READ_AGAIN = pytest.mark.xfail(
    reason="a run killed in publish has succeeded: its rerun reads the sources again",
    strict=True,
)


@pytest.mark.parametrize(
    "stage",
    [
        pytest.param(stage, marks=PUBLISHED_WORK_IS_READ_AGAIN) if stage == "publish" else stage
        for stage in STAGES
    ],
)
def test_a_run_killed_at_any_stage_blocks_nothing_and_its_rerun_equals_a_clean_run(
    stage: str, driver: Driver, clean: CleanRun, tmp_path: Path
) -> None:
    home = tmp_path / "var"
    crashed = driver.run(tmp_path, "crashed", crash_at=stage)
    assert crashed.returncode == -signal.SIGKILL, crashed.log
    # It died in the stage's task: every earlier stage's task completed, and no other.
    finished = crashed.finished_tasks()
    completed_stages = [one for one in STAGES if STAGE_TASKS[one] in finished]
    assert completed_stages == list(STAGES[: STAGES.index(stage)])
    assert crashed.leftovers() == []

    # Its row is left open, naming its process; whoever looks next marks it crashed.
    # (Publishing comes after the row is closed: that run did its work.)
    [row] = runs(home)
    assert (row["status"], row["pid"]) == (
        "succeeded" if stage == "publish" else "running",
        crashed.pid,
    )
    reader = tmp_path / "reader"
    shutil.copytree(home, reader)  # a reader marks it on a copy; the rerun finds it itself
    reaped = reap_crashed_runs(reader / "warehouse.duckdb", reader / "warehouse-snapshot.duckdb")
    if stage != "publish":
        assert reaped == [row["run_id"]]
        [marked] = runs(reader)
        assert marked["status"] == "crashed" and f"pid {crashed.pid}" in marked["message"]

    rerun = driver.run(tmp_path, "rerun")
    assert rerun.returncode == 0, rerun.log  # in time: nothing it waited for was left taken
    assert (f"{row['run_id']} (pid {crashed.pid}" in rerun.log) == (stage != "publish")
    assert rerun.leftovers() == []
    assert Contents.of(home).differences(clean.contents) == {}
    [row] = runs(home)
    assert (row["status"], row["attempts"]) == ("succeeded", 2)


# --- a full disk, a read-only home ------------------------------------------------------------


def test_a_full_disk_fails_the_run_clearly_and_the_next_run_equals_a_clean_one(
    driver: Driver, clean: CleanRun, tmp_path: Path
) -> None:
    home = tmp_path / "var"
    # Room for the bars and the model, not for all the analytics (the warehouse file of
    # a clean run is some MB): the disk fills in the middle of the run.
    full = driver.run(tmp_path, "full", max_file_bytes=300_000)
    assert full.returncode == 1, full.log
    [row] = runs(home)
    assert row["status"] == "failed" and "File too large" in row["message"], row
    assert f"{home}/warehouse.duckdb" in row["message"]
    # The run reports that failure, once: not a later one it ran into while ending.
    assert row["message"] in flow_failure(full.log)
    assert "During handling of the above exception" not in full.log
    assert full.leftovers() == []

    again = driver.run(tmp_path, "again")
    assert again.returncode == 0, again.log
    assert Contents.of(home).differences(clean.contents) == {}


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """An existing folder that the runs cannot write.

    Its mode says so; root writes whatever the mode says, so for root it is a
    read-only mount instead (skipped where root may not mount).
    """
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "attnviz-read-only", str(folder)]
    mounted = subprocess.run(mount, capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"root cannot be kept from writing here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("warehouse", ["in the home", "elsewhere"])
def test_a_read_only_home_fails_the_run_with_one_error_naming_the_folder(
    warehouse: str, driver: Driver, read_only_folder: Path, tmp_path: Path
) -> None:
    env: dict[str, str | None] = {"ATTNVIZ_HOME": str(read_only_folder)}
    if warehouse == "elsewhere":  # the home then holds only checkpoints and figures
        env["ATTNVIZ_DB"] = str(tmp_path / "db" / "warehouse.duckdb")
    outcome = driver.run(tmp_path, "read-only", env=env)
    assert outcome.returncode == 1, outcome.log
    reason = flow_failure(outcome.log)
    assert str(read_only_folder) in reason, reason
    assert "Read-only file system" in reason or "Permission denied" in reason, reason
    assert "During handling of the above exception" not in outcome.log
    if warehouse == "elsewhere":
        [row] = runs(tmp_path / "db")
        assert row["status"] == "failed" and str(read_only_folder) in row["message"]


# --- bad models ---------------------------------------------------------------------------------


def test_a_loss_that_goes_nan_fails_the_run_naming_the_model_and_registers_nothing(
    driver: Driver, tmp_path: Path, quick: dict[str, Any]
) -> None:
    # A learning rate this large overflows the weights within the first batches.
    exploding = {"lr": 1e6, "grad_clip": 1e30, "weight_decay": 0.0}
    aapl = Series(source="sample", symbol="AAPL", interval="1d")
    training = {**asdict(quick["training"]), **exploding}
    nan = write_catalogue(
        tmp_path / "catalogue.yaml", [aapl], ANALYSIS, **quick | {"training": training}
    )
    outcome = driver.run(tmp_path, "nan", catalogue=nan)
    assert outcome.returncode == 1, outcome.log
    reason = "TrainingDiverged: sample/AAPL/1d: AttentionTransformer training diverged: "
    assert reason in flow_failure(outcome.log)
    home = tmp_path / "var"
    [row] = runs(home)
    assert row["status"] == "failed" and row["message"].startswith(reason)
    assert sql(home, "SELECT count(*) FROM models") == [(0,)]
    assert not (home / "models").exists()


def test_a_corrupt_checkpoint_of_the_active_model_is_named_and_the_model_replaced(
    driver: Driver, clean: CleanRun
) -> None:
    """The next nightly says which file it could not read, and registers its own model.

    It goes on in the clean run's folder, whose contents the other tests read
    once, when it ran.
    """
    home = clean.place / "var"
    [(checkpoint,)] = sql(home, "SELECT checkpoint FROM models")
    whole = Path(checkpoint).read_bytes()
    Path(checkpoint).write_bytes(whole[: len(whole) // 2])  # as an interrupted copy leaves it

    later = driver.run(clean.place, "next-day", as_of=NEXT_DAY.isoformat())
    assert later.returncode == 0, later.log
    unreadable = f"v1: cannot read checkpoint {checkpoint}: ValueError: not a whole checkpoint"
    assert f"sample/AAPL/1d: the active model {unreadable}" in later.log
    models = sql(home, "SELECT version, status, status_reason FROM models ORDER BY version")
    assert [row[:2] for row in models] == [(1, "retired"), (2, "active")]
    assert models[1][2] == f"the active model cannot be judged and is replaced: {unreadable}" + (
        ": cut short or overwritten"
    )
    # v2 is explained; how far attention moved since v1 cannot be measured, and says so.
    assert f"sample/AAPL/1d v1, the previous model: {unreadable[4:]}" in later.log
    moved = sql(
        home,
        "SELECT DISTINCT model_version, jsd_prev_model IS NULL OR isnan(jsd_prev_model) "
        "FROM attention_window JOIN runs USING (run_id) WHERE as_of = ?",
        [NEXT_DAY],
    )
    assert moved == [(2, True)]
    assert later.leftovers() == []
