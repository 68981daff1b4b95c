from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attnviz.registry import ModelRecord, ModelRow, ModelStatus
from warehouse.db import WarehouseError, connect, migrations
from warehouse.registry import (
    active_at,
    active_before,
    active_model,
    list_models,
    next_version,
    previous_active,
    register,
    unregister_run,
)
from warehouse.runs import start_run

DAY = datetime(2024, 1, 1, tzinfo=UTC)
NAME = "sample/AAPL/1d"
TRAIN_END = datetime(2023, 6, 30, 12, 30, 0, 250, tzinfo=UTC)


def row(
    status: ModelStatus, version: int, run_id: str = "run", warm_from: int | None = None
) -> ModelRow:
    return ModelRow(
        name=NAME,
        version=version,
        series=[NAME],
        interval="1d",
        run_id=run_id,
        ranges={part: (DAY, DAY) for part in ("train", "val", "test")},
        series_ranges={
            NAME: {
                "train": (DAY.replace(year=2023), TRAIN_END),
                "val": (DAY, DAY),
                "test": (DAY, DAY),
            }
        },
        windows={"train": 10, "val": 2, "test": 2},
        hyperparameters={"model": {"d_model": 16}, "training": {"loss_weights": [1.0, 1.0, 1.0]}},
        metrics={"transformer": {"direction_accuracy": 0.5}, "lstm": {"direction_accuracy": 0.51}},
        val_loss=1.0,
        previous_val_loss=None,
        checkpoint=Path("/var/models/x.pt"),
        status=status,
        status_reason="because",
        training="warm" if warm_from else "full",
        warm_from=warm_from,
        training_reason="why",
        full_trained_at=DAY,
    )


def test_a_registered_version_reads_back_as_it_was_decided() -> None:
    with closing(connect()) as con:
        registered = register(con, row("active", 1, run_id="run1"), DAY)
        [(series_ranges,)] = con.execute("SELECT series_ranges FROM models").fetchall()
        assert active_model(con, NAME) == registered
    assert registered == ModelRecord(
        **vars(row("active", 1, run_id="run1")),
        created_at=registered.created_at,
        active_from=DAY,
        active_until=None,
        retired_by=None,
    )
    assert registered.series_ranges[NAME]["train"][1].tzinfo is not None
    # Stored as it always was: ISO times to the microsecond, UTC, without a zone.
    assert series_ranges == (
        '{"sample/AAPL/1d": {"train": ["2023-01-01T00:00:00.000000", "2023-06-30T12:30:00.000250"],'
        ' "val": ["2024-01-01T00:00:00.000000", "2024-01-01T00:00:00.000000"],'
        ' "test": ["2024-01-01T00:00:00.000000", "2024-01-01T00:00:00.000000"]}}'
    )


def test_versions_count_up_and_one_model_is_active_at_a_time() -> None:
    with closing(connect()) as con:
        assert active_model(con, NAME) is None
        for day, status in enumerate(("active", "rejected", "active"), start=1):
            register(con, row(status, next_version(con, NAME), f"run{day}"), DAY.replace(day=day))
        statuses = con.execute(
            "SELECT version, status, status_reason FROM models ORDER BY version"
        ).fetchall()
        active = active_model(con, NAME)
        before = previous_active(con, NAME, 3)
        listed = list_models(con)
    assert statuses == [
        (1, "retired", "because"),
        (2, "rejected", "because"),
        (3, "active", "because"),
    ]
    assert active is not None and active.version == 3 and active.status == "active"
    assert active.hyperparameters == {
        "model": {"d_model": 16},
        "training": {"loss_weights": [1.0, 1.0, 1.0]},
    }
    assert before is not None and before.version == 1 and before.status == "retired"
    assert (before.active_from, before.active_until, before.retired_by) == (
        DAY.replace(day=1),
        DAY.replace(day=3),
        "run3",
    )
    assert listed["version"].to_list() == [3, 2, 1]
    assert listed["test_accuracy"].to_list() == [0.5, 0.5, 0.5]


def registry(con) -> list[tuple]:
    return con.execute(
        "SELECT version, status, run_id, active_from, active_until, retired_by "
        "FROM models ORDER BY version"
    ).fetchall()


def test_the_registry_knows_which_version_was_active_at_a_logical_time() -> None:
    with closing(connect()) as con:
        register(con, row("active", 1, run_id="run1"), DAY.replace(day=1))
        register(con, row("rejected", 2, run_id="run2"), DAY.replace(day=2))
        register(con, row("active", 3, run_id="run3"), DAY.replace(day=3))
        versions = {}
        for day in (1, 2, 3, 4):
            then = active_at(con, NAME, DAY.replace(day=day))
            versions[day] = then.version if then else None
        assert active_at(con, NAME, datetime(2023, 12, 31, tzinfo=UTC)) is None
    assert versions == {1: 1, 2: 1, 3: 3, 4: 3}


def test_unregistering_a_run_restores_the_registry_it_found() -> None:
    with closing(connect()) as con:
        register(con, row("active", 1, run_id="run1"), DAY)
        before = registry(con)
        register(con, row("active", 2, run_id="run2"), DAY.replace(day=2))
        assert unregister_run(con, NAME, "run2") == 2
        assert registry(con) == before
        assert unregister_run(con, NAME, "never") is None
        assert next_version(con, NAME) == 2  # a rerun takes the version it took before


def test_unregistering_is_refused_once_a_later_run_registered() -> None:
    with closing(connect()) as con:
        register(con, row("active", 1, run_id="run1"), DAY)
        register(con, row("active", 2, run_id="run2"), DAY.replace(day=2))
        before = registry(con)
        with pytest.raises(WarehouseError, match=r"run2 registered v2 since.*backfill"):
            unregister_run(con, NAME, "run1")
        assert registry(con) == before


def test_a_run_plans_from_the_version_active_before_it_registered_one() -> None:
    with closing(connect()) as con:
        assert active_before(con, NAME, "run1") is None
        register(con, row("active", 1, run_id="run1"), DAY)
        assert active_before(con, NAME, "run1") is None  # its own v1 was the first
        register(con, row("active", 2, run_id="run2", warm_from=1), DAY.replace(day=2))
        register(con, row("rejected", 3, run_id="run3", warm_from=2), DAY.replace(day=3))
        assert active_before(con, NAME, "run2").version == 1  # its own v2 replaced v1
        assert active_before(con, NAME, "run3").version == 2  # its v3 was rejected
        assert active_before(con, NAME, "run4").version == 2
        warm = active_model(con, NAME)
    assert (warm.training, warm.warm_from, warm.full_trained_at) == ("warm", 1, DAY)


def test_versions_from_before_warm_starts_read_as_full_retrains_at_their_runs_as_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "w.duckdb"
    with monkeypatch.context() as older:
        older.setattr("warehouse.db.migrations", lambda: [m for m in migrations() if m[0] < 10])
        with closing(connect(database)) as con:
            start_run(con, "run1", "flow-run-1", "nightly", {}, DAY)
            con.execute(
                "INSERT INTO models (name, version, series, interval, run_id, train_start, "
                "train_end, val_start, val_end, test_start, test_end, series_ranges, windows, "
                "hyperparameters, metrics, val_loss, checkpoint, created_at, status, "
                "status_reason) VALUES (?, 1, ?, '1d', 'run1', ?, ?, ?, ?, ?, ?, '{}', '{}', "
                "'{}', '{}', 1.0, 'x.pt', now(), 'active', 'first')",
                [NAME, [NAME], *[DAY] * 6],
            )
    with closing(connect(database)) as con:
        old = active_model(con, NAME)
    assert (old.training, old.warm_from, old.full_trained_at) == ("full", None, DAY)
    assert old.training_reason == "trained before warm starts existed"
