"""Tasks that open and close a run's row in the warehouse."""

import uuid
from contextlib import closing
from datetime import datetime
from typing import Any

from prefect import task
from prefect.runtime import flow_run

from warehouse.db import connect
from warehouse.runs import finish_run, start_run


def current_run_id() -> str:
    """The Prefect flow run id, so a warehouse row links to its run in the UI."""
    return str(flow_run.id or uuid.uuid4())


@task(name="open-run")
def open_run(flow: str, parameters: dict[str, Any], as_of: datetime) -> str:
    """Record the run as running and return its id."""
    run_id = current_run_id()
    with closing(connect()) as con:
        start_run(con, run_id, flow, parameters, as_of)
    return run_id


@task(name="close-run")
def close_run(run_id: str, status: str, message: str | None = None) -> None:
    """Record how the run ended, with its counts."""
    with closing(connect()) as con:
        finish_run(con, run_id, status, message)
