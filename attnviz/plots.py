"""PNG renderers for attention, attention rollout, confidence and attributions.

Pure functions over numpy arrays, drawn with matplotlib's object API
(:class:`~matplotlib.figure.Figure` on a :class:`FigureCanvasAgg`), never
``pyplot``: importing this module changes no global matplotlib state, so it is
safe in notebooks. Every renderer writes its PNG atomically (a temporary file in
the same folder, then ``os.replace``) and returns the PNG's ``(width, height)``
in pixels.

Rendering many attention grids is the hot path. :class:`AttentionGridRenderer`
builds the layer x head figure once per ``(L, H, T)`` and, for each window,
redraws only what changes (the heatmaps, the colour bar and the title) over a
cached picture of the rest; :mod:`attnviz.render_pool` spreads a batch of PNGs
over worker processes.
"""

import math
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, imsave
from matplotlib.patches import Rectangle
from matplotlib.text import Text

DPI = 100
CMAP = "viridis"
HIGHLIGHT = "tab:red"
TITLE_SIZE = 13
LABEL_SIZE = 9
TICK_SIZE = 7


def _write_png(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file next to ``path``, then move it onto ``path``.

    Readers never see a half-written PNG, and a failed render leaves no file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png.tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        # mkstemp creates owner-only files; a PNG is an ordinary, shareable file.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save(figure: Figure, path: Path) -> tuple[int, int]:
    """Draw ``figure`` into ``path`` atomically and return the PNG's (width, height)."""
    _write_png(path, lambda file: figure.savefig(file, format="png", dpi=DPI))
    width, height = figure.canvas.get_width_height()
    return width, height


def _new_figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _check_square(matrix: np.ndarray, name: str, labels: Sequence[str]) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square (T, T) matrix; got shape {matrix.shape}")
    _check_values(matrix, name, labels)
    return matrix


def _check_values(array: np.ndarray, name: str, labels: Sequence[str]) -> None:
    if len(labels) != array.shape[-1]:
        raise ValueError(
            f"got {len(labels)} labels for {name} over T={array.shape[-1]} positions; "
            "pass one label per position"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _check_attention(attention: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    attention = np.asarray(attention, dtype=float)
    if attention.ndim != 4 or attention.shape[2] != attention.shape[3]:
        raise ValueError(
            "attention must have shape (layers, heads, T, T) for one window; "
            f"got shape {attention.shape}"
        )
    _check_values(attention, "attention", labels)
    return attention


def _tick_positions(n: int, max_ticks: int) -> np.ndarray:
    """At most ``max_ticks`` positions at a round spacing, always including the last one.

    The last position is the query that predicts, so the spacing counts back from it.
    """
    raw = math.ceil(n / max_ticks)
    # The smallest of 1, 2, 5, 10, 20, 50, ... that is at least raw.
    step = min(s * 10**e for e in range(len(str(raw)) + 1) for s in (1, 2, 5) if s * 10**e >= raw)
    return np.arange(n - 1, -1, -step)[::-1]


def _label_axes(
    panels: Iterable[Axes], labels: Sequence[str], which: str, max_ticks: int = 6
) -> None:
    """Show a legible subset of ``labels`` as tick labels on the x or y axis of ``panels``."""
    longest = max(map(len, labels))
    if which == "x" and longest > 6:
        max_ticks = min(max_ticks, 4)
    positions = _tick_positions(len(labels), max_ticks)
    names = [labels[p] for p in positions]
    # Long labels (bar times) would run into each other side by side: slant them.
    slant = {"rotation": 30, "ha": "right", "rotation_mode": "anchor"} if longest > 6 else {}
    for axes in panels:
        if which == "x":
            axes.set_xticks(positions, names, **slant)
        else:
            axes.set_yticks(positions, names)


@dataclass
class _Grid:
    """One layer x head figure and the artists that change from window to window."""

    figure: Figure
    canvas: FigureCanvasAgg
    images: list[AxesImage]
    norm: Normalize
    colorbar_axes: Axes
    title: Text
    labels: tuple[str, ...]
    background: object | None = None


def _build_grid(layers: int, heads: int, labels: tuple[str, ...]) -> _Grid:
    length, longest = len(labels), max(map(len, labels))
    panel = 2.3
    # Room for the tick labels: beside the first column and (slanted) below the last row.
    width = heads * panel + 1.4 + 0.06 * longest
    height = layers * panel + 1.0 + (0.04 * longest if longest > 6 else 0.0)
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    canvas = FigureCanvasAgg(figure)
    grid = figure.subplots(layers, heads, sharex=True, sharey=True, squeeze=False)
    # One norm object shared by every panel: changing its vmax rescales all of them.
    # Lay out with a tiny vmax, whose colour bar tick labels ("0.0012") are as wide
    # as they get, so that later ones never push the colour bar's label off the figure.
    norm = Normalize(vmin=0.0, vmax=0.00123)
    blank = np.zeros((length, length))
    images = []
    for layer, row in enumerate(grid):
        for head, axes in enumerate(row):
            images.append(axes.imshow(blank, cmap=CMAP, norm=norm, interpolation="nearest"))
            axes.tick_params(labelsize=TICK_SIZE, length=2)
            if layer == 0:
                axes.set_title(f"head {head}", fontsize=10)
            if head == 0:
                axes.set_ylabel(f"layer {layer}\nquery", fontsize=LABEL_SIZE)
            if layer == layers - 1:
                axes.set_xlabel("key", fontsize=LABEL_SIZE)
    colorbar = figure.colorbar(images[0], ax=grid, shrink=0.8, aspect=40)
    colorbar.set_label("attention weight", fontsize=LABEL_SIZE)
    colorbar.ax.tick_params(labelsize=TICK_SIZE)
    title = figure.suptitle(" ", fontsize=TITLE_SIZE)
    _label_axes(grid.flat, labels, "x")
    _label_axes(grid.flat, labels, "y")
    # Lay the figure out once, then freeze it: the per-window redraw must not move
    # anything, or the cached background would no longer fit.
    figure.draw_without_rendering()
    figure.set_layout_engine("none")
    for artist in [*images, colorbar.ax, title]:
        artist.set_animated(True)
    return _Grid(figure, canvas, images, norm, colorbar.ax, title, labels)


class AttentionGridRenderer:
    """Renders many windows' attention grids reusing one figure and its image artists.

    The figure is created on first use for a given ``(L, H, T)`` (and label length,
    which the layout makes room for); each later window only updates the heatmaps
    (``set_data``), the shared colour scale and the title, and redraws those over a
    cached picture of the static parts (axes, ticks, labels). Windows with new labels
    of the same length (bar times) cost one extra full draw. Not thread-safe: use one
    renderer per thread or process.
    """

    def __init__(self) -> None:
        self._grid: _Grid | None = None
        self._key: tuple[tuple[int, ...], int] = ((), 0)

    def render(
        self, attention: np.ndarray, labels: Sequence[str], path: Path, title: str
    ) -> tuple[int, int]:
        """Render one window's attention as a layer x head grid of heatmaps.

        Parameters
        ----------
        attention
            (L, H, T, T) row-stochastic attention of one window.
        labels
            T position labels (bar times or lags); a legible subset becomes tick labels.
        path
            PNG to write (atomically); its folder is created.
        title
            Figure title.

        Returns
        -------
        tuple[int, int]
            Width and height of the PNG in pixels.

        Raises
        ------
        ValueError
            If ``attention`` is not (L, H, T, T), has non-finite values, or
            ``labels`` does not have T entries.
        """
        attention = _check_attention(attention, labels)
        labels = tuple(labels)
        key = (attention.shape, max(map(len, labels)))
        if self._grid is None or key != self._key:
            self._grid = _build_grid(*attention.shape[:2], labels)
            self._key = key
        grid = self._grid
        if labels != grid.labels:
            panels = [image.axes for image in grid.images]
            _label_axes(panels, labels, "x")
            _label_axes(panels, labels, "y")
            grid.labels = labels
            grid.background = None
        if grid.background is None:
            grid.canvas.draw()
            grid.background = grid.canvas.copy_from_bbox(grid.figure.bbox)

        for image, matrix in zip(
            grid.images, attention.reshape(-1, *attention.shape[2:]), strict=True
        ):
            image.set_data(matrix)
        # Equal vmin and vmax would make the norm divide by zero.
        grid.norm.vmax = max(float(attention.max()), 1e-12)
        grid.title.set_text(title)

        grid.canvas.restore_region(grid.background)
        for image in grid.images:
            image.axes.draw_artist(image)
            # The heatmap covers the inner half of the frame; draw the frame back on top.
            for spine in image.axes.spines.values():
                image.axes.draw_artist(spine)
        grid.figure.draw_artist(grid.colorbar_axes)
        grid.figure.draw_artist(grid.title)
        pixels = np.asarray(grid.canvas.buffer_rgba())
        _write_png(path, lambda file: imsave(file, pixels, format="png"))
        height, width = pixels.shape[:2]
        return width, height


_local = threading.local()


def render_attention_grid(
    attention: np.ndarray, labels: Sequence[str], path: Path, title: str
) -> tuple[int, int]:
    """Render one window's attention as a layer x head grid of heatmaps.

    Rows are layers, columns are heads; in each panel the y axis is the query
    position and the x axis the key position. All panels share one colour scale
    (0 to the largest weight of the window) and one colour bar. Consecutive calls
    in a thread reuse one figure (see :class:`AttentionGridRenderer`).

    Parameters
    ----------
    attention
        (L, H, T, T) row-stochastic attention of one window.
    labels
        T position labels (bar times or lags such as ``"t-59"`` ... ``"t"``).
    path
        PNG to write (atomically); its folder is created.
    title
        Figure title.

    Returns
    -------
    tuple[int, int]
        Width and height of the PNG in pixels.

    Raises
    ------
    ValueError
        If ``attention`` is not (L, H, T, T), has non-finite values, or ``labels``
        does not have T entries.
    """
    # One renderer per thread: figures are not thread-safe, and Prefect runs tasks in threads.
    if not hasattr(_local, "renderer"):
        _local.renderer = AttentionGridRenderer()
    return _local.renderer.render(attention, labels, path, title)


def render_rollout(
    rollout: np.ndarray, labels: Sequence[str], path: Path, title: str
) -> tuple[int, int]:
    """Render an attention-rollout matrix as a heatmap, outlining the predicting query's row.

    Parameters
    ----------
    rollout
        (T, T) attention rollout; row i is how much query position i draws on each key.
    labels
        T position labels.
    path
        PNG to write (atomically); its folder is created.
    title
        Figure title.

    Returns
    -------
    tuple[int, int]
        Width and height of the PNG in pixels.

    Raises
    ------
    ValueError
        If ``rollout`` is not square, has non-finite values, or ``labels`` does not
        have T entries.
    """
    rollout = _check_square(rollout, "rollout", labels)
    length = len(labels)
    figure = _new_figure(7.0, 6.2)
    axes = figure.subplots()
    image = axes.imshow(rollout, cmap=CMAP, vmin=0.0, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=axes, shrink=0.85)
    colorbar.set_label("rolled-out attention", fontsize=LABEL_SIZE)
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
    _label_axes([axes], labels, "x", max_ticks=8)
    _label_axes([axes], labels, "y", max_ticks=8)
    axes.tick_params(labelsize=TICK_SIZE + 1)
    axes.get_yticklabels()[-1].set(color=HIGHLIGHT, fontweight="bold")
    axes.set_xlabel("key position", fontsize=LABEL_SIZE + 1)
    axes.set_ylabel("query position", fontsize=LABEL_SIZE + 1)
    axes.set_title("red outline: the last query, which makes the prediction", fontsize=LABEL_SIZE)
    figure.suptitle(title, fontsize=TITLE_SIZE)
    return _save(figure, path)


def render_flow_diagram(
    weights: np.ndarray,
    labels: Sequence[str],
    path: Path,
    title: str,
    top_k: int = 40,
    *,
    last_query_k: int = 5,
) -> tuple[int, int]:
    """Render attention as lines from key positions (left) to query positions (right).

    A BertViz-style view: each drawn line joins key j to query i with width and
    opacity proportional to ``weights[i, j]``. Only the ``top_k`` strongest edges are
    drawn, and the ``last_query_k`` strongest edges into the last query (the one that
    predicts) always, in red.

    Parameters
    ----------
    weights
        (T, T) attention weights (e.g. one head, a layer mean or the rollout), rows = queries.
    labels
        T position labels; about every fifth is written next to the columns.
    path
        PNG to write (atomically); its folder is created.
    title
        Figure title.
    top_k
        How many of the strongest edges to draw.
    last_query_k
        How many of the last query's strongest edges to draw even if not in the top_k.

    Returns
    -------
    tuple[int, int]
        Width and height of the PNG in pixels.

    Raises
    ------
    ValueError
        If ``weights`` is not square, has non-finite values, ``labels`` does not have
        T entries, ``top_k`` < 1 or ``last_query_k`` < 0.
    """
    weights = _check_square(weights, "weights", labels)
    if top_k < 1 or last_query_k < 0:
        raise ValueError(f"need top_k >= 1 and last_query_k >= 0; got {top_k}, {last_query_k}")
    length = len(labels)
    top_k, last_query_k = min(top_k, weights.size), min(last_query_k, length)
    flat = weights.ravel()
    chosen = np.union1d(
        np.argsort(flat)[flat.size - top_k :],
        (length - 1) * length + np.argsort(weights[-1])[length - last_query_k :],
    )
    queries, keys = np.divmod(chosen, length)
    last = queries == length - 1
    # Draw the last query's edges last, and within each group weakest first: what
    # matters most ends up on top.
    order = np.lexsort((flat[chosen], last))
    queries, keys, last = queries[order], keys[order], last[order]
    strength = weights[queries, keys] / max(float(weights.max()), 1e-12)
    colours = np.zeros((len(chosen), 4))
    colours[:, :3] = np.where(last[:, None], (0.84, 0.15, 0.16), (0.12, 0.47, 0.71))
    # Opacity follows the weight, but the predicting query's edges stay visible.
    colours[:, 3] = np.where(last, np.maximum(0.15 + 0.85 * strength, 0.6), 0.15 + 0.85 * strength)

    figure = _new_figure(5.6, max(4.0, 1.8 + 0.13 * length))
    axes = figure.subplots()
    # Time runs downwards, so the last position (the prediction) sits at the bottom.
    axes.add_collection(
        LineCollection(
            [[(0.0, j), (1.0, i)] for i, j in zip(queries, keys, strict=True)],
            colors=colours,
            linewidths=0.4 + 4.0 * strength,
            capstyle="round",
        )
    )
    positions = np.arange(length)
    for x in (0.0, 1.0):
        axes.scatter(np.full(length, x), positions, s=8, color="0.55", zorder=3)
    axes.scatter([1.0], [length - 1], s=60, color=HIGHLIGHT, zorder=4)
    for position in _tick_positions(length, math.ceil(length / 5)):
        is_last = position == length - 1
        style = {"color": HIGHLIGHT, "fontweight": "bold"} if is_last else {}
        axes.text(-0.06, position, labels[position], ha="right", va="center", fontsize=8)
        axes.text(1.06, position, labels[position], ha="left", va="center", fontsize=8, **style)
    axes.text(0.0, -1.5, "keys", ha="center", va="bottom", fontsize=LABEL_SIZE + 1)
    axes.text(1.0, -1.5, "queries", ha="center", va="bottom", fontsize=LABEL_SIZE + 1)
    axes.set_xlim(-0.45, 1.45)
    axes.set_ylim(length - 0.5, -2.8)
    axes.set_axis_off()
    axes.set_title(
        f"the {top_k} strongest of {weights.size} edges, "
        f"plus the last query's {last_query_k} strongest (red)",
        fontsize=LABEL_SIZE,
    )
    figure.suptitle(title, fontsize=TITLE_SIZE)
    return _save(figure, path)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in ``flags``."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def render_confidence_timeline(
    ts: np.ndarray,
    close: np.ndarray,
    confidence: np.ndarray,
    collapse: np.ndarray,
    regime: np.ndarray,
    path: Path,
    title: str,
) -> tuple[int, int]:
    """Render price with regime changes above calibrated confidence with its collapses.

    Parameters
    ----------
    ts
        (n,) datetime64 bar times, increasing.
    close
        (n,) close prices.
    confidence
        (n,) calibrated confidence in [0, 1].
    collapse
        (n,) True where confidence collapsed; shaded in the lower panel.
    regime
        (n,) True where a regime change was detected; vertical lines in the upper panel.
    path
        PNG to write (atomically); its folder is created.
    title
        Figure title.

    Returns
    -------
    tuple[int, int]
        Width and height of the PNG in pixels.

    Raises
    ------
    ValueError
        If the arrays are empty or differ in length, or ``ts`` is not datetime64.
    """
    ts = np.asarray(ts)
    series = [np.asarray(a) for a in (close, confidence, collapse, regime)]
    close, confidence, collapse, regime = series
    if ts.ndim != 1 or len(ts) == 0 or any(a.shape != ts.shape for a in series):
        raise ValueError(
            "ts, close, confidence, collapse and regime must be non-empty 1-D arrays of one "
            f"length; got shapes {[ts.shape, *(a.shape for a in series)]}"
        )
    if not np.issubdtype(ts.dtype, np.datetime64):
        raise ValueError(f"ts must be a datetime64 array; got dtype {ts.dtype}")
    collapse, regime = collapse.astype(bool), regime.astype(bool)

    figure = _new_figure(11.0, 6.0)
    price, conf = figure.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    price.plot(ts, close, color="0.2", linewidth=1.0, label="close")
    if regime.any():
        price.vlines(
            ts[regime],
            0,
            1,
            transform=price.get_xaxis_transform(),
            color="tab:orange",
            linewidth=1.2,
            label="regime change",
        )
    price.set_ylabel("price", fontsize=LABEL_SIZE + 1)
    price.legend(loc="upper left", fontsize=8)

    conf.plot(ts, confidence, color="tab:blue", linewidth=1.0, label="calibrated confidence")
    # Shade each collapse run over whole bars: half a bar either side of its first and last.
    x = mdates.date2num(ts)
    half = np.diff(x).min() / 2 if len(x) > 1 else 0.5
    spans = [
        (x[start] - half, x[stop - 1] - x[start] + 2 * half) for start, stop in _runs(collapse)
    ]
    if spans:
        conf.broken_barh(spans, (0, 1), color=HIGHLIGHT, alpha=0.25, label="confidence collapse")
    conf.set_ylim(0, 1)
    conf.set_ylabel("calibrated confidence", fontsize=LABEL_SIZE + 1)
    conf.legend(loc="lower left", fontsize=8)
    conf.xaxis.set_major_formatter(mdates.ConciseDateFormatter(conf.xaxis.get_major_locator()))
    for axes in (price, conf):
        axes.tick_params(labelsize=TICK_SIZE + 1)
        axes.grid(alpha=0.3)
    figure.suptitle(title, fontsize=TITLE_SIZE)
    return _save(figure, path)


def render_attribution_bars(
    features: Sequence[str], scores: Mapping[str, np.ndarray], path: Path, title: str
) -> tuple[int, int]:
    """Render a grouped horizontal bar chart comparing feature attribution methods.

    Each method's scores are divided by their sum of absolute values, so that
    methods on different scales are comparable; signs are kept. Features are
    sorted by their mean absolute share, the most important on top.

    Parameters
    ----------
    features
        Names of the n features.
    scores
        Method name -> (n,) attribution scores.
    path
        PNG to write (atomically); its folder is created.
    title
        Figure title.

    Returns
    -------
    tuple[int, int]
        Width and height of the PNG in pixels.

    Raises
    ------
    ValueError
        If there are no methods or features, or a method has a score count other than n.
    """
    if not scores or not features:
        raise ValueError("need at least one feature and one attribution method")
    shares = {}
    for method, values in scores.items():
        values = np.asarray(values, dtype=float)
        if values.shape != (len(features),):
            raise ValueError(
                f"scores[{method!r}] has shape {values.shape}; expected ({len(features)},)"
            )
        total = np.abs(values).sum()
        shares[method] = values / total if total > 0 else values
    order = np.argsort(-np.mean([np.abs(s) for s in shares.values()], axis=0), kind="stable")

    n_methods = len(shares)
    figure = _new_figure(8.5, 1.6 + len(features) * (0.15 + 0.12 * n_methods))
    axes = figure.subplots()
    height = 0.8 / n_methods
    rows = np.arange(len(features))
    for index, (method, share) in enumerate(shares.items()):
        offset = (index - (n_methods - 1) / 2) * height
        axes.barh(rows + offset, share[order], height=height, label=method)
    axes.axvline(0, color="0.3", linewidth=0.8)
    axes.set_yticks(rows, [features[i] for i in order], fontsize=LABEL_SIZE)
    axes.invert_yaxis()
    axes.set_xlabel(
        "share of attribution (each method's |scores| sum to 1)", fontsize=LABEL_SIZE + 1
    )
    axes.tick_params(axis="x", labelsize=TICK_SIZE + 1)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(title="method", fontsize=8, title_fontsize=8, loc="lower right")
    figure.suptitle(title, fontsize=TITLE_SIZE)
    return _save(figure, path)


def render_head_panel(
    specialisation: np.ndarray,
    head_confidence: np.ndarray,
    patterns: Sequence[Sequence[str]],
    path: Path,
    title: str,
) -> tuple[int, int]:
    """Render specialisation per layer beside a head map of confidence and attention pattern.

    Parameters
    ----------
    specialisation
        (L,) how specialised each layer's heads are.
    head_confidence
        (L, H) mean row-q confidence of each head over the windows.
    patterns
        L x H pattern class names (e.g. ``"local"``, ``"recent"``, ``"periodic"``).
    path
        PNG to write (atomically); its folder is created.
    title
        Figure title.

    Returns
    -------
    tuple[int, int]
        Width and height of the PNG in pixels.

    Raises
    ------
    ValueError
        If the shapes of the three inputs do not agree.
    """
    specialisation = np.asarray(specialisation, dtype=float)
    head_confidence = np.asarray(head_confidence, dtype=float)
    layers = len(specialisation)
    if specialisation.ndim != 1 or head_confidence.ndim != 2 or len(head_confidence) != layers:
        raise ValueError(
            "specialisation must be (L,) and head_confidence (L, H); got shapes "
            f"{specialisation.shape} and {head_confidence.shape}"
        )
    heads = head_confidence.shape[1]
    if len(patterns) != layers or any(len(row) != heads for row in patterns):
        raise ValueError(f"patterns must be {layers} rows of {heads} names, one per head")

    figure = _new_figure(4.0 + 1.3 * heads, max(3.5, 1.6 + 0.8 * layers))
    bars, heatmap = figure.subplots(1, 2, width_ratios=[1.0, 0.4 + 0.3 * heads])
    names = [f"layer {layer}" for layer in range(layers)]
    bars.bar(names, specialisation, color="tab:blue")
    bars.bar_label(bars.containers[0], fmt="%.2f", fontsize=8)
    bars.set_ylabel("head specialisation", fontsize=LABEL_SIZE + 1)
    bars.set_title("specialisation per layer", fontsize=10)
    bars.margins(y=0.15)
    bars.tick_params(labelsize=TICK_SIZE + 1)

    image = heatmap.imshow(head_confidence, cmap=CMAP, vmin=0.0, vmax=1.0, aspect="auto")
    for layer in range(layers):
        for head in range(heads):
            value = head_confidence[layer, head]
            # White text on the dark end of viridis, black on the light end.
            colour = "white" if value < 0.6 else "black"
            heatmap.text(
                head,
                layer,
                f"{patterns[layer][head]}\n{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
            )
    heatmap.set_xticks(range(heads), [f"head {h}" for h in range(heads)], fontsize=TICK_SIZE + 1)
    heatmap.set_yticks(range(layers), names, fontsize=TICK_SIZE + 1)
    heatmap.set_title("attention pattern and mean confidence per head", fontsize=10)
    colorbar = figure.colorbar(image, ax=heatmap, shrink=0.9)
    colorbar.set_label("mean confidence of row q", fontsize=LABEL_SIZE)
    colorbar.ax.tick_params(labelsize=TICK_SIZE)
    figure.suptitle(title, fontsize=TITLE_SIZE)
    return _save(figure, path)


RENDERERS: dict[str, Callable[..., tuple[int, int]]] = {
    "attention_grid": render_attention_grid,
    "rollout": render_rollout,
    "flow": render_flow_diagram,
    "timeline": render_confidence_timeline,
    "attribution": render_attribution_bars,
    "heads": render_head_panel,
}
