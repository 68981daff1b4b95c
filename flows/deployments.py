"""Serve the deployments declared in ``prefect.yaml`` from one process (Prefect's serve).

The same file drives both ways of running attnviz: ``prefect deploy --all`` with a
worker, and ``attnviz serve``, which reads the deployments' entrypoints,
parameters, schedules, tags and descriptions from it, so the two never drift apart.
"""

import os
from pathlib import Path
from typing import Any, cast

import yaml
from prefect import serve
from prefect.deployments.runner import RunnerDeployment
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.schedules import Cron

from attnviz import config

DEPLOYMENTS_FILE = config.REPO_ROOT / "prefect.yaml"


def load_deployments(path: Path = DEPLOYMENTS_FILE) -> list[RunnerDeployment]:
    """The deployments of a ``prefect.yaml`` file, ready to serve.

    Entrypoints are resolved against the repository root, where ``serve`` runs them.
    Schedules are cron expressions, as every attnviz deployment uses.
    """
    spec = yaml.safe_load(path.read_text())
    deployments: list[RunnerDeployment] = []
    for entry in spec["deployments"]:
        flow: Flow[..., Any] = load_flow_from_entrypoint(
            str(config.REPO_ROOT / entry["entrypoint"])
        )
        # Called outside an event loop, Prefect's to_deployment returns the deployment itself.
        deployment = cast(
            RunnerDeployment,
            flow.to_deployment(
                name=entry["name"],
                description=entry.get("description"),
                tags=entry.get("tags"),
                parameters=entry.get("parameters"),
                schedules=[
                    Cron(one["cron"], timezone=one.get("timezone", "UTC"))
                    for one in entry.get("schedules", [])
                ],
            ),
        )
        deployments.append(deployment)
    return deployments


def serve_deployments(path: Path | None = None) -> None:
    """Register the deployments with the Prefect server and run their flow runs until stopped.

    ``path`` defaults to the repository's ``prefect.yaml``. Runs start in the repository
    root; the warehouse path is fixed first, so a relative ``ATTNVIZ_HOME`` still means
    the folder it meant where serve started.
    """
    os.environ["ATTNVIZ_HOME"] = str(config.home().resolve())
    os.chdir(config.REPO_ROOT)
    serve(*load_deployments(path or DEPLOYMENTS_FILE))
