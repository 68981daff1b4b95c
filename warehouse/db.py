"""Opening the warehouse, applying its migrations, and transactions.

The warehouse is one DuckDB file. DuckDB allows one read-write process per file,
so writers keep transactions short; readers open it read-only.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from attnviz import config


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or used as asked; the message says why."""


def connect(path: Path | str | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (default :func:`attnviz.config.warehouse_path`).

    A read-write connection creates the file if needed and applies pending migrations.
    Timestamps are read and written in UTC.
    """
    path = Path(path) if path else config.warehouse_path()
    if read_only and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `attnviz run` first")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as error:
        raise WarehouseError(f"cannot open warehouse {path}: {error}") from error
    con.execute("SET TimeZone = 'UTC'")
    if not read_only:
        migrate(con)
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pl.DataFrame:
    """Run a parameterised query and return its result as a polars frame."""
    return pl.from_arrow(con.execute(sql, params or []).to_arrow_table())


def query_row(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> dict | None:
    """The first row of a parameterised query as a column -> value dict, or ``None``."""
    cursor = con.execute(sql, params or [])
    rows = cursor.fetchall()
    if not rows:
        return None
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Everything inside commits together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("warehouse.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text()))
    return sorted(found)


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations not yet applied, each in its own transaction; returns their versions."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    done = {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        with transaction(con):
            con.execute(sql)
            con.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name]
            )
        applied.append(version)
    return applied
