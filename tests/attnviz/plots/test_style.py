import os
import stat
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from attnviz.plots import render_rollout
from attnviz.plots.style import new_figure, save, tick_positions, wrapped


def test_a_png_is_world_readable_whatever_the_umask(tmp_path: Path) -> None:
    figure = new_figure(2.0, 2.0)
    figure.subplots().plot([0, 1], [1, 0])
    previous = os.umask(0o077)
    try:
        save(figure, tmp_path / "folder" / "plot.png")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "folder" / "plot.png").stat().st_mode) == 0o644


def test_a_failed_render_leaves_neither_png_nor_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_savefig(self: Figure, *args: object, **kwargs: object) -> None:
        Path(str(args[0])).write_bytes(b"half a PNG")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    rollout = np.full((4, 4), 0.25)
    with pytest.raises(OSError, match="disk full"):
        render_rollout(rollout, list("abcd"), tmp_path / "x.png", "fails")
    assert not list(tmp_path.iterdir())


def test_wrapped_text_fits_its_width_and_keeps_every_word() -> None:
    title = "Attention flow (each layer's heads averaged): EURUSD 1h, window ending 01-05 13:00"
    lines = wrapped(title, 5.6, 13).split("\n")
    assert len(lines) == 2
    assert all(len(line) * 13 * 0.6 <= 5.6 * 72 for line in lines)
    assert " ".join(lines) == title
    assert wrapped(title, 12.0, 13) == title


@pytest.mark.parametrize(
    ("n", "max_ticks", "expected"),
    [(12, 6, [1, 3, 5, 7, 9, 11]), (60, 4, [19, 39, 59]), (3, 6, [0, 1, 2])],
)
def test_ticks_count_back_from_the_last_position(
    n: int, max_ticks: int, expected: list[int]
) -> None:
    assert tick_positions(n, max_ticks).tolist() == expected
