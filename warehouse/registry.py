"""The ``models`` registry: versions, their metrics, and which one is active.

Rows go in as :class:`attnviz.registry.ModelRow` and come back as
:class:`attnviz.registry.ModelRecord`, JSON columns decoded. Each series' split ranges
are stored as JSON text: ISO times to the microsecond, without a zone, in UTC.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from attnviz.registry import PARTS, ModelRecord, ModelRow, Ranges
from warehouse.db import WarehouseError, query, query_row, transaction


def register(con: duckdb.DuckDBPyConnection, row: ModelRow, as_of: datetime) -> ModelRecord:
    """Insert a version; if it is ``active``, retire the active one, in one transaction.

    ``as_of`` is the logical time of the registering run: an active version is active
    from then, and the version it replaces was active until then.

    Returns
    -------
    ModelRecord
        The version as registered.
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
                active_from, training, warm_from, training_reason, full_trained_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now(),
                    ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                row.name, row.version, row.series, row.interval, row.run_id,
                *row.ranges["train"], *row.ranges["val"], *row.ranges["test"],
                json.dumps(_encoded(row.series_ranges)), json.dumps(row.windows),
                json.dumps(row.hyperparameters), json.dumps(row.metrics),
                row.val_loss, row.previous_val_loss, str(row.checkpoint),
                row.status, row.status_reason,
                as_of if row.status == "active" else None,
                row.training, row.warm_from, row.training_reason, row.full_trained_at,
            ],
        )  # fmt: skip
        registered = _model(
            con, "SELECT * FROM models WHERE name = ? AND version = ?", [row.name, row.version]
        )
    assert registered is not None, "a version reads back in the transaction that inserted it"
    return registered


def unregister_run(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> int | None:
    """Undo what run ``run_id`` did to the versions of ``name``; returns the version it removed.

    A rerun of the same work calls this first, so it judges its new model against
    the model that was active before the work first ran, and registers the same
    version number again. Refused when a later run has registered a version since:
    undoing would rewrite what that run was judged against.

    Raises
    ------
    WarehouseError
        If a later run has registered a version of ``name`` since.
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
    return int(mine["version"])


def next_version(con: duckdb.DuckDBPyConnection, name: str) -> int:
    """The version number the next model of ``name`` gets."""
    [(version,)] = con.execute(
        "SELECT coalesce(max(version), 0) + 1 FROM models WHERE name = ?", [name]
    ).fetchall()
    return int(version)


def active_model(con: duckdb.DuckDBPyConnection, name: str) -> ModelRecord | None:
    """The active version of ``name``, or ``None``."""
    return _model(con, "SELECT * FROM models WHERE name = ? AND status = 'active'", [name])


def active_before(con: duckdb.DuckDBPyConnection, name: str, run_id: str) -> ModelRecord | None:
    """The version of ``name`` that was active before run ``run_id`` registered one.

    That is the active version, unless the run made its own version active; then it is
    the version the run retired. A rerun of the same work plans from what the first
    attempt found.
    """
    active = active_model(con, name)
    if active is None or active.run_id != run_id:
        return active
    return _model(con, "SELECT * FROM models WHERE name = ? AND retired_by = ?", [name, run_id])


def active_at(con: duckdb.DuckDBPyConnection, name: str, as_of: datetime) -> ModelRecord | None:
    """The version of ``name`` that was active at logical time ``as_of``, or ``None``."""
    return _model(
        con,
        """
        SELECT * FROM models
        WHERE name = ? AND status <> 'rejected'
          AND active_from <= ? AND (active_until IS NULL OR active_until > ?)
        ORDER BY version DESC LIMIT 1
        """,
        [name, as_of, as_of],
    )


def previous_active(con: duckdb.DuckDBPyConnection, name: str, before: int) -> ModelRecord | None:
    """The version active before version ``before`` of ``name`` (retired since), or ``None``."""
    return _model(
        con,
        """
        SELECT * FROM models WHERE name = ? AND status = 'retired' AND version < ?
        ORDER BY version DESC LIMIT 1
        """,
        [name, before],
    )


def list_models(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Every version, newest first, with its headline numbers."""
    return query(
        con,
        """
        SELECT name, version, status, training, round(val_loss, 4) AS val_loss,
               round((metrics->'transformer'->>'direction_accuracy')::DOUBLE, 3) AS test_accuracy,
               round((metrics->'lstm'->>'direction_accuracy')::DOUBLE, 3) AS lstm_accuracy,
               test_start::DATE AS test_from, test_end::DATE AS test_to,
               created_at, status_reason
        FROM models ORDER BY name, version DESC
        """,
    )


def _model(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> ModelRecord | None:
    """The first ``models`` row ``sql`` selects, as a record; ``None`` if it selects none."""
    row = query_row(con, sql, params)
    if row is None:
        return None
    return ModelRecord(
        name=row["name"],
        version=row["version"],
        series=row["series"],
        interval=row["interval"],
        run_id=row["run_id"],
        ranges={part: (row[f"{part}_start"], row[f"{part}_end"]) for part in PARTS},
        series_ranges=_decoded(json.loads(row["series_ranges"])),
        windows=json.loads(row["windows"]),
        hyperparameters=json.loads(row["hyperparameters"]),
        metrics=json.loads(row["metrics"]),
        val_loss=row["val_loss"],
        previous_val_loss=row["previous_val_loss"],
        checkpoint=Path(row["checkpoint"]),
        status=row["status"],  # the table's CHECK admits only the ModelStatus values
        status_reason=row["status_reason"],
        training=row["training"],  # 'full' or 'warm', as registered
        warm_from=row["warm_from"],
        training_reason=row["training_reason"],
        full_trained_at=row["full_trained_at"],
        created_at=row["created_at"],
        active_from=row["active_from"],
        active_until=row["active_until"],
        retired_by=row["retired_by"],
    )


def _encoded(series_ranges: dict[str, Ranges]) -> dict[str, dict[str, list[str]]]:
    """Series ranges as stored: ISO times to the microsecond, UTC, without a zone."""
    return {
        label: {
            part: [
                moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
                for moment in span
            ]
            for part, span in ranges.items()
        }
        for label, ranges in series_ranges.items()
    }


def _decoded(stored: dict[str, dict[str, list[str]]]) -> dict[str, Ranges]:
    """Series ranges as stored (see :func:`_encoded`) back as aware UTC datetimes."""
    return {
        label: {
            part: (_stored_time(start), _stored_time(end)) for part, (start, end) in ranges.items()
        }
        for label, ranges in stored.items()
    }


def _stored_time(text: str) -> datetime:
    """A stored ISO time (UTC, without a zone) as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
