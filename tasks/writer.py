"""How runs take turns at the warehouse: a Prefect concurrency slot, then a file lock.

Two runs that would write at once (a scheduled run and a rerun from the UI) must
not crash or corrupt each other. Runs that report to the same Prefect server take
turns through the global concurrency limit ``attnviz-warehouse`` (one slot), held
for the whole run: the second run waits, visibly in its log, and then proceeds.
A slot per run rather than per write, because every acquisition is a round trip
that costs seconds when the server's SQLite database is busy.

Behind it, every task that opens the warehouse takes the file lock of
:func:`warehouse.locks.writer`, which also keeps apart processes that do not share
a server (``attnviz run`` with its own temporary API, a notebook). Both waits are
bounded by ``$ATTNVIZ_WRITE_WAIT``; then the run fails and says what it waited for.
"""

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import duckdb
import httpx
from prefect import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists
from prefect.logging import get_run_logger

from attnviz import config
from warehouse.locks import WarehouseBusy, writer

WRITE_LIMIT = "attnviz-warehouse"


def ensure_write_limit() -> None:
    """Create the one-slot concurrency limit on the Prefect server if it is missing."""
    with get_client(sync_client=True) as client:
        try:
            client.upsert_global_concurrency_limit_by_name(WRITE_LIMIT, 1)
        except ObjectAlreadyExists:
            pass  # another run created it between our read and our create
        except httpx.HTTPStatusError as error:
            if error.response.status_code != httpx.codes.CONFLICT:
                raise


@contextmanager
def run_slot() -> Iterator[None]:
    """Hold the warehouse's Prefect concurrency slot for the block (a whole run)."""
    ensure_write_limit()
    wait = config.write_wait_seconds()
    started = time.monotonic()
    with ExitStack() as held:
        try:
            held.enter_context(concurrency(WRITE_LIMIT, timeout_seconds=wait, strict=True))
        except TimeoutError:
            raise WarehouseBusy(
                f"gave up after {wait:g} s waiting for the Prefect concurrency limit "
                f"{WRITE_LIMIT!r}: another run is using the warehouse "
                "(retry when it has finished, or raise ATTNVIZ_WRITE_WAIT)"
            ) from None
        waited = time.monotonic() - started
        if waited > 5:
            get_run_logger().info("waited %.0f s for another run to leave the warehouse", waited)
        yield


@contextmanager
def open_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write warehouse connection that no other process holds until the block ends."""
    with writer(config.warehouse_path(), config.write_wait_seconds()) as con:
        yield con
