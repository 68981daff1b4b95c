"""The warehouse's file locks, across real processes: wait, then proceed, or fail clearly."""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from warehouse.locks import WarehouseBusy, file_lock, runs_lock_path, write_lock_path, writer


def hold_writer(database: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds the warehouse read-write for ``seconds``."""
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from warehouse.locks import writer
        with writer(Path({str(database)!r}), wait=30) as con:
            con.execute("CREATE TABLE IF NOT EXISTS held (t DOUBLE)")
            con.execute("INSERT INTO held VALUES (?)", [time.time()])
            print("holding", flush=True)
            time.sleep({seconds})
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "holding"
    return process


def test_a_second_writer_waits_for_the_first_then_proceeds(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    other = hold_writer(database, 1.5)
    started = time.monotonic()
    with writer(database, wait=30) as con:
        waited = time.monotonic() - started
        [(rows,)] = con.execute("SELECT count(*) FROM held").fetchall()
    assert other.wait(10) == 0
    assert waited > 0.5 and rows == 1  # it waited for the other process's write, then saw it


def test_a_writer_that_waits_too_long_fails_naming_the_lock(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    other = hold_writer(database, 3)
    try:
        with (
            pytest.raises(
                WarehouseBusy, match=r"gave up after 0.3 s .* write lock .*ATTNVIZ_WRITE_WAIT"
            ),
            writer(database, wait=0.3),
        ):
            pass
    finally:
        other.wait(10)


def test_a_crashed_holder_does_not_leave_the_warehouse_locked(tmp_path: Path) -> None:
    database = tmp_path / "warehouse.duckdb"
    other = hold_writer(database, 60)
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
