"""Phase totals: each marked call adds its wall time to its phase, per flow run."""

import threading
import time

import pytest

from tasks.phases import PhaseTotal, phase, phases_markdown, take_totals


@phase("train")
def sleepy(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@phase("validate")
def failing() -> None:
    raise ValueError("bad bars")


def test_calls_add_up_by_phase_in_pipeline_order_and_are_taken_once() -> None:
    take_totals()  # nothing left over from another test
    assert sleepy(0.02) == 0.02
    sleepy(0.01)
    with pytest.raises(ValueError, match="bad bars"):
        failing()  # a task that fails took its time too
    totals = take_totals()
    assert list(totals) == ["validate", "train"]
    assert totals["train"].tasks == 2 and totals["train"].seconds >= 0.03
    assert totals["validate"].tasks == 1 and totals["train"].peak_rss_mb > 0
    assert take_totals() == {}


def test_concurrent_tasks_are_all_counted() -> None:
    take_totals()
    threads = [threading.Thread(target=lambda: [sleepy(0) for _ in range(200)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert take_totals()["train"].tasks == 1600


def test_the_markdown_lists_each_phase_and_the_run() -> None:
    totals = {"ingest": PhaseTotal(1.25, 5, 300.4), "train": PhaseTotal(30.0, 3, 812.6)}
    assert phases_markdown(totals, 40.04, 900.2).splitlines() == [
        "| phase | seconds | tasks | peak RSS (MB) when it ended |",
        "|---|---:|---:|---:|",
        "| ingest | 1.2 | 5 | 300 |",
        "| train | 30.0 | 3 | 813 |",
        "",
        "Run wall time 40.0 s; peak RSS 900 MB. A phase's seconds add up its tasks' wall "
        "times: concurrent tasks (fetches) can exceed the run's span.",
    ]
