"""Tasks of ingestion: plan what to fetch, fetch it, validate it, load it, summarise it."""

from datetime import datetime
from typing import Any, cast

import polars as pl
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from attnviz.bars import BarDataError
from attnviz.faults import crash_point
from attnviz.quality import Validation, validate_received
from attnviz.series import Series
from attnviz.sources import (
    BarRequest,
    BarSource,
    BatchSource,
    Received,
    SourceError,
    make_source,
)
from tasks.phases import phase
from tasks.turns import open_warehouse
from warehouse.bars import (
    Repair,
    SeriesLoad,
    close_before,
    loaded_before,
    resume_from,
    store_series,
)


@task(name="earlier-load", task_run_name="earlier load {series.label}")
def earlier_load(run_id: str, series: Series) -> SeriesLoad | None:
    """The load of ``series`` an earlier, unfinished attempt at this work committed.

    A rerun after a crash or a failure keeps it, and so leaves the warehouse as one
    attempt would: reading again would start from the watermark that attempt moved
    (see :func:`warehouse.runs.start_run`).
    """
    with open_warehouse() as con:
        done = loaded_before(con, run_id, series.key)
    if done is not None:
        get_run_logger().info(
            "%s: loaded by an earlier, unfinished attempt at this work; kept", series.label
        )
    return done


@task(name="plan-fetch", task_run_name="plan {series.label}")
@phase("ingest")
def plan_fetch(
    series: Series,
    as_of: datetime,
    start: datetime | None,
    end: datetime | None,
    incremental: bool,
    overlap_bars: int,
) -> BarRequest:
    """What to ask the source for: when incremental, from the newest stored bars on.

    The last ``overlap_bars`` stored bars are read again so that a bar the source
    revised after we stored it is corrected.
    """
    if incremental:
        with open_warehouse() as con:
            resume = resume_from(con, *series.key, overlap_bars)
        if resume is not None:
            start = resume if start is None else max(start, resume)
    return BarRequest(series.symbol, series.interval, as_of=as_of, start=start, end=end)


def _retry_unless_bad_data(task: Any, task_run: Any, state: Any) -> bool:
    """Retry unexpected failures only.

    Bad data or a bad request fails the same way every time, and a :class:`SourceError`
    comes after the source's own retries.
    """
    return not isinstance(state.result(raise_on_failure=False), BarDataError | SourceError)


def open_source(name: str, options: dict[str, Any]) -> BarSource:
    """The source ``name`` with its options.

    A ``secret_block`` option names the Prefect Secret block holding its credentials
    (``{"api_key": ..., "api_secret": ...}``), read here so that they never become a
    parameter, a log line or an artifact.
    """
    options = dict(options)
    block = options.pop("secret_block", None)
    if block is not None:
        from prefect.blocks.system import Secret

        # Called outside an event loop, Prefect's load returns the block, not a coroutine.
        secret: object = cast(Secret[Any], Secret.load(block)).get()
        if not (isinstance(secret, dict) and {"api_key", "api_secret"} <= secret.keys()):
            # The message names the block, never its value.
            raise BarDataError(
                f"Secret block {block!r} must hold {{'api_key': ..., 'api_secret': ...}}"
            )
        options["credentials"] = (secret["api_key"], secret["api_secret"])
    return make_source(name, options)


def _log_received(series: Series, request: BarRequest, received: Received) -> None:
    get_run_logger().info(
        "%s: received %d rows (%s), %d of them not closed by %s",
        series.label,
        received.received,
        f"bars from {request.start}" if request.start else "no earlier bars stored",
        received.not_closed,
        request.as_of,
    )


@task(
    name="fetch-bars",
    task_run_name="fetch {series.label}",
    retries=3,
    retry_delay_seconds=[2, 10, 30],
    retry_condition_fn=_retry_unless_bad_data,
    cache_policy=NO_CACHE,
)
@phase("ingest")
def fetch_bars(series: Series, request: BarRequest, options: dict[str, Any]) -> Received:
    """Fetch the closed bars of one series from its source."""
    crash_point("fetch")
    received = open_source(series.source, options).fetch(request)
    _log_received(series, request, received)
    return received


@task(
    name="fetch-batch",
    task_run_name="fetch {series[0].source} {series[0].interval} batch",
    cache_policy=NO_CACHE,
)
@phase("ingest")
def fetch_batch(
    series: list[Series], requests: list[BarRequest], options: dict[str, Any]
) -> dict[str, Received | Exception]:
    """Fetch several series of one source and interval in one request (``fetch_many``).

    The source retries on its own; each symbol's outcome is its bars or its own error,
    so one failed ticker does not fail the others.
    """
    crash_point("fetch")
    source = open_source(series[0].source, options)
    if not isinstance(source, BatchSource):
        raise BarDataError(f"source {series[0].source!r} takes one series per request")
    results = source.fetch_many(requests)
    for one, request in zip(series, requests, strict=True):
        outcome = results[one.symbol]
        if isinstance(outcome, Received):
            _log_received(one, request, outcome)
    return results


@task(name="list-symbols", task_run_name="list {source} {interval} symbols")
def list_symbols(source: str, interval: str, options: dict[str, Any]) -> list[str]:
    """The symbols a source holds at ``interval`` (what ``ingest`` takes without ``symbols``)."""
    return open_source(source, options).symbols(interval)


@task(name="validate-bars", task_run_name="validate {series.label}", cache_policy=NO_CACHE)
@phase("validate")
def validate(series: Series, received: Received, max_step: float) -> Validation:
    """Run the Great Expectations suite on one series' received bars."""
    crash_point("validate")
    previous_close = None
    first_ts = received.bars["ts"].min()
    if isinstance(first_ts, datetime):
        with open_warehouse() as con:
            previous_close = close_before(con, *series.key, first_ts)
    validation = validate_received(received, series.interval, previous_close, max_step)
    for check in validation.checks.filter(~pl.col("success")).iter_rows(named=True):
        get_run_logger().warning(
            "%s: %d rows failed %s", series.label, check["unexpected_count"], check["check"]
        )
    return validation


@task(name="load-bars", task_run_name="load {series.label}", cache_policy=NO_CACHE)
@phase("store")
def load(
    run_id: str,
    series: Series,
    validation: Validation,
    repair: Repair | None = None,
    complete: bool = True,
) -> SeriesLoad:
    """Upsert the good bars and quarantine the rejected ones, in one transaction.

    With ``repair``, stored bars of that range the batch does not hold are removed.
    ``complete``: this is the series' last piece of the run (see
    :func:`warehouse.bars.store_series`); the counts logged are the run's totals so far.
    """
    crash_point("load")
    with open_warehouse() as con:
        result = store_series(
            con,
            run_id,
            series.key,
            validation.good,
            validation.rejected,
            validation.checks,
            validation.not_closed,
            repair,
            complete,
        )
    get_run_logger().info(
        "%s: loaded %d (new %d, revised %d, removed %d), rejected %d, not closed %d",
        series.label,
        result.loaded,
        result.new_bars,
        result.revised_bars,
        result.removed_bars,
        result.rejected,
        result.not_closed,
    )
    return result


@task(name="summarise-ingest")
def summarise(loads: list[SeriesLoad], failures: dict[str, str]) -> str:
    """Publish a markdown artifact with one line per series; returns the markdown."""
    lines = [
        "| series | received | loaded | new | revised | removed | rejected | not closed "
        "| first bar | last bar |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
        *(
            f"| {x.label} | {x.received} | {x.loaded} | {x.new_bars} | {x.revised_bars} "
            f"| {x.removed_bars} | {x.rejected} | {x.not_closed} | {x.first_ts or '-'} "
            f"| {x.last_ts or '-'} |"
            for x in loads
        ),
    ]
    if failures:
        lines += ["", "**Failed series**", "", *(f"- `{k}`: {v}" for k, v in failures.items())]
    markdown = "\n".join(lines)
    create_markdown_artifact(markdown, key="ingest-summary", description="Bars ingested per series")
    return markdown
