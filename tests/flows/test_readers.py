"""Readers keep working while a nightly run writes, and never see a run half done."""

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from processes import wait_for

from attnviz import config, faults
from catalogues import sample_series
from flows.nightly import nightly

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

SERIES = [sample_series()[0], sample_series()[-1]]  # a daily and an hourly series


# What a BI tool or notebook does: open the snapshot read-only, query, close; every 100 ms.
READER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import duckdb
    snapshot, stop, out = (Path(arg) for arg in sys.argv[1:])
    with out.open("w") as log:
        while True:
            done = stop.exists()  # read once more after the stop sign: the final state
            try:
                with duckdb.connect(str(snapshot), read_only=True) as con:
                    runs = con.execute(
                        "SELECT r.run_id, r.status, count(w.ts), count(DISTINCT w.symbol) "
                        "FROM runs r LEFT JOIN attention_window w USING (run_id) "
                        "WHERE r.flow = 'nightly' GROUP BY ALL ORDER BY 1"
                    ).fetchall()
                print(json.dumps({"runs": runs}), file=log, flush=True)
            except Exception as e:
                print(json.dumps({"error": f"{type(e).__name__}: {e}"}), file=log, flush=True)
            if done:
                break
            time.sleep(0.1)
    """
)


def reads_done(out: Path) -> int:
    """How many reads the reader has finished: it writes a line after each."""
    return out.read_text().count("\n") if out.exists() else 0


def stage_modules() -> list[ModuleType]:
    """The task modules that call :func:`attnviz.faults.crash_point` as each stage begins."""
    return [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("tasks.") and getattr(module, "crash_point", None) is faults.crash_point
    ]


def test_a_reader_polling_during_a_nightly_sees_whole_runs_and_no_errors(
    tmp_path: Path, catalogue: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nightly(catalogue=catalogue(SERIES), as_of=datetime(2030, 1, 1, tzinfo=UTC))
    stop, out = tmp_path / "stop", tmp_path / "reads.jsonl"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(config.snapshot_path()), str(stop), str(out)]
    )
    # As each stage of the second run begins, the run waits for a read that began after it
    # did (the read in progress may have begun before): reads in the middle of the run,
    # however fast the machine, up to the moment it publishes.
    during: dict[str, list[int]] = {}

    def read_now(stage: str) -> None:
        done = reads_done(out)
        wait_for(lambda: reads_done(out) >= done + 2, 60, f"a read as {stage} begins")
        during.setdefault(stage, []).append(done + 1)

    for module in stage_modules():
        monkeypatch.setattr(module, "crash_point", read_now)
    try:
        nightly(catalogue=catalogue(SERIES), as_of=datetime(2030, 1, 2, tzinfo=UTC))
    finally:
        stop.touch()
        reader.wait(30)
    reads = [json.loads(line) for line in out.read_text().splitlines()]
    assert reads and not [read for read in reads if "error" in read]
    states = {json.dumps(read["runs"]) for read in reads}
    finished = [json.loads(state) for state in states]
    # Only two states are ever visible: after the first run, and after the second.
    assert len(states) <= 2
    final = max(finished, key=len)
    assert len(final) == 2 and all(status == "succeeded" for _, status, _, _ in final)
    assert all(symbols == 2 for *_, symbols in final)  # both series, never one of them
    for state in finished:
        assert state == final[: len(state)]
    # While the second run loaded, stored and published, readers saw the first run, whole.
    assert {"load", "store", "publish"} <= during.keys()
    assert all(reads[read]["runs"] == final[:1] for made in during.values() for read in made)
