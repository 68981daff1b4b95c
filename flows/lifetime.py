"""Child processes that end with the process that started them, and SIGTERM as a clean exit.

A run started from the command line has helpers: a Prefect API server (about
200 MB) and, for ``attnviz serve``, a ``prefect server start``. When the run ends
normally, context managers and ``atexit`` stop them. A run can also end abruptly:
``kill -9``, the out-of-memory killer, a CI job's timeout, a supervisor's SIGTERM.
Then none of that code runs, and a child that nobody stops lives on unnoticed,
holding its memory and its port. Two measures keep anything from outliving the run:

* Children are started through :func:`tied`: a small launcher (this file run as a
  script) asks the Linux kernel to SIGKILL it when its parent dies
  (``prctl(PR_SET_PDEATHSIG)``), then replaces itself with the real command
  (``exec``), which keeps that request. The kernel delivers it however the parent
  died. A ``preexec_fn`` could make the same call without the extra interpreter
  start (~30 ms), but it may deadlock in a process that runs threads, as Prefect's
  does.
* :func:`exit_on_sigterm` turns SIGTERM into :class:`SystemExit`, so that a stopped
  command unwinds as Ctrl-C would: the run records itself as failed, releases its
  locks and stops its children, instead of vanishing mid-step.

The kernel ties the child to the *thread* that started it and fires when that
thread ends, so :func:`tied` accepts only the main thread, which lasts as long as
the process. On other systems than Linux the launcher only runs the command.
"""

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def tied(command: Sequence[str]) -> list[str]:
    """``command`` as launched so that the kernel kills it when this process dies.

    Start the result with :class:`subprocess.Popen` from the main thread.

    Raises
    ------
    RuntimeError
        If called from another thread than the main one.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError(
            "start tied child processes from the main thread: the kernel kills them "
            "when the thread that started them ends"
        )
    # -I: the launcher needs nothing from the environment or the current folder.
    return [sys.executable, "-I", __file__, str(os.getpid()), *command]


def exit_on_sigterm() -> None:
    """Make SIGTERM raise ``SystemExit(143)`` in the main thread, as Ctrl-C raises an exception.

    Python's default is to die at once, so ``finally`` blocks, context managers and
    ``atexit`` handlers would not run. Prefect installs its own handler while a flow
    runs and re-sends the signal when the flow has handled it, which then lands here.
    """
    signal.signal(signal.SIGTERM, _unwind)


def _unwind(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)  # the status a shell reports for a process killed by it


def _become(parent: int, command: list[str]) -> NoReturn:
    """Ask to be killed when ``parent`` dies, then run ``command`` in this process."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # A parent that died before the request was made would never be reported.
    if os.getppid() != parent:
        sys.exit(f"not starting {command[0]}: the process {parent} that asked for it has ended")
    os.execvp(command[0], command)


if __name__ == "__main__":
    _become(int(sys.argv[1]), sys.argv[2:])
