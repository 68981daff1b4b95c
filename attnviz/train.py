"""Training: the multi-task loss, the loop with early stopping, metrics and baselines.

``fit_series`` is the whole recipe for one series (or a pool of series): windows,
a chronological split with embargo, a scaler fitted on the training part, the
Transformer and the LSTM baseline trained the same way, and test metrics for
both and for a naive forecast. Seeded and deterministic on CPU.

Two things can go wrong here that must not go by quietly. A loss that turns NaN or
infinite stops training at once: the weights of the best finite epoch are kept,
and if there is none the fit fails naming the model (:class:`TrainingDiverged`);
a model whose weights went non-finite never reaches the registry. A checkpoint
that cannot be read or written (corrupt, missing, a read-only folder) fails with
:class:`CheckpointError` naming the file, not with the storage library's own
error, which does not say which file it was reading.
"""

import copy
import math
import os
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F
from pydantic import Field
from scipy.stats import rankdata
from torch import nn

from attnviz.features import (
    FEATURES,
    FeatureConfig,
    Scaler,
    Windows,
    chronological_split,
    make_windows,
)
from attnviz.model import AttentionTransformer, LSTMBaseline, ModelConfig, Predictions


class TrainingDiverged(RuntimeError):
    """Training gave a non-finite loss before any epoch had a finite validation loss."""


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read or written; the message names it and says why."""


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained.

    Attributes
    ----------
    loss_weights
        Weights of the return MSE, direction BCE and volatility MSE terms.
    patience
        Epochs without a better validation loss before training stops.
    """

    epochs: Annotated[int, Field(ge=1)] = 30
    batch_size: Annotated[int, Field(ge=1)] = 64
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-2
    grad_clip: Annotated[float, Field(gt=0)] = 1.0
    patience: Annotated[int, Field(ge=1)] = 5
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0


@dataclass(frozen=True)
class Prepared:
    """One split part ready for a model: scaled inputs and targets in training units."""

    x: torch.Tensor
    ret: torch.Tensor
    direction: torch.Tensor
    vol: torch.Tensor

    @classmethod
    def of(cls, windows: Windows, scaler: Scaler, target_scale: float) -> "Prepared":
        return cls(
            x=torch.from_numpy(scaler.transform(windows.x)),
            ret=torch.from_numpy(windows.next_return / target_scale),
            direction=torch.from_numpy(windows.direction),
            vol=torch.from_numpy(windows.future_vol / target_scale),
        )

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index: torch.Tensor) -> "Prepared":
        return Prepared(self.x[index], self.ret[index], self.direction[index], self.vol[index])


def multitask_loss(
    predictions: Predictions, target: Prepared, weights: tuple[float, float, float]
) -> tuple[torch.Tensor, dict[str, float]]:
    """Weighted sum of return MSE, direction BCE and volatility MSE; also each part."""
    parts = {
        "return": F.mse_loss(predictions.ret, target.ret),
        "direction": F.binary_cross_entropy_with_logits(
            predictions.direction_logit, target.direction
        ),
        "vol": F.mse_loss(predictions.vol, target.vol),
    }
    total = sum(w * loss for w, loss in zip(weights, parts.values(), strict=True))
    return total, {name: loss.item() for name, loss in parts.items()}


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, data: Prepared, weights: tuple[float, float, float], rescale: float = 1.0
) -> float:
    """Multi-task loss of ``model`` over ``data`` in eval mode.

    ``rescale`` converts the model's return and volatility outputs into the units of
    ``data`` (its own target scale over the data's), so models trained with
    different target scales are judged on the same footing.
    """
    model.eval()
    total = 0.0
    for start in range(0, len(data), 1024):
        part = data.batch(torch.arange(start, min(start + 1024, len(data))))
        out = model(part.x)
        out = Predictions(
            ret=out.ret * rescale, direction_logit=out.direction_logit, vol=out.vol * rescale
        )
        loss, _ = multitask_loss(out, part, weights)
        total += loss.item() * len(part)
    return total / len(data)


@dataclass
class TrainResult:
    """What training did: per-epoch losses, the best epoch and its validation loss.

    ``diverged`` says where the loss went non-finite, if it did (training stopped there).
    """

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = math.inf
    stopped_early: bool = False
    diverged: str | None = None
    seconds: float = 0.0


def _train_epoch(
    model: nn.Module,
    train: Prepared,
    optimizer: torch.optim.Optimizer,
    order: torch.Tensor,
    config: TrainConfig,
) -> tuple[float, str | None]:
    """One pass over ``train`` in ``order``; returns the mean loss, or where it went non-finite.

    It stops at the first non-finite batch loss, before that batch's step: one step
    on a NaN gradient would make every weight NaN.
    """
    seen, running = 0, 0.0
    for batch_number, start in enumerate(range(0, len(train), config.batch_size), 1):
        batch = train.batch(order[start : start + config.batch_size])
        loss, _ = multitask_loss(model(batch.x), batch, config.loss_weights)
        if not torch.isfinite(loss):
            return math.nan, f"training loss {loss.item()} at batch {batch_number}"
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        running, seen = running + loss.item() * len(batch), seen + len(batch)
    return running / seen, None


def train_model(
    model: nn.Module,
    train: Prepared,
    val: Prepared,
    config: TrainConfig,
    log: Callable[[str], None] = print,
    name: str = "model",
) -> TrainResult:
    """Train with AdamW, gradient clipping and early stopping; leaves the best weights loaded.

    Parameters
    ----------
    model
        The network to train, in place.
    train, val
        Training data and the validation data that picks the best epoch.
    config
        Optimiser, batch, stopping and loss settings.
    log
        Receives one line per epoch.
    name
        What is trained, for messages (e.g. the registry name ``sample/AAPL/1d``).

    Raises
    ------
    TrainingDiverged
        If the training or validation loss went non-finite before any epoch ended
        with a finite validation loss: there are no weights worth keeping. After
        such an epoch, training stops instead and keeps the best epoch's weights.
    """
    kind = type(model).__name__
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    result, best_state, started = (
        TrainResult(),
        copy.deepcopy(model.state_dict()),
        time.perf_counter(),
    )
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        train_loss, diverged = _train_epoch(model, train, optimizer, order, config)
        val_loss = math.nan if diverged else evaluate_loss(model, val, config.loss_weights)
        if diverged is None and not math.isfinite(val_loss):
            diverged = f"validation loss {val_loss}"
        if diverged is not None:
            result.diverged = f"{diverged} in epoch {epoch + 1}"
            if result.best_epoch < 0:
                raise TrainingDiverged(
                    f"{name}: {kind} training diverged: {result.diverged}, before any epoch "
                    "ended with a finite validation loss, so there are no weights to keep "
                    "(check the bars for extreme values, or lower the learning rate)"
                )
            log(
                f"{kind} stopped: {result.diverged}; keeping the weights of epoch "
                f"{result.best_epoch + 1} (validation loss {result.best_val_loss:.4f})"
            )
            result.stopped_early = True
            break
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        log(f"{kind} epoch {epoch + 1}/{config.epochs}: train {train_loss:.4f}, val {val_loss:.4f}")
        if val_loss < result.best_val_loss:
            result.best_epoch, result.best_val_loss = epoch, val_loss
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - started
    return result


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, target_scale: float) -> dict[str, np.ndarray]:
    """Predictions for scaled windows ``x``, in real units (log return, probability, volatility)."""
    model.eval()
    parts = [model(x[start : start + 1024]) for start in range(0, len(x), 1024)]
    return {
        "ret": torch.cat([p.ret for p in parts]).numpy() * target_scale,
        "prob": torch.cat([p.direction_prob for p in parts]).numpy(),
        "vol": torch.cat([p.vol for p in parts]).numpy() * target_scale,
    }


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties share ranks); NaN with one class only."""
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def metrics(predicted: dict[str, np.ndarray], windows: Windows) -> dict[str, float]:
    """Test metrics of one set of predictions against the windows' realised targets."""
    up = predicted["prob"] > 0.5
    actual = windows.direction == 1
    true_pos = float((up & actual).sum())
    precision = true_pos / up.sum() if up.any() else 0.0
    recall = true_pos / actual.sum() if actual.any() else 0.0
    return {
        "return_mse": float(np.mean((predicted["ret"] - windows.next_return) ** 2)),
        "return_mae": float(np.mean(np.abs(predicted["ret"] - windows.next_return))),
        "direction_accuracy": float(np.mean(up == actual)),
        "direction_f1": 2 * precision * recall / (precision + recall)
        if precision + recall
        else 0.0,
        "direction_auc": auc(windows.direction, predicted["prob"]),
        "vol_mse": float(np.mean((predicted["vol"] - windows.future_vol) ** 2)),
    }


def naive_predictions(windows: Windows, up_rate: float) -> dict[str, np.ndarray]:
    """The naive forecast: zero return, the training up-rate, and the trailing volatility."""
    n = len(windows)
    return {"ret": np.zeros(n), "prob": np.full(n, up_rate), "vol": windows.trailing_vol}


@dataclass
class TrainedModel:
    """A Transformer with what it needs to read new bars: scaler, target scale, feature config."""

    model: AttentionTransformer
    scaler: Scaler
    target_scale: float
    feature_config: FeatureConfig

    def prepare(self, windows: Windows, target_scale: float | None = None) -> Prepared:
        """``windows`` scaled for this model, targets in ``target_scale`` units (default: own)."""
        return Prepared.of(windows, self.scaler, target_scale or self.target_scale)

    def validation_loss(
        self, windows: Windows, weights: tuple[float, float, float], target_scale: float
    ) -> float:
        """Multi-task loss on ``windows``, in the units of ``target_scale``."""
        data = self.prepare(windows, target_scale)
        return evaluate_loss(self.model, data, weights, rescale=self.target_scale / target_scale)

    def predict(self, windows: Windows) -> dict[str, np.ndarray]:
        """Predictions for ``windows`` in real units."""
        return predict(self.model, self.prepare(windows).x, self.target_scale)

    def save(self, path: Path) -> None:
        """Write a checkpoint atomically: to a temporary file in the same folder, then rename.

        Raises
        ------
        CheckpointError
            If the file cannot be written (a read-only folder, a full disk), naming the
            file and the cause; nothing is left behind.
        """
        checkpoint = {
            "model_config": asdict(self.model.config),
            "state_dict": self.model.state_dict(),
            "scaler_mean": torch.from_numpy(self.scaler.mean),
            "scaler_std": torch.from_numpy(self.scaler.std),
            "target_scale": self.target_scale,
            "feature_config": asdict(self.feature_config),
            "features": list(FEATURES),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
            )
        except OSError as error:
            raise CheckpointError(f"cannot write checkpoint {path}: {_describe(error)}") from None
        try:
            with os.fdopen(handle, "wb") as file:
                torch.save(checkpoint, file)
            os.replace(temporary, path)
        except Exception as error:
            Path(temporary).unlink(missing_ok=True)
            raise CheckpointError(f"cannot write checkpoint {path}: {_describe(error)}") from None
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path | str) -> "TrainedModel":
        """Read a checkpoint written by :meth:`save`.

        Raises
        ------
        CheckpointError
            If the file is missing, unreadable, not a checkpoint of this model (corrupt,
            truncated, other features), naming the file and the cause.
        """
        try:
            with open(path, "rb") as file:
                # Every checkpoint is a zip archive, whose directory is written last: a
                # file cut short (a full disk, a copy interrupted) has none.
                if not zipfile.is_zipfile(file):
                    raise ValueError("not a whole checkpoint: cut short or overwritten")
                file.seek(0)
                checkpoint = torch.load(file, map_location="cpu", weights_only=True)
            if tuple(checkpoint["features"]) != FEATURES:
                raise ValueError(
                    f"trained on features {checkpoint['features']}, not {list(FEATURES)}"
                )
            model = AttentionTransformer(ModelConfig(**checkpoint["model_config"]))
            model.load_state_dict(checkpoint["state_dict"])
            return cls(
                model=model.eval(),
                scaler=Scaler(checkpoint["scaler_mean"].numpy(), checkpoint["scaler_std"].numpy()),
                target_scale=checkpoint["target_scale"],
                feature_config=FeatureConfig(**checkpoint["feature_config"]),
            )
        # Whatever the file holds, the caller learns which file it was and why: torch's
        # own errors (its zip reader's, its unpickler's) do not say which file they read.
        except Exception as error:
            raise CheckpointError(f"cannot read checkpoint {path}: {_describe(error)}") from None


def _describe(error: Exception) -> str:
    """One line on what went wrong: an OS error's reason and file, else the first line."""
    if isinstance(error, OSError) and error.strerror and error.filename:
        return f"{error.strerror}: {error.filename}"
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


@dataclass
class FitResult:
    """A trained Transformer, its baselines' results, and the data it was judged on.

    ``ranges`` gives, per series (in the order trained on), the first and last window end
    of each part: pooled series keep their own splits.
    """

    trained: TrainedModel
    train_config: TrainConfig
    transformer: TrainResult
    lstm: TrainResult
    metrics: dict[str, dict[str, float]]
    ranges: list[dict[str, tuple[np.datetime64, np.datetime64]]]
    windows: dict[str, int]
    val: Windows
    test: Windows


def split_series(
    bars: list[pl.DataFrame], config: FeatureConfig
) -> tuple[dict[str, Windows], list[dict[str, tuple[np.datetime64, np.datetime64]]]]:
    """Each series' windows split chronologically with embargo; parts of several series pool.

    Returns the pooled parts and, per series, the first and last window end of each part.
    """
    parts: dict[str, list[Windows]] = {"train": [], "val": [], "test": []}
    ranges = []
    for series in bars:
        windows = make_windows(series, config)
        split = chronological_split(len(windows), config.embargo)
        own = {name: windows.take(getattr(split, name)) for name in parts}
        for name, part in parts.items():
            part.append(own[name])
        ranges.append({name: (w.end_ts[0], w.end_ts[-1]) for name, w in own.items()})
    fields = Windows.__dataclass_fields__
    pooled = {
        name: Windows(*(np.concatenate([getattr(w, f) for w in part]) for f in fields))
        for name, part in parts.items()
    }
    return pooled, ranges


def fit_series(
    bars: list[pl.DataFrame],
    feature_config: FeatureConfig,
    model_config: ModelConfig,
    train_config: TrainConfig,
    log: Callable[[str], None] = print,
    name: str = "model",
) -> FitResult:
    """Train the Transformer and the LSTM baseline on one series (or pooled series) and test both.

    Parameters
    ----------
    bars
        Bars of each series to train on, oldest first (one frame per series).
    feature_config, model_config, train_config
        Windows, architecture and training settings.
    log
        Receives one line per epoch.
    name
        The model's registry name, for messages.

    Raises
    ------
    TrainingDiverged
        If either network's loss went non-finite before it had a finite epoch.
    """
    parts, ranges = split_series(bars, feature_config)
    scaler = Scaler.fit(parts["train"].x)
    target_scale = float(np.std(parts["train"].next_return)) or 1.0
    prepared = {part: Prepared.of(w, scaler, target_scale) for part, w in parts.items()}

    results: dict[str, tuple[nn.Module, TrainResult]] = {}
    for network, build in (("transformer", AttentionTransformer), ("lstm", LSTMBaseline)):
        torch.manual_seed(train_config.seed)
        model = build(model_config)
        results[network] = (
            model,
            train_model(model, prepared["train"], prepared["val"], train_config, log, name),
        )

    test = parts["test"]
    scores = {
        network: metrics(predict(model, prepared["test"].x, target_scale), test)
        for network, (model, _) in results.items()
    }
    scores["naive"] = metrics(naive_predictions(test, float(parts["train"].direction.mean())), test)
    return FitResult(
        trained=TrainedModel(results["transformer"][0], scaler, target_scale, feature_config),
        train_config=train_config,
        transformer=results["transformer"][1],
        lstm=results["lstm"][1],
        metrics=scores,
        ranges=ranges,
        windows={part: len(w) for part, w in parts.items()},
        val=parts["val"],
        test=test,
    )


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
