"""How runs take turns at the warehouse: the runs lock for a whole run, the write lock per step.

Two runs that would write at once (a scheduled run and a rerun from the UI) must
not crash or corrupt each other. A run holds the runs lock of
:mod:`warehouse.locks` exclusively from before it opens its ``runs`` row until it
has closed it (:func:`run_turn`): a second run says at once in its log which run it
waits for and for how long at most, waits, and then proceeds. Behind it, every
task that opens the warehouse takes the write lock (:func:`open_warehouse`). Both
waits are bounded by ``$ATTNVIZ_WRITE_WAIT``; then the run fails and says what it
waited for.

Why a file lock, and no longer Prefect's global concurrency limit
``attnviz-warehouse``: a run that crashes must never block the next one. The
kernel releases a ``flock`` the moment its holder dies, ``kill -9`` included. A
Prefect 3.8 slot is released by its holder, or else when its lease expires
(``lease_duration``, 300 s by default, renewed by a thread of the holder) and the
server's repossessor service revokes it. Read in Prefect 3.8.8 and measured:

* a run without ``PREFECT_API_URL`` reports to a temporary server, which keeps
  leases in its memory (the default lease storage) and runs no repossessor, while
  the taken slot is counted in the database that every temporary server of the
  same ``PREFECT_HOME`` shares. After a ``kill -9`` of a holder, ``prefect.db``
  kept ``active_slots = 1`` with no server left to hold the lease, and every later
  run waited its whole ``ATTNVIZ_WRITE_WAIT`` in silence, then failed with
  "another run is using the warehouse";
* on a real server the slot comes back when the lease expires: minutes of
  blocking by default. A short lease means frequent renewals, and renewals that
  fail (the server answers 503 while its SQLite is busy) let the lease expire
  under a live run;
* slot decay (``slot_decay_per_second``) makes the limit a rate limit: a slot
  frees itself after a set time whether or not its run still writes, so it is no
  mutex.

The warehouse is one file on one machine, so a lock beside it reaches every
process that can write it, whatever Prefect server each reports to (or none), and
it does not make runs of different warehouses wait for each other as one Prefect
limit did. The limit added only its line in the Prefect UI; the waiting run's log
line says more.
"""

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import duckdb
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from attnviz import config
from warehouse.locks import file_lock, runs_lock_path, writer


@contextmanager
def run_turn(run_id: str) -> Iterator[None]:
    """Hold the warehouse's runs lock for the run ``run_id`` until the block ends.

    If another run holds it, this logs at once which run and how long it will wait
    at most, and after the wait how long it took.
    """
    holder = (
        f"run {run_id} (flow run {flow_run.name!r}, pid {os.getpid()} on "
        f"{socket.gethostname()}, since {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC)"
    )
    started = time.monotonic()
    with file_lock(
        runs_lock_path(config.warehouse_path()),
        config.write_wait_seconds(),
        what="runs lock",
        holder=holder,
        on_wait=_log,
    ):
        waited = time.monotonic() - started
        if waited > 1:
            _log(f"took the warehouse after waiting {waited:.0f} s for another run")
        yield


@contextmanager
def open_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write warehouse connection that no other process holds until the block ends."""
    with writer(config.warehouse_path(), config.write_wait_seconds(), _log) as con:
        yield con


def _log(message: str) -> None:
    """Say ``message`` in the log of the current flow or task run (asked only when needed)."""
    get_run_logger().info(message)
