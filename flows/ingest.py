"""Ingest bars: fetch from a source, validate with Great Expectations, load into DuckDB.

Fetches fan out as concurrent tasks (they wait on sources); a source that serves
several tickers per request (yfinance) gets one request for a group of series.
Validation and loads then run one series at a time, because the warehouse has a
single writer. A long range is read in pieces of ``chunk_bars`` bars, each loaded
in its own transaction, so memory stays bounded and a run killed half-way resumes
from what it loaded. A series that fails, or whose rejected share is over the
limit, does not stop the others: their good bars load, and the run fails at the end
naming it.
"""

from typing import Annotated, Any

from prefect import flow
from prefect.runtime import flow_run
from pydantic import Field

from attnviz import config
from attnviz.bars import interval_duration
from attnviz.catalogue import Entry, load_catalogue
from attnviz.quality import (
    DEFAULT_MAX_REJECTED_SHARE,
    DEFAULT_MAX_STEP,
    MaxRejectedShare,
    MaxStep,
)
from attnviz.series import Interval, Moment, Symbol
from attnviz.sources import SourceName
from flows.steps import DEFAULT_CHUNK_BARS, DEFAULT_OVERLAP_BARS, ingest_series
from tasks.ingest import (
    list_symbols,
)
from tasks.runs import recorded_run, scheduled_as_of
from warehouse.bars import SeriesLoad


def _run_name() -> str:
    """``ingest bybit 1h``, or ``ingest catalogue`` for the catalogue's series."""
    parameters = flow_run.parameters
    parts = ("ingest", parameters.get("source") or "catalogue", parameters.get("interval"))
    return " ".join(str(part) for part in parts if part)


@flow(name="ingest", flow_run_name=_run_name)
def ingest(
    source: SourceName | None = None,
    symbols: list[Symbol] | None = None,
    interval: Interval | None = None,
    start: Moment | None = None,
    end: Moment | None = None,
    as_of: Moment | None = None,
    incremental: bool = True,
    overlap_bars: Annotated[int, Field(ge=0)] = DEFAULT_OVERLAP_BARS,
    lookback_bars: Annotated[int, Field(ge=1)] | None = None,
    max_step: MaxStep = DEFAULT_MAX_STEP,
    max_rejected_share: MaxRejectedShare = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, Any] | None = None,
    repair: bool = False,
    catalogue: str | None = None,
    chunk_bars: Annotated[int, Field(ge=1)] = DEFAULT_CHUNK_BARS,
) -> list[SeriesLoad]:
    """Fetch, validate and load bars: the catalogue's series, or some symbols of one source.

    Args:
        source: Source to read (sample, files, bybit, yfinance). Empty: the catalogue's series.
        symbols: Tickers to ingest. Default: every catalogue series (of the source, if given),
            or every symbol the source holds.
        interval: Bar interval, e.g. 1d or 1h. Default: 1d with a source; every interval of
            the catalogue without one.
        start: First bar-open time to take (start <= ts). Empty: from the stored bars on.
        end: Take bars opening before this (ts < end). Empty: up to the as-of.
        as_of: Only bars closed by then are taken. Default: the scheduled time floored to
            the interval, so a retry in the same interval is the same work.
        incremental: Resume each series from its newest stored bar (less overlap_bars).
        overlap_bars: Stored bars read again before the newest, to pick up revised bars.
        lookback_bars: Without start: how many bars back a series with nothing stored starts.
        max_step: Largest ratio between consecutive closes (or a bar's high and low) allowed.
        max_rejected_share: The run fails (after loading the good bars) if a series' share
            of rejected rows is above this.
        source_options: Options of the source over the catalogue's, e.g. {"path": "bars/"}
            for files or {"category": "spot"} for bybit.
        repair: Re-read start..end whatever is stored, and remove the stored bars of that
            range the source no longer has (bars loaded wrong). Implies a full read.
        catalogue: Catalogue file (YAML). Default: $ATTNVIZ_CATALOGUE or catalogues/sample.yaml.
        chunk_bars: A long range is read, validated and loaded this many bars at a time.
    """
    if start is not None and end is not None and start >= end:
        raise ValueError(f"start {start} is not before end {end}: no bar could be taken")
    chosen = load_catalogue(catalogue or config.catalogue_path())
    if source is None:
        entries = chosen.select(symbols=symbols, intervals=None if interval is None else [interval])
    else:
        interval = interval or "1d"
        shared = {**chosen.sources.get(source, {}), **(source_options or {})}
        symbols = (
            symbols
            or [entry.symbol for entry in chosen.select(sources=[source], intervals=[interval])]
            or list_symbols(source, interval, shared)
        )
        entries = [
            Entry(source=source, symbol=symbol, interval=interval, options=shared)
            for symbol in symbols
        ]
    if not entries:
        raise ValueError(f"the catalogue has no series at interval {interval}")
    # As-of: floored to the finest interval, so that no series loses a closed bar.
    finest = min((entry.interval for entry in entries), key=interval_duration)
    as_of = as_of or scheduled_as_of(finest)
    parameters = {
        "series": [entry.model_dump(mode="json") for entry in entries], "start": start,
        "end": end, "incremental": incremental, "overlap_bars": overlap_bars,
        "lookback_bars": lookback_bars, "max_step": max_step,
        "max_rejected_share": max_rejected_share, "repair": repair, "chunk_bars": chunk_bars,
    }  # fmt: skip
    with recorded_run("ingest", parameters, as_of) as run_id:
        return ingest_series(
            run_id,
            entries,
            as_of=as_of,
            start=start,
            end=end,
            incremental=incremental,
            overlap_bars=overlap_bars,
            lookback_bars=lookback_bars,
            max_step=max_step,
            max_rejected_share=max_rejected_share,
            chunk_bars=chunk_bars,
            repair=repair,
        )
