from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text
from numpy.typing import ArrayLike

from attnviz.plots import (
    RenderJob,
    render_equity_curves,
    render_jobs,
    render_random_distribution,
    render_sharpe_by_percentile,
)
from attnviz.plots import backtest as plots
from attnviz.plots.style import save

Inputs = Callable[[str], dict[str, Any]]
Png = Callable[[Path, tuple[int, int]], np.ndarray]
KINDS = ("equity_curves", "sharpe_by_percentile", "random_distribution")


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """The figures the renderers save, in order, to read what they drew."""
    figures: list[Figure] = []

    def keep(figure: Figure, path: Path) -> tuple[int, int]:
        figures.append(figure)
        return save(figure, path)

    monkeypatch.setattr(plots, "save", keep)
    return figures


def texts(figure: Figure) -> list[str]:
    return [text.get_text() for text in figure.findobj(Text)]


def legend_labels(figure: Figure, panel: int = 0) -> list[str]:
    legend = figure.axes[panel].get_legend() or figure.legends[0]
    return [text.get_text() for text in legend.get_texts()]


def equity(curves: Mapping[str, ArrayLike]) -> dict[str, Any]:
    """Arguments of the equity renderer for ``curves`` over daily bars."""
    arrays = {name: np.asarray(values, dtype=float) for name, values in curves.items()}
    n = len(next(iter(arrays.values())))
    return {
        "ts": np.datetime64("2024-01-01") + np.arange(n) * np.timedelta64(1, "D"),
        "equity": arrays,
        "title": "equity",
        "highlight": "filtered",
        "benchmark": "buy and hold",
        "cost_bps": 2.0,
    }


def test_equity_puts_the_two_named_strategies_first_and_says_the_costs(
    tmp_path: Path, drawn: list[Figure], png: Png
) -> None:
    arguments = equity({"lstm": [1, 1.1], "buy and hold": [1, 0.9], "filtered": [1, 1.3]})
    png(tmp_path / "e.png", render_equity_curves(path=tmp_path / "e.png", **arguments))
    (figure,) = drawn
    assert figure.axes[0].get_title() == "net of costs (2 bps per side)"
    assert legend_labels(figure) == ["filtered (1.30)", "buy and hold (0.90)", "lstm (1.10)"]


def test_the_drawdown_panel_gives_each_curves_deepest_fall_growing_downwards(
    tmp_path: Path, drawn: list[Figure]
) -> None:
    # filtered falls from 1.2 to 0.96 (20%), buy and hold from 1.0 to 0.9 (10%).
    curves = {"filtered": [1, 1.2, 0.96, 1.1], "buy and hold": [1, 0.9, 0.99, 1.08]}
    render_equity_curves(path=tmp_path / "e.png", **equity(curves))
    drawdowns = drawn[0].axes[1]
    labels = legend_labels(drawn[0], panel=1)
    assert labels == ["buy and hold (max 10.0%)", "filtered (max 20.0%)"]
    lines = {str(line.get_label()): np.asarray(line.get_ydata()) for line in drawdowns.get_lines()}
    assert np.allclose(lines["filtered (max 20.0%)"], [0, 0, 20, 100 * (1 - 1.1 / 1.2)])
    bottom, top = drawdowns.get_ylim()
    assert top == 0 and bottom > 20


@pytest.mark.parametrize(("best", "scale"), [(2.9, "linear"), (3.1, "log")])
def test_equity_goes_on_a_log_scale_when_the_curves_end_far_apart(
    best: float, scale: str, tmp_path: Path, drawn: list[Figure]
) -> None:
    render_equity_curves(
        path=tmp_path / "e.png", **equity({"filtered": [1, best], "buy and hold": [1, 1.0]})
    )
    assert drawn[0].axes[0].get_yscale() == scale


def test_many_strategies_get_their_legend_beside_the_panels_inside_the_picture(
    tmp_path: Path, drawn: list[Figure], png: Png
) -> None:
    rng = np.random.default_rng(0)
    names = ["buy and hold", "filtered", *(f"a much longer strategy name {i}" for i in range(6))]
    arguments = equity({name: np.cumprod(1 + rng.normal(0, 0.01, 500)) for name in names})
    size = render_equity_curves(path=tmp_path / "e.png", **arguments)
    pixels = png(tmp_path / "e.png", size)
    assert drawn[0].axes[0].get_legend() is None and len(drawn[0].legends) == 1
    assert (pixels[:, [0, -1], :3] == 1.0).all()  # nothing cut off at the edges


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"highlight": "lstm"}, r"highlight 'lstm' is not a strategy of equity"),
        ({"benchmark": "filtered"}, "highlight and benchmark must be two strategies"),
        ({"equity": {"filtered": np.ones(3), "buy and hold": np.ones(2)}}, r"got shape \(3,\)"),
        ({"equity": {"filtered": [1, 0.0], "buy and hold": [1, 1]}}, r"equity\['filtered'\] must"),
        ({"ts": np.arange(2)}, "ts must be non-empty 1-D datetime64"),
        ({"cost_bps": -1.0}, "cost_bps must be a finite number >= 0"),
    ],
)
def test_equity_refuses_what_it_cannot_draw(
    change: dict[str, Any], message: str, tmp_path: Path
) -> None:
    arguments = {**equity({"filtered": [1, 1.1], "buy and hold": [1, 0.9]}), **change}
    with pytest.raises(ValueError, match=message):
        render_equity_curves(path=tmp_path / "e.png", **arguments)
    assert not list(tmp_path.iterdir())


def test_the_sharpe_chart_marks_the_chosen_percentile_and_the_ones_without_trades(
    tmp_path: Path, inputs: Inputs, drawn: list[Figure]
) -> None:
    render_sharpe_by_percentile(path=tmp_path / "s.png", **inputs("sharpe_by_percentile"))
    axes = drawn[0].axes[0]
    xs = {str(line.get_label()): np.asarray(line.get_xdata()) for line in axes.get_lines()}
    ys = {str(line.get_label()): np.asarray(line.get_ydata()) for line in axes.get_lines()}
    assert xs["chosen on validation: percentile 70"].tolist() == [70, 70]
    assert xs["no trades at this percentile"].tolist() == [90]
    assert ys["unfiltered: 0.30"].tolist() == [0.3, 0.3]
    assert axes.get_title() == "net of costs (2 bps per side)"


def test_a_filter_that_never_trades_is_drawn_and_said(
    tmp_path: Path, inputs: Inputs, drawn: list[Figure], png: Png
) -> None:
    nan = np.full(3, np.nan)
    arguments = {
        **inputs("sharpe_by_percentile"),
        **{"sharpe": nan, "low": nan, "high": nan, "unfiltered": (np.nan,) * 3, "chosen": None},
    }
    png(tmp_path / "s.png", render_sharpe_by_percentile(path=tmp_path / "s.png", **arguments))
    assert "no trades at any percentile" in texts(drawn[0])
    assert {"unfiltered: no trades", "no percentile chosen on validation"} <= set(
        legend_labels(drawn[0])
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"low": np.zeros(2)}, r"low must have shape \(3,\); got shape \(2,\)"),
        ({"sharpe": np.array([0.4, np.inf, 1.0])}, "sharpe holds infinite values"),
        ({"percentiles": np.array([50.0, 90.0, 70.0])}, "percentiles must be increasing"),
        ({"percentiles": np.array([50.0, np.nan, 90.0])}, "percentiles must be .* finite"),
        ({"unfiltered": (0.3, 0.1)}, r"unfiltered must be \(sharpe, low, high\)"),
        ({"chosen": 60.0}, r"chosen 60.0 is not one of percentiles \[50.0, 70.0, 90.0\]"),
    ],
)
def test_the_sharpe_chart_refuses_what_it_cannot_draw(
    change: dict[str, Any], message: str, tmp_path: Path, inputs: Inputs
) -> None:
    with pytest.raises(ValueError, match=message):
        render_sharpe_by_percentile(
            path=tmp_path / "s.png", **{**inputs("sharpe_by_percentile"), **change}
        )
    assert not list(tmp_path.iterdir())


def test_the_random_distribution_counts_its_draws_and_places_the_strategy(
    tmp_path: Path, inputs: Inputs, drawn: list[Figure]
) -> None:
    arguments = inputs("random_distribution")
    arguments["draws"][:2] = np.nan  # two random strategies without trades
    render_random_distribution(path=tmp_path / "r.png", **arguments)
    axes = drawn[0].axes[0]
    assert sum(bar.get_height() for bar in axes.patches if isinstance(bar, Rectangle)) == 998
    assert legend_labels(drawn[0]) == [
        "998 random strategies, same exposure (2 without trades left out)",
        "filtered p70: 1.20, above 93.0% of the draws",
    ]
    (mark,) = axes.get_lines()
    assert np.asarray(mark.get_xdata()).tolist() == [1.2, 1.2]


def test_random_strategies_without_any_trades_are_drawn_and_said(
    tmp_path: Path, inputs: Inputs, drawn: list[Figure], png: Png
) -> None:
    arguments = {
        **inputs("random_distribution"),
        **{"draws": np.full(1000, np.nan), "value": np.nan, "percentile": np.nan},
    }
    png(tmp_path / "r.png", render_random_distribution(path=tmp_path / "r.png", **arguments))
    assert "none of the 1000 random strategies traded" in texts(drawn[0])
    assert legend_labels(drawn[0]) == ["filtered p70: no trades"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"draws": np.array([])}, r"draws must have shape \(n,\), n >= 1"),
        ({"value": np.inf}, "value holds infinite values"),
        ({"percentile": 120.0}, "percentile must be within 0 to 100"),
    ],
)
def test_the_random_distribution_refuses_what_it_cannot_draw(
    change: dict[str, Any], message: str, tmp_path: Path, inputs: Inputs
) -> None:
    with pytest.raises(ValueError, match=message):
        render_random_distribution(
            path=tmp_path / "r.png", **{**inputs("random_distribution"), **change}
        )
    assert not list(tmp_path.iterdir())


def test_the_backtest_pictures_render_in_worker_processes(
    tmp_path: Path, inputs: Inputs, png: Png
) -> None:
    def jobs(folder: str) -> list[RenderJob]:
        return [RenderJob(kind, tmp_path / folder / f"{kind}.png", inputs(kind)) for kind in KINDS]

    pooled = render_jobs(jobs("pool"), processes=len(KINDS))
    assert pooled == render_jobs(jobs("serial"), processes=1)
    for job, size in zip(jobs("pool"), pooled, strict=True):
        png(job.path, size)
