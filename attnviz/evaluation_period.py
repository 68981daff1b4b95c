"""What the analysis of a registered model reads: its evaluation period, and what it compares with.

A version records the split of each series it was trained on
(:attr:`attnviz.registry.ModelRecord.series_ranges`). Its analysis explains every window
of the series ending at or after the test start: the test part, and any bars that arrived
since the model was trained. Confidence and the monitors are calibrated on the windows
ending in the validation part, as the series reads now: they end just before the test
part and were not trained on, so the model reads them as it reads the evaluation period
(the training windows, which it fitted, would make most new windows look unusual).

How far attention moved across the retrain is measured against the previous version
only when that one reads the same windows (same feature config) and its checkpoint can
be read: an unreadable checkpoint of a retired model is no reason to fail the analysis
of the active one.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from attnviz.analysis import Analysis, AnalysisConfig, analyze, reference_confidence
from attnviz.checkpoint import CheckpointError, TrainedModel
from attnviz.features import Windows, make_windows
from attnviz.registry import ModelRecord, ModelsToExplain, Ranges


@dataclass(frozen=True)
class EvaluationWindows:
    """A series' windows as the analysis of one model version reads them.

    Attributes
    ----------
    calibration
        Windows ending in the model's validation period: the calibration sample.
    evaluation
        Windows ending at or after the model's test start: the windows explained.
    """

    calibration: Windows
    evaluation: Windows


def evaluation_windows(windows: Windows, ranges: Ranges, label: str) -> EvaluationWindows:
    """Pick the calibration and evaluation windows of a series by a model's split of it.

    Parameters
    ----------
    windows
        Every window of the series, oldest first.
    ranges
        The model's split of this series: part -> (first, last window end), UTC.
    label
        The series, for messages.

    Raises
    ------
    ValueError
        If no window ends in the validation period any more (the bars were cut since).
    """
    ends = windows.end_ts.astype("datetime64[us]")
    val_start, val_end = (_window_end(moment) for moment in ranges["val"])
    validation = np.flatnonzero((ends >= val_start) & (ends <= val_end))
    if len(validation) == 0:
        raise ValueError(f"{label}: no windows in the model's validation period any more")
    evaluation = np.flatnonzero(ends >= _window_end(ranges["test"][0]))
    return EvaluationWindows(
        calibration=windows.take(validation), evaluation=windows.take(evaluation)
    )


def _window_end(moment: datetime) -> np.datetime64:
    """A UTC moment in the form of window ends: ``datetime64[us]`` without a zone."""
    return np.datetime64(moment.astimezone(UTC).replace(tzinfo=None), "us")


def comparable_previous(
    previous: ModelRecord | None, active: TrainedModel, warn: Callable[[str], None] = print
) -> TrainedModel | None:
    """The previous version's model, if it reads the same windows as ``active`` and loads.

    Parameters
    ----------
    previous
        The version active before, if any.
    active
        The model explained.
    warn
        Told, in one line, when the previous version's checkpoint cannot be read.

    Returns
    -------
    TrainedModel or None
        ``None`` without a previous version, when it was trained on other features
        (another feature config), or when its checkpoint cannot be read.
    """
    if previous is None:
        return None
    try:
        before = TrainedModel.load(previous.checkpoint)
    except CheckpointError as error:
        warn(
            f"{previous.name} v{previous.version}, the previous model: {error}; "
            "attention moved across the retrain is not measured"
        )
        return None
    return before if before.feature_config == active.feature_config else None


def analyze_period(
    trained: TrainedModel,
    bars: pl.DataFrame,
    models: ModelsToExplain,
    label: str,
    config: AnalysisConfig,
    warn: Callable[[str], None] = print,
) -> Analysis:
    """Analyse the active version on the evaluation period of one of its series.

    Parameters
    ----------
    trained
        The active version's model (``models.active``, its checkpoint loaded).
    bars
        Every bar of the series, oldest first.
    models
        The active version and the one before it.
    label
        The series' label, which names its split in the active version's record.
    config
        Thresholds, switches and batch size.
    warn
        Told when the previous version cannot be compared with (:func:`comparable_previous`).

    Raises
    ------
    ValueError
        If no window of the series ends in the validation period, or none in the
        evaluation period.
    """
    ranges = models.active.series_ranges[label]
    chosen = evaluation_windows(make_windows(bars, trained.feature_config), ranges, label)
    reference = reference_confidence(trained, chosen.calibration)
    previous = comparable_previous(models.previous, trained, warn)
    return analyze(trained, chosen.evaluation, reference, previous, config)
