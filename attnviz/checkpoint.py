"""A trained Transformer with what it needs to read new bars, and its checkpoint file.

A checkpoint that cannot be read or written (corrupt, missing, a read-only folder)
fails with :class:`CheckpointError` naming the file, not with the storage library's
own error, which does not say which file it was reading.
"""

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from attnviz.atomic import replacing
from attnviz.features import FEATURES, FeatureConfig, Scaler, Windows
from attnviz.model import AttentionTransformer, LSTMBaseline, ModelConfig
from attnviz.objective import Forecast, Prepared, evaluate_loss, predict


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read or written; the message names it and says why."""


@dataclass
class TrainedModel:
    """A Transformer with what it needs to read new bars: scaler, target scale, feature config.

    ``lstm`` is the LSTM baseline trained beside it on the same windows, kept so that
    the backtest can trade its forecasts too; ``None`` in checkpoints written before
    it was kept.
    """

    model: AttentionTransformer
    scaler: Scaler
    target_scale: float
    feature_config: FeatureConfig
    lstm: LSTMBaseline | None = None

    def prepare(self, windows: Windows, target_scale: float | None = None) -> Prepared:
        """``windows`` scaled for this model, targets in ``target_scale`` units (default: own)."""
        return Prepared.of(windows, self.scaler, target_scale or self.target_scale)

    def validation_loss(
        self, windows: Windows, weights: tuple[float, float, float], target_scale: float
    ) -> float:
        """Multi-task loss on ``windows``, in the units of ``target_scale``."""
        data = self.prepare(windows, target_scale)
        return evaluate_loss(self.model, data, weights, rescale=self.target_scale / target_scale)

    def predict(self, windows: Windows) -> Forecast:
        """Forecasts for ``windows`` in real units."""
        return predict(self.model, self.prepare(windows).x, self.target_scale)

    def predict_lstm(self, windows: Windows) -> Forecast | None:
        """The LSTM baseline's forecasts for ``windows`` in real units, if it was kept."""
        if self.lstm is None:
            return None
        return predict(self.lstm, self.prepare(windows).x, self.target_scale)

    def save(self, path: Path) -> None:
        """Write a checkpoint atomically (:func:`attnviz.atomic.replacing`).

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
        if self.lstm is not None:
            checkpoint["lstm_state_dict"] = self.lstm.state_dict()
        try:
            with replacing(path) as partial:
                torch.save(checkpoint, partial)
        except Exception as error:
            raise CheckpointError(f"cannot write checkpoint {path}: {_describe(error)}") from None

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
            config = ModelConfig(**checkpoint["model_config"])
            model = AttentionTransformer(config)
            model.load_state_dict(checkpoint["state_dict"])
            lstm = None
            if "lstm_state_dict" in checkpoint:
                lstm = LSTMBaseline(config)
                lstm.load_state_dict(checkpoint["lstm_state_dict"])
            return cls(
                model=model.eval(),
                scaler=Scaler(checkpoint["scaler_mean"].numpy(), checkpoint["scaler_std"].numpy()),
                target_scale=checkpoint["target_scale"],
                feature_config=FeatureConfig(**checkpoint["feature_config"]),
                lstm=None if lstm is None else lstm.eval(),
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
