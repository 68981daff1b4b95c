"""Training: the loop with early stopping, and the whole recipe for one model.

``fit_series`` is the whole recipe for one series (or a pool of series): windows,
a chronological split with embargo, a scaler fitted on the training part, the
Transformer and the LSTM baseline trained the same way, and test metrics for
both and for a naive forecast. Seeded and deterministic on CPU, also with fits in
concurrent threads: each fit shuffles and draws its dropout masks from its own
generator, and networks are initialised one at a time from the seeded global one.

A loss that turns NaN or infinite must not go by quietly: training stops at once,
the weights of the best finite epoch are kept, and if there is none the fit fails
naming the model (:class:`TrainingDiverged`); a model whose weights went
non-finite never reaches the registry.
"""

import copy
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Annotated, TypeVar

import numpy as np
import polars as pl
import torch
from pydantic import Field
from torch import nn

from attnviz.checkpoint import TrainedModel
from attnviz.features import FeatureConfig, Scaler, Windows, chronological_split, make_windows
from attnviz.metrics import metrics, naive_predictions
from attnviz.model import AttentionTransformer, LSTMBaseline, ModelConfig, dropout_generator
from attnviz.objective import Prepared, evaluate_loss, multitask_loss, predict

# Split part -> (first, last window end) of one series, as numpy bar times (UTC).
SplitRanges = dict[str, tuple[np.datetime64, np.datetime64]]

Network = TypeVar("Network", bound=nn.Module)

# Held while a network is built from torch's global generator, reseeded for it: initial
# weights do not depend on what other threads draw meanwhile.
_GLOBAL_GENERATOR = threading.Lock()


class TrainingDiverged(RuntimeError):
    """Training gave a non-finite loss before any epoch had a finite validation loss."""


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained.

    Attributes
    ----------
    loss_weights
        Weights of the return MSE, direction BCE and volatility MSE terms.
    patience
        Epochs without a better validation loss before training stops.
    warm_epochs
        Epochs of a warm start: fine-tuning the active version on the new bars
        (:mod:`attnviz.warm_start` decides when). 0 turns warm starts off.
    full_retrain_days
        A warm start is refused once the active version's weights descend from a
        training from scratch this many days (of as-of time) old.
    retrain_on_drift
        Also train from scratch when the drift monitors flag the newest window analysed
        with the active version.
    """

    epochs: Annotated[int, Field(ge=1)] = 30
    batch_size: Annotated[int, Field(ge=1)] = 64
    lr: Annotated[float, Field(gt=0)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-2
    grad_clip: Annotated[float, Field(gt=0)] = 1.0
    patience: Annotated[int, Field(ge=1)] = 5
    loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    seed: int = 0
    warm_epochs: Annotated[int, Field(ge=0)] = 3
    full_retrain_days: Annotated[int, Field(ge=1)] = 7
    retrain_on_drift: bool = False


@dataclass
class TrainResult:
    """What training did: per-epoch losses, the best epoch and its validation loss.

    ``best_epoch`` is -1 when the weights training started from were kept (a warm start
    that no epoch improved on). ``diverged`` says where the loss went non-finite, if it
    did (training stopped there).
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
        loss.backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
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
    epochs: int | None = None,
    keep_start: bool = False,
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
    epochs
        At most this many epochs (default: ``config.epochs``).
    keep_start
        The weights training starts from compete too: an epoch is kept only if its
        validation loss beats theirs. For a warm start, whose weights were already
        early-stopped on nearly the same bars: more epochs at the full learning rate
        can overfit them, and validation decides.

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
    epochs = config.epochs if epochs is None else epochs
    if keep_start:
        start_loss = evaluate_loss(model, val, config.loss_weights)
        # A start that scores NaN on the new bars is no candidate: an epoch must replace it.
        result.best_val_loss = start_loss if math.isfinite(start_loss) else math.inf
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        with dropout_generator(generator):
            train_loss, diverged = _train_epoch(model, train, optimizer, order, config)
        val_loss = math.nan if diverged else evaluate_loss(model, val, config.loss_weights)
        if diverged is None and not math.isfinite(val_loss):
            diverged = f"validation loss {val_loss}"
        if diverged is not None:
            result.diverged = f"{diverged} in epoch {epoch + 1}"
            if not math.isfinite(result.best_val_loss):
                raise TrainingDiverged(
                    f"{name}: {kind} training diverged: {result.diverged}, before any epoch "
                    "ended with a finite validation loss, so there are no weights to keep "
                    "(check the bars for extreme values, or lower the learning rate)"
                )
            kept = (
                "it started from" if result.best_epoch < 0 else f"of epoch {result.best_epoch + 1}"
            )
            log(
                f"{kind} stopped: {result.diverged}; keeping the weights {kept} "
                f"(validation loss {result.best_val_loss:.4f})"
            )
            result.stopped_early = True
            break
        result.history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss})
        log(f"{kind} epoch {epoch + 1}/{epochs}: train {train_loss:.4f}, val {val_loss:.4f}")
        if val_loss < result.best_val_loss:
            result.best_epoch, result.best_val_loss = epoch, val_loss
            best_state = copy.deepcopy(model.state_dict())
        elif epoch - result.best_epoch >= config.patience:
            result.stopped_early = True
            break
    model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - started
    return result


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
    ranges: list[SplitRanges]
    windows: dict[str, int]
    val: Windows
    test: Windows


def split_series(
    bars: list[pl.DataFrame], config: FeatureConfig
) -> tuple[dict[str, Windows], list[SplitRanges]]:
    """Each series' windows split chronologically with embargo; parts of several series pool.

    Returns the pooled parts and, per series, the first and last window end of each part.
    """
    parts: dict[str, list[Windows]] = {"train": [], "val": [], "test": []}
    ranges: list[SplitRanges] = []
    for series in bars:
        windows = make_windows(series, config)
        split = chronological_split(len(windows), config.embargo)
        own = {name: windows.take(getattr(split, name)) for name in parts}
        for name, part in parts.items():
            part.append(own[name])
        ranges.append({name: (w.end_ts[0], w.end_ts[-1]) for name, w in own.items()})
    return {name: _joined(part) for name, part in parts.items()}, ranges


def _joined(parts: list[Windows]) -> Windows:
    """The windows of several series, one series after another."""
    return Windows(
        **{f.name: np.concatenate([getattr(w, f.name) for w in parts]) for f in fields(Windows)}
    )


def fit_series(
    bars: list[pl.DataFrame],
    feature_config: FeatureConfig,
    model_config: ModelConfig,
    train_config: TrainConfig,
    log: Callable[[str], None] = print,
    name: str = "model",
    start: TrainedModel | None = None,
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
    start
        A trained model (with its LSTM) to fine-tune for ``train_config.warm_epochs``
        instead of training from scratch; its architecture must be ``model_config``.
        Each network keeps its start's weights unless an epoch lowers the validation loss
        (on the new split, with the new scaler).

    Raises
    ------
    TrainingDiverged
        If either network's loss went non-finite before it had a finite epoch.
    ValueError
        If ``start`` has no LSTM or another architecture, or ``warm_epochs`` is 0.
    """
    parts, ranges = split_series(bars, feature_config)
    scaler = Scaler.fit(parts["train"].x)
    target_scale = float(np.std(parts["train"].next_return)) or 1.0
    prepared = {part: Prepared.of(w, scaler, target_scale) for part, w in parts.items()}

    def trained(
        build: Callable[[], Network], epochs: int, keep_start: bool = False
    ) -> tuple[Network, TrainResult]:
        # Seeded as each network is built: its first weights (from scratch) do not
        # depend on what ran before; train_model seeds the shuffles and the dropout.
        with _GLOBAL_GENERATOR:
            torch.manual_seed(train_config.seed)
            network = build()
        return network, train_model(
            network, prepared["train"], prepared["val"], train_config, log, name, epochs, keep_start
        )

    if start is None:
        transformer, transformer_result = trained(
            lambda: AttentionTransformer(model_config), train_config.epochs
        )
        lstm, lstm_result = trained(lambda: LSTMBaseline(model_config), train_config.epochs)
    else:
        warm_model, warm_lstm = start.model, start.lstm
        if warm_lstm is None or warm_model.config != model_config or not train_config.warm_epochs:
            raise ValueError(
                f"{name}: a warm start needs warm_epochs >= 1 and a model of this "
                "architecture with its LSTM"
            )
        transformer, transformer_result = trained(
            lambda: copy.deepcopy(warm_model), train_config.warm_epochs, keep_start=True
        )
        lstm, lstm_result = trained(
            lambda: copy.deepcopy(warm_lstm), train_config.warm_epochs, keep_start=True
        )

    test = parts["test"]
    scores = {
        network: metrics(predict(model, prepared["test"].x, target_scale), test)
        for network, model in (("transformer", transformer), ("lstm", lstm))
    }
    scores["naive"] = metrics(naive_predictions(test, float(parts["train"].direction.mean())), test)
    return FitResult(
        trained=TrainedModel(transformer, scaler, target_scale, feature_config, lstm),
        train_config=train_config,
        transformer=transformer_result,
        lstm=lstm_result,
        metrics=scores,
        ranges=ranges,
        windows={part: len(w) for part, w in parts.items()},
        val=parts["val"],
        test=test,
    )
