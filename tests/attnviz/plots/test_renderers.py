"""What every renderer does: a whole PNG of the size it returns, with a title that fits."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from attnviz.plots import RENDERERS

Inputs = Callable[[str], dict[str, Any]]
Png = Callable[[Path, tuple[int, int]], np.ndarray]


@pytest.mark.parametrize("kind", list(RENDERERS))
def test_each_renderer_writes_a_png_of_the_size_it_returns(
    kind: str, tmp_path: Path, inputs: Inputs, png: Png
) -> None:
    path = tmp_path / "new" / "folder" / f"{kind}.png"
    size = RENDERERS[kind](path=path, **inputs(kind))
    png(path, size)
    assert min(size) > 200


@pytest.mark.parametrize("kind", list(RENDERERS))
def test_a_long_title_is_not_cut_off_at_the_edges(
    kind: str, tmp_path: Path, inputs: Inputs, png: Png
) -> None:
    title = (
        "Attention flow (each layer's heads averaged): EURUSD 1h, window ending 01-05 13:00 " * 2
    )
    path = tmp_path / f"{kind}.png"
    pixels = png(path, RENDERERS[kind](path=path, **{**inputs(kind), "title": title}))
    edges = pixels[:, [0, -1], :3]
    assert (edges == 1.0).all()  # nothing drawn in the outermost columns: all white
