"""Against a real ``prefect server start``: deployments served from a prefect.yaml, runs
triggered through the API the way the UI does, a cron schedule, and reruns that leave
the warehouse unchanged.

Slow (about two minutes): run alone with ``pytest -m server``.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from flows.api_server import local_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.server]

# One logical piece of work: every run below, manual or scheduled, does exactly this.
WORK = {"symbols": ["IBM", "MSFT"], "interval": "1d", "as_of": "2005-01-03T00:00:00+00:00"}
DONE = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Per table: its row count and its primary keys (the ``state_of`` fixture of conftest.py).
WarehouseState = dict[str, tuple[int, set[tuple[object, ...]]]]
StateOf = Callable[[Path], WarehouseState]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def api(base: str, method: str, path: str, body: Any = None) -> Any:
    """One call to the Prefect REST API, as the UI makes it.

    Retried on 503, as Prefect's own client does: the server answers so while its
    SQLite database is busy.
    """
    request = urllib.request.Request(
        f"{base}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or "null")
        except urllib.error.HTTPError as error:
            if error.code != 503 or attempt == 19:
                raise
            time.sleep(1)


def wait_for(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Prefect server, and ``attnviz serve`` serving a manual and an every-minute deployment."""
    home = tmp_path_factory.mktemp("served")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "ATTNVIZ_HOME": str(home / "var"),
    }
    for inherited in ("PREFECT_API_URL", "ATTNVIZ_DB"):  # the served runs use ATTNVIZ_HOME
        env.pop(inherited, None)
    deployments = {
        "deployments": [
            {
                "name": "ingest-manual",
                "entrypoint": "flows/ingest.py:ingest",
                "parameters": WORK,
            },
            {
                "name": "ingest-every-minute",
                "entrypoint": "flows/ingest.py:ingest",
                "parameters": WORK,
                "schedules": [{"cron": "* * * * *", "timezone": "UTC"}],
            },
        ]
    }
    (home / "deployments.yaml").write_text(yaml.safe_dump(deployments))
    timings: dict[str, float] = {}
    started = time.monotonic()
    with local_server(free_port(), log=home / "server.log", env=env) as base:
        timings["server_start_s"] = time.monotonic() - started
        serving = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "attnviz.cli",
                "serve",
                "--file",
                str(home / "deployments.yaml"),
            ],
            env={**env, "PREFECT_API_URL": base},
            stdout=open(home / "serve.log", "wb"),  # noqa: SIM115 (closed with the process)
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            started = time.monotonic()
            found = wait_for(
                lambda: (
                    {
                        d["name"]: d["id"]
                        for d in api(base, "POST", "/deployments/filter", {})
                        if d["name"].startswith("ingest-")
                    }.keys()
                    >= {"ingest-manual", "ingest-every-minute"}
                    and api(base, "POST", "/deployments/filter", {})
                ),
                120,
                "the served deployments",
            )
            timings["deploy_s"] = time.monotonic() - started
            yield {
                "base": base,
                "home": home,
                "ids": {d["name"]: d["id"] for d in found},
                "timings": timings,
            }
        finally:
            stop(serving)
    print("\ntimings against the server:", json.dumps(timings, indent=1))


def run_deployment(served: dict[str, Any], name: str) -> dict[str, Any]:
    """Create a run of a deployment as the UI's Run button does, and wait for it to end."""
    base = served["base"]
    created = api(base, "POST", f"/deployments/{served['ids'][name]}/create_flow_run", {})
    run: dict[str, Any] = wait_for(
        lambda: (r := api(base, "GET", f"/flow_runs/{created['id']}"))["state_type"] in DONE and r,
        240,
        f"flow run {created['id']} of {name}",
    )
    assert run["state_type"] == "COMPLETED", (run["state_name"], run["state"]["message"])
    return run


def settled(served: dict[str, Any], state_of: StateOf) -> WarehouseState:
    """The published snapshot once no run is in progress (the scheduled one may overlap ours).

    A run that ends while another is in progress leaves publishing to that one.
    """
    snapshot = served["home"] / "var" / "warehouse-snapshot.duckdb"
    busy = {"flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}}}
    wait_for(
        lambda: snapshot.exists() and not api(served["base"], "POST", "/flow_runs/filter", busy),
        240,
        "the runs to finish and the snapshot to be published",
    )
    return state_of(snapshot)


def test_a_rerun_through_the_api_leaves_the_warehouse_unchanged(
    served: dict[str, Any], state_of: StateOf
) -> None:
    first = run_deployment(served, "ingest-manual")
    once = settled(served, state_of)
    second = run_deployment(served, "ingest-manual")
    assert settled(served, state_of) == once
    assert once["bars"][0] > 0 and once["runs"][0] == 1

    timings = served["timings"]
    timings["run_to_start_s"] = _seconds(second["start_time"]) - _seconds(second["created"])
    timings["ingest_run_s"] = second["total_run_time"]
    timings["first_run_to_start_s"] = _seconds(first["start_time"]) - _seconds(first["created"])


def test_two_runs_at_once_take_turns_and_both_complete(
    served: dict[str, Any], state_of: StateOf
) -> None:
    base, deployment = served["base"], served["ids"]["ingest-manual"]
    created = [
        api(base, "POST", f"/deployments/{deployment}/create_flow_run", {}) for _ in range(2)
    ]
    for run in created:
        ended = wait_for(
            lambda run=run: (
                (r := api(base, "GET", f"/flow_runs/{run['id']}"))["state_type"] in DONE and r
            ),
            240,
            "two concurrent runs",
        )
        assert ended["state_type"] == "COMPLETED", ended["state"]["message"]
    state = settled(served, state_of)
    assert state["runs"][0] == 1 and state["bars"][0] > 0


def test_the_cron_schedule_creates_and_runs_a_flow_run(served: dict[str, Any]) -> None:
    base, deployment = served["base"], served["ids"]["ingest-every-minute"]

    def completed_scheduled_run() -> dict[str, Any] | None:
        runs = api(
            base,
            "POST",
            "/flow_runs/filter",
            {"flow_runs": {"deployment_id": {"any_": [deployment]}}},
        )
        done = [r for r in runs if r["auto_scheduled"] and r["state_type"] == "COMPLETED"]
        return done[0] if done else None

    run = wait_for(completed_scheduled_run, 180, "a scheduled run to complete")
    assert run["parameters"]["symbols"] == WORK["symbols"]


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def test_the_ui_calls_the_api_of_its_own_port(served: dict[str, Any]) -> None:
    # The UI reads its API address from /ui-settings; on any port but 4200 it used to say
    # "Can't connect to Server API" (or show another server's runs).
    root = served["base"].removesuffix("/api")
    assert not root.endswith(":4200")
    assert api(root, "GET", "/ui-settings")["api_url"] == served["base"]


def test_the_run_form_describes_every_parameter(served: dict[str, Any]) -> None:
    # What the UI's run form shows under each field: the deployment's parameter schema.
    deployment = api(served["base"], "GET", f"/deployments/{served['ids']['ingest-manual']}")
    properties = deployment["parameter_openapi_schema"]["properties"]
    assert {"source", "symbols", "catalogue", "interval"} <= properties.keys()
    assert all(field.get("description") for field in properties.values()), properties
