import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from processes import alive, descendants, wait_for

from attnviz.plots import RENDERERS, RenderJob, render_jobs

Inputs = Callable[[str], dict[str, Any]]
Png = Callable[[Path, tuple[int, int]], np.ndarray]


def test_render_jobs_in_a_pool_matches_rendering_in_process(
    tmp_path: Path, inputs: Inputs, png: Png
) -> None:
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
        png(job.path, size)


def test_an_error_in_a_worker_is_raised_here_with_the_workers_traceback(
    tmp_path: Path, inputs: Inputs
) -> None:
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
from attnviz.plots import RenderJob, render_jobs
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
from attnviz.plots import RenderJob, render_jobs
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


def test_an_unknown_job_kind_is_refused_before_rendering(tmp_path: Path, inputs: Inputs) -> None:
    jobs = [RenderJob("rollout", tmp_path / "a.png", inputs("rollout"))]
    jobs.append(RenderJob("pie", tmp_path / "b.png", {}))
    with pytest.raises(ValueError, match=r"unknown render kinds \['pie'\]"):
        render_jobs(jobs, processes=1)
    assert not list(tmp_path.iterdir())
