"""The model registry's records: what a version is, and the rules that decide its status.

The warehouse stores these (:mod:`warehouse.registry`); the tasks only call the
rules and the storage. Nothing here reads a file or a database.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

# A version's status: the one ``active`` version of a name is the one that is explained;
# ``retired`` ones were active once; ``rejected`` ones never were.
ModelStatus = Literal["active", "retired", "rejected"]

# Split part -> (first, last window end), UTC.
Ranges = dict[str, tuple[datetime, datetime]]


@dataclass(frozen=True)
class ModelRecord:
    """A version as the registry holds it, JSON columns decoded.

    Attributes
    ----------
    series
        Labels of the series it was trained on (one, or several when pooled).
    ranges
        Each split part's window ends over all its series.
    series_ranges
        Series label -> its own split ranges.
    windows
        Windows per split part.
    hyperparameters
        The model, feature and training configs, and how training went.
    metrics
        Model (``transformer``, ``lstm``, ``naive``, ``previous_active``) -> test metrics.
    previous_val_loss
        The then-active model's loss on this version's validation windows, if comparable.
    active_from, active_until
        Logical times (of the runs) between which this version was the active one.
    """

    name: str
    version: int
    series: list[str]
    interval: str
    run_id: str
    ranges: Ranges
    series_ranges: dict[str, Ranges]
    windows: dict[str, int]
    hyperparameters: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    val_loss: float
    previous_val_loss: float | None
    checkpoint: Path
    created_at: datetime
    status: ModelStatus
    status_reason: str
    active_from: datetime | None
    active_until: datetime | None
    retired_by: str | None


@dataclass(frozen=True)
class ModelsToExplain:
    """The version whose decisions are explained, and the one active before it.

    ``previous`` is what attention moved across the retrain is measured against;
    ``None`` for a name's first version.
    """

    active: ModelRecord
    previous: ModelRecord | None


def promotion(
    val_loss: float,
    active_val_loss: float | None,
    margin: float,
    active_unreadable: str | None = None,
) -> tuple[str, str]:
    """Whether a new model becomes ``active`` or is ``rejected``, and why.

    It is promoted when its validation loss is finite and not worse than the active
    model's loss on the same validation windows by more than ``margin`` (relative).
    An active model that cannot be read (``active_unreadable`` says why: its checkpoint
    is corrupt or gone) can be neither judged nor used, so a finite new model replaces it.
    """
    if not math.isfinite(val_loss):
        return "rejected", f"validation loss is {val_loss}"
    if active_unreadable is not None:
        return "active", f"the active model cannot be judged and is replaced: {active_unreadable}"
    if active_val_loss is None:
        return "active", "no comparable active model"
    if not math.isfinite(active_val_loss):
        return "active", f"the active model's validation loss is {active_val_loss}"
    limit = active_val_loss * (1 + margin)
    if val_loss <= limit:
        return (
            "active",
            f"validation loss {val_loss:.4f} within {margin:.0%} "
            f"of the active model's {active_val_loss:.4f}",
        )
    return "rejected", (
        f"validation loss {val_loss:.4f} is worse than the active model's {active_val_loss:.4f} "
        f"by more than {margin:.0%}; the active model stays"
    )
