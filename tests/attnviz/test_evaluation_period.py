"""What the analysis of a registered version reads: its windows, and the model it compares with."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import torch
from records import model_record

from attnviz.analysis import AnalysisConfig, reference_confidence
from attnviz.attention import calibrate
from attnviz.checkpoint import TrainedModel
from attnviz.evaluation_period import analyze_period, comparable_previous, evaluation_windows
from attnviz.features import FEATURES, FeatureConfig, Scaler, Windows, make_windows
from attnviz.model import AttentionTransformer, ModelConfig
from attnviz.registry import ModelRecord, ModelsToExplain, Ranges
from attnviz.train import TrainConfig, fit_series

LABEL = "test/AAA/1h"
HOUR = np.timedelta64(1, "h")
FEATURE_CONFIG = FeatureConfig(seq_len=16, horizon=3)
MODEL = ModelConfig(d_model=8, n_heads=2, n_layers=2, dropout=0.0)
SETTINGS = AnalysisConfig(batch_size=32, ig_steps=0, flow=False)
FIRST_END = datetime(2024, 1, 1, tzinfo=UTC)  # when window 0 of hourly_windows ends


def record(checkpoint: Path, ranges: Ranges | None = None, version: int = 1) -> ModelRecord:
    """A registry record of version ``version`` of model ``LABEL``, trained on series ``LABEL``."""
    return model_record(
        name=LABEL,
        version=version,
        series=[LABEL],
        interval="1h",
        ranges=ranges or {},
        series_ranges={LABEL: ranges or {}},
        checkpoint=checkpoint,
    )


def hourly_windows(n: int) -> Windows:
    """``n`` windows (contents immaterial) ending an hour apart from ``FIRST_END``."""
    return Windows(
        x=np.zeros((n, 2, len(FEATURES)), np.float32),
        next_return=np.zeros(n, np.float32),
        direction=np.zeros(n, np.float32),
        future_vol=np.zeros(n, np.float32),
        trailing_vol=np.zeros(n, np.float32),
        end_ts=np.datetime64(FIRST_END.replace(tzinfo=None), "us") + np.arange(n) * HOUR,
    )


def end(index: int, zone: timezone = UTC) -> datetime:
    """When window ``index`` of :func:`hourly_windows` ends, told in ``zone``."""
    return (FIRST_END + timedelta(hours=index)).astimezone(zone)


def ends(windows: Windows) -> list[int]:
    """Which windows of :func:`hourly_windows` these are, by index."""
    indices: list[int] = ((windows.end_ts - hourly_windows(1).end_ts[0]) // HOUR).tolist()
    return indices


@pytest.mark.parametrize("zone", [UTC, timezone(timedelta(hours=2))])
def test_validation_windows_calibrate_and_windows_from_the_test_start_on_are_explained(
    zone: timezone,
) -> None:
    split = {
        "train": (end(0, zone), end(9, zone)),
        "val": (end(15, zone), end(19, zone)),
        "test": (end(25, zone), end(27, zone)),
    }
    chosen = evaluation_windows(hourly_windows(32), split, LABEL)
    # The validation part, both ends included: no training window, none of the embargo gaps.
    assert ends(chosen.calibration) == list(range(15, 20))
    # The test part and every window since the model was trained; no validation window.
    assert ends(chosen.evaluation) == list(range(25, 32))


def test_a_series_cut_before_the_validation_period_is_a_clear_error() -> None:
    split = {"train": (end(-50), end(-10)), "val": (end(-5), end(-3)), "test": (end(0), end(5))}
    with pytest.raises(ValueError, match=f"{LABEL}: no windows in the model's validation period"):
        evaluation_windows(hourly_windows(10), split, LABEL)


@pytest.fixture
def untrained() -> TrainedModel:
    torch.manual_seed(0)
    model = AttentionTransformer(MODEL).eval()
    scaler = Scaler(np.zeros(len(FEATURES), np.float32), np.ones(len(FEATURES), np.float32))
    return TrainedModel(model, scaler, 1.0, FEATURE_CONFIG)


def test_the_previous_model_is_compared_with_when_it_reads_the_same_windows(
    untrained: TrainedModel, tmp_path: Path
) -> None:
    warnings: list[str] = []
    assert comparable_previous(None, untrained, warnings.append) is None
    untrained.save(tmp_path / "v1.pt")
    before = comparable_previous(record(tmp_path / "v1.pt"), untrained, warnings.append)
    assert before is not None
    for name, value in untrained.model.state_dict().items():
        torch.testing.assert_close(before.model.state_dict()[name], value)
    other = replace(untrained, feature_config=replace(FEATURE_CONFIG, horizon=5))
    other.save(tmp_path / "other.pt")
    assert comparable_previous(record(tmp_path / "other.pt"), untrained, warnings.append) is None
    assert warnings == []


def test_an_unreadable_previous_checkpoint_is_told_and_skipped(
    untrained: TrainedModel, tmp_path: Path
) -> None:
    untrained.save(tmp_path / "v1.pt")
    whole = (tmp_path / "v1.pt").read_bytes()
    (tmp_path / "v1.pt").write_bytes(whole[: len(whole) // 2])
    warnings: list[str] = []
    for path in (tmp_path / "v1.pt", tmp_path / "gone.pt"):
        assert comparable_previous(record(path), untrained, warnings.append) is None
    assert warnings == [
        f"{LABEL} v1, the previous model: cannot read checkpoint {tmp_path / 'v1.pt'}: "
        "ValueError: not a whole checkpoint: cut short or overwritten; "
        "attention moved across the retrain is not measured",
        f"{LABEL} v1, the previous model: cannot read checkpoint {tmp_path / 'gone.pt'}: "
        f"No such file or directory: {tmp_path / 'gone.pt'}; "
        "attention moved across the retrain is not measured",
    ]


def as_utc(moment: np.datetime64) -> datetime:
    """A window end from numpy (UTC, without a zone) as an aware datetime."""
    return datetime.fromisoformat(str(moment.astype("datetime64[us]"))).replace(tzinfo=UTC)


def test_a_period_is_the_test_part_and_the_bars_that_arrived_since(
    random_walk, tmp_path: Path
) -> None:
    bars = random_walk(450, seed=3)
    fit = fit_series(
        [bars.head(400)], FEATURE_CONFIG, MODEL, TrainConfig(epochs=1), log=lambda _: None
    )
    split = {part: (as_utc(first), as_utc(last)) for part, (first, last) in fit.ranges[0].items()}
    fit.trained.save(tmp_path / "v2.pt")
    active = record(tmp_path / "v2.pt", split, version=2)
    warnings: list[str] = []

    alone = analyze_period(fit.trained, bars, ModelsToExplain(active, None), LABEL, SETTINGS)
    windows = make_windows(bars, FEATURE_CONFIG)
    assert alone.window.height == len(fit.test) + 50  # 50 bars arrived since training
    assert alone.window["ts"].to_list() == [
        as_utc(moment) for moment in windows.end_ts[-50 - len(fit.test) :]
    ]
    assert alone.window["jsd_prev_model"].is_nan().all()
    # Confidence is a percentile among the validation windows' (as the series reads now).
    validation = reference_confidence(fit.trained, fit.val).mean(dim=(1, 2))
    seed = torch.from_numpy(alone.window["seed_confidence"].to_numpy())
    np.testing.assert_array_equal(
        alone.window["calibrated_confidence"].to_numpy(), calibrate(seed, validation).numpy()
    )

    fit.trained.save(tmp_path / "v1.pt")  # the previous version reads the same windows
    models = ModelsToExplain(active, record(tmp_path / "v1.pt", split))
    compared = analyze_period(fit.trained, bars, models, LABEL, SETTINGS, warnings.append)
    np.testing.assert_allclose(compared.window["jsd_prev_model"].to_numpy(), 0, atol=1e-6)
    (tmp_path / "v1.pt").write_bytes(b"")
    skipped = analyze_period(fit.trained, bars, models, LABEL, SETTINGS, warnings.append)
    assert skipped.window["jsd_prev_model"].is_nan().all()
    assert len(warnings) == 1 and "the previous model: cannot read checkpoint" in warnings[0]
