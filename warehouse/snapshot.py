"""The read-only snapshot: a copy of the warehouse that readers query while runs write.

DuckDB gives one process the file while it writes, and any other process that
opens it then, read-only included, fails. Readers therefore never open the live
file: they open a snapshot, copied from it when a run ends and renamed into place
in one step. A reader sees the whole state after some run, never a run half done,
and a query that is running when a new snapshot lands keeps reading the old one.
"""

import os
import shutil
from contextlib import ExitStack, closing
from pathlib import Path

from warehouse.db import connect
from warehouse.locks import WarehouseBusy, file_lock, runs_lock_path, write_lock_path


def publish_snapshot(database: Path, snapshot: Path, wait: float) -> bool:
    """Copy ``database`` to ``snapshot`` atomically, unless a run is in progress.

    Returns whether it published. When another run is still going, the copy would
    hold that run's first steps without its last, so this skips: that run publishes
    when it ends. Must be called after the caller's own run has released its
    shared runs lock.
    """
    with ExitStack() as held:
        try:
            held.enter_context(file_lock(runs_lock_path(database), 0, what="runs lock"))
        except WarehouseBusy:
            return False
        held.enter_context(file_lock(write_lock_path(database), wait, what="warehouse write lock"))
        with closing(connect(database)) as con:
            con.execute("CHECKPOINT")  # fold the write-ahead log into the file we copy
        partial = snapshot.with_name(snapshot.name + ".partial")
        shutil.copyfile(database, partial)
        os.replace(partial, snapshot)
    return True
