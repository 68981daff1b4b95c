from contextlib import closing
from pathlib import Path

import pytest

from warehouse.db import WarehouseError, connect, migrate, migrations, transaction


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
