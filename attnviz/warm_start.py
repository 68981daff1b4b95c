"""Whether a nightly fine-tunes the active version or trains from scratch, and why.

Between two nights a series gains a few bars; training from scratch again costs a
whole training (about a dozen epochs of two networks) to learn what the active
version already knows. A warm start fine-tunes the active version's weights on the
new split for ``warm_epochs`` instead (:func:`attnviz.train.fit_series`). Weights that
were only ever fine-tuned drift from what a fresh training would find, so a full
retrain still comes:

* when there is no active version, or it was trained with other settings or series;
* on a schedule: once its weights descend from a training from scratch
  ``full_retrain_days`` (of as-of time) old;
* with ``retrain_on_drift``, when the drift monitors flag the newest analysed window
  of one of its series (collapse or a regime change: the attention no longer reads
  the market as it did). It is off by default: each flag is calibrated to be on in 5%
  of the validation windows, so with two flags and a handful of series most nights
  would find one on somewhere, and the everyday nightly would cost as much as the first.

The registry records which it was, why, and the version a warm start began from.
"""

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from attnviz.checkpoint import CheckpointError, TrainedModel
from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.registry import ModelRecord, TrainingKind
from attnviz.series import Series
from attnviz.train import TrainConfig


@dataclass(frozen=True)
class TrainingPlan:
    """How a version is trained.

    Attributes
    ----------
    kind
        ``full`` (from scratch) or ``warm`` (fine-tuned from ``start``).
    reason
        Why, in words, for the registry and the log.
    start
        The version fine-tuned; ``None`` for a full retrain.
    full_trained_at
        The as-of of the training from scratch the new weights descend from.
    """

    kind: TrainingKind
    reason: str
    start: ModelRecord | None
    full_trained_at: datetime

    @classmethod
    def full(cls, reason: str, as_of: datetime) -> "TrainingPlan":
        """A training from scratch at ``as_of``."""
        return cls("full", reason, None, as_of)


def plan_training(
    active: ModelRecord | None,
    series: list[Series],
    settings: tuple[FeatureConfig, ModelConfig, TrainConfig],
    as_of: datetime,
    flagged: dict[str, list[str]],
) -> TrainingPlan:
    """Decide between a warm start from ``active`` and a full retrain.

    Parameters
    ----------
    active
        The version active before this run, if any.
    series
        The series the new version trains on.
    settings
        The group's feature, model and training settings now.
    as_of
        The run's as-of.
    flagged
        Series label -> the drift flags on in the newest window analysed with ``active``
        (``collapse``, ``regime_change``); series without flags may be left out. Read
        only with ``retrain_on_drift``.
    """
    features, model, training = settings
    if not training.warm_epochs:
        return TrainingPlan.full("warm starts are off (warm_epochs: 0)", as_of)
    if active is None:
        return TrainingPlan.full("no active version to start from", as_of)
    name = f"v{active.version}"
    # As the registry stores them: JSON, where tuples come back as lists.
    now = json.loads(
        json.dumps(
            {"features": asdict(features), "model": asdict(model), "training": asdict(training)}
        )
    )
    if any(active.hyperparameters.get(key) != value for key, value in now.items()):
        return TrainingPlan.full(f"the group's settings changed since {name}", as_of)
    if active.series != [one.label for one in series]:
        return TrainingPlan.full(f"the series changed since {name}", as_of)
    if active.full_trained_at is None:
        return TrainingPlan.full(f"{name} was trained before warm starts were recorded", as_of)
    age = as_of - active.full_trained_at
    days = f"{age.days} day{'' if age.days == 1 else 's'}"
    if age >= timedelta(days=training.full_retrain_days):
        return TrainingPlan.full(
            f"{name}'s weights were trained from scratch {days} before "
            f"(full retrain every {training.full_retrain_days} days)",
            as_of,
        )
    drift = [f"{label}: {', '.join(flags)}" for label, flags in flagged.items() if flags]
    if training.retrain_on_drift and drift:
        return TrainingPlan.full(
            f"the monitors flag the newest window analysed with {name} ({'; '.join(drift)})",
            as_of,
        )
    return TrainingPlan(
        "warm",
        f"fine-tunes {name} (trained from scratch {days} before)",
        active,
        active.full_trained_at,
    )


def readable_start(plan: TrainingPlan, as_of: datetime) -> TrainingPlan:
    """``plan``, or a full retrain at ``as_of`` if the version it would fine-tune cannot be used.

    A checkpoint that cannot be read, or that has no LSTM baseline (written before the
    baseline was kept), is no start: the version is trained from scratch, saying why.
    """
    if plan.start is None:
        return plan
    name = f"v{plan.start.version}"
    try:
        start = TrainedModel.load(plan.start.checkpoint)
    except CheckpointError as error:
        return TrainingPlan.full(f"{name} cannot be fine-tuned: {error}", as_of)
    if start.lstm is None:
        return TrainingPlan.full(
            f"{name} cannot be fine-tuned: its checkpoint has no LSTM baseline", as_of
        )
    return plan
