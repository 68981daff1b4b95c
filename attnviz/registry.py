"""The model registry's records, and the rules that decide what a new version's record says.

After training (:func:`attnviz.train.fit_series`) a version is decided in three steps:
the active version is judged on the new model's own validation and test windows
(:func:`compare_with_active`), :func:`promotion` says whether the new model takes
over, and :func:`new_version` puts it all in the row to register. The warehouse
stores rows and reads them back as :class:`ModelRecord` (:mod:`warehouse.registry`);
the tasks only call these rules and that storage. Nothing here touches a database:
the one file read is the active version's checkpoint.

Reading the registry (the warehouse, ``attnviz models``) imports this module, so torch,
which only judging a model needs, is imported by :func:`compare_with_active` when called.
"""

import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from attnviz.series import Series

if TYPE_CHECKING:
    from attnviz.train import FitResult, SplitRanges
    from attnviz.warm_start import TrainingPlan

# A version's status: the one ``active`` version of a name is the one that is explained;
# ``retired`` ones were active once; ``rejected`` ones never were.
ModelStatus = Literal["active", "retired", "rejected"]

# How a version was trained: from scratch, or fine-tuned from an earlier version
# (:mod:`attnviz.warm_start`).
TrainingKind = Literal["full", "warm"]

# Split part -> (first, last window end), UTC.
Ranges = dict[str, tuple[datetime, datetime]]

PARTS = ("train", "val", "test")

# The models whose test metrics every version records: it, its LSTM baseline and the naive
# forecast; ``previous_active`` joins them when the active version was judged on the same windows.
TESTED_MODELS = ("transformer", "lstm", "naive")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ModelRow:
    """A version as the run that trained it decided it: the row the registry inserts.

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
    checkpoint
        The checkpoint file (absolute).
    training, training_reason
        ``full`` (from scratch) or ``warm`` (fine-tuned from version ``warm_from``), and why.
    full_trained_at
        As-of of the training from scratch its weights descend from; ``None`` if unknown.
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
    status: ModelStatus
    status_reason: str
    training: TrainingKind
    warm_from: int | None
    training_reason: str
    full_trained_at: datetime | None


@dataclass(frozen=True)
class ModelRecord(ModelRow):
    """A version as the registry holds it: its row, JSON columns decoded, and its history.

    Attributes
    ----------
    created_at
        When it was registered (wall-clock time).
    active_from, active_until
        Logical times (of the runs) between which this version was the active one.
    retired_by
        The run whose version replaced it.
    """

    created_at: datetime
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


@dataclass(frozen=True)
class Comparison:
    """The active version judged on a new model's validation and test windows.

    All ``None`` when there is no active version, or when it reads other windows
    (another feature config) and so cannot be judged on the same ones.

    Attributes
    ----------
    val_loss
        Its loss on the new model's validation windows, in the new model's target units.
    metrics
        Its test metrics on the new model's test windows.
    unreadable
        Why its checkpoint cannot be read (corrupt or gone): it can be neither judged nor used.
    """

    val_loss: float | None = None
    metrics: dict[str, float] | None = None
    unreadable: str | None = None


def compare_with_active(fit: "FitResult", active: ModelRecord | None) -> Comparison:
    """Judge the active version on the windows the new model was validated and tested on.

    Parameters
    ----------
    fit
        The new model and its data.
    active
        The version active now, if any.

    Returns
    -------
    Comparison
        Its validation loss and test metrics when it reads the same windows; why it
        cannot be read when its checkpoint fails to load.
    """
    from attnviz.checkpoint import CheckpointError, TrainedModel
    from attnviz.metrics import metrics

    if active is None:
        return Comparison()
    try:
        judged = TrainedModel.load(active.checkpoint)
    except CheckpointError as error:
        return Comparison(unreadable=f"v{active.version}: {error}")
    if judged.feature_config != fit.trained.feature_config:
        return Comparison()
    return Comparison(
        val_loss=judged.validation_loss(
            fit.val, fit.train_config.loss_weights, fit.trained.target_scale
        ),
        metrics=metrics(judged.predict(fit.test), fit.test),
    )


def promotion(
    val_loss: float,
    active_val_loss: float | None,
    margin: float,
    active_unreadable: str | None = None,
) -> tuple[ModelStatus, str]:
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


def checkpoint_path(folder: Path, name: str, version: int) -> Path:
    """Where version ``version`` of ``name`` keeps its checkpoint: one flat file in ``folder``."""
    return (folder / f"{name.replace('/', '_')}-v{version}.pt").resolve()


def new_version(
    fit: "FitResult",
    plan: "TrainingPlan",
    comparison: Comparison,
    margin: float,
    *,
    name: str,
    version: int,
    series: list[Series],
    run_id: str,
    models: Path,
) -> ModelRow:
    """The row that registers a newly trained model as version ``version`` of ``name``.

    Parameters
    ----------
    fit
        The trained model, its test metrics and the ranges of its data.
    plan
        How it was trained: from scratch or warm, and why.
    comparison
        The active version judged on the same windows (:func:`compare_with_active`).
    margin
        How much worse than the active version's validation loss the new one may be
        and still replace it (relative).
    name, version
        The registry name and the version it takes.
    series
        The series it was trained on, in the order of ``fit``'s ranges.
    run_id
        The run that trained it.
    models
        The folder of checkpoints.
    """
    status, reason = promotion(
        fit.transformer.best_val_loss, comparison.val_loss, margin, comparison.unreadable
    )
    scores = {model: fit.metrics[model] for model in TESTED_MODELS}
    if comparison.metrics is not None:
        scores["previous_active"] = comparison.metrics
    return ModelRow(
        name=name,
        version=version,
        series=[one.label for one in series],
        interval=series[0].interval,
        run_id=run_id,
        ranges=_pooled_ranges(fit.ranges),
        series_ranges={
            one.label: _utc_ranges(own) for one, own in zip(series, fit.ranges, strict=True)
        },
        windows=fit.windows,
        hyperparameters=_hyperparameters(fit),
        metrics=scores,
        val_loss=fit.transformer.best_val_loss,
        previous_val_loss=comparison.val_loss,
        checkpoint=checkpoint_path(models, name, version),
        status=status,
        status_reason=reason,
        training=plan.kind,
        warm_from=plan.start.version if plan.start else None,
        training_reason=plan.reason,
        full_trained_at=plan.full_trained_at,
    )


def _pooled_ranges(ranges: list["SplitRanges"]) -> Ranges:
    """Each split part's range over several series: its earliest start to its latest end."""
    return {
        part: (
            min(_utc(own[part][0]) for own in ranges),
            max(_utc(own[part][1]) for own in ranges),
        )
        for part in PARTS
    }


def _utc_ranges(ranges: "SplitRanges") -> Ranges:
    """One series' split ranges as aware UTC datetimes."""
    return {part: (_utc(start), _utc(end)) for part, (start, end) in ranges.items()}


def _utc(moment: np.datetime64) -> datetime:
    """A bar time from numpy (UTC, without a zone) as an aware UTC datetime, to the microsecond."""
    return _EPOCH + timedelta(microseconds=int(moment.astype("datetime64[us]").astype("int64")))


def _hyperparameters(fit: "FitResult") -> dict[str, Any]:
    """The configs a version was trained with, and how its training went."""
    return {
        "model": asdict(fit.trained.model.config),
        "features": asdict(fit.trained.feature_config),
        "training": asdict(fit.train_config),
        "epochs_run": len(fit.transformer.history),
        "best_epoch": fit.transformer.best_epoch,
        "train_seconds": round(fit.transformer.seconds, 2),
    }
