"""The read-only snapshot: published whole and intact after a run, skipped during another."""

import random
import shutil
from contextlib import closing
from pathlib import Path

import pytest

from warehouse.db import WarehouseCorrupt, check_integrity, connect
from warehouse.locks import file_lock, runs_lock_path, writer
from warehouse.snapshot import publish_snapshot

# DuckDB's file starts with three 4 KiB headers; the blocks follow.
FILE_HEADERS_SIZE = 3 * 4096


def test_the_snapshot_is_a_readable_copy_even_while_the_live_file_is_written(
    tmp_path: Path,
) -> None:
    database, snapshot = tmp_path / "w.duckdb", tmp_path / "w-snapshot.duckdb"
    with writer(database, wait=1) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i FROM range(1000)")
    assert publish_snapshot(database, snapshot, wait=1)
    with writer(database, wait=1) as con:
        con.execute("INSERT INTO t VALUES (1000)")  # written, not yet published
        with closing(connect(snapshot, read_only=True)) as reader:
            assert reader.execute("SELECT count(*) FROM t").fetchall() == [(1000,)]
    assert not (tmp_path / "w-snapshot.duckdb.partial").exists()


def test_publishing_is_skipped_while_another_run_is_in_progress(tmp_path: Path) -> None:
    database, snapshot = tmp_path / "w.duckdb", tmp_path / "w-snapshot.duckdb"
    with writer(database, wait=1) as con:
        con.execute("CREATE TABLE t (i INTEGER)")
    with file_lock(runs_lock_path(database), 0, holder="another run"):
        assert not publish_snapshot(database, snapshot, wait=1)
    assert not snapshot.exists()
    assert publish_snapshot(database, snapshot, wait=1)


def build(database: Path) -> None:
    """A warehouse with 50 000 bars, checkpointed: several blocks of table data and of index."""
    with writer(database, wait=1) as con:
        con.execute(
            "INSERT INTO bars (source, symbol, interval, ts, open, high, low, close, volume,"
            " run_id, loaded_at) SELECT 'test', 'S' || (i % 10), '1h', TIMESTAMPTZ '2024-01-01'"
            " + to_hours(i), h, h + 1, h - 1, h, i, 'r1', TIMESTAMPTZ '2024-06-01'"
            " FROM (SELECT i, (hash(i) % 100000) / 100 AS h FROM range(50000) t(i))"
        )
        con.execute("CHECKPOINT")


def damage(database: Path) -> None:
    """Overwrite 512 bytes in the middle of the last block that holds only bars data."""
    with closing(connect(database, read_only=True)) as con:
        [(size,)] = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()
        tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        owners = [
            (table, block)
            for (table,) in tables
            for (block,) in con.execute(
                f"SELECT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0"
            ).fetchall()
        ]
        metadata = con.execute("SELECT block_id FROM pragma_metadata_info()").fetchall()
        owners += [("metadata", block) for (block,) in metadata]
    others = {block for owner, block in owners if owner != "bars"}
    candidates = {block for owner, block in owners if owner == "bars"} - others
    with database.open("r+b") as file:
        file.seek(FILE_HEADERS_SIZE + max(candidates) * size + size // 2)
        file.write(random.Random(0).randbytes(512))


def test_a_corrupt_warehouse_is_not_published_and_the_good_snapshot_stays(tmp_path: Path) -> None:
    database, snapshot = tmp_path / "w.duckdb", tmp_path / "w-snapshot.duckdb"
    build(database)
    assert publish_snapshot(database, snapshot, wait=1)
    good = snapshot.read_bytes()
    damage(database)
    with pytest.raises(WarehouseCorrupt) as raised:
        publish_snapshot(database, snapshot, wait=1)
    message = str(raised.value)
    assert message.startswith(f"warehouse {database} is corrupt: ")
    restore = f"the last good snapshot is {snapshot}: restore it with `cp {snapshot} {database}`"
    assert restore in message
    assert ".partial" not in message
    assert snapshot.read_bytes() == good
    assert not (tmp_path / "w-snapshot.duckdb.partial").exists()
    shutil.copyfile(snapshot, database)  # the advice works
    assert publish_snapshot(database, snapshot, wait=1)
    check_integrity(snapshot)


def test_without_a_good_snapshot_the_error_says_to_rebuild(tmp_path: Path) -> None:
    database, snapshot = tmp_path / "w.duckdb", tmp_path / "w-snapshot.duckdb"
    build(database)
    damage(database)
    with pytest.raises(WarehouseCorrupt, match=r"there is no good snapshot: move .* rebuild"):
        publish_snapshot(database, snapshot, wait=1)
    assert not [path for path in tmp_path.iterdir() if "snapshot" in path.name]  # nor .partial
