"""Charts over a series' evaluation period and its latest window.

The confidence timeline (price above calibrated confidence), the attribution bars
(feature attribution methods side by side) and the head panel (what each head does).
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from attnviz.plots.style import (
    CMAP,
    HIGHLIGHT,
    LABEL_SIZE,
    TICK_SIZE,
    concise_dates,
    new_figure,
    save,
    set_title,
)


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

    figure = new_figure(11.0, 6.0)
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
    half = np.diff(ts).min() / 2 if len(ts) > 1 else np.timedelta64(12, "h")
    for number, (start, stop) in enumerate(_runs(collapse)):
        conf.axvspan(
            ts[start] - half,
            ts[stop - 1] + half,
            color=HIGHLIGHT,
            alpha=0.25,
            linewidth=0,
            label="confidence collapse" if number == 0 else None,
        )
    conf.set_ylim(0, 1)
    conf.set_ylabel("calibrated confidence", fontsize=LABEL_SIZE + 1)
    conf.legend(loc="lower left", fontsize=8)
    concise_dates(conf)
    for axes in (price, conf):
        axes.tick_params(labelsize=TICK_SIZE + 1)
        axes.grid(alpha=0.3)
    set_title(figure, title)
    return save(figure, path)


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
    figure = new_figure(8.5, 1.6 + len(features) * (0.15 + 0.12 * n_methods))
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
    set_title(figure, title)
    return save(figure, path)


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

    figure = new_figure(4.0 + 1.3 * heads, max(3.5, 1.6 + 0.8 * layers))
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
            heatmap.text(
                head,
                layer,
                f"{patterns[layer][head]}\n{value:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                # White text on the dark end of viridis, black on the light end.
                color="white" if value < 0.6 else "black",
            )
    heatmap.set_xticks(range(heads), [f"head {h}" for h in range(heads)], fontsize=TICK_SIZE + 1)
    heatmap.set_yticks(range(layers), names, fontsize=TICK_SIZE + 1)
    heatmap.set_title("attention pattern and mean confidence per head", fontsize=10)
    colorbar = figure.colorbar(image, ax=heatmap, shrink=0.9)
    colorbar.set_label("mean confidence of row q", fontsize=LABEL_SIZE)
    colorbar.ax.tick_params(labelsize=TICK_SIZE)
    set_title(figure, title)
    return save(figure, path)
