"""The read-only snapshot: published whole after a run, skipped while another run is on."""

from contextlib import closing
from pathlib import Path

from warehouse.db import connect
from warehouse.locks import file_lock, runs_lock_path, writer
from warehouse.snapshot import publish_snapshot


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
    with file_lock(runs_lock_path(database), 0, shared=True):
        assert not publish_snapshot(database, snapshot, wait=1)
    assert not snapshot.exists()
    assert publish_snapshot(database, snapshot, wait=1)
