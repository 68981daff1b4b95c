"""The run slot: a run holds the runs lock for its whole life, a step the write lock for its own.

These functions speak only when they wait, and then through the run logger of a flow run.
So the tests that never wait call them directly, and the ones that read what a waiting
run says run them inside a tiny flow. No test waits for time to pass: another run
holds a lock, and lets it go the moment this one says it waits.
"""

import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import duckdb
import pytest
from prefect import flow

from attnviz import config
from tasks.turns import open_warehouse, run_turn
from warehouse.locks import WarehouseBusy, file_lock, runs_lock_path, write_lock_path

OTHER_RUN = "run nightly-1 (pid 7 on box)"  # how another run names itself in the lock file


class RunLog(logging.Handler):
    """What flow runs say in their logs, at INFO and above, heard the moment they say it."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self.reactions: list[tuple[str, Callable[[], object]]] = []

    def when_said(self, text: str, then: Callable[[], object]) -> None:
        """Call ``then`` as soon as a run says something with ``text``, before it goes on."""
        self.reactions.append((text, then))

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.messages.append(message)
        for text, then in self.reactions:
            if text in message:
                then()


@pytest.fixture
def run_log() -> Iterator[RunLog]:
    """Listen to the flow runs' logs (the tests' Prefect settings pass WARNING and up only)."""
    heard = RunLog()
    logger = logging.getLogger("prefect.flow_runs")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(heard)
    yield heard
    logger.removeHandler(heard)
    logger.setLevel(level)


def runs_lock() -> Path:
    return runs_lock_path(config.warehouse_path())


def write_lock() -> Path:
    return write_lock_path(config.warehouse_path())


def taken_by(lock: Path) -> str | None:
    """What a run that finds ``lock`` taken says of its holder; ``None`` if it is free."""
    try:
        with file_lock(lock, 0):
            return None
    except WarehouseBusy as busy:
        return str(busy)


def test_a_run_holds_the_runs_lock_for_its_block_and_frees_it_after() -> None:
    with run_turn("ingest-1"):
        holder = taken_by(runs_lock())
    assert holder is not None and "held by run ingest-1 (flow run " in holder
    assert f"pid {os.getpid()} on " in holder  # where to look for the run
    assert taken_by(runs_lock()) is None


def test_a_run_that_fails_frees_the_runs_lock_too() -> None:
    with pytest.raises(ValueError, match="boom"), run_turn("ingest-1"):
        raise ValueError("boom")
    assert taken_by(runs_lock()) is None


def test_a_run_gives_up_after_the_write_wait_naming_the_run_in_its_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATTNVIZ_WRITE_WAIT", "0")
    reason = rf"gave up after 0 s waiting for the runs lock .*, held by {re.escape(OTHER_RUN)}: "
    with (
        file_lock(runs_lock(), 0, holder=OTHER_RUN),
        pytest.raises(WarehouseBusy, match=reason),
        run_turn("ingest-2"),
    ):
        pytest.fail("the block ran while another run held the warehouse")


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_says_at_once_which_run_it_waits_for_then_takes_its_turn(
    run_log: RunLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTNVIZ_WRITE_WAIT", "60")  # only if the other run were never let go
    other = ExitStack()
    other.enter_context(file_lock(runs_lock(), 0, holder=OTHER_RUN))
    run_log.when_said("waiting up to", other.close)  # the other run ends as this one waits
    holders: list[str | None] = []

    @flow(flow_run_name="second-run")
    def second() -> None:
        with run_turn("ingest-2"):
            holders.append(taken_by(runs_lock()))

    with other:
        second()
    waits = [message for message in run_log.messages if message.startswith("waiting")]
    assert waits == [f"waiting up to 60 s for the runs lock {runs_lock()}, held by {OTHER_RUN}"]
    [holder] = holders
    assert holder is not None and "held by run ingest-2 (flow run 'second-run', pid " in holder
    assert taken_by(runs_lock()) is None


def test_a_step_holds_the_write_lock_while_its_connection_is_open() -> None:
    with open_warehouse() as con:
        con.execute("CREATE TABLE notes (line VARCHAR)")  # read-write
        holder = taken_by(write_lock())
    assert holder is not None and f"held by pid {os.getpid()} on " in holder
    assert taken_by(write_lock()) is None
    with pytest.raises(duckdb.ConnectionException):  # the connection ends with the block
        con.execute("SELECT 1")


def test_a_step_gives_up_after_the_write_wait_naming_the_writer_in_its_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ATTNVIZ_WRITE_WAIT", "0")
    notebook = "a notebook (pid 9 on box)"
    with (
        file_lock(write_lock(), 0, holder=notebook),
        pytest.raises(
            WarehouseBusy,
            match=rf"0 s waiting for the warehouse write lock .*, held by {re.escape(notebook)}",
        ),
        open_warehouse(),
    ):
        pytest.fail("the step opened the warehouse while another process had it")
