"""Ingest bars: fetch from a source, validate with Great Expectations, load into DuckDB.

Fetches fan out as concurrent tasks (they wait on sources); validation and loads
then run one series at a time, because the warehouse has a single writer.
A series that fails, or whose rejected share is over the limit, does not stop
the others: their good bars load, and the run fails at the end naming it.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from attnviz.series import Series
from tasks.ingest import fetch_bars, load, plan_fetch, summarise, validate
from tasks.runs import close_run, open_run
from warehouse.bars import SeriesLoad

DEFAULT_MAX_REJECTED_SHARE = 0.05
DEFAULT_MAX_STEP = 3.0
DEFAULT_OVERLAP_BARS = 3


class IngestError(RuntimeError):
    """A run ended with series that failed or were rejected beyond the limit."""


@contextmanager
def recorded_run(flow_name: str, parameters: dict[str, Any], as_of: datetime) -> Iterator[str]:
    """Open the run's row in ``runs``, and close it as succeeded or failed with the reason."""
    run_id = open_run(flow_name, parameters, as_of)
    try:
        yield run_id
    except BaseException as error:
        close_run(run_id, "failed", f"{type(error).__name__}: {error}")
        raise
    close_run(run_id, "succeeded")


def ingest_series(
    run_id: str,
    series: list[Series],
    *,
    as_of: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    overlap_bars: int = DEFAULT_OVERLAP_BARS,
    max_step: float = DEFAULT_MAX_STEP,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, dict[str, Any]] | None = None,
) -> list[SeriesLoad]:
    """Fetch, validate and load every series; raise :class:`IngestError` if any went wrong."""
    fetches: dict[Series, PrefectFuture] = {}
    for one in series:
        request = plan_fetch(one, as_of, start, end, incremental, overlap_bars)
        options = (source_options or {}).get(one.source, {})
        fetches[one] = fetch_bars.submit(one, request, options)

    loads: list[SeriesLoad] = []
    failures: dict[str, str] = {}
    for one, fetched in fetches.items():
        try:
            received = fetched.result()
        except Exception as error:
            failures[one.label] = f"{type(error).__name__}: {error}"
            continue
        loads.append(load(run_id, one, validate(one, received, max_step)))

    for done in loads:
        if done.received and done.rejected / done.received > max_rejected_share:
            label = f"{done.source}/{done.symbol}/{done.interval}"
            failures[label] = (
                f"{done.rejected} of {done.received} rows rejected "
                f"({done.rejected / done.received:.1%} > {max_rejected_share:.1%}); "
                "see bars_rejected and validation_results"
            )
    summarise(loads, failures)
    if failures:
        detail = "; ".join(f"{label}: {why}" for label, why in failures.items())
        raise IngestError(f"{len(failures)} of {len(series)} series failed: {detail}")
    return loads


@flow(name="ingest", flow_run_name="ingest {source} {interval}")
def ingest(
    source: str = "sample",
    symbols: list[str] | None = None,
    interval: str = "1d",
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    incremental: bool = True,
    overlap_bars: int = DEFAULT_OVERLAP_BARS,
    max_step: float = DEFAULT_MAX_STEP,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, Any] | None = None,
) -> list[SeriesLoad]:
    """Ingest some symbols of one source and interval.

    Parameters
    ----------
    source
        ``sample`` (the committed data) or ``files`` (with ``source_options={"path": ...}``).
    symbols
        Tickers to ingest; default: every daily sample stock.
    interval
        Bar interval, e.g. ``1d`` or ``1h``.
    start, end
        Bounds on bar-open time (``start <= ts < end``); ``None`` is unbounded.
    as_of
        Only bars closed by then are taken (default now). The sample source replays history to it.
    incremental
        Resume from each series' newest stored bar (less ``overlap_bars``) instead of ``start``.
    overlap_bars
        Bars re-read before the watermark, to pick up revised bars.
    max_step
        Largest allowed ratio between consecutive closes before a bar is flagged.
    max_rejected_share
        The run fails (after loading the good bars) if a series' rejected share is above this.
    source_options
        Options of the source, e.g. ``{"path": "bars/", "timezone": "America/New_York"}``.
    """
    as_of = as_of or datetime.now(UTC)
    symbols = symbols or ["AAPL", "GOOG", "IBM", "MSFT"]
    parameters = {
        "source": source, "symbols": symbols, "interval": interval, "start": start, "end": end,
        "incremental": incremental, "overlap_bars": overlap_bars, "max_step": max_step,
        "max_rejected_share": max_rejected_share, "source_options": source_options,
    }  # fmt: skip
    with recorded_run("ingest", parameters, as_of) as run_id:
        series = [Series(source=source, symbol=symbol, interval=interval) for symbol in symbols]
        return ingest_series(
            run_id,
            series,
            as_of=as_of,
            start=start,
            end=end,
            incremental=incremental,
            overlap_bars=overlap_bars,
            max_step=max_step,
            max_rejected_share=max_rejected_share,
            source_options={source: source_options or {}},
        )
