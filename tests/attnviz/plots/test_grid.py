from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from attnviz.plots import AttentionGridRenderer, render_attention_grid, render_rollout

Window = Callable[[int], np.ndarray]
Png = Callable[[Path, tuple[int, int]], np.ndarray]
VIRIDIS_TOP = np.array([253, 231, 37]) / 255  # the colour of a panel's largest weight
OFF_SCALE_GREY = 0.8


def columns_with(pixels: np.ndarray, colour: np.ndarray | float) -> np.ndarray:
    """Which pixel columns hold ``colour`` somewhere, as fractions of the width."""
    found = np.isclose(pixels[..., :3], colour, atol=0.01).all(-1).any(0)
    return np.flatnonzero(found) / pixels.shape[1]


def share_of(pixels: np.ndarray, colour: np.ndarray | float) -> float:
    """The share of the picture's pixels that are ``colour``."""
    return float(np.isclose(pixels[..., :3], colour, atol=0.01).all(-1).mean())


def test_the_grid_renderer_redraws_each_window_and_repeats_itself_exactly(
    tmp_path: Path, window: Window, labels: list[str], png: Png
) -> None:
    renderer = AttentionGridRenderer()
    first, second, again = (tmp_path / f"{name}.png" for name in ("first", "second", "again"))
    sizes = [
        renderer.render(window(seed), labels, path, "window")
        for seed, path in [(0, first), (1, second), (0, again)]
    ]
    pixels = [png(path, size) for path, size in zip([first, second, again], sizes, strict=True)]
    assert not np.array_equal(pixels[0], pixels[1])
    assert np.array_equal(pixels[0], pixels[2])


def test_the_grid_renderer_follows_new_labels_shapes_and_title_lengths(
    tmp_path: Path, window: Window, labels: list[str], png: Png
) -> None:
    renderer = AttentionGridRenderer()
    size = renderer.render(window(0), labels, tmp_path / "lags.png", "w")
    renamed = [f"b{i:03d}" for i in range(len(labels))]  # as long as "t-11": same layout
    renderer.render(window(0), renamed, tmp_path / "renamed.png", "w")
    assert not np.array_equal(png(tmp_path / "lags.png", size), png(tmp_path / "renamed.png", size))
    smaller = window(0)[:, :1, :6, :6]
    smaller_size = renderer.render(smaller, labels[-6:], tmp_path / "small.png", "w")
    png(tmp_path / "small.png", smaller_size)
    assert smaller_size[0] < size[0]
    # A title on two lines gets a taller figure, not one drawn over the panels.
    long_size = renderer.render(window(0), labels, tmp_path / "long.png", "a long title " * 8)
    png(tmp_path / "long.png", long_size)
    assert long_size[0] == size[0] and long_size[1] > size[1]


def test_every_grid_panel_is_coloured_on_its_own_scale(
    tmp_path: Path, labels: list[str], png: Png
) -> None:
    # Head 0 puts almost all weight on one key; head 1 is nearly uniform. On one shared
    # scale head 1 would be dark throughout; on its own scale its strongest cell is bright.
    length = len(labels)
    sharp = np.full((length, length), 0.01 / (length - 1))
    sharp[:, 3] = 0.99
    flat = np.full((length, length), 1.0 / length)
    flat[:, 5] *= 1.3
    flat /= flat.sum(-1, keepdims=True)
    attention = np.stack([sharp, flat])[None]
    path = tmp_path / "grid.png"
    pixels = png(path, render_attention_grid(attention, labels, path, "two heads"))
    brightest = columns_with(pixels, VIRIDIS_TOP)
    assert (brightest < 0.45).any()  # head 0
    assert ((brightest > 0.5) & (brightest < 0.8)).any()  # head 1, left of the colour bar


def test_the_rollout_scale_tops_at_the_largest_weight_off_the_diagonal(
    tmp_path: Path, labels: list[str], png: Png
) -> None:
    length = len(labels)
    rollout = 0.5 * np.eye(length) + 0.5 / length
    rollout[:, 0] += 0.05  # every query draws a little more on the first key
    rollout /= rollout.sum(-1, keepdims=True)
    path = tmp_path / "rollout.png"
    pixels = png(path, render_rollout(rollout, labels, path, "rollout"))
    # The first key's column is at the top of the scale, the diagonal above it: each
    # covers 11 or 12 of the 144 cells, over half the figure.
    assert share_of(pixels, VIRIDIS_TOP) > 0.03
    assert share_of(pixels, OFF_SCALE_GREY) > 0.03


@pytest.mark.parametrize("shape", [(2, 12, 12), (2, 2, 12, 11)], ids=["three-dims", "not-square"])
def test_attention_of_the_wrong_shape_is_refused(
    shape: tuple[int, ...], tmp_path: Path, labels: list[str]
) -> None:
    with pytest.raises(ValueError, match=r"attention must have shape \(layers, heads, T, T\)"):
        render_attention_grid(np.ones(shape) / 12, labels, tmp_path / "x.png", "bad")
    assert not list(tmp_path.iterdir())


def test_labels_must_match_the_positions(tmp_path: Path, window: Window, labels: list[str]) -> None:
    with pytest.raises(ValueError, match="got 11 labels for rollout over T=12"):
        render_rollout(window(0)[0, 0], labels[1:], tmp_path / "x.png", "bad")


def test_non_finite_attention_is_refused(tmp_path: Path, window: Window, labels: list[str]) -> None:
    attention = window(0)
    attention[1, 0, 3, 4] = np.nan
    with pytest.raises(ValueError, match="attention contains NaN or infinite values"):
        render_attention_grid(attention, labels, tmp_path / "x.png", "bad")
