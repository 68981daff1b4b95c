"""Registry records for tests: plain defaults, any field given."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attnviz.registry import ModelRecord


def model_record(**fields: Any) -> ModelRecord:
    """An active version 1 of ``sample/AAPL/1d`` with empty ranges and metrics, but ``fields``."""
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    defaults: dict[str, Any] = {
        "name": "sample/AAPL/1d",
        "version": 1,
        "series": ["sample/AAPL/1d"],
        "interval": "1d",
        "run_id": "run",
        "ranges": {},
        "series_ranges": {},
        "windows": {},
        "hyperparameters": {},
        "metrics": {},
        "val_loss": 1.0,
        "previous_val_loss": None,
        "checkpoint": Path("model.pt"),
        "status": "active",
        "status_reason": "",
        "training": "full",
        "warm_from": None,
        "training_reason": "no active version to start from",
        "full_trained_at": moment,
        "created_at": moment,
        "active_from": moment,
        "active_until": None,
        "retired_by": None,
    }
    return ModelRecord(**(defaults | fields))
