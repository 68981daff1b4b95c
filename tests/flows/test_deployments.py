"""The deployments of prefect.yaml: what `attnviz serve` and `prefect deploy` both read."""

import yaml
from prefect.client.schemas.schedules import CronSchedule
from prefect.flows import Flow, load_flow_from_entrypoint

from attnviz import config
from flows.deployments import DEPLOYMENTS_FILE, load_deployments


def test_prefect_yaml_declares_the_scheduled_deployments_with_valid_defaults() -> None:
    spec = yaml.safe_load(DEPLOYMENTS_FILE.read_text())
    entries = {entry["name"]: entry for entry in spec["deployments"]}
    schedules = {
        name: [(s["cron"], s["timezone"]) for s in entry.get("schedules", [])]
        for name, entry in entries.items()
    }
    assert schedules == {
        "ingest-intraday-15min-utc": [("*/15 * * * *", "UTC")],
        "ingest-stocks-1630-new-york": [("30 16 * * 1-5", "America/New_York")],
        "nightly-0200-utc": [("0 2 * * *", "UTC")],
        "backfill": [],
        "backtest": [],
    }
    for name, entry in entries.items():
        assert entry["description"] and "attnviz" in entry["tags"]
        # A schedule card in the UI shows no time zone: the description says it.
        for _, timezone in schedules[name]:
            assert timezone in entry["description"]
        assert entry["work_pool"]["name"] == "attnviz-process"
        flow: Flow[..., object] = load_flow_from_entrypoint(
            str(config.REPO_ROOT / entry["entrypoint"])
        )
        flow.validate_parameters(entry.get("parameters", {}) | {"as_of": "2013-01-01T00:00:00Z"})


def test_serve_builds_the_same_deployments_from_the_file() -> None:
    served = {d.name: d for d in load_deployments()}
    assert set(served) == {
        "ingest-intraday-15min-utc",
        "ingest-stocks-1630-new-york",
        "nightly-0200-utc",
        "backfill",
        "backtest",
    }
    assert served["ingest-intraday-15min-utc"].parameters == {
        "interval": "1h",
        "lookback_bars": 2000,
    }
    assert served["nightly-0200-utc"].entrypoint == "flows/nightly.py:nightly"
    [schedule] = served["ingest-stocks-1630-new-york"].schedules or []
    assert isinstance(schedule.schedule, CronSchedule)
    assert schedule.schedule.cron == "30 16 * * 1-5"
    assert schedule.schedule.timezone == "America/New_York"
    properties = served["ingest-intraday-15min-utc"]._parameter_openapi_schema.properties
    assert properties["max_rejected_share"]["maximum"] == 1  # the UI form refuses a bad share


def test_every_parameter_of_every_deployment_has_a_description_in_the_run_form() -> None:
    for deployment in load_deployments():
        properties = deployment._parameter_openapi_schema.properties
        assert properties, deployment.name
        undescribed = [name for name, field in properties.items() if not field.get("description")]
        assert not undescribed, f"{deployment.name}: {undescribed}"
