"""Opening the warehouse, applying its migrations, transactions, and checking it is intact.

The warehouse is one DuckDB file. DuckDB allows one read-write process per file,
so writers keep transactions short; readers open it read-only.

A read-only connection is the door through which people run their own SQL
(``attnviz sql``), so it is closed to everything but reading the warehouse: DuckDB's
read-only mode alone still lets a statement attach another file read-write, copy
a query over any file (the database itself included), read any file, or load an
extension.
"""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from attnviz import config

# Values bound to a query's ? placeholders, in order.
Params = list[Any]

# Given when the file is opened, so that no statement ever runs with these doors open.
# External access covers ATTACH, COPY, EXPORT/IMPORT, read_csv and the other readers,
# glob, INSTALL and LOAD; autoloading would otherwise fetch an extension by itself.
# With no temp directory a query too big for memory fails instead of writing spill files.
READER_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "temp_directory": "",
}

# How DuckDB says, when it opens a file, that the file is not what it wrote.
CORRUPTION_SIGNS = (
    "Corrupt database file",  # a block or header fails its checksum
    "not a valid DuckDB database file",  # the main header is gone
    "Could not read enough bytes",  # the file was cut short
)


# What a reader is told when a statement reaches past the warehouse's own tables.
READ_ONLY_REFUSAL = (
    "a read-only connection only reads the warehouse: statements that touch files or other "
    "databases (ATTACH, COPY, EXPORT, read_csv, INSTALL, LOAD) or change settings are refused"
)


class WarehouseError(RuntimeError):
    """The warehouse cannot be opened or used as asked; the message says why."""


class WarehouseCorrupt(WarehouseError):
    """The warehouse file no longer holds what was written to it (a failed disk, a stray write)."""


def connect(path: Path | str | None = None, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (default :func:`attnviz.config.warehouse_path`).

    A read-write connection creates the file if needed and applies pending migrations.
    A read-only connection can read the warehouse's tables and views and nothing
    else: it cannot write, attach, read or write any file, load an extension, or
    change these settings back. Timestamps are read and written in UTC.

    Raises
    ------
    WarehouseCorrupt
        The file fails DuckDB's checksums while it is opened.
    WarehouseError
        There is no file to read, or DuckDB cannot open it (another process holds it).
    """
    path = Path(path) if path else config.warehouse_path()
    if read_only and not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `attnviz run` first")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    settings = READER_CONFIG if read_only else {}
    try:
        con = duckdb.connect(str(path), read_only=read_only, config=settings)
    except duckdb.IOException as error:
        if any(sign in str(error) for sign in CORRUPTION_SIGNS):
            raise WarehouseCorrupt(f"warehouse {path} is corrupt: {error}") from error
        raise WarehouseError(f"cannot open warehouse {path}: {error}") from error
    if read_only:
        _close_reader(con)
    else:
        con.execute("SET TimeZone = 'UTC'")
        migrate(con)
    return con


def _close_reader(con: duckdb.DuckDBPyConnection) -> None:
    """Shut a read-only connection's last doors and lock its settings.

    Closing external access leaves DuckDB's own files open to SQL (``allowed_paths``
    holds the database and its ``.wal``): ``COPY ... TO '<database>' (USE_TMP_FILE
    false)`` would overwrite the file. With the local file system disabled no
    statement can touch a file, while the database, opened already, stays readable.
    DuckDB takes neither that nor the time zone (ICU's setting) before the file is
    open, hence here; the lock comes last. Connections to one file in one process
    share a database, and with it these global settings: the first reader sets them.
    """
    [(locked,)] = con.execute("SELECT current_setting('lock_configuration')").fetchall()
    if not locked:
        con.execute("SET GLOBAL TimeZone = 'UTC'")
        con.execute("SET disabled_filesystems = 'LocalFileSystem'")
        con.execute("SET lock_configuration = true")


def query(con: duckdb.DuckDBPyConnection, sql: str, params: Params | None = None) -> pl.DataFrame:
    """Run a parameterised query and return its result as a polars frame.

    Raises
    ------
    WarehouseError
        ``sql`` is empty, or holds no statement that returns a result (only comments).
    """
    return _execute(con, sql, params).pl()


def query_row(
    con: duckdb.DuckDBPyConnection, sql: str, params: Params | None = None
) -> dict[str, Any] | None:
    """The first row of a parameterised query as a column -> value dict, or ``None``.

    Raises
    ------
    WarehouseError
        ``sql`` is empty, or holds no statement that returns a result (only comments).
    """
    cursor = _execute(con, sql, params)
    rows = cursor.fetchall()
    if not rows:
        return None
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[str],
    keys: Mapping[str, object],
    frames: Mapping[str, pl.DataFrame],
) -> dict[str, int]:
    """Replace the rows of ``tables`` that match ``keys`` with ``frames``.

    Every table loses its rows matching ``keys`` (e.g. a run and a series), then each
    frame's rows are inserted (:func:`insert_rows`). Call it inside a
    :func:`transaction`, so that readers see the old rows or all the new ones, never a
    mix; a rerun replaces, never duplicates. Returns the rows written per table.

    Raises
    ------
    ValueError
        If a frame names a table outside ``tables``.
    """
    unknown = sorted(set(frames) - set(tables))
    if unknown:
        raise ValueError(f"unknown tables {unknown}; expected some of {list(tables)}")
    where = " AND ".join(f"{_quoted(column)} = ?" for column in keys)
    for table in tables:
        con.execute(f"DELETE FROM {_quoted(table)} WHERE {where}", list(keys.values()))
    return {table: insert_rows(con, table, keys, frame) for table, frame in frames.items()}


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, keys: Mapping[str, object], frame: pl.DataFrame
) -> int:
    """Insert ``frame``'s rows into ``table`` by column name, with the key columns added.

    Returns the number of rows inserted.
    """
    rows = frame.with_columns(pl.lit(value).alias(name) for name, value in keys.items())
    with registered(con, "rows_in", rows):
        con.execute(f"INSERT INTO {_quoted(table)} BY NAME SELECT * FROM rows_in")
    return rows.height


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> Iterator[None]:
    """``frame`` readable by SQL on ``con`` as the view ``name`` until the block ends."""
    con.register(name, frame)
    try:
        yield
    finally:
        con.unregister(name)


def _execute(
    con: duckdb.DuckDBPyConnection, sql: str, params: Params | None
) -> duckdb.DuckDBPyConnection:
    """Run ``sql`` and return the cursor holding its result, or say why there is none."""
    if not sql.strip():
        raise WarehouseError("empty query: give a SQL statement, e.g. SELECT count(*) FROM bars")
    try:
        cursor = con.execute(sql, params or [])
    except (duckdb.PermissionException, duckdb.InvalidInputException) as error:
        refused = isinstance(error, duckdb.PermissionException) or "has been locked" in str(error)
        if not refused:
            raise
        said = str(error).splitlines()[0]
        raise WarehouseError(f"{READ_ONLY_REFUSAL} (DuckDB: {said})") from None
    if cursor is None:  # DuckDB returns no cursor when the text holds no statement
        raise WarehouseError(f"no statement to run in {sql!r}: it holds only comments or ';'")
    return cursor


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


def check_integrity(path: Path) -> None:
    """Raise :class:`WarehouseCorrupt` unless DuckDB reads every table of ``path`` back intact.

    DuckDB verifies a block's checksum only when it reads the block, so a damaged
    block goes unnoticed until a query happens to need it. This opens the file
    read-only and reads every column of every table (the catalog and all table
    data, decoded). Primary-key index blocks are not read by a scan; DuckDB checks
    them when a write needs them, and the write then fails. Call it while no process
    writes the file (hold the write lock).

    Raises
    ------
    WarehouseCorrupt
        Some block fails its checksum or cannot be read; DuckDB's message says which.
    WarehouseError
        The file cannot be opened at all (missing, or held by a writer).
    """
    with closing(connect(path, read_only=True)) as con:
        try:
            tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
            for schema, table in tables:
                # Aggregating every column keeps the optimizer from skipping any of them.
                name = f"{_quoted(schema)}.{_quoted(table)}"
                con.execute(f"SELECT bit_xor(hash(COLUMNS(*))) FROM {name}").fetchall()
        except duckdb.Error as error:
            raise WarehouseCorrupt(f"warehouse {path} is corrupt: {error}") from error


def _quoted(name: str) -> str:
    """``name`` as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'
