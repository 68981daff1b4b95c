"""The ``models`` registry: versions, their metrics, and which one is active."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import polars as pl

from warehouse.db import query, query_row, transaction


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


def register(con: duckdb.DuckDBPyConnection, row: ModelRow, version: int) -> None:
    """Insert a version; if it is ``active``, retire the previous active one in one transaction."""
    with transaction(con):
        if row.status == "active":
            con.execute(
                """
                UPDATE models SET status = 'retired', status_reason = ?
                WHERE name = ? AND status = 'active'
                """,
                [f"replaced by version {version}", row.name],
            )
        con.execute(
            """
            INSERT INTO models VALUES
                (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(), ?, ?)
            """,
            [
                row.name, version, row.series, row.interval, row.run_id,
                *row.ranges["train"], *row.ranges["val"], *row.ranges["test"],
                json.dumps(row.series_ranges), json.dumps(row.windows),
                json.dumps(row.hyperparameters), json.dumps(row.metrics),
                row.val_loss, row.previous_val_loss, row.checkpoint, row.status, row.status_reason,
            ],
        )  # fmt: skip


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
