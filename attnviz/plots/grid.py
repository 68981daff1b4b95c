"""Attention heatmaps: the layer x head grid of one window, and the attention rollout.

Rendering many attention grids is the hot path. :class:`AttentionGridRenderer`
builds the layer x head figure once per shape and, for each window, redraws only
what changes (the heatmaps and the titles) over a cached picture of the rest.

Colour scales. Most heads of a trained model spread their weight thinly, and a
few concentrate it, so one linear scale for all panels leaves most of them
uniformly dark. Each grid panel is therefore scaled to its own largest weight,
which its title gives; the rollout is scaled to its largest weight off the
diagonal, where the residual's share would otherwise swamp the rest.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, imsave
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from matplotlib.transforms import BboxBase

from attnviz.plots.style import (
    CMAP,
    DPI,
    HIGHLIGHT,
    LABEL_SIZE,
    TICK_SIZE,
    TITLE_SIZE,
    check_matrices,
    label_axes,
    new_figure,
    save,
    set_title,
    wrapped,
    write_png,
)


class _Canvas(Protocol):
    """What the redraw uses of matplotlib's Agg canvas (whose module has no type hints)."""

    def draw(self) -> None: ...

    def copy_from_bbox(self, bbox: BboxBase) -> object: ...

    def restore_region(self, region: object) -> None: ...

    def buffer_rgba(self) -> memoryview: ...


@dataclass
class _Grid:
    """One layer x head figure and the artists that change from window to window."""

    figure: Figure
    canvas: _Canvas
    images: list[AxesImage]
    panel_titles: list[Text]
    title: Text
    labels: tuple[str, ...]
    background: object | None = None


def _panel_title(head: int, peak: float) -> str:
    return f"head {head}, max {peak:.3f}"


def _grid_width(heads: int, longest: int) -> float:
    """Figure width in inches: the panels and room for the tick labels beside the first."""
    return heads * 2.3 + 1.4 + 0.06 * longest


def _build_grid(layers: int, heads: int, labels: tuple[str, ...], title_lines: int) -> _Grid:
    length, longest = len(labels), max(map(len, labels))
    # Room for the panel titles, the figure title and the (slanted) labels below the last row.
    height = layers * 2.5 + 0.8 + 0.25 * title_lines + (0.04 * longest if longest > 6 else 0.0)
    figure = Figure(figsize=(_grid_width(heads, longest), height), dpi=DPI, layout="constrained")
    canvas: _Canvas = FigureCanvasAgg(figure)
    grid = figure.subplots(layers, heads, sharex=True, sharey=True, squeeze=False)
    blank = np.zeros((length, length))
    images, panel_titles = [], []
    for layer, row in enumerate(grid):
        for head, axes in enumerate(row):
            # Each panel shows its weights divided by their largest: one fixed 0-1 scale.
            images.append(
                axes.imshow(blank, cmap=CMAP, vmin=0.0, vmax=1.0, interpolation="nearest")
            )
            # Laid out with the widest title a panel can get (weights are at most 1).
            panel_titles.append(axes.set_title(_panel_title(head, 1.0), fontsize=LABEL_SIZE))
            axes.tick_params(labelsize=TICK_SIZE, length=2)
            if head == 0:
                axes.set_ylabel(f"layer {layer}\nquery", fontsize=LABEL_SIZE)
            if layer == layers - 1:
                axes.set_xlabel("key", fontsize=LABEL_SIZE)
    colorbar = figure.colorbar(images[0], ax=grid, shrink=0.8, aspect=40)
    colorbar.set_label(
        "weight / the panel's largest weight (given in its title); linear",
        fontsize=LABEL_SIZE,
    )
    colorbar.ax.tick_params(labelsize=TICK_SIZE)
    title = figure.suptitle("\n".join("X" * title_lines), fontsize=TITLE_SIZE)
    label_axes(grid.flat, labels, "x")
    label_axes(grid.flat, labels, "y")
    # Lay the figure out once, then freeze it: the per-window redraw must not move
    # anything, or the cached background would no longer fit.
    figure.draw_without_rendering()
    figure.set_layout_engine("none")
    for artist in [*images, *panel_titles, title]:
        artist.set_animated(True)
    return _Grid(figure, canvas, images, panel_titles, title, labels)


class AttentionGridRenderer:
    """Renders many windows' attention grids reusing one figure and its image artists.

    The figure is created on first use for a given ``(L, H, T)``, label length and
    number of title lines (the layout makes room for them); each later window only
    updates the heatmaps (``set_data``) and the titles, and redraws those over a
    cached picture of the static parts (axes, ticks, labels, colour bar). Windows
    with new labels of the same length (bar times) cost one extra full draw. Not
    thread-safe: use one renderer per thread or process.
    """

    def __init__(self) -> None:
        self._grid: _Grid | None = None
        self._key: tuple[tuple[int, ...], int, int] = ((), 0, 0)

    def render(
        self, attention: np.ndarray, labels: Sequence[str], path: Path, title: str
    ) -> tuple[int, int]:
        """Render one window's attention as a layer x head grid of heatmaps.

        Rows are layers, columns are heads; in each panel the y axis is the query
        position and the x axis the key position. Each panel is coloured from 0 to
        its own largest weight, which its title gives.

        Parameters
        ----------
        attention
            (L, H, T, T) row-stochastic attention of one window.
        labels
            T position labels (bar times or lags); a legible subset becomes tick labels.
        """
        attention = check_matrices(attention, "attention", ("layers", "heads"), labels)
        labels = tuple(labels)
        layers, heads = attention.shape[:2]
        longest = max(map(len, labels))
        title = wrapped(title, _grid_width(heads, longest), TITLE_SIZE)
        lines = title.count("\n") + 1
        key = (attention.shape, longest, lines)
        if self._grid is None or key != self._key:
            self._grid = _build_grid(layers, heads, labels, lines)
            self._key = key
        grid = self._grid
        if labels != grid.labels:
            panels = [image.axes for image in grid.images]
            label_axes(panels, labels, "x")
            label_axes(panels, labels, "y")
            grid.labels = labels
            grid.background = None
        if grid.background is None:
            grid.canvas.draw()
            grid.background = grid.canvas.copy_from_bbox(grid.figure.bbox)

        matrices = attention.reshape(-1, *attention.shape[2:])
        peaks = matrices.max(axis=(1, 2))
        for index, (image, panel_title) in enumerate(
            zip(grid.images, grid.panel_titles, strict=True)
        ):
            # An all-zero panel stays 0 instead of dividing by zero.
            image.set_data(matrices[index] / max(float(peaks[index]), 1e-12))
            panel_title.set_text(_panel_title(index % heads, float(peaks[index])))
        grid.title.set_text(title)

        grid.canvas.restore_region(grid.background)
        for image, panel_title in zip(grid.images, grid.panel_titles, strict=True):
            axes = image.axes
            axes.draw_artist(image)
            # The heatmap covers the inner half of the frame; draw the frame back on top.
            for spine in axes.spines.values():
                axes.draw_artist(spine)
            axes.draw_artist(panel_title)
        grid.figure.draw_artist(grid.title)
        pixels = np.asarray(grid.canvas.buffer_rgba())
        write_png(path, lambda partial: imsave(partial, pixels, format="png"))
        height, width = pixels.shape[:2]
        return width, height


_local = threading.local()


def render_attention_grid(
    attention: np.ndarray, labels: Sequence[str], path: Path, title: str
) -> tuple[int, int]:
    """Render one window's attention as a layer x head grid of heatmaps.

    See :meth:`AttentionGridRenderer.render`; consecutive calls in a thread reuse
    one figure.
    """
    # One renderer per thread: figures are not thread-safe, and Prefect runs tasks in threads.
    if not hasattr(_local, "renderer"):
        _local.renderer = AttentionGridRenderer()
    renderer: AttentionGridRenderer = _local.renderer
    return renderer.render(attention, labels, path, title)


def render_rollout(
    rollout: np.ndarray, labels: Sequence[str], path: Path, title: str
) -> tuple[int, int]:
    """Render an attention-rollout matrix as a heatmap, outlining the predicting query's row.

    The colour scale runs from 0 to the largest weight off the diagonal. The
    diagonal, each position's weight on itself (with the residual mixed in, the
    largest part of the rollout), lies above it and is drawn grey; the subtitle
    gives its share of the weight.

    Parameters
    ----------
    rollout
        (T, T) attention rollout; row i is how much query position i draws on each key.
    labels
        T position labels.
    """
    rollout = check_matrices(rollout, "rollout", (), labels)
    length = len(labels)
    diagonal = np.eye(length, dtype=bool)
    off_diagonal = float(rollout[~diagonal].max(initial=0.0))
    self_share = np.trace(rollout) / max(float(rollout.sum()), 1e-12)

    figure = new_figure(7.0, 6.4)
    axes = figure.subplots()
    image = axes.imshow(
        rollout,
        cmap=matplotlib.colormaps[CMAP].with_extremes(over="0.8"),
        vmin=0.0,
        vmax=max(off_diagonal, 1e-12),
        interpolation="nearest",
    )
    colorbar = figure.colorbar(image, ax=axes, shrink=0.85, extend="max")
    colorbar.set_label(
        "rolled-out attention (linear, 0 to the largest off-diagonal weight)",
        fontsize=LABEL_SIZE,
    )
    colorbar.ax.tick_params(labelsize=TICK_SIZE + 1)
    axes.add_patch(
        Rectangle(
            (-0.5, length - 1.5),
            length,
            1.0,
            fill=False,
            edgecolor=HIGHLIGHT,
            linewidth=2.0,
            clip_on=False,
        )
    )
    label_axes([axes], labels, "x", max_ticks=8)
    label_axes([axes], labels, "y", max_ticks=8)
    axes.tick_params(labelsize=TICK_SIZE + 1)
    axes.get_yticklabels()[-1].set(color=HIGHLIGHT, fontweight="bold")
    axes.set_xlabel("key position", fontsize=LABEL_SIZE + 1)
    axes.set_ylabel("query position", fontsize=LABEL_SIZE + 1)
    axes.set_title(
        f"grey diagonal: each position's weight on itself ({self_share:.0%} of all weight), "
        "above the scale\nred outline: the last query, which makes the prediction",
        fontsize=LABEL_SIZE,
    )
    set_title(figure, title)
    return save(figure, path)
