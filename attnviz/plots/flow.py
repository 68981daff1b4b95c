"""The attention flow diagram: which positions each layer moves information between.

A BertViz-style view of one window. Positions stand in columns, one column more
than there are layers: layer l's keys are column l and its queries column l + 1,
so a line from column l to column l + 1 is a weight of layer l, and paths
through the columns follow information from the bars (left) to the prediction
(the last query, bottom right).

Self-attention, a position's weight on itself, is left out: drawn, it makes a
horizontal line per position that hides the attention between positions. Its
share of each layer's weight is written under the layer's name instead.
"""

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection

from attnviz.plots.style import (
    HIGHLIGHT,
    LABEL_SIZE,
    check_matrices,
    new_figure,
    save,
    set_title,
    tick_positions,
    wrapped,
)

_BLUE, _RED = (0.12, 0.47, 0.71), (0.84, 0.15, 0.16)


def edges_to_draw(weights: np.ndarray, top_k: int, last_query_k: int) -> np.ndarray:
    """Which edges of one layer the diagram draws: never self-attention (the diagonal).

    Parameters
    ----------
    weights
        (T, T) attention of one layer, rows = queries.
    top_k
        How many of the strongest edges between positions to take, at most T (T - 1).
    last_query_k
        How many of the strongest edges into the last query to take as well, at most T - 1.

    Returns
    -------
    np.ndarray
        Sorted flat indices ``query * T + key`` into ``weights``.
    """
    length = len(weights)
    ranked = np.where(np.eye(length, dtype=bool), -np.inf, weights)
    strongest = np.argsort(ranked, axis=None)[ranked.size - top_k :]
    into_last = np.argsort(ranked[-1])[length - last_query_k :]
    return np.union1d(strongest, (length - 1) * length + into_last)


def _lines(weights: np.ndarray, top_k: int, last_query_k: int) -> LineCollection:
    """The edges of every layer of (L, T, T) ``weights`` to draw, as one collection of lines.

    Width and opacity follow the weight, on one scale for all layers; the last query's
    edges are red and drawn last, so that they lie on top.
    """
    length = weights.shape[-1]
    segments, strengths, last = [], [], []
    for layer, matrix in enumerate(weights):
        queries, keys = np.divmod(edges_to_draw(matrix, top_k, last_query_k), length)
        segments += [[(layer, j), (layer + 1, i)] for i, j in zip(queries, keys, strict=True)]
        strengths.append(matrix[queries, keys])
        last.append(queries == length - 1)
    off_diagonal = np.where(np.eye(length, dtype=bool), 0.0, weights)
    strength = np.concatenate(strengths) / max(float(off_diagonal.max()), 1e-12)
    is_last = np.concatenate(last)
    # Within each group weakest first: what matters most ends up on top.
    order = np.lexsort((strength, is_last))
    strength, is_last = strength[order], is_last[order]
    colours = np.zeros((len(order), 4))
    colours[:, :3] = np.where(is_last[:, None], _RED, _BLUE)
    # Opacity follows the weight, but the predicting query's edges stay visible.
    opacity = 0.15 + 0.85 * strength
    colours[:, 3] = np.where(is_last, np.maximum(opacity, 0.6), opacity)
    return LineCollection(
        [segments[index] for index in order],
        colors=colours,
        linewidths=0.4 + 4.0 * strength,
        capstyle="round",
    )


def render_flow_diagram(
    weights: np.ndarray,
    labels: Sequence[str],
    path: Path,
    title: str,
    top_k: int = 40,
    *,
    last_query_k: int = 5,
) -> tuple[int, int]:
    """Render each layer's attention between positions as lines from keys to queries.

    Each drawn line joins key j (column l) to query i (column l + 1) with width and
    opacity proportional to ``weights[l, i, j]``, on one scale for all layers. Per
    layer, the ``top_k`` strongest edges are drawn, and the ``last_query_k``
    strongest into the last query (the one that predicts) always, in red.

    Parameters
    ----------
    weights
        (L, T, T) attention of each layer (e.g. its heads' mean), rows = queries.
    labels
        T position labels; about every fifth is written beside the first and last columns.
    top_k
        How many of each layer's strongest edges to draw.
    last_query_k
        How many of the last query's strongest edges to draw even if not in the top_k.

    Raises
    ------
    ValueError
        If ``top_k`` < 1 or ``last_query_k`` < 0, besides the checks of every renderer.
    """
    weights = check_matrices(weights, "weights", ("layers",), labels)
    if top_k < 1 or last_query_k < 0:
        raise ValueError(f"need top_k >= 1 and last_query_k >= 0; got {top_k}, {last_query_k}")
    layers, length = weights.shape[:2]
    top_k, last_query_k = min(top_k, length * (length - 1)), min(last_query_k, length - 1)
    self_share = np.trace(weights, axis1=1, axis2=2) / np.maximum(weights.sum(axis=(1, 2)), 1e-12)

    width = max(5.6, 1.95 * (layers + 1.1) + 0.6)
    figure = new_figure(width, max(4.0, 2.2 + 0.13 * length))
    axes = figure.subplots()
    # Time runs downwards, so the last position (the prediction) sits at the bottom.
    axes.add_collection(_lines(weights, top_k, last_query_k))
    positions = np.arange(length)
    for column in range(layers + 1):
        axes.scatter(np.full(length, column), positions, s=8, color="0.55", zorder=3)
    axes.scatter([layers], [length - 1], s=60, color=HIGHLIGHT, zorder=4)
    for position in tick_positions(length, math.ceil(length / 5)):
        colour, weight = (HIGHLIGHT, "bold") if position == length - 1 else ("black", "normal")
        axes.text(-0.05, position, labels[position], ha="right", va="center", fontsize=8)
        axes.text(
            layers + 0.05,
            position,
            labels[position],
            ha="left",
            va="center",
            fontsize=8,
            color=colour,
            fontweight=weight,
        )
    for layer, share in enumerate(self_share):
        axes.text(
            layer + 0.5,
            -1.2,
            f"layer {layer}\nself-attention {share:.1%}",
            ha="center",
            va="bottom",
            fontsize=LABEL_SIZE,
        )
    axes.set_xlim(-0.55, layers + 0.55)
    axes.set_ylim(length - 0.5, -3.4)
    axes.set_axis_off()
    subtitle = (
        f"Lines join each layer's keys (left) to its queries (right): its {top_k} strongest "
        f"of {length * (length - 1)} edges between positions, and the last query's "
        f"{last_query_k} strongest (red). Self-attention is not drawn; its share of the "
        "layer's weight is under the layer's name."
    )
    axes.set_title(wrapped(subtitle, width, LABEL_SIZE), fontsize=LABEL_SIZE)
    set_title(figure, title)
    return save(figure, path)
