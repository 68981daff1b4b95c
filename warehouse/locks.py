"""File locks that keep the warehouse to one writer process, with a bounded wait.

DuckDB lets one process open a database file read-write; a second process that
tries fails at once with ``Could not set lock on file``. Runs therefore take an
exclusive lock beside the file before they open it, and wait their turn instead
of crashing; after ``wait`` seconds they give up with a message that says who to
wait for. A second, shared lock marks runs in progress, so that the read-only
snapshot is published only when no run is half done.

The locks are ``flock`` locks: the kernel releases them when their process dies,
so a crashed run never leaves the warehouse locked.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import duckdb

from warehouse.db import WarehouseError, connect

POLL_SECONDS = 0.05


class WarehouseBusy(WarehouseError):
    """The warehouse stayed locked by another run for longer than this one may wait."""


@contextmanager
def file_lock(
    path: Path, wait: float, *, shared: bool = False, what: str = "lock"
) -> Iterator[None]:
    """Hold an exclusive (or shared) lock on ``path``, waiting at most ``wait`` seconds for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(descriptor, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"gave up after {wait:g} s waiting for the {what} {path}: another "
                        "attnviz run is using the warehouse; retry when it has finished "
                        "(or raise ATTNVIZ_WRITE_WAIT)"
                    ) from None
                time.sleep(POLL_SECONDS)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def write_lock_path(database: Path) -> Path:
    """The lock file held while a process has ``database`` open read-write."""
    return database.with_name(database.name + ".write.lock")


def runs_lock_path(database: Path) -> Path:
    """The lock file every run holds shared while it is in progress."""
    return database.with_name(database.name + ".runs.lock")


@contextmanager
def writer(database: Path, wait: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to ``database`` that no other attnviz process holds meanwhile."""
    with (
        file_lock(write_lock_path(database), wait, what="warehouse write lock"),
        closing(connect(database)) as con,
    ):
        yield con
