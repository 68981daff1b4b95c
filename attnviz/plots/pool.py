"""Rendering many PNGs at once, in worker processes of their own.

A nightly renders a few PNGs per series; a backfill or a large catalogue renders
thousands. :func:`render_jobs` deals them to one worker per core; each worker
draws its batch with the renderers of :data:`RENDERERS`, reusing one
:class:`~attnviz.plots.grid.AttentionGridRenderer` for its attention grids.
"""

import contextlib
import os
import pickle
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from attnviz.plots.backtest import (
    render_equity_curves,
    render_random_distribution,
    render_sharpe_by_percentile,
)
from attnviz.plots.charts import (
    render_attribution_bars,
    render_confidence_timeline,
    render_head_panel,
)
from attnviz.plots.flow import render_flow_diagram
from attnviz.plots.grid import AttentionGridRenderer, render_attention_grid, render_rollout

# The kinds of PNG a job can ask for, and who draws each.
RENDERERS: dict[str, Callable[..., tuple[int, int]]] = {
    "attention_grid": render_attention_grid,
    "rollout": render_rollout,
    "flow": render_flow_diagram,
    "timeline": render_confidence_timeline,
    "attribution": render_attribution_bars,
    "heads": render_head_panel,
    "equity_curves": render_equity_curves,
    "sharpe_by_percentile": render_sharpe_by_percentile,
    "random_distribution": render_random_distribution,
}


@dataclass(frozen=True)
class RenderJob:
    """One PNG to render: which renderer, where, and the renderer's other arguments."""

    kind: str
    path: Path
    kwargs: dict[str, Any]


def _render_batch(jobs: Sequence[RenderJob]) -> list[tuple[int, int]]:
    """Render ``jobs`` in order, sharing one grid renderer among the attention grids."""
    grids = AttentionGridRenderer()
    sizes = []
    for job in jobs:
        render = grids.render if job.kind == "attention_grid" else RENDERERS[job.kind]
        sizes.append(render(path=job.path, **job.kwargs))
    return sizes


def render_jobs(jobs: Sequence[RenderJob], processes: int | None = None) -> list[tuple[int, int]]:
    """Render many PNGs, in worker processes when there are enough of them.

    Jobs are dealt round-robin into one batch per worker, so kinds spread evenly,
    and each worker reuses one :class:`AttentionGridRenderer` for its grids. The
    workers are fresh interpreters that import this module and nothing of the
    caller's, so this works the same from a script without an
    ``if __name__ == "__main__":`` guard (see :func:`_render_in_workers`).

    Parameters
    ----------
    jobs
        What to render; ``kind`` is one of the keys of :data:`RENDERERS`.
    processes
        Worker processes; ``None`` means ``os.cpu_count()``. With 1, or at most two
        jobs, everything is rendered in this process.

    Returns
    -------
    list[tuple[int, int]]
        (width, height) of each PNG, in job order.

    Raises
    ------
    ValueError
        If a job names an unknown kind (before anything is rendered).
    Exception
        The first error a worker met, with the worker's traceback as a note; the
        other workers finish their batches first.
    """
    unknown = sorted({job.kind for job in jobs} - RENDERERS.keys())
    if unknown:
        raise ValueError(f"unknown render kinds {unknown}; expected one of {list(RENDERERS)}")
    if processes is None:
        processes = os.cpu_count() or 1
    processes = min(processes, len(jobs))
    if processes <= 1 or len(jobs) <= 2:
        return _render_batch(jobs)
    batches = [jobs[start::processes] for start in range(processes)]
    results = _render_in_workers(batches)
    sizes: list[tuple[int, int]] = [(0, 0)] * len(jobs)
    for start, batch_sizes in enumerate(results):
        sizes[start::processes] = batch_sizes
    return sizes


# What a worker runs: take this process's import path, then serve one batch.
WORKER = (
    "import pickle, sys; sys.path[:] = pickle.load(sys.stdin.buffer); "
    "from attnviz.plots.pool import _serve_batch; _serve_batch()"
)


def _render_in_workers(batches: list[Sequence[RenderJob]]) -> list[list[tuple[int, int]]]:
    """Render each batch in a new Python process of its own, all at once.

    Not :mod:`multiprocessing`: its ``spawn`` and ``forkserver`` workers run the
    caller's main script again to rebuild ``__main__``, so a script without the
    ``__main__`` guard would run its flows again in every worker, which then starts
    this pool again (the pool breaks, or the run hangs). ``fork`` is no way out: a
    forked copy of a process running threads (Prefect's, torch's) can deadlock.
    These workers run :data:`WORKER`: jobs go to them and sizes come back pickled,
    through pipes.
    """
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in batches
    ]
    try:
        for worker, batch in zip(workers, batches, strict=True):
            # A worker that died before reading says why on stderr; it is reported below.
            stdin, _ = _pipes(worker)
            with contextlib.suppress(BrokenPipeError), stdin:
                pickle.dump(sys.path, stdin)
                pickle.dump((os.getpid(), list(batch)), stdin)
        answers = [_pipes(worker)[1].read() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()  # a no-op unless this was interrupted before the worker answered
            worker.wait()
            _pipes(worker)[1].close()
    results = []
    for worker, answer in zip(workers, answers, strict=True):
        if not answer:
            raise RuntimeError(
                f"a render worker exited with status {worker.returncode} without an answer; "
                "its error is in the output above"
            )
        outcome = pickle.loads(answer)
        if isinstance(outcome, BaseException):
            raise outcome
        results.append(outcome)
    return results


def _pipes(worker: subprocess.Popen[bytes]) -> tuple[IO[bytes], IO[bytes]]:
    """The worker's stdin and stdout, which it was started with (``subprocess.PIPE``)."""
    assert worker.stdin is not None and worker.stdout is not None
    return worker.stdin, worker.stdout


def _serve_batch() -> None:
    """The body of a worker: render the batch on stdin, write its sizes (or its error) to stdout."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a renderer prints goes to stderr, not into the answer
    parent, batch = pickle.load(sys.stdin.buffer)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    try:
        outcome: object = _render_batch(batch)
    except Exception as error:
        error.add_note(f"in a render worker:\n{traceback.format_exc()}")
        outcome = error
    try:
        pickled = pickle.dumps(outcome)
    except Exception:  # an error that cannot be pickled still gets its message through
        pickled = pickle.dumps(RuntimeError(f"a render worker failed: {outcome!r}"))
    with answer:
        answer.write(pickled)


def _exit_when_orphaned(parent: int) -> None:
    """End this worker once ``parent`` has died (``kill -9`` included): no one waits for it."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
