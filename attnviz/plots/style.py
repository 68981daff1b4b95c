"""What every renderer shares: the look, new figures, atomic PNG writes, argument checks, ticks."""

import math
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from attnviz.atomic import replacing

DPI = 100
CMAP = "viridis"
HIGHLIGHT = "tab:red"
TITLE_SIZE = 13
LABEL_SIZE = 9
TICK_SIZE = 7

# Width of an average character of the default font (DejaVu Sans), in ems: enough to tell
# how many characters fit on a line without drawing them.
_CHAR_EM = 0.6


def write_png(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then move it onto ``path``.

    Readers never see a half-written PNG, and a failed render leaves no file behind
    (see :func:`attnviz.atomic.replacing`). The folder is created.
    """
    with replacing(path) as partial:
        write(partial)
        # An ordinary, shareable file whatever the writer's umask, as reporting links to it.
        partial.chmod(0o644)


def save(figure: Figure, path: Path) -> tuple[int, int]:
    """Draw ``figure`` into ``path`` atomically and return the PNG's (width, height)."""
    write_png(path, lambda partial: figure.savefig(partial, format="png", dpi=DPI))
    width, height = figure.canvas.get_width_height()
    return width, height


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure of the given size in inches with constrained layout, on an Agg canvas."""
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def wrapped(text: str, width_in: float, size: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``size`` points."""
    characters = int(width_in * 72 * 0.92 / (size * _CHAR_EM))
    return textwrap.fill(text, max(characters, 20))


def set_title(figure: Figure, title: str) -> None:
    """Give ``figure`` its title, on as many lines as it needs to fit the figure's width."""
    figure.suptitle(wrapped(title, figure.get_figwidth(), TITLE_SIZE), fontsize=TITLE_SIZE)


def check_matrices(
    array: np.ndarray, name: str, stacked: Sequence[str], labels: Sequence[str]
) -> np.ndarray:
    """``array`` as floats, after checking it is a stack of finite (T, T) matrices.

    Parameters
    ----------
    array
        The renderer's argument.
    name
        Its name, for the error messages.
    stacked
        Names of the dimensions before the two (T, T) ones, e.g. ``("layers", "heads")``.
    labels
        The T position labels.

    Raises
    ------
    ValueError
        If ``array`` has another shape, non-finite values, or ``labels`` has not T entries.
    """
    array = np.asarray(array, dtype=float)
    if array.ndim != len(stacked) + 2 or array.shape[-2] != array.shape[-1]:
        shape = ", ".join([*stacked, "T", "T"])
        raise ValueError(f"{name} must have shape ({shape}); got shape {array.shape}")
    if len(labels) != array.shape[-1]:
        raise ValueError(
            f"got {len(labels)} labels for {name} over T={array.shape[-1]} positions; "
            "pass one label per position"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def tick_positions(n: int, max_ticks: int) -> np.ndarray:
    """At most ``max_ticks`` positions at a round spacing, always including the last one.

    The last position is the query that predicts, so the spacing counts back from it.
    """
    raw = math.ceil(n / max_ticks)
    # The smallest of 1, 2, 5, 10, 20, 50, ... that is at least raw.
    step = min(s * 10**e for e in range(len(str(raw)) + 1) for s in (1, 2, 5) if s * 10**e >= raw)
    return np.arange(n - 1, -1, -step)[::-1]


def label_axes(
    panels: Iterable[Axes], labels: Sequence[str], which: str, max_ticks: int = 6
) -> None:
    """Show a legible subset of ``labels`` as tick labels on the x or y axis of ``panels``."""
    longest = max(map(len, labels))
    if which == "x" and longest > 6:
        max_ticks = min(max_ticks, 4)
    positions = tick_positions(len(labels), max_ticks)
    names = [labels[p] for p in positions]
    for axes in panels:
        if which == "y":
            axes.set_yticks(positions, names)
        elif longest > 6:
            # Long labels (bar times) would run into each other side by side: slant them.
            axes.set_xticks(positions, names, rotation=30, ha="right", rotation_mode="anchor")
        else:
            axes.set_xticks(positions, names)


def concise_dates(axes: Axes) -> None:
    """Label ``axes``' x axis of dates concisely (years once, then months or days)."""
    # matplotlib.dates has no type hints.
    concise = mdates.ConciseDateFormatter(axes.xaxis.get_major_locator())  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(concise)
