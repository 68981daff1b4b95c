"""Ingest bars: fetch from a source, validate with Great Expectations, load into DuckDB.

Fetches fan out as concurrent tasks (they wait on sources); validation and loads
then run one series at a time, because the warehouse has a single writer.
A series that fails, or whose rejected share is over the limit, does not stop
the others: their good bars load, and the run fails at the end naming it.
"""

from datetime import datetime
from typing import Annotated, Any

from prefect import flow
from prefect.futures import PrefectFuture
from pydantic import Field

from attnviz.bars import shift
from attnviz.quality import DEFAULT_MAX_STEP
from attnviz.series import Interval, Series, Symbol
from attnviz.sources import SourceName
from tasks.ingest import (
    earlier_load,
    fetch_bars,
    list_symbols,
    load,
    plan_fetch,
    summarise,
    validate,
)
from tasks.runs import recorded_run, scheduled_as_of
from warehouse.bars import Repair, SeriesLoad

DEFAULT_MAX_REJECTED_SHARE = 0.05
DEFAULT_OVERLAP_BARS = 3

# Validation limits, typed so that the Prefect UI refuses a value out of range.
MaxStep = Annotated[float, Field(gt=1)]
MaxRejectedShare = Annotated[float, Field(ge=0, le=1)]


class IngestError(RuntimeError):
    """A run ended with series that failed or were rejected beyond the limit."""


def ingest_series(
    run_id: str,
    series: list[Series],
    *,
    as_of: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    overlap_bars: int = DEFAULT_OVERLAP_BARS,
    lookback_bars: int | None = None,
    max_step: float = DEFAULT_MAX_STEP,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, dict[str, Any]] | None = None,
    repair: bool = False,
) -> list[SeriesLoad]:
    """Fetch, validate and load every series; raise :class:`IngestError` if any went wrong.

    A series an earlier attempt at the same work loaded is kept as it was loaded.

    With ``repair`` (which reads the whole requested range, ignoring the watermark), each
    series' stored bars in that range that the source no longer has are removed.
    """
    fetches: dict[Series, PrefectFuture] = {}
    repairs: dict[Series, Repair] = {}
    loads: list[SeriesLoad] = []
    for one in series:
        done = earlier_load(run_id, one)
        if done is not None:
            loads.append(done)
            continue
        first = start
        if first is None and lookback_bars is not None:
            first = shift(as_of, -lookback_bars, one.interval)
        request = plan_fetch(one, as_of, first, end, incremental and not repair, overlap_bars)
        if repair:
            repairs[one] = Repair(request.start, min(request.end or as_of, as_of))
        options = (source_options or {}).get(one.source, {})
        fetches[one] = fetch_bars.submit(one, request, options)

    failures: dict[str, str] = {}
    for one, fetched in fetches.items():
        try:
            received = fetched.result()
        except Exception as error:
            failures[one.label] = f"{type(error).__name__}: {error}"
            continue
        loads.append(load(run_id, one, validate(one, received, max_step), repairs.get(one)))

    for done in loads:
        if done.received and done.rejected / done.received > max_rejected_share:
            failures[done.label] = (
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
    source: SourceName = "sample",
    symbols: list[Symbol] | None = None,
    interval: Interval = "1d",
    start: datetime | None = None,
    end: datetime | None = None,
    as_of: datetime | None = None,
    incremental: bool = True,
    overlap_bars: Annotated[int, Field(ge=0)] = DEFAULT_OVERLAP_BARS,
    lookback_bars: Annotated[int, Field(ge=1)] | None = None,
    max_step: MaxStep = DEFAULT_MAX_STEP,
    max_rejected_share: MaxRejectedShare = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, Any] | None = None,
    repair: bool = False,
) -> list[SeriesLoad]:
    """Ingest some symbols of one source and interval.

    Parameters
    ----------
    source
        ``sample`` (the committed data) or ``files`` (with ``source_options={"path": ...}``).
    symbols
        Tickers to ingest; default: every symbol the source holds at ``interval``.
    interval
        Bar interval, e.g. ``1d`` or ``1h``.
    start, end
        Bounds on bar-open time (``start <= ts < end``); ``None`` is unbounded.
    as_of
        Only bars closed by then are taken. Default: the run's scheduled time floored to
        the interval, so a retry or a second run in the same interval is the same work.
    incremental
        Resume from each series' newest stored bar (less ``overlap_bars``) instead of ``start``.
    overlap_bars
        Bars re-read before the watermark, to pick up revised bars.
    lookback_bars
        Without ``start``, how many intervals back from ``as_of`` a series with no stored
        bars (or a full reload) starts; default: all the source has.
    max_step
        Largest allowed ratio between consecutive closes before a bar is flagged.
    max_rejected_share
        The run fails (after loading the good bars) if a series' rejected share is above this.
    source_options
        Options of the source, e.g. ``{"path": "bars/", "timezone": "America/New_York",
        "ts_format": "%m/%d/%Y"}`` for files (see :class:`attnviz.sources.files.FileSource`).
    repair
        Re-read ``start`` .. ``end`` whatever is stored, and remove the stored bars of that
        range the source no longer has (bars loaded wrong). Implies ``incremental=False``.
    """
    as_of = as_of or scheduled_as_of(interval)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"start {start} is not before end {end}: no bar could be taken")
    symbols = symbols or list_symbols(source, interval, source_options or {})
    parameters = {
        "source": source, "symbols": symbols, "interval": interval, "start": start, "end": end,
        "incremental": incremental, "overlap_bars": overlap_bars, "lookback_bars": lookback_bars,
        "max_step": max_step, "max_rejected_share": max_rejected_share,
        "source_options": source_options, "repair": repair,
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
            lookback_bars=lookback_bars,
            max_step=max_step,
            max_rejected_share=max_rejected_share,
            source_options={source: source_options or {}},
            repair=repair,
        )
