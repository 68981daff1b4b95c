from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnviz.plots import render_attribution_bars, render_confidence_timeline, render_head_panel

Inputs = Callable[[str], dict[str, Any]]


def test_the_timeline_refuses_arrays_of_different_lengths(tmp_path: Path, inputs: Inputs) -> None:
    arguments = inputs("timeline")
    arguments["confidence"] = arguments["confidence"][:-1]
    with pytest.raises(ValueError, match="must be non-empty 1-D arrays of one length"):
        render_confidence_timeline(path=tmp_path / "x.png", **arguments)
    assert not list(tmp_path.iterdir())


def test_the_timeline_needs_datetimes(tmp_path: Path, inputs: Inputs) -> None:
    arguments = {**inputs("timeline"), "ts": np.arange(50)}
    with pytest.raises(ValueError, match="ts must be a datetime64 array"):
        render_confidence_timeline(path=tmp_path / "x.png", **arguments)


def test_attribution_scores_need_one_per_feature(tmp_path: Path, inputs: Inputs) -> None:
    arguments = inputs("attribution")
    arguments["scores"]["ig"] = np.ones(2)
    with pytest.raises(ValueError, match=r"scores\['ig'\] has shape \(2,\); expected \(3,\)"):
        render_attribution_bars(path=tmp_path / "x.png", **arguments)


def test_the_head_panel_needs_one_pattern_per_head(tmp_path: Path, inputs: Inputs) -> None:
    arguments = {**inputs("heads"), "patterns": [["local"], ["periodic", "event"]]}
    with pytest.raises(ValueError, match="patterns must be 2 rows of 2 names"):
        render_head_panel(path=tmp_path / "x.png", **arguments)
