"""The warehouse's file locks, across real processes: wait, then proceed, or fail clearly."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from warehouse.locks import WarehouseBusy, file_lock, runs_lock_path, write_lock_path, writer


def hold_writer(database: Path) -> subprocess.Popen[str]:
    """Another process that holds the warehouse read-write until it is told to let go.

    It writes ``taken`` once it holds the warehouse and ``released`` as the last thing
    before it lets go: when it reads a line on its stdin, or finds its stdin closed.
    """
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from warehouse.locks import writer
        with writer(Path({str(database)!r}), wait=30) as con:
            con.execute("CREATE TABLE IF NOT EXISTS held (event VARCHAR)")
            con.execute("INSERT INTO held VALUES ('taken')")
            print("holding", flush=True)
            sys.stdin.readline()
            con.execute("INSERT INTO held VALUES ('released')")
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "holding"
    return process


def let_go(holder: subprocess.Popen[str]) -> None:
    """Tell ``holder`` to let go of the warehouse (it does so after its last write)."""
    assert holder.stdin is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()


def test_a_second_writer_waits_for_the_first_then_proceeds(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    other = hold_writer(database)
    said: list[str] = []

    def waits(message: str) -> None:
        said.append(message)
        let_go(other)  # only once this writer waits: no time passes in the test

    with writer(database, wait=30, on_wait=waits) as con:
        events = con.execute("SELECT event FROM held ORDER BY rowid").fetchall()
    assert other.wait(10) == 0
    # It found the warehouse taken, and got it only after the other process's last write.
    assert len(said) == 1 and f"held by pid {other.pid} on " in said[0]
    assert events == [("taken",), ("released",)]


def test_a_writer_that_waits_too_long_fails_naming_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    other = hold_writer(database)
    try:
        with (
            pytest.raises(
                WarehouseBusy, match=r"gave up after 0.3 s .* write lock .*ATTNVIZ_WRITE_WAIT"
            ),
            writer(database, wait=0.3),
        ):
            pass
    finally:
        let_go(other)
        other.wait(10)


def test_a_crashed_holder_does_not_leave_the_warehouse_locked(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    other = hold_writer(database)
    other.kill()
    other.wait()
    with writer(database, wait=5) as con:
        assert con.execute("SELECT 1").fetchall() == [(1,)]


def test_a_holder_is_named_even_unasked_and_a_dead_holders_name_is_not_shown(
    tmp_path: Path,
) -> None:
    path = write_lock_path(tmp_path / "warehouse.duckdb")
    path.write_text("run gone-1 (pid 1 on elsewhere)")  # what a killed holder leaves behind
    said: list[str] = []
    with file_lock(path, 0), pytest.raises(WarehouseBusy, match=f"held by pid {os.getpid()} on"):
        file_lock(path, 0.2, on_wait=said.append).__enter__()
    assert len(said) == 1 and "gone-1" not in said[0] and f"pid {os.getpid()}" in said[0]
    assert path.read_text() == ""  # released: nobody to name


class Said(Exception):
    """Raised by an ``on_wait`` callback: it ends the wait as soon as the waiter speaks."""


def say(message: str) -> None:
    raise Said(message)


def test_a_waiter_says_at_once_whom_it_waits_for_and_for_how_long(tmp_path: Path) -> None:
    path = runs_lock_path(tmp_path / "warehouse.duckdb")
    with file_lock(path, 0, what="runs lock", holder="run nightly-1 (pid 7 on box)"):
        # Said at the start of the wait: a message only at its end would come as WarehouseBusy.
        with pytest.raises(Said) as said, file_lock(path, 30, what="runs lock", on_wait=say):
            pass
        assert str(said.value) == (
            f"waiting up to 30 s for the runs lock {path}, held by run nightly-1 (pid 7 on box)"
        )
        with (
            pytest.raises(WarehouseBusy, match=r"0.3 s .* held by run nightly-1 \(pid 7 on box\)"),
            file_lock(path, 0.3, what="runs lock"),
        ):
            pass
    with file_lock(path, 0, on_wait=say):
        pass  # a free lock is taken without a word
    assert path.read_text() == ""  # a holder that has left is not named any more
