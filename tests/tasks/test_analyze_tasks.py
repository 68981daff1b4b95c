"""The analysis tasks' own logic: the analysis cache key, called with the task's inputs."""

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from records import model_record

from attnviz.analysis import Analysis, AnalysisConfig, LatestWindow
from attnviz.features import FEATURES
from attnviz.registry import ModelRecord, ModelsToExplain, Ranges
from attnviz.series import Series
from tasks.analyze import _analysis_cache_key, summary_markdown

SERIES = Series(source="test", symbol="AAA", interval="1h")
OTHER = Series(source="test", symbol="BBB", interval="1h")  # pooled with SERIES
SETTINGS = AnalysisConfig(ig_steps=8)
START = datetime(2020, 1, 1, tzinfo=UTC)


def split(test_start: int = 300) -> Ranges:
    """A series' split, part -> (first, last window end), ``test_start`` hours in."""
    hours = {"train": (40, 200), "val": (220, 280), "test": (test_start, 380)}
    return {
        part: (START + timedelta(hours=first), START + timedelta(hours=last))
        for part, (first, last) in hours.items()
    }


def record(checkpoint: Path, version: int, ranges: dict[str, Ranges] | None = None) -> ModelRecord:
    """Version ``version`` of the pooled model of SERIES and OTHER, saved at ``checkpoint``."""
    moment = datetime(2024, 1, version, tzinfo=UTC)
    return model_record(
        name="test/pool/1h",
        version=version,
        series=[SERIES.label, OTHER.label],
        interval="1h",
        run_id=f"run-{version}",
        ranges=split(),
        series_ranges=ranges or {SERIES.label: split(), OTHER.label: split()},
        checkpoint=checkpoint,
        created_at=moment,
        active_from=moment,
    )


@pytest.fixture
def models(tmp_path: Path) -> ModelsToExplain:
    """v2 explained, v1 before it; their checkpoints' bytes differ."""
    (tmp_path / "v1.pt").write_bytes(b"weights of v1")
    (tmp_path / "v2.pt").write_bytes(b"weights of v2")
    return ModelsToExplain(record(tmp_path / "v2.pt", 2), record(tmp_path / "v1.pt", 1))


def key(bars: pl.DataFrame, models: ModelsToExplain, **changed: Any) -> str:
    """The analysis task's cache key of SERIES with ``bars`` and ``models``, some inputs changed."""
    inputs = {"series": SERIES, "bars": bars, "models": models, "settings": SETTINGS}
    return _analysis_cache_key(None, inputs | changed)  # the key reads only the inputs


def test_the_same_content_gives_the_same_key(
    random_walk, models: ModelsToExplain, tmp_path: Path
) -> None:
    bars = random_walk(400, seed=1)
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("v1.pt", "v2.pt"):
        shutil.copy(tmp_path / name, moved / name)
    # Other paths with the same bytes, another version number and run, the other series' split.
    same = ModelsToExplain(
        replace(
            record(moved / "v2.pt", 3),
            series_ranges={SERIES.label: split(), OTHER.label: split(test_start=310)},
        ),
        record(moved / "v1.pt", 1),
    )
    assert key(bars, models) == key(random_walk(400, seed=1), same)
    assert key(bars, models).startswith("analyze-")


def test_other_bars_give_another_key(random_walk, models: ModelsToExplain) -> None:
    bars = random_walk(400, seed=1)
    revised = bars.with_columns(  # one close revised
        pl.when(pl.int_range(pl.len()) == 390).then(101.0).otherwise(pl.col("close")).alias("close")
    )
    one_more = random_walk(401, seed=1)
    assert len({key(bars, models), key(revised, models), key(one_more, models)}) == 3


def test_other_checkpoint_bytes_give_another_key(
    random_walk, models: ModelsToExplain, tmp_path: Path
) -> None:
    bars = random_walk(400, seed=1)
    keys = [key(bars, models)]
    (tmp_path / "v2.pt").write_bytes(b"weights of v2, retrained")
    keys.append(key(bars, models))
    (tmp_path / "v1.pt").write_bytes(b"weights of v1, retrained")
    keys.append(key(bars, models))
    (tmp_path / "v1.pt").unlink()
    keys.append(key(bars, models))
    assert len(set(keys)) == 4
    # Without its checkpoint the previous version is not compared with, as without one.
    assert keys[-1] == key(bars, replace(models, previous=None))


def test_another_split_of_the_series_or_other_settings_give_another_key(
    random_walk, models: ModelsToExplain
) -> None:
    bars = random_walk(400, seed=1)
    moved_test = replace(
        models.active, series_ranges={SERIES.label: split(301), OTHER.label: split()}
    )
    keys = {
        key(bars, models),
        key(bars, replace(models, active=moved_test)),
        key(bars, models, settings=replace(SETTINGS, ig_steps=0)),
        key(bars, models, settings=replace(SETTINGS, collapse_run=4)),
        key(bars, models, settings=replace(SETTINGS, false_alarm_rate=0.01)),
        key(bars, models, series=OTHER),
    }
    assert len(keys) == 6


def test_the_summary_gives_the_share_of_windows_each_flag_is_on() -> None:
    n = 8
    window = pl.DataFrame(
        {
            "ts": [START + timedelta(hours=hour) for hour in range(n)],
            "calibrated_confidence": np.linspace(0, 0.7, n),
            "collapse": np.arange(n) < 2,
            "regime_change": np.arange(n) == 5,
            "head_gone_uniform": np.zeros(n, bool),
        }
    )
    scores = np.eye(len(FEATURES))[FEATURES.index("volume_change")]
    latest = LatestWindow(window["ts"][-1], np.zeros(0), np.zeros(0), {"attention_rollout": scores})
    empty = pl.DataFrame()
    analysis = Analysis(empty, window, empty, empty, empty, latest)
    figures = pl.DataFrame({"kind": ["timeline"], "path": ["/figures/timeline.png"]})
    table = summary_markdown([(SERIES, analysis, figures)]).splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    row = dict(zip(header, (cell.strip() for cell in table[2].strip("|").split("|")), strict=True))
    assert row["series"] == SERIES.label
    assert (row["calibrated confidence"], row["collapse"], row["regime changes"]) == (
        "0.70",
        "no",
        "1",
    )
    assert (row["collapse on"], row["regime change on"], row["head gone uniform on"]) == (
        "25.0%",
        "12.5%",
        "0.0%",
    )
    assert row["top feature (rollout / IG)"] == "volume_change / n/a"
    assert table[-1] == f"- {SERIES.label}: [timeline](file:///figures/timeline.png)"
