import random
from contextlib import closing
from pathlib import Path

import pytest

from warehouse.db import (
    WarehouseCorrupt,
    WarehouseError,
    check_integrity,
    connect,
    migrate,
    migrations,
    query,
    query_row,
    transaction,
)

# DuckDB's file starts with three 4 KiB headers; the blocks follow.
FILE_HEADERS_SIZE = 3 * 4096


def test_migrations_apply_once_and_create_the_tables(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with closing(connect(path)) as con:
        assert migrate(con) == []  # connect() already applied them
        versions = [
            row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()
        ]
        tables = {
            row[0]
            for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
    assert versions == [version for version, _, _ in migrations()]
    assert {
        "bars",
        "bars_rejected",
        "runs",
        "run_series",
        "validation_results",
        "watermarks",
    } <= tables
    with closing(connect(path)) as con:  # reopening applies nothing new
        assert con.execute("SELECT count(*) FROM schema_migrations").fetchall() == [
            (len(versions),)
        ]


def test_default_path_follows_the_environment(warehouse_home: Path) -> None:
    connect().close()
    assert (warehouse_home / "warehouse.duckdb").exists()


def test_read_only_needs_an_existing_warehouse_and_refuses_writes(tmp_path: Path) -> None:
    with pytest.raises(WarehouseError, match="no warehouse at"):
        connect(tmp_path / "absent.duckdb", read_only=True)
    connect(tmp_path / "w.duckdb").close()
    with (
        closing(connect(tmp_path / "w.duckdb", read_only=True)) as con,
        pytest.raises(Exception, match="read-only"),
    ):
        con.execute("DELETE FROM bars")


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "w.duckdb")) as con:
        with pytest.raises(RuntimeError), transaction(con):
            con.execute("INSERT INTO runs (run_id, flow, parameters, as_of, started_at, status) "
                        "VALUES ('r', 'f', '{}', now(), now(), 'running')")  # fmt: skip
            raise RuntimeError("boom")
        assert con.execute("SELECT count(*) FROM runs").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("", "empty query"),
        ("   \n\t", "empty query"),
        ("-- only a comment", "no statement to run in"),
        (";", "no statement to run in"),
        ("/* nothing */ ;", "no statement to run in"),
    ],
)
def test_a_query_without_a_statement_says_so(tmp_path: Path, sql: str, says: str) -> None:
    connect(tmp_path / "w.duckdb").close()
    with closing(connect(tmp_path / "w.duckdb", read_only=True)) as con:
        with pytest.raises(WarehouseError, match=f"^{says}"):
            query(con, sql)
        with pytest.raises(WarehouseError, match=f"^{says}"):
            query_row(con, sql)


def build(path: Path, bars: int = 50_000) -> None:
    """A warehouse with enough bars for several blocks of table data and of its primary key."""
    with closing(connect(path)) as con:
        con.execute(
            "INSERT INTO bars (source, symbol, interval, ts, open, high, low, close, volume,"
            " run_id, loaded_at) SELECT 'test', 'S' || (i % 10), '1h', TIMESTAMPTZ '2024-01-01'"
            " + to_hours(i), h, h + 1, h - 1, h, i, 'r1', TIMESTAMPTZ '2024-06-01'"
            f" FROM (SELECT i, (hash(i) % 100000) / 100 AS h FROM range({bars}) t(i))"
        )
        con.execute("CHECKPOINT")


def blocks(path: Path) -> tuple[int, set[int], set[int]]:
    """The file's block size, the blocks holding table data, and the blocks no table scan reads."""
    with closing(connect(path, read_only=True)) as con:
        [(size, total)] = con.execute(
            "SELECT block_size, total_blocks FROM pragma_database_size()"
        ).fetchall()
        tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        data = {
            block
            for (table,) in tables
            for (block,) in con.execute(
                f"SELECT DISTINCT block_id FROM pragma_storage_info('{table}') WHERE block_id >= 0"
            ).fetchall()
        }
        metadata = {
            block
            for (block,) in con.execute("SELECT block_id FROM pragma_metadata_info()").fetchall()
        }
    return size, data, set(range(total)) - data - metadata


def damage(path: Path, block: int, size: int) -> None:
    """Overwrite 512 bytes in the middle of ``block`` with garbage."""
    with path.open("r+b") as file:
        file.seek(FILE_HEADERS_SIZE + block * size + size // 2)
        file.write(random.Random(block).randbytes(512))


def test_an_intact_warehouse_passes_the_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    build(path)
    with closing(connect(path)) as con:  # free blocks keep their old content and checksum
        con.execute("DELETE FROM bars WHERE symbol IN ('S1', 'S2', 'S3')")
        con.execute("CHECKPOINT")
        [(free,)] = con.execute("SELECT free_blocks FROM pragma_database_size()").fetchall()
    assert free > 0
    check_integrity(path)


def test_damaged_table_data_is_caught_by_reading_every_column(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    build(path)
    size, data, _ = blocks(path)
    damage(path, max(data), size)
    with pytest.raises(
        WarehouseCorrupt, match=rf"^warehouse {path} is corrupt: .*Corrupt database"
    ):
        check_integrity(path)


def test_a_cut_file_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    build(path)
    size, data, _ = blocks(path)
    with path.open("r+b") as file:  # a copy or a disk that lost the file's end, table data too
        file.truncate(FILE_HEADERS_SIZE + max(data) * size + size // 2)
    with pytest.raises(WarehouseCorrupt, match="corrupt"):
        check_integrity(path)


@pytest.mark.parametrize(
    ("offset", "says"),
    [(0, "not a valid DuckDB database file"), (4096, "Corrupt database file")],
    ids=["main header", "database header"],
)
def test_opening_a_damaged_file_says_it_is_corrupt(tmp_path: Path, offset: int, says: str) -> None:
    path = tmp_path / "w.duckdb"
    connect(path).close()
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(random.Random(offset).randbytes(64))
    with pytest.raises(WarehouseCorrupt, match=rf"^warehouse {path} is corrupt: .*{says}"):
        connect(path, read_only=True)
