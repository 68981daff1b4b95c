"""What each PNG of a series is given, on a small hand-made analysis (no model, no Prefect)."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.image import imread

from attnviz.analysis import Analysis, LatestWindow
from attnviz.features import FEATURES
from attnviz.plots.figures import plan_figures, render_figures
from attnviz.series import Series

LAYERS, HEADS, T = 2, 3, 8
PERIOD, HORIZON = 10, 3  # windows in the evaluation period; bars after the last window
KINDS = ["attention_grid", "rollout", "flow", "timeline", "attribution", "heads"]
Bars = Callable[..., pl.DataFrame]


def small_analysis(bars: pl.DataFrame) -> Analysis:
    """An analysis of the windows ending at the bars before the last ``HORIZON``."""
    period = bars["ts"][-HORIZON - PERIOD : -HORIZON]
    attention = np.random.default_rng(0).random((LAYERS, HEADS, T, T))
    attention /= attention.sum(-1, keepdims=True)
    window = pl.DataFrame(
        {
            "ts": period,
            "calibrated_confidence": np.linspace(0, 1, PERIOD),
            "collapse": np.arange(PERIOD) < 3,
            "regime_change": np.arange(PERIOD) == 5,
        }
    )
    heads = pl.DataFrame(
        {
            "layer": np.repeat(np.arange(LAYERS), HEADS),
            "head": np.tile(np.arange(HEADS), LAYERS),
            "specialisation": np.repeat([0.1, 0.2], HEADS),
            "dominant_pattern": ["local", "recent", "mixed", "uniform", "event", "periodic"],
            "pattern_share": np.full(LAYERS * HEADS, 0.5),
            "mean_confidence": np.arange(LAYERS * HEADS) / 10,
        }
    )
    latest = LatestWindow(
        ts=period[-1],
        attention=attention,
        rollout=0.5 * np.eye(T) + 0.5 * attention.mean(1)[-1],
        scores={"attention_rollout": np.full(len(FEATURES), 1 / len(FEATURES))},
    )
    empty = pl.DataFrame()
    return Analysis(empty, window, empty, empty, heads, latest)


def test_each_png_is_given_the_latest_window_or_the_evaluation_period(
    bars: Bars, tmp_path: Path
) -> None:
    series = Series(source="test", symbol="TEST", interval="1d")
    frame = bars(40)
    analysis = small_analysis(frame)
    plan = plan_figures(series, analysis, frame, tmp_path)
    assert [job.kind for job in plan.jobs] == KINDS
    assert [job.path for job in plan.jobs] == [tmp_path / f"{kind}.png" for kind in KINDS]
    given = {job.kind: job.kwargs for job in plan.jobs}

    window_bars = frame["ts"][-HORIZON - T : -HORIZON]
    labels = window_bars.dt.strftime("%Y-%m-%d").to_list()
    assert labels[-1] == "2024-02-06"  # bar 36 of 40: the latest window's last bar
    for kind in ("attention_grid", "rollout", "flow"):
        assert given[kind]["labels"] == labels
        assert given[kind]["title"].endswith("TEST 1d, window ending 2024-02-06")
    assert given["attention_grid"]["attention"] is analysis.latest.attention
    assert given["rollout"]["rollout"] is analysis.latest.rollout
    # The flow diagram: each layer's heads averaged, not the rollout.
    np.testing.assert_array_equal(given["flow"]["weights"], analysis.latest.attention.mean(1))
    assert given["attribution"]["scores"] is analysis.latest.scores
    assert given["attribution"]["features"] == list(FEATURES)

    period = analysis.window["ts"]
    timeline = given["timeline"]
    np.testing.assert_array_equal(timeline["ts"], period.dt.replace_time_zone(None).to_numpy())
    np.testing.assert_array_equal(timeline["close"], frame["close"][-HORIZON - PERIOD : -HORIZON])
    np.testing.assert_array_equal(timeline["collapse"], analysis.window["collapse"])
    np.testing.assert_array_equal(given["heads"]["specialisation"], [0.1, 0.2])
    np.testing.assert_array_equal(
        given["heads"]["head_confidence"], np.arange(6).reshape(2, 3) / 10
    )
    assert given["heads"]["patterns"][1] == ["uniform", "event", "periodic"]

    in_window, in_period = (window_bars[0], window_bars[-1]), (period[0], period[-1])
    assert plan.spans == [in_window, in_window, in_window, in_period, in_window, in_period]


def test_intraday_bars_are_labelled_with_day_and_time(bars: Bars, tmp_path: Path) -> None:
    series = Series(source="test", symbol="TEST", interval="1h")
    frame = bars(40, interval="1h")
    plan = plan_figures(series, small_analysis(frame), frame, tmp_path)
    labels = plan.jobs[0].kwargs["labels"]
    # Bars 29 to 36 of 40 hourly bars from 2024-01-01 00:00.
    assert labels == [f"01-02 {hour:02d}:00" for hour in range(5, 13)]


def test_render_figures_writes_each_png_and_indexes_it(bars: Bars, tmp_path: Path) -> None:
    series = Series(source="test", symbol="TEST", interval="1d")
    frame = bars(40)
    analysis = small_analysis(frame)
    index = render_figures(series, analysis, frame, tmp_path / "figures", processes=1)
    assert index.schema == pl.Schema(
        {
            "kind": pl.String,
            "layer": pl.Int32,
            "head": pl.Int32,
            "ts_start": pl.Datetime("us", "UTC"),
            "ts_end": pl.Datetime("us", "UTC"),
            "path": pl.String,
            "width": pl.Int64,
            "height": pl.Int64,
        }
    )
    assert index["kind"].to_list() == KINDS
    assert index["layer"].is_null().all() and index["head"].is_null().all()
    for row in index.iter_rows(named=True):
        pixels = imread(row["path"])
        assert (row["width"], row["height"]) == (pixels.shape[1], pixels.shape[0])
    period = analysis.window["ts"]
    timeline = index.row(3, named=True)
    assert (timeline["ts_start"], timeline["ts_end"]) == (period[0], period[-1])


def test_the_index_needs_a_size_for_each_png(bars: Bars, tmp_path: Path) -> None:
    frame = bars(40)
    series = Series(source="test", symbol="TEST", interval="1d")
    plan = plan_figures(series, small_analysis(frame), frame, tmp_path)
    with pytest.raises(ValueError, match="got 5 sizes for 6 PNGs"):
        plan.index([(100, 100)] * 5)
