"""Reruns of the same logical work replace its rows; retries reuse finished steps; backfills."""

from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

from attnviz import config
from attnviz.series import Series
from flows.backfill import backfill
from flows.ingest import ingest
from flows.nightly import nightly
from warehouse.db import WarehouseError, connect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

IBM = [Series(symbol="IBM")]


def sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with closing(connect(read_only=True)) as con:
        return con.execute(query, params or []).fetchall()


def task_states(flow_run_id: UUID | None) -> dict[str, str]:
    """Task name -> state name of one flow run's task runs."""
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    states: dict[str, str] = {}
    for run in runs:
        assert run.state is not None and run.state.name is not None, run.name
        states[run.name.split(" ")[0]] = run.state.name
    return states


def test_an_identical_ingest_rerun_leaves_the_warehouse_as_one_run_did(
    state_of: Callable[[Path], object],
) -> None:
    as_of = datetime(2005, 1, 1, tzinfo=UTC)
    ingest(symbols=["IBM", "MSFT"], as_of=as_of)
    once = state_of(config.warehouse_path())
    ingest(symbols=["MSFT", "IBM"][::-1], as_of=as_of)
    assert state_of(config.warehouse_path()) == once
    assert sql("SELECT status, attempts FROM runs") == [("succeeded", 2)]


def test_a_nightly_rerun_replaces_its_rows_and_reuses_its_training(
    state_of: Callable[[Path], object], catalogue: Callable[..., str]
) -> None:
    as_of = datetime(2012, 1, 2, tzinfo=UTC)
    nightly(catalogue=catalogue(IBM), as_of=as_of)
    once = state_of(config.warehouse_path())
    again = nightly(catalogue=catalogue(IBM), as_of=as_of, return_state=True)
    assert state_of(config.warehouse_path()) == once
    assert sql("SELECT version, status FROM models") == [(1, "active")]
    states = task_states(again.state_details.flow_run_id)
    assert states["train"] == "Cached" and states["analyze"] == "Cached"


def test_a_retry_after_a_failure_resumes_without_training_again(
    state_of: Callable[[Path], object],
    monkeypatch: pytest.MonkeyPatch,
    catalogue: Callable[..., str],
) -> None:
    as_of = datetime(2012, 2, 1, tzinfo=UTC)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patched:
        patched.setattr("tasks.analyze.store_analysis", broken)
        with pytest.raises(OSError, match="disk full"):
            nightly(catalogue=catalogue(IBM), as_of=as_of)
    assert sql("SELECT status, message, attempts FROM runs") == [
        ("failed", "OSError: disk full", 1)
    ]

    retry = nightly(catalogue=catalogue(IBM), as_of=as_of, return_state=True)
    states = task_states(retry.state_details.flow_run_id)
    assert states["train"] == "Cached" and states["analyze"] == "Cached"
    assert sql("SELECT status, attempts FROM runs") == [("succeeded", 2)]
    assert sql("SELECT version, status FROM models") == [(1, "active")]
    assert sql("SELECT count(*) > 0 FROM attention_window") == [(True,)]


def test_a_backfill_rebuilds_a_past_day_with_the_model_active_then(
    state_of: Callable[[Path], object], catalogue: Callable[..., str]
) -> None:
    first, second = datetime(2012, 6, 1, tzinfo=UTC), datetime(2013, 1, 1, tzinfo=UTC)
    nightly(catalogue=catalogue(IBM), as_of=first)
    nightly(catalogue=catalogue(IBM, promotion_margin=1e9), as_of=second)  # v2 replaces v1
    assert sql("SELECT version, status FROM models ORDER BY version") == [
        (1, "retired"),
        (2, "active"),
    ]

    past = datetime(2012, 9, 1, tzinfo=UTC)
    backfill(as_of=past, catalogue=catalogue(IBM))
    once = state_of(config.warehouse_path())
    backfill(as_of=past, catalogue=catalogue(IBM))
    assert state_of(config.warehouse_path()) == once

    [(versions, last_ts)] = sql(
        "SELECT list(DISTINCT w.model_version), max(w.ts) "
        "FROM attention_window w JOIN runs r USING (run_id) WHERE r.flow = 'backfill'"
    )
    assert versions == [1] and last_ts < past  # the model active then, and no bar after it
    [(latest_run_flow,)] = sql(
        "SELECT DISTINCT r.flow FROM latest_attention_window JOIN runs r USING (run_id)"
    )
    assert latest_run_flow == "nightly"  # the backfill of a past day does not hide newer runs

    with pytest.raises(WarehouseError, match="would rewrite the registry's history"):
        nightly(catalogue=catalogue(IBM), as_of=first)
