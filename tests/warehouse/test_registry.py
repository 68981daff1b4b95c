from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from attnviz.registry import ModelRecord, ModelRow, ModelStatus
from warehouse.db import WarehouseError, connect
from warehouse.registry import (
    active_at,
    active_model,
    list_models,
    next_version,
    previous_active,
    register,
    unregister_run,
)

DAY = datetime(2024, 1, 1, tzinfo=UTC)
NAME = "sample/AAPL/1d"
TRAIN_END = datetime(2023, 6, 30, 12, 30, 0, 250, tzinfo=UTC)


def row(status: ModelStatus, version: int, run_id: str = "run") -> ModelRow:
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
