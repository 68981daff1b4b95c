"""Crash points: where the fault-injection tests kill a run, as an OOM kill or a reboot would.

Each stage of a run calls :func:`crash_point` with its name as it begins. In
normal use it does nothing. With ``ATTNVIZ_CRASH_AT=<stage>`` in the environment
the process kills itself there with SIGKILL: no ``finally`` block, no atexit
handler, no flush runs, exactly like ``kill -9``. The tests then check that the
next run is not blocked and that rerunning the work gives the warehouse one
clean run gives.
"""

import os
import signal

STAGES = (
    "fetch", "validate", "load", "train", "register", "analyse", "render", "store", "backtest",
    "publish",
)  # fmt: skip


def crash_point(stage: str) -> None:
    """Kill this process with SIGKILL if ``$ATTNVIZ_CRASH_AT`` names ``stage``."""
    if os.environ.get("ATTNVIZ_CRASH_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)
