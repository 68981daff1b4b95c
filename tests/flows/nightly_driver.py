"""A process that runs nightlies in forked children, for the fault-injection tests.

The tests in ``test_faults.py`` kill runs with SIGKILL, so every run must be a
process of its own. Starting one costs more than the small nightly it runs:
importing torch, Prefect and Great Expectations takes 5-7 s on two cores. This
driver pays that once. It imports the nightly, then reads requests, one JSON
object per line on stdin, and runs each in a child forked from itself: a real
process with the run's environment, killed as any other by ``kill -9``.

The driver forks while it is idle, having only imported modules: Prefect starts
its threads at the first flow run. Some native libraries start idle threads at
import (DuckDB, torch, polars, jemalloc); a child has none of them, and C++
destructors of their thread objects abort the process as it finalises. A child
therefore ends with ``os._exit`` once the exit handlers (Prefect's last logs and
events) have run.

Each request answers two lines on stdout: ``{"pid": ...}`` when the child has
started, so that the test can watch the processes it starts, then
``{"pid": ..., "status": ...}`` with its wait status when it has ended.

A request holds:

``env``
    Variables to set (a ``null`` value unsets one), e.g. ``ATTNVIZ_HOME``,
    ``ATTNVIZ_CRASH_AT``.
``storage``
    Prefect's result storage folder: the task caches of training and analysis.
``log``
    The file the child's stdout and stderr go to.
``parameters``
    Keyword arguments of ``flows.nightly.nightly``, as JSON: Prefect validates
    and converts them, as it does a deployment's.
``max_file_bytes``
    Optional: the largest file the child may write (``RLIMIT_FSIZE``), to fill
    the disk. Python ignores SIGXFSZ, so a write past it fails with ``EFBIG``.
"""

import atexit
import json
import os
import resource
import sys
import traceback
from typing import Any, NoReturn


def run_child(request: dict[str, Any]) -> NoReturn:
    """Run one nightly in this (forked) process and exit with 0, or 1 if it failed."""
    import torch
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    from flows.nightly import nightly

    # torch's OpenMP threads do not survive a fork: with more than one, a forked child
    # trains ten times slower than a fresh process. One thread is as fast as two fresh
    # ones here, and every run of the tests uses the same, so their numbers agree.
    torch.set_num_threads(1)

    os.setsid()  # a process group of its own: the test can stop it and what it started
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    nothing = os.open(os.devnull, os.O_RDONLY)  # not the driver's requests
    for source, target in ((nothing, 0), (log, 1), (log, 2)):
        os.dup2(source, target)
    os.close(log)
    os.close(nothing)
    for name, value in request["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    if request.get("max_file_bytes") is not None:
        limit = request["max_file_bytes"]
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    status = 0
    try:
        with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: request["storage"]}):
            nightly(**request["parameters"])
    except Exception:
        traceback.print_exc()
        status = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def main() -> None:
    """Answer requests from stdin until it closes."""
    import flows.nightly  # noqa: F401 (imported once here, inherited by every child)

    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            run_child(request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"pid": pid, "status": status}), flush=True)


if __name__ == "__main__":
    main()
