"""A run's life in the warehouse: its default as-of, its ``runs`` row, its end however it ends.

The default as-of comes from the flow run's scheduled start, which the tests pin in
Prefect's runtime (its ``PREFECT__RUNTIME__FLOW_RUN__...`` variables cannot stand in for
a time). ``recorded_run`` runs its steps as Prefect tasks, so it is tried inside a tiny flow.
"""

from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prefect import flow
from prefect.runtime import flow_run

from attnviz import config
from tasks.runs import recorded_run, scheduled_as_of
from warehouse.db import connect
from warehouse.runs import work_key

AS_OF = datetime(2024, 2, 1, tzinfo=UTC)
PARAMETERS = {"symbols": ["IBM"], "interval": "1d"}


def schedule_at(moment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``moment`` (ISO 8601) the scheduled start of the flow run, as Prefect tells it."""
    scheduled = datetime.fromisoformat(moment)
    monkeypatch.setitem(flow_run.FIELDS, "scheduled_start_time", lambda: scheduled)


@pytest.mark.parametrize(
    ("scheduled", "interval", "as_of"),
    [
        ("2024-03-05T14:37:12+00:00", "1d", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05T00:00:00+00:00", "1d", datetime(2024, 3, 5, tzinfo=UTC)),  # on the grid
        ("2024-03-05T23:59:59+00:00", "1d", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05T14:37:12+00:00", "1h", datetime(2024, 3, 5, 14, tzinfo=UTC)),
        ("2024-03-05T14:37:12+00:00", "15m", datetime(2024, 3, 5, 14, 30, tzinfo=UTC)),
        ("2024-03-05T14:37:12+00:00", "1w", datetime(2024, 3, 4, tzinfo=UTC)),  # a Monday
        ("2024-03-05T14:37:12+00:00", "1M", datetime(2024, 3, 1, tzinfo=UTC)),
        # A schedule in another zone is floored on the UTC grid, where bars close.
        ("2024-03-05T01:30:00+05:00", "1d", datetime(2024, 3, 4, tzinfo=UTC)),
    ],
)
def test_the_default_as_of_is_the_scheduled_start_floored_to_the_interval(
    scheduled: str, interval: str, as_of: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule_at(scheduled, monkeypatch)
    floored = scheduled_as_of(interval)
    assert floored == as_of and floored.utcoffset() == timedelta(0)


def test_the_next_interval_is_other_work(monkeypatch: pytest.MonkeyPatch) -> None:
    schedule_at("2024-03-05T23:59:59+00:00", monkeypatch)
    late = scheduled_as_of("1d")
    schedule_at("2024-03-06T00:00:00+00:00", monkeypatch)
    assert scheduled_as_of("1d") == late + timedelta(days=1)


@flow(name="tiny-recorded-run")
def tiny_run(failure: str | None = None) -> str:
    """Record the work (``tiny``, PARAMETERS, AS_OF); fail inside it with ``failure`` if given."""
    with recorded_run("tiny", PARAMETERS, AS_OF) as run_id:
        if failure is not None:
            raise ValueError(failure)
    return run_id


def recorded(database: Path) -> list[tuple[str, str, str | None]]:
    """(run_id, status, message) of every run recorded in ``database``."""
    with closing(connect(database, read_only=True)) as con:
        rows = con.execute("SELECT run_id, status, message FROM runs ORDER BY run_id")
        return [(run_id, status, message) for run_id, status, message in rows.fetchall()]


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_is_recorded_under_its_work_key_and_published_as_succeeded() -> None:
    run_id = tiny_run()
    assert run_id == work_key("tiny", PARAMETERS, AS_OF)
    assert recorded(config.warehouse_path()) == [(run_id, "succeeded", None)]
    # Published for readers once the run has let go of the warehouse: no run is in progress.
    assert recorded(config.snapshot_path()) == [(run_id, "succeeded", None)]


@pytest.mark.usefixtures("prefect_harness")
def test_a_failed_run_is_recorded_as_failed_with_its_reason_and_its_error_raised() -> None:
    with pytest.raises(ValueError, match=r"^no bars for IBM$"):
        tiny_run("no bars for IBM")
    failed = [(work_key("tiny", PARAMETERS, AS_OF), "failed", "ValueError: no bars for IBM")]
    assert recorded(config.warehouse_path()) == failed
    assert recorded(config.snapshot_path()) == failed  # readers see how it ended


@pytest.mark.usefixtures("prefect_harness")
def test_a_snapshot_that_cannot_be_published_after_a_failure_does_not_hide_the_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def disk_full(*args: object) -> bool:
        raise OSError("No space left on device")

    monkeypatch.setattr("tasks.runs.publish_snapshot", disk_full)
    with pytest.raises(ValueError, match=r"^no bars for IBM$"):
        tiny_run("no bars for IBM")
    assert recorded(config.warehouse_path())[0][1:] == ("failed", "ValueError: no bars for IBM")
    assert "snapshot not published after the failed run: No space left on device" in caplog.text
