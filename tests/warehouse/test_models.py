import json
from contextlib import closing
from datetime import UTC, datetime

from warehouse.db import connect
from warehouse.models import ModelRow, active_model, list_models, next_version, register

DAY = datetime(2024, 1, 1, tzinfo=UTC)


def row(status: str, val_loss: float = 1.0) -> ModelRow:
    return ModelRow(
        name="sample/AAPL/1d",
        series=["sample/AAPL/1d"],
        interval="1d",
        run_id="run",
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
        for status in ("active", "rejected", "active"):
            register(con, row(status), next_version(con, "sample/AAPL/1d"))
        statuses = con.execute(
            "SELECT version, status, status_reason FROM models ORDER BY version"
        ).fetchall()
        active = active_model(con, "sample/AAPL/1d")
        listed = list_models(con)
    assert statuses == [
        (1, "retired", "replaced by version 3"),
        (2, "rejected", "because"),
        (3, "active", "because"),
    ]
    assert active["version"] == 3 and json.loads(active["hyperparameters"]) == {
        "model": {"d_model": 16}
    }
    assert listed["version"].to_list() == [3, 2, 1]
    assert listed["test_accuracy"].to_list() == [0.5, 0.5, 0.5]
