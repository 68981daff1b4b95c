"""Tasks of the nightly retrain: read bars, train, register, summarise, the versions to explain."""

from dataclasses import asdict
from datetime import datetime
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from attnviz import config, warm_start
from attnviz.catalogue import ModelSpec
from attnviz.checkpoint import TrainedModel
from attnviz.faults import crash_point
from attnviz.features import FeatureConfig
from attnviz.model import ModelConfig
from attnviz.registry import ModelRecord, ModelsToExplain, compare_with_active, new_version
from attnviz.series import Series
from attnviz.train import FitResult, TrainConfig, fit_series
from attnviz.warm_start import TrainingPlan
from tasks.cache import CACHE_EXPIRATION, cache_key, file_digest, frame_digest
from tasks.phases import phase
from tasks.turns import open_warehouse
from warehouse.bars import read_bars
from warehouse.drift import newest_flags
from warehouse.registry import (
    active_at,
    active_before,
    active_model,
    next_version,
    previous_active,
    register,
    unregister_run,
)


@task(name="read-bars", task_run_name="read {series.label}", cache_policy=NO_CACHE)
def read_training_bars(series: Series, as_of: datetime) -> pl.DataFrame:
    """Every stored bar of one series that had closed by ``as_of``, oldest first.

    A run for a past as-of must not see the bars later runs stored since.
    """
    with open_warehouse() as con:
        return read_bars(con, *series.key, closed_by=as_of)


@task(name="plan-training", task_run_name="plan {name}", cache_policy=NO_CACHE)
@phase("train")
def training_plan(run_id: str, as_of: datetime, name: str, spec: ModelSpec) -> TrainingPlan:
    """Whether ``name`` is fine-tuned from its active version tonight or trained from scratch.

    Planned from the version active before this run and the flags of the newest window
    an earlier run analysed with it (:mod:`attnviz.warm_start`): a rerun plans as the
    first attempt did.
    """
    group = spec.group
    with open_warehouse() as con:
        active = active_before(con, name, run_id)
        flagged = (
            newest_flags(con, spec.series, (name, active.version), as_of)
            if active is not None and group.training.retrain_on_drift
            else {}
        )
    plan = warm_start.plan_training(
        active, spec.series, (group.features, group.model, group.training), as_of, flagged
    )
    plan = warm_start.readable_start(plan, as_of)
    get_run_logger().info("%s: %s training: %s", name, plan.kind, plan.reason)
    return plan


def _train_cache_key(context: TaskRunContext, inputs: dict[str, Any]) -> str:
    """The train task's key: its name, the bars' content, the configs and how it starts."""
    plan: TrainingPlan = inputs["plan"]
    return cache_key(
        "train",
        inputs["name"],
        [frame_digest(frame) for frame in inputs["bars"]],
        asdict(inputs["features"]),
        asdict(inputs["model"]),
        asdict(inputs["training"]),
        plan.kind,
        plan.full_trained_at,
        file_digest(plan.start.checkpoint) if plan.start else None,
    )


@task(
    name="train",
    task_run_name="train {name}",
    cache_key_fn=_train_cache_key,
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
@phase("train")
def train(
    name: str,
    bars: list[pl.DataFrame],
    features: FeatureConfig,
    model: ModelConfig,
    training: TrainConfig,
    plan: TrainingPlan,
) -> FitResult:
    """Train the Transformer and the LSTM baseline as ``plan`` says; one log line per epoch.

    Cached by the bars' content, the configs and the start's checkpoint bytes: a retry
    or rerun on unchanged bars reuses the trained models instead of training again. A
    loss that goes non-finite fails the task naming the model, unless an earlier
    epoch's weights can be kept.

    Raises
    ------
    CheckpointError
        If the version a warm plan starts from can no longer be read.
    """
    crash_point("train")
    start = TrainedModel.load(plan.start.checkpoint) if plan.start else None
    return fit_series(
        bars, features, model, training, log=get_run_logger().info, name=name, start=start
    )


@task(name="register-model", task_run_name="register {name}", cache_policy=NO_CACHE)
@phase("train")
def register_model(
    run_id: str,
    as_of: datetime,
    name: str,
    series: list[Series],
    fit: FitResult,
    plan: TrainingPlan,
    margin: float,
) -> ModelRecord:
    """Judge the new model against the active one, save its checkpoint, record the version.

    A rerun of the same work first undoes its earlier registration, so it is judged
    against the same active model and takes the same version number. An active model
    whose checkpoint cannot be read is replaced, with a warning naming the file.
    """
    crash_point("register")
    logger = get_run_logger()
    with open_warehouse() as con:
        replaced = unregister_run(con, name, run_id)
        active = active_model(con, name)
        version = next_version(con, name)
    if replaced is not None:
        logger.info("%s: this work registered v%d before; registering again", name, replaced)
    comparison = compare_with_active(fit, active)
    if comparison.unreadable is not None:
        logger.warning("%s: the active model %s", name, comparison.unreadable)
    row = new_version(
        fit,
        plan,
        comparison,
        margin,
        name=name,
        version=version,
        series=series,
        run_id=run_id,
        models=config.home() / "models",
    )
    fit.trained.save(row.checkpoint)
    with open_warehouse() as con:
        registered = register(con, row, as_of)
    logger.info(
        "%s v%d (%s training): %s (%s)",
        name,
        version,
        registered.training,
        registered.status,
        registered.status_reason,
    )
    return registered


# The test metrics the summary shows, per model.
SUMMARY_COLUMNS = ("direction_accuracy", "direction_auc", "direction_f1", "return_mse", "vol_mse")


@task(name="summarise-models")
def summarise_models(registered: list[ModelRecord]) -> str:
    """Publish a markdown artifact: each new version's test metrics against its baselines."""
    markdown = _summary(registered)
    create_markdown_artifact(
        markdown, key="model-summary", description="Nightly models vs baselines"
    )
    return markdown


def _summary(registered: list[ModelRecord]) -> str:
    """Markdown of each version's status, why, and its test metrics against its baselines."""
    lines: list[str] = []
    for model in registered:
        lines += [
            f"### {model.name} v{model.version}: {model.status}",
            "",
            f"{model.status_reason}. Trained {model.training}: {model.training_reason}.",
            "",
            "| model | " + " | ".join(SUMMARY_COLUMNS) + " |",
            "|---|" + "---:|" * len(SUMMARY_COLUMNS),
            *(
                f"| {network} | " + " | ".join(f"{scores[c]:.4g}" for c in SUMMARY_COLUMNS) + " |"
                for network, scores in model.metrics.items()
            ),
            "",
        ]
    return "\n".join(lines)


@task(name="models-to-explain", task_run_name="models to explain {name}")
def models_to_explain(name: str, as_of: datetime | None = None) -> ModelsToExplain:
    """The version of ``name`` active now (or at ``as_of``) and the one before it.

    Raises
    ------
    LookupError
        If no version of ``name`` was active then.
    """
    with open_warehouse() as con:
        active = active_model(con, name) if as_of is None else active_at(con, name, as_of)
        if active is None:
            when = "now" if as_of is None else f"at {as_of.isoformat()}"
            raise LookupError(f"no version of model {name!r} was active {when}")
        return ModelsToExplain(active, previous_active(con, name, active.version))
