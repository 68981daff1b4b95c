"""Tasks of the nightly retrain: read bars, train, register the new version, summarise."""

from dataclasses import asdict
from datetime import datetime
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext
from prefect.logging import get_run_logger

from attnviz import config
from attnviz.checkpoint import CheckpointError, TrainedModel
from attnviz.faults import crash_point
from attnviz.features import FeatureConfig
from attnviz.metrics import metrics
from attnviz.model import ModelConfig
from attnviz.registry import promotion
from attnviz.series import Series
from attnviz.train import FitResult, TrainConfig, fit_series
from tasks.cache import CACHE_EXPIRATION, cache_key, frame_digest
from tasks.turns import open_warehouse
from warehouse.bars import read_bars
from warehouse.registry import (
    ModelRow,
    active_at,
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


def _train_cache_key(context: TaskRunContext, inputs: dict[str, Any]) -> str:
    return cache_key(
        "train",
        inputs["name"],
        [frame_digest(frame) for frame in inputs["bars"]],
        asdict(inputs["features"]),
        asdict(inputs["model"]),
        asdict(inputs["training"]),
    )


@task(
    name="train",
    task_run_name="train {name}",
    cache_key_fn=_train_cache_key,
    cache_expiration=CACHE_EXPIRATION,
    persist_result=True,
)
def train(
    name: str,
    bars: list[pl.DataFrame],
    features: FeatureConfig,
    model: ModelConfig,
    training: TrainConfig,
) -> FitResult:
    """Train the Transformer and the LSTM baseline; one log line per epoch.

    Cached by the bars' content and the configs: a retry or rerun on unchanged bars
    reuses the trained models instead of training again. A loss that goes non-finite
    fails the task naming the model, unless an earlier epoch's weights can be kept.
    """
    crash_point("train")
    return fit_series(bars, features, model, training, log=get_run_logger().info, name=name)


@task(name="register-model", task_run_name="register {name}", cache_policy=NO_CACHE)
def register_model(
    run_id: str,
    as_of: datetime,
    name: str,
    series: list[Series],
    fit: FitResult,
    margin: float,
) -> tuple[int, ModelRow]:
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

    results = {key: fit.metrics[key] for key in ("transformer", "lstm", "naive")}
    previous, previous_val_loss, unreadable = None, None, None
    if active is not None:
        try:
            previous = TrainedModel.load(active["checkpoint"])
        except CheckpointError as error:
            unreadable = f"v{active['version']}: {error}"
            logger.warning("%s: the active model %s", name, unreadable)
    # The active model is judged on this run's validation and test windows, in this
    # model's target units; with other features its windows would not be the same.
    if previous is not None and previous.feature_config == fit.trained.feature_config:
        previous_val_loss = previous.validation_loss(
            fit.val, fit.train_config.loss_weights, fit.trained.target_scale
        )
        results["previous_active"] = metrics(previous.predict(fit.test), fit.test)
    status, reason = promotion(
        fit.transformer.best_val_loss, previous_val_loss, margin, active_unreadable=unreadable
    )

    path = (config.home() / "models" / f"{name.replace('/', '_')}-v{version}.pt").resolve()
    fit.trained.save(path)
    row = ModelRow(
        name=name,
        series=[one.label for one in series],
        interval=series[0].interval,
        run_id=run_id,
        ranges={
            part: (
                min(r[part][0] for r in fit.ranges).item(),
                max(r[part][1] for r in fit.ranges).item(),
            )
            for part in ("train", "val", "test")
        },
        series_ranges={
            one.label: {part: (str(start), str(end)) for part, (start, end) in own.items()}
            for one, own in zip(series, fit.ranges, strict=True)
        },
        windows=fit.windows,
        hyperparameters={
            "model": asdict(fit.trained.model.config),
            "features": asdict(fit.trained.feature_config),
            "training": asdict(fit.train_config),
            "epochs_run": len(fit.transformer.history),
            "best_epoch": fit.transformer.best_epoch,
            "train_seconds": round(fit.transformer.seconds, 2),
        },
        metrics=results,
        val_loss=fit.transformer.best_val_loss,
        previous_val_loss=previous_val_loss,
        checkpoint=str(path),
        status=status,
        status_reason=reason,
    )
    with open_warehouse() as con:
        register(con, row, version, as_of)
    logger.info("%s v%d: %s (%s)", name, version, status, reason)
    return version, row


@task(name="summarise-models")
def summarise_models(registered: list[tuple[int, ModelRow]]) -> str:
    """Publish a markdown artifact: each new version's test metrics against its baselines."""
    columns = ["direction_accuracy", "direction_auc", "direction_f1", "return_mse", "vol_mse"]
    lines: list[str] = []
    for version, row in registered:
        lines += [
            f"### {row.name} v{version}: {row.status}",
            "",
            row.status_reason,
            "",
            "| model | " + " | ".join(columns) + " |",
            "|---|" + "---:|" * len(columns),
            *(
                f"| {model} | " + " | ".join(f"{scores[c]:.4g}" for c in columns) + " |"
                for model, scores in row.metrics.items()
            ),
            "",
        ]
    markdown = "\n".join(lines)
    create_markdown_artifact(
        markdown, key="model-summary", description="Nightly models vs baselines"
    )
    return markdown


@task(name="models-to-explain", task_run_name="models to explain {name}")
def models_to_explain(
    name: str, as_of: datetime | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
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
        return active, previous_active(con, name, active["version"])
