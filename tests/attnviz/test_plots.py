import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread
from processes import alive, descendants, wait_for

from attnviz.plots import RENDERERS, AttentionGridRenderer, render_attention_grid, render_rollout
from attnviz.render_pool import RenderJob, render_jobs

LAYERS, HEADS, T = 2, 2, 12
LABELS = [f"t-{T - 1 - i}" for i in range(T - 1)] + ["t"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def window(seed: int) -> np.ndarray:
    """A deterministic (L, H, T, T) row-stochastic attention window."""
    weights = np.random.default_rng(seed).random((LAYERS, HEADS, T, T)) ** 3
    return weights / weights.sum(axis=-1, keepdims=True)


def inputs(kind: str) -> dict[str, Any]:
    """Keyword arguments (all but ``path``) of the renderer of ``kind``."""
    rng = np.random.default_rng(7)
    n = 50
    return {
        "attention_grid": {"attention": window(0), "labels": LABELS, "title": "grid"},
        "rollout": {"rollout": window(1)[0, 0], "labels": LABELS, "title": "rollout"},
        "flow": {"weights": window(2)[1, 1], "labels": LABELS, "title": "flow", "top_k": 10},
        "timeline": {
            "ts": np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(1, "h"),
            "close": 100 + np.cumsum(rng.normal(size=n)),
            "confidence": rng.random(n),
            "collapse": np.arange(n) % 17 < 3,
            "regime": np.isin(np.arange(n), [10, 30]),
            "title": "timeline",
        },
        "attribution": {
            "features": ["ret", "range", "volume"],
            "scores": {"ig": rng.normal(size=3), "occlusion": rng.random(3) * 10},
            "title": "attribution",
        },
        "heads": {
            "specialisation": rng.random(LAYERS),
            "head_confidence": rng.random((LAYERS, HEADS)),
            "patterns": [["local", "recent"], ["periodic", "event"]],
            "title": "heads",
        },
    }[kind]


def read_png(path: Path, size: tuple[int, int]) -> np.ndarray:
    """The pixels of the PNG at ``path``, after checking it is a whole PNG of ``size``."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert (pixels.shape[1], pixels.shape[0]) == size
    assert not list(path.parent.glob("*.tmp"))
    return pixels


@pytest.mark.parametrize("kind", list(RENDERERS))
def test_each_renderer_writes_a_png_of_the_size_it_returns(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / f"{kind}.png"
    size = RENDERERS[kind](path=path, **inputs(kind))
    read_png(path, size)
    assert min(size) > 200


def test_the_grid_renderer_redraws_each_window_and_repeats_itself_exactly(
    tmp_path: Path,
) -> None:
    renderer = AttentionGridRenderer()
    first, second, again = (tmp_path / f"{name}.png" for name in ("first", "second", "again"))
    sizes = [
        renderer.render(window(seed), LABELS, path, "window")
        for seed, path in [(0, first), (1, second), (0, again)]
    ]
    pixels = [
        read_png(path, size) for path, size in zip([first, second, again], sizes, strict=True)
    ]
    assert not np.array_equal(pixels[0], pixels[1])
    assert np.array_equal(pixels[0], pixels[2])


def test_the_grid_renderer_follows_new_labels_and_shapes(tmp_path: Path) -> None:
    renderer = AttentionGridRenderer()
    size = renderer.render(window(0), LABELS, tmp_path / "lags.png", "w")
    renamed = [f"b{i:03d}" for i in range(T)]  # as long as "t-11": same layout
    renderer.render(window(0), renamed, tmp_path / "renamed.png", "w")
    assert not np.array_equal(
        read_png(tmp_path / "lags.png", size), read_png(tmp_path / "renamed.png", size)
    )
    smaller = window(0)[:, :1, :6, :6]
    smaller_size = renderer.render(smaller, LABELS[-6:], tmp_path / "small.png", "w")
    read_png(tmp_path / "small.png", smaller_size)
    assert smaller_size[0] < size[0]


def test_render_jobs_in_a_pool_matches_rendering_in_process(tmp_path: Path) -> None:
    kinds = [*RENDERERS, "attention_grid", "attention_grid"]

    def jobs(folder: str) -> list[RenderJob]:
        return [
            RenderJob(kind, tmp_path / folder / f"{index}_{kind}.png", inputs(kind))
            for index, kind in enumerate(kinds)
        ]

    in_process = render_jobs(jobs("serial"), processes=1)
    pooled = render_jobs(jobs("pool"), processes=2)
    assert pooled == in_process
    for job, size in zip(jobs("pool"), pooled, strict=True):
        read_png(job.path, size)


def test_an_error_in_a_worker_is_raised_here_with_the_workers_traceback(tmp_path: Path) -> None:
    jobs = [RenderJob("rollout", tmp_path / f"{i}.png", inputs("rollout")) for i in range(4)]
    jobs[2] = RenderJob("rollout", tmp_path / "bad.png", {**inputs("rollout"), "labels": ["x"]})
    with pytest.raises(ValueError, match="got 1 labels for rollout") as raised:
        render_jobs(jobs, processes=2)
    assert "in a render worker" in raised.value.__notes__[0]
    assert len(list(tmp_path.glob("*.png"))) == 3  # the other jobs were rendered


# A user's script that renders through a pool but has no `if __name__ == "__main__":`.
UNGUARDED_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from attnviz.render_pool import RenderJob, render_jobs
print("the script ran", flush=True)
rollout = np.full((6, 6), 1 / 6)
jobs = [
    RenderJob("rollout", Path(sys.argv[1]) / f"{i}.png",
              {"rollout": rollout, "labels": list("abcdef"), "title": "r"})
    for i in range(4)
]
print("rendered", render_jobs(jobs, processes=2), flush=True)
"""


def test_a_script_without_a_main_guard_renders_in_workers_and_runs_once(tmp_path: Path) -> None:
    script = tmp_path / "report.py"
    script.write_text(UNGUARDED_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("the script ran") == 1  # the workers did not run it again
    assert "rendered [(" in done.stdout and len(list((tmp_path / "out").glob("*.png"))) == 4


# Renders long enough (400 grids) to be killed in the middle.
LONG_REPORT = """
import sys
from pathlib import Path
import numpy as np
from attnviz.render_pool import RenderJob, render_jobs
if __name__ == "__main__":
    attention = np.full((3, 4, 60, 60), 1 / 60)  # one array, pickled once for all jobs
    kwargs = {"attention": attention, "labels": [str(t) for t in range(60)], "title": "long"}
    out = Path(sys.argv[1])
    render_jobs([RenderJob("attention_grid", out / f"{i}.png", kwargs) for i in range(400)], 2)
"""


def test_workers_end_when_the_process_that_started_them_is_killed(tmp_path: Path) -> None:
    script, out = tmp_path / "long.py", tmp_path / "out"
    script.write_text(LONG_REPORT)
    parent = subprocess.Popen([sys.executable, str(script), str(out)], cwd=tmp_path)
    try:
        wait_for(lambda: list(out.glob("*.png")), 120, "the first PNG")
        workers = descendants(parent.pid)
        assert workers
    finally:
        parent.kill()  # as kill -9 or the out-of-memory killer would
        parent.wait()
    wait_for(lambda: not alive(workers), 10, f"the workers {sorted(alive(workers))} to end")


def test_an_unknown_job_kind_is_refused_before_rendering(tmp_path: Path) -> None:
    jobs = [RenderJob("rollout", tmp_path / "a.png", inputs("rollout"))]
    jobs.append(RenderJob("pie", tmp_path / "b.png", {}))
    with pytest.raises(ValueError, match=r"unknown render kinds \['pie'\]"):
        render_jobs(jobs, processes=1)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "attention",
    [np.ones((LAYERS, T, T)) / T, np.ones((LAYERS, HEADS, T, T - 1)) / T],
    ids=["three-dims", "not-square"],
)
def test_attention_of_the_wrong_shape_is_refused(attention: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"attention must have shape \(layers, heads, T, T\)"):
        render_attention_grid(attention, LABELS, tmp_path / "x.png", "bad")
    assert not list(tmp_path.iterdir())


def test_labels_must_match_the_positions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="got 11 labels for rollout over T=12"):
        render_rollout(window(0)[0, 0], LABELS[1:], tmp_path / "x.png", "bad")


def test_a_failed_render_leaves_neither_png_nor_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_savefig(self: Figure, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        render_rollout(window(0)[0, 0], LABELS, tmp_path / "x.png", "fails")
    assert not list(tmp_path.iterdir())
