import json
from contextlib import closing
from datetime import UTC, datetime

import pytest

from warehouse.db import WarehouseError, connect
from warehouse.registry import (
    ModelRow,
    active_at,
    active_model,
    list_models,
    next_version,
    register,
    unregister_run,
)

DAY = datetime(2024, 1, 1, tzinfo=UTC)
NAME = "sample/AAPL/1d"


def row(status: str, val_loss: float = 1.0, run_id: str = "run") -> ModelRow:
    return ModelRow(
        name="sample/AAPL/1d",
        series=["sample/AAPL/1d"],
        interval="1d",
        run_id=run_id,
        ranges={part: (DAY, DAY) for part in ("train", "val", "test")},
        series_ranges={
            "sample/AAPL/1d": {
                part: ("2024-01-01T00:00:00",) * 2 for part in ("train", "val", "test")
            }
        },
        windows={"train": 10, "val": 2, "test": 2},
        hyperparameters={"model": {"d_model": 16}},
        metrics={"transformer": {"direction_accuracy": 0.5}, "lstm": {"direction_accuracy": 0.51}},
        val_loss=val_loss,
        previous_val_loss=None,
        checkpoint="var/models/x.pt",
        status=status,
        status_reason="because",
    )


def test_versions_count_up_and_one_model_is_active_at_a_time() -> None:
    with closing(connect()) as con:
        assert active_model(con, "sample/AAPL/1d") is None
        for day, status in enumerate(("active", "rejected", "active"), start=1):
            register(
                con, row(status, run_id=f"run{day}"), next_version(con, NAME), DAY.replace(day=day)
            )
        statuses = con.execute(
            "SELECT version, status, status_reason FROM models ORDER BY version"
        ).fetchall()
        active = active_model(con, "sample/AAPL/1d")
        listed = list_models(con)
    assert statuses == [
        (1, "retired", "because"),
        (2, "rejected", "because"),
        (3, "active", "because"),
    ]
    assert active["version"] == 3 and json.loads(active["hyperparameters"]) == {
        "model": {"d_model": 16}
    }
    assert listed["version"].to_list() == [3, 2, 1]
    assert listed["test_accuracy"].to_list() == [0.5, 0.5, 0.5]


def registry(con) -> list[tuple]:
    return con.execute(
        "SELECT version, status, run_id, active_from, active_until, retired_by "
        "FROM models ORDER BY version"
    ).fetchall()


def test_the_registry_knows_which_version_was_active_at_a_logical_time() -> None:
    with closing(connect()) as con:
        register(con, row("active", run_id="run1"), 1, DAY.replace(day=1))
        register(con, row("rejected", run_id="run2"), 2, DAY.replace(day=2))
        register(con, row("active", run_id="run3"), 3, DAY.replace(day=3))
        versions = {
            day: (active_at(con, NAME, DAY.replace(day=day)) or {}).get("version")
            for day in (1, 2, 3, 4)
        }
        assert active_at(con, NAME, datetime(2023, 12, 31, tzinfo=UTC)) is None
    assert versions == {1: 1, 2: 1, 3: 3, 4: 3}


def test_unregistering_a_run_restores_the_registry_it_found() -> None:
    with closing(connect()) as con:
        register(con, row("active", run_id="run1"), 1, DAY)
        before = registry(con)
        register(con, row("active", run_id="run2"), 2, DAY.replace(day=2))
        assert unregister_run(con, NAME, "run2") == 2
        assert registry(con) == before
        assert unregister_run(con, NAME, "never") is None


def test_unregistering_is_refused_once_a_later_run_registered() -> None:
    with closing(connect()) as con:
        register(con, row("active", run_id="run1"), 1, DAY)
        register(con, row("active", run_id="run2"), 2, DAY.replace(day=2))
        before = registry(con)
        with pytest.raises(WarehouseError, match=r"run2 registered v2 since.*backfill"):
            unregister_run(con, NAME, "run1")
        assert registry(con) == before
