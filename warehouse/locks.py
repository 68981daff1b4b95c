"""File locks that keep the warehouse to one run and one writer process, with a bounded wait.

DuckDB lets one process open a database file read-write; a second process that
tries fails at once with ``Could not set lock on file``. Two locks beside the file
make processes take turns instead of crashing:

* the runs lock, held exclusively by a run for its whole life: runs take turns
  through it, and whoever can take it knows that no run is in progress. Only then
  is the read-only snapshot published, and only then can a run still recorded as
  ``running`` be declared crashed (:func:`warehouse.runs.mark_crashed`);
* the write lock, held while a process has the file open read-write, which keeps a
  run's steps apart from other writers (publishing the snapshot, a notebook).

A process that must wait says so at once (``on_wait``), naming the holder that the
holder wrote into the lock file, and gives up after ``wait`` seconds with a message
that says who to wait for.

The locks are ``flock`` locks: the kernel releases them when their process dies,
``kill -9`` included, so a crashed run never leaves the warehouse locked.
"""

import fcntl
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import duckdb

from warehouse.db import WarehouseError, connect

POLL_SECONDS = 0.05


class WarehouseBusy(WarehouseError):
    """The warehouse stayed locked by another run for longer than this one may wait."""


@contextmanager
def file_lock(
    path: Path,
    wait: float,
    *,
    what: str = "lock",
    holder: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, waiting at most ``wait`` seconds for it.

    Parameters
    ----------
    path
        The lock file; created if missing.
    wait
        Seconds to wait for the lock before giving up.
    what
        What the lock is, for messages (e.g. ``"runs lock"``).
    holder
        Who takes the lock, e.g. ``"run ingest-... (pid 12 on host)"``; default: this
        process's pid and host. It is written into the file while the lock is held
        (replacing any name a killed holder left), so that a process waiting for it
        can say whom it waits for.
    on_wait
        Called once, with a message naming the lock, its holder and ``wait``, when the
        lock is taken and this is about to wait for it (not when it is free at once).

    Raises
    ------
    WarehouseBusy
        The lock stayed taken for ``wait`` seconds.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        mode = fcntl.LOCK_EX | fcntl.LOCK_NB
        while True:
            try:
                fcntl.flock(descriptor, mode)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(
                        f"gave up after {wait:g} s waiting for the {what} {path}, "
                        f"{_held_by(path)}: another attnviz run is using the warehouse; "
                        "retry when it has finished (or raise ATTNVIZ_WRITE_WAIT)"
                    ) from None
                if on_wait is not None:
                    on_wait(f"waiting up to {wait:g} s for the {what} {path}, {_held_by(path)}")
                    on_wait = None  # say it once, not at every poll
                time.sleep(POLL_SECONDS)
        os.ftruncate(descriptor, 0)
        os.pwrite(
            descriptor, (holder or f"pid {os.getpid()} on {socket.gethostname()}").encode(), 0
        )
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # a waiter must not name a holder that has left
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def _held_by(path: Path) -> str:
    """Who holds the lock at ``path``, as its holder wrote it, for a message."""
    try:
        written = path.read_text().strip()
    except OSError:
        written = ""
    return f"held by {written}" if written else "held by another attnviz process"


def write_lock_path(database: Path) -> Path:
    """The lock file held while a process has ``database`` open read-write."""
    return database.with_name(database.name + ".write.lock")


def runs_lock_path(database: Path) -> Path:
    """The lock file a run holds exclusively for its whole life."""
    return database.with_name(database.name + ".runs.lock")


@contextmanager
def writer(
    database: Path, wait: float, on_wait: Callable[[str], None] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to ``database`` that no other attnviz process holds meanwhile.

    ``on_wait`` is called once with a message if the write lock is taken and this waits.
    """
    with (
        file_lock(write_lock_path(database), wait, what="warehouse write lock", on_wait=on_wait),
        closing(connect(database)) as con,
    ):
        yield con
