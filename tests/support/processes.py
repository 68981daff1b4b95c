"""Watching the processes a test starts, from /proc (Linux): what they started, what still runs.

A process is named by its pid and its start time, so a later process that reuses the
pid of one that ended is not taken for it.
"""

import time
from collections.abc import Callable
from pathlib import Path

Process = tuple[int, int]  # (pid, start time in clock ticks since boot)


def start_time(pid: int) -> int | None:
    """When the live process ``pid`` started; ``None`` if it has ended (a zombie has ended too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if fields[0] == "Z" else int(fields[19])


def descendants(root: int) -> set[Process]:
    """Every live process below ``root``: its children, their children, and so on."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # it ended meanwhile
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found: set[Process] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        start = start_time(pid)
        if start is not None:
            found.add((pid, start))
        todo += children.get(pid, [])
    return found


def alive(processes: set[Process]) -> set[Process]:
    """Those of ``processes`` that still run."""
    return {(pid, start) for pid, start in processes if start_time(pid) == start}


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.1)
