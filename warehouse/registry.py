"""The ``models`` registry: versions, their metrics, and which one is active."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from warehouse.db import WarehouseError, query, query_row, transaction


@dataclass(frozen=True)
class ModelRow:
    """A registry row to insert (the version is assigned on insert)."""

    name: str
    series: list[str]
    interval: str
    run_id: str
    ranges: dict[str, tuple[datetime, datetime]]
    series_ranges: dict[str, dict[str, tuple[str, str]]]  # label -> part -> ISO times (UTC)
    windows: dict[str, int]
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    val_loss: float
    previous_val_loss: float | None
    checkpoint: str
    status: str
    status_reason: str


def active_model(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, Any] | None:
    """The active version of ``name`` as a dict, or ``None``."""
    return query_row(con, "SELECT * FROM models WHERE name = ? AND status = 'active'", [name])


def next_version(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """The version number the next model of ``name`` gets."""
    return con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM models WHERE name = ?", [name]
    ).fetchall()[0][0]


def register(con: duckdb.DuckDBPyConnection, row: ModelRow, version: int, as_of: datetime) -> None:
    """Insert a version; if it is ``active``, retire the active one, in one transaction.

    ``as_of`` is the logical time of the registering run: an active version is active
    from then, and the version it replaces was active until then.
    """
    with transaction(con):
        if row.status == "active":
            con.execute(
                """
                UPDATE models SET status = 'retired', active_until = ?, retired_by = ?
                WHERE name = ? AND status = 'active'
                """,
                [as_of, row.run_id, row.name],
            )
        con.execute(
            """
            INSERT INTO models (
                name, version, series, interval, run_id,
                train_start, train_end, val_start, val_end, test_start, test_end,
                series_ranges, windows, hyperparameters, metrics,
                val_loss, previous_val_loss, checkpoint, created_at, status, status_reason,
                active_from)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?)
            """,
            [
                row.name, version, row.series, row.interval, row.run_id,
                *row.ranges["train"], *row.ranges["val"], *row.ranges["test"],
                json.dumps(row.series_ranges), json.dumps(row.windows),
                json.dumps(row.hyperparameters), json.dumps(row.metrics),
                row.val_loss, row.previous_val_loss, row.checkpoint, row.status, row.status_reason,
                as_of if row.status == "active" else None,
            ],
        )  # fmt: skip


def unregister_run(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> int | None:
    """Undo what run ``run_id`` did to the versions of ``name``; returns the version it removed.

    A rerun of the same work calls this first, so it judges its new model against
    the model that was active before the work first ran, and registers the same
    version number again. Refused when a later run has registered a version since:
    undoing would rewrite what that run was judged against.
    """
    with transaction(con):
        mine = query_row(
            con, "SELECT version FROM models WHERE name = ? AND run_id = ?", [name, run_id]
        )
        if mine is None:
            return None
        later = query_row(
            con,
            "SELECT version, run_id FROM models WHERE name = ? AND version > ? ORDER BY version",
            [name, mine["version"]],
        )
        if later is not None:
            raise WarehouseError(
                f"{name} v{mine['version']} was registered by {run_id}, and run "
                f"{later['run_id']} registered v{later['version']} since: rerunning this work "
                "would rewrite the registry's history; rebuild that day's attention tables "
                "with the backfill flow instead"
            )
        con.execute("DELETE FROM models WHERE name = ? AND run_id = ?", [name, run_id])
        con.execute(
            """
            UPDATE models SET status = 'active', active_until = NULL, retired_by = NULL
            WHERE name = ? AND retired_by = ?
            """,
            [name, run_id],
        )
    return mine["version"]


def active_at(con: duckdb.DuckDBPyConnection, name: str, as_of: datetime) -> dict[str, Any] | None:
    """The version of ``name`` that was active at logical time ``as_of``, or ``None``."""
    return query_row(
        con,
        """
        SELECT * FROM models
        WHERE name = ? AND status <> 'rejected'
          AND active_from <= ? AND (active_until IS NULL OR active_until > ?)
        ORDER BY version DESC LIMIT 1
        """,
        [name, as_of, as_of],
    )


def list_models(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every version, newest first, with its headline numbers."""
    return query(
        con,
        """
        SELECT name, version, status, round(val_loss, 4) AS val_loss,
               round((metrics->'transformer'->>'direction_accuracy')::DOUBLE, 3) AS test_accuracy,
               round((metrics->'lstm'->>'direction_accuracy')::DOUBLE, 3) AS lstm_accuracy,
               test_start::DATE AS test_from, test_end::DATE AS test_to,
               created_at, status_reason
        FROM models ORDER BY name, version DESC
        """,
    )


def previous_active(
    con: duckdb.DuckDBPyConnection, name: str, before: int
) -> dict[str, Any] | None:
    """The version active before version ``before`` of ``name`` (retired since), or ``None``."""
    return query_row(
        con,
        """
        SELECT * FROM models WHERE name = ? AND status = 'retired' AND version < ?
        ORDER BY version DESC LIMIT 1
        """,
        [name, before],
    )
