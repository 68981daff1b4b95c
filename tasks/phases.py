"""Where a run's time and memory go: each task's wall time, added up by phase.

A task marked with :func:`phase` adds its wall time to its phase's total for the flow
run it belongs to, and notes the process's peak resident memory (its high-water mark)
when it ends. At its end the run stores the totals (``run_phases``) and shows them in
its summary artifact. Tasks of one flow run share its process (Prefect's thread pool),
so a lock guards the totals; a task run outside a flow (``task.fn`` in a test) is timed
under no run and never stored.
"""

import functools
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, ParamSpec, TypeVar, get_args

from prefect.runtime import flow_run

Phase = Literal["ingest", "validate", "train", "analyse", "render", "store", "backtest"]
PHASES: tuple[Phase, ...] = get_args(Phase)

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class PhaseTotal:
    """One phase of a run: its tasks' summed wall time and the memory high-water mark."""

    seconds: float = 0.0
    tasks: int = 0
    peak_rss_mb: float = 0.0


_lock = threading.Lock()
_totals: dict[str | None, dict[Phase, PhaseTotal]] = {}  # by flow run id


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux reports it in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase(name: Phase) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Count the decorated function's wall time in phase ``name`` of the current flow run.

    Put it under ``@task``: a cached task run does not call the function, so it
    adds nothing, as it did no work.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                _add(name, time.perf_counter() - started)

        return timed

    return decorate


def _add(name: Phase, seconds: float) -> None:
    """Add one task's ``seconds`` to phase ``name`` of the current flow run."""
    run = flow_run.get_id()
    with _lock:
        total = _totals.setdefault(run, {}).setdefault(name, PhaseTotal())
        total.seconds += seconds
        total.tasks += 1
        total.peak_rss_mb = peak_rss_mb()


def take_totals() -> dict[Phase, PhaseTotal]:
    """The current flow run's phase totals so far, in :data:`PHASES` order; forgets them."""
    run = flow_run.get_id()
    with _lock:
        totals = _totals.pop(run, {})
    return {name: totals[name] for name in PHASES if name in totals}


def phases_markdown(totals: dict[Phase, PhaseTotal], wall_seconds: float, peak: float) -> str:
    """A markdown table of the phases, with the run's wall time and peak memory under it."""
    lines = [
        "| phase | seconds | tasks | peak RSS (MB) when it ended |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {total.seconds:.1f} | {total.tasks} | {total.peak_rss_mb:.0f} |"
            for name, total in totals.items()
        ),
        "",
        f"Run wall time {wall_seconds:.1f} s; peak RSS {peak:.0f} MB. A phase's seconds "
        "add up its tasks' wall times: concurrent tasks (fetches) can exceed the run's span.",
    ]
    return "\n".join(lines)
