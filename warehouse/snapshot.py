"""The read-only snapshot: a copy of the warehouse that readers query while runs write.

DuckDB gives one process the file while it writes, and any other process that
opens it then, read-only included, fails. Readers therefore never open the live
file: they open a snapshot, copied from it when a run ends and renamed into place
in one step. A reader sees the whole state after some run, never a run half done,
and a query that is running when a new snapshot lands keeps reading the old one.

The copy is read back whole before it replaces the old one: a damaged warehouse
is never published, and the last good snapshot stays in place to restore it
from. A run checks the live file the same way before it starts
(:func:`check_live`), so it never writes into a damaged warehouse.
"""

import shutil
from contextlib import ExitStack, closing
from pathlib import Path

import duckdb

from attnviz.atomic import replacing
from warehouse.db import WarehouseCorrupt, WarehouseError, check_integrity, connect
from warehouse.locks import WarehouseBusy, file_lock, runs_lock_path, write_lock_path


def publish_snapshot(database: Path, snapshot: Path, wait: float) -> bool:
    """Copy ``database`` to ``snapshot`` atomically, unless a run is in progress.

    Returns whether it published. When another run is still going, the copy would
    hold that run's first steps without its last, so this skips: that run publishes
    when it ends. Must be called after the caller's own run has released its
    runs lock.

    Raises
    ------
    WarehouseCorrupt
        The copy fails :func:`warehouse.db.check_integrity`. ``snapshot`` is left as
        it was and the message says how to recover.
    WarehouseError
        The live file could not be checkpointed or copied (a full disk, say); ``snapshot``
        is left as it was.
    """
    with ExitStack() as held:
        try:
            held.enter_context(file_lock(runs_lock_path(database), 0, what="runs lock"))
        except WarehouseBusy:
            return False
        held.enter_context(file_lock(write_lock_path(database), wait, what="warehouse write lock"))
        _checkpoint(database)
        with replacing(snapshot) as partial:
            shutil.copyfile(database, partial)
            try:
                check_integrity(partial)
            except WarehouseCorrupt as error:
                # The copy is byte for byte: what is wrong with it is wrong with the live file.
                problem = str(error).replace(str(partial), str(database))
                advice = recovery_advice(database, snapshot)
                raise WarehouseCorrupt(
                    f"{problem}. The snapshot was not published; {advice}"
                ) from error
    return True


def _checkpoint(database: Path) -> None:
    """Fold the write-ahead log into ``database``, so that the file alone is the warehouse.

    A failure is said in one line without its context: publishing often runs while a
    failed run unwinds, and that run's error must stay the one its log ends with.
    """
    try:
        with closing(connect(database)) as con:
            con.execute("CHECKPOINT")
    except duckdb.Error as error:
        raise WarehouseError(f"cannot checkpoint {database} to publish it: {error}") from None


def recovery_advice(database: Path, snapshot: Path) -> str:
    """How to get a good warehouse back when ``database`` is corrupt: from ``snapshot`` if any."""
    if snapshot.exists():
        return (
            f"the last good snapshot is {snapshot}: restore it with `cp {snapshot} {database}` "
            "and rerun what ran since, or rebuild the warehouse from the sources"
        )
    return f"there is no good snapshot: move {database} aside and rebuild from the sources"


def check_live(database: Path, snapshot: Path, wait: float) -> None:
    """Refuse to go on with a damaged live warehouse, saying how to get a good one back.

    Reads every table of ``database`` under the write lock (waiting at most ``wait``
    seconds for it); a warehouse not created yet passes. Call it while this process
    holds no connection to the file.

    Raises
    ------
    WarehouseCorrupt
        The file is damaged; the message names it and the snapshot to restore.
    """
    if not database.exists():
        return
    with file_lock(write_lock_path(database), wait, what="warehouse write lock"):
        try:
            check_integrity(database)
        except WarehouseCorrupt as error:
            advice = recovery_advice(database, snapshot)
            raise WarehouseCorrupt(f"{error}. Nothing was run; {advice}") from error
