from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)

from attnviz.analysis import AnalysisConfig
from attnviz.importance import explained
from attnviz.sources import BarRequest
from attnviz.sources.sample import SampleSource
from catalogues import sample_series
from flows.nightly import nightly
from warehouse.db import connect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]


DAY = datetime(2030, 1, 1, tzinfo=UTC)  # every run stands at a set day, never today


def table_counts() -> dict[str, int]:
    with closing(connect(read_only=True)) as con:
        return {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            for table in ("bars", "bars_rejected", "validation_results", "run_series")
        }


def test_nightly_loads_every_sample_series_and_a_second_run_changes_no_bars(
    catalogue: Callable[..., str],
) -> None:
    expected = {
        (s.symbol, s.interval): SampleSource()
        .fetch(BarRequest(s.symbol, s.interval, as_of=DAY))
        .bars.height
        for s in sample_series()
    }

    first = nightly(catalogue=catalogue(), as_of=DAY).loads
    with closing(connect(read_only=True)) as con:
        stored = dict(
            ((symbol, interval), n)
            for symbol, interval, n in con.execute(
                "SELECT symbol, interval, count(*) FROM bars WHERE source = 'sample' GROUP BY ALL"
            ).fetchall()
        )
        [run] = con.execute("SELECT status, received, loaded, rejected FROM runs").fetchall()
    assert stored == expected
    assert run == ("succeeded", sum(expected.values()), sum(expected.values()), 0)
    assert [load.new_bars for load in first] == [
        expected[(s.symbol, s.interval)] for s in sample_series()
    ]
    after_first = table_counts()

    second = nightly(catalogue=catalogue(), as_of=DAY + timedelta(days=1)).loads
    assert table_counts()["bars"] == after_first["bars"]
    assert all(load.new_bars == 0 and load.revised_bars == 0 for load in second)
    # Incremental: the second run re-read only the overlap, not the history.
    assert all(load.received == 3 for load in second)
    with closing(connect(read_only=True)) as con:
        statuses = con.execute("SELECT status FROM runs").fetchall()
    assert statuses == [("succeeded",), ("succeeded",)]


def test_second_nightly_registers_a_new_version_or_keeps_the_old_with_a_reason(
    catalogue: Callable[..., str],
) -> None:
    first = nightly(catalogue=catalogue(sample_series()[:2]), as_of=DAY)
    assert [(model.version, model.status) for model in first.models] == [
        (1, "active"),
        (1, "active"),
    ]
    assert all(Path(model.checkpoint).exists() for model in first.models)
    second = nightly(catalogue=catalogue(sample_series()[:2]), as_of=DAY + timedelta(days=1))
    with closing(connect(read_only=True)) as con:
        rows = con.execute(
            "SELECT name, version, status, status_reason, previous_val_loss "
            "FROM models ORDER BY name, version"
        ).fetchall()
        runs = con.execute("SELECT count(DISTINCT run_id) FROM models").fetchall()
    assert len(rows) == 4 and runs == [(2,)]
    for model in second.models:
        assert model.version == 2 and model.status in {"active", "rejected"}
        assert "previous_active" in model.metrics  # judged against the version it would replace
    for name in {r[0] for r in rows}:
        v1, v2 = (r for r in rows if r[0] == name)
        assert v2[4] is not None  # the active model's loss on the new validation windows
        assert (v1[2], v2[2]) in {("retired", "active"), ("active", "rejected")}
        assert v2[3]
    # The second night fine-tunes the first night's versions instead of starting over.
    assert [(m.training, m.warm_from, m.training_reason) for m in first.models] == [
        ("full", None, "no active version to start from")
    ] * 2
    assert [(m.training, m.warm_from, m.full_trained_at) for m in second.models] == [
        ("warm", 1, DAY)
    ] * 2
    assert all(m.training_reason.startswith("fine-tunes v1 ") for m in second.models)


def test_nightly_explains_every_timestep_of_the_evaluation_period(
    catalogue: Callable[..., str], quick: dict[str, Any]
) -> None:
    report = nightly(catalogue=catalogue(sample_series()[:1]), as_of=DAY)
    [model] = report.models
    with closing(connect(read_only=True)) as con:
        [(test_start,)] = con.execute("SELECT test_start FROM models").fetchall()
        expected = (
            con.execute(
                "SELECT count(*) FROM bars WHERE symbol = 'AAPL' AND ts >= ? ", [test_start]
            ).fetchall()[0][0]
            - quick["features"].horizon
        )
        counts = {
            table: con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            for table in (
                "attention_window",
                "attention_timestep",
                "feature_attribution",
                "position_importance",
            )
        }
        figures = con.execute(
            "SELECT kind, path, width, height FROM figures ORDER BY kind"
        ).fetchall()
        names = con.execute(
            "SELECT DISTINCT model_name, model_version FROM attention_window"
        ).fetchall()
        latest = con.execute("SELECT count(*) FROM latest_attention_window").fetchall()[0][0]
        explained_windows = con.execute(
            "SELECT count(*) FILTER (WHERE has_attention_flow),"
            " count(*) FILTER (WHERE has_integrated_gradients) FROM attention_window"
        ).fetchall()
    assert (
        counts["attention_window"]
        == expected
        == report.analytics["sample/AAPL/1d"]["attention_window"]
    )
    assert counts["attention_timestep"] == expected * 1 * (
        2 + 1
    )  # one layer, two heads and their mean
    # Flow and Integrated Gradients on the newest windows and a sample of the older ones.
    settings = AnalysisConfig()
    sample = int(explained(expected, settings.explain_newest, settings.explain_every).sum())
    assert explained_windows == [(sample, sample)] and 0 < sample < expected
    assert counts["feature_attribution"] == (2 * expected + sample) * 8
    assert counts["position_importance"] == (expected + 2 * sample) * 20
    assert names == [(model.name, model.version)] and latest == expected
    assert [kind for kind, *_ in figures] == [
        "attention_grid",
        "attribution",
        "equity_curves",
        "flow",
        "heads",
        "random_distribution",
        "rollout",
        "sharpe_by_percentile",
        "timeline",
    ]
    for _, path, width, height in figures:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and width > 100 and height > 100


def test_nightly_publishes_its_summaries_and_records_its_phases(
    catalogue: Callable[..., str],
) -> None:
    state = nightly(catalogue=catalogue(sample_series()[:1]), as_of=DAY, return_state=True)
    flow_run_id = state.state_details.flow_run_id
    assert flow_run_id is not None
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["ingest-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert artifacts and artifacts[0].type == "markdown"
    markdown = artifacts[0].data
    assert isinstance(markdown, str)
    assert "| sample/AAPL/1d | 3270 | 3270 | 3270 | 0 | 0 |" in markdown

    # Where its time and memory went: in the warehouse and in the run's summary.
    with closing(connect(read_only=True)) as con:
        phases = con.execute(
            "SELECT phase, seconds, tasks, peak_rss_mb FROM run_phases ORDER BY ALL"
        ).fetchall()
        [(peak, span)] = con.execute(
            "SELECT peak_rss_mb, epoch(ended_at - started_at) FROM runs"
        ).fetchall()
    # One series: a fetch and a plan, its validation, the bars' load and the two stores
    # of the analysis and the backtest, two renders, the training plan, the fit and its
    # registration. The fit and the analysis are cached when an earlier test did them.
    counted = {phase: n for phase, _, n, _ in phases}
    work = {"backtest": 1, "ingest": 2, "render": 2, "store": 3, "validate": 1}
    assert {phase: counted[phase] for phase in work} == work
    assert counted["train"] in {2, 3} and counted.get("analyse", 0) in {0, 1}
    assert all(0 < seconds < span for _, seconds, _, _ in phases)
    assert all(0 < at_end <= peak for _, _, _, at_end in phases)
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["run-summary"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    assert isinstance(artifact.data, str) and "| train |" in artifact.data
    assert f"peak RSS {peak:.0f} MB" in artifact.data


def test_nightly_backtests_every_strategy_and_publishes_the_comparison(
    catalogue: Callable[..., str],
) -> None:
    state = nightly(catalogue=catalogue(sample_series()[:2]), as_of=DAY, return_state=True)
    report = state.result()
    with closing(connect(read_only=True)) as con:
        strategies = con.execute(
            "SELECT symbol, count(*), count(*) FILTER (WHERE chosen) FROM backtest_strategies "
            "GROUP BY symbol ORDER BY symbol"
        ).fetchall()
        windows = con.execute(
            "SELECT symbol, count(*) FROM attention_window GROUP BY symbol ORDER BY symbol"
        ).fetchall()
        signals = con.execute(
            "SELECT symbol, strategy, count(*) FROM signals GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        verdicts = con.execute(
            "SELECT symbol, strategy, significance FROM strategy_comparison WHERE chosen"
        ).fetchall()
        shares = con.execute("SELECT max(collapse_share) FROM flag_shares").fetchall()
    # buy and hold, unfiltered, the LSTM, five filters, three chapter rules, random draws.
    assert strategies == [("AAPL", 12, 1), ("GOOG", 12, 1)]
    per_symbol = dict(windows)
    assert {(symbol, n) for symbol, _, n in signals} == set(per_symbol.items())
    assert len(signals) == 2 * 11
    for _, strategy, significance in verdicts:
        assert strategy.startswith("filtered_p") and "unfiltered" in significance
    assert shares[0][0] < 0.5
    assert report.backtests.filter(report.backtests["chosen"]).height == 2
    with get_client(sync_client=True) as client:
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["strategy-comparison"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert artifact.type == "table"
