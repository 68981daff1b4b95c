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

from datetime import datetime
from typing import Annotated, Any

from prefect import flow
from prefect.futures import PrefectFuture
from prefect.runtime import flow_run
from pydantic import Field

from attnviz import config
from attnviz.bars import interval_duration, shift
from attnviz.catalogue import Entry, batches, load_catalogue
from attnviz.quality import DEFAULT_MAX_STEP
from attnviz.series import Interval, Moment, Series, Symbol
from attnviz.sources import BarRequest, Received, SourceName, chunks
from tasks.ingest import (
    earlier_load,
    fetch_bars,
    fetch_batch,
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
# Bars read, validated and loaded at once when filling a long range: ~50 MB of rows.
DEFAULT_CHUNK_BARS = 100_000

# Validation limits, typed so that the Prefect UI refuses a value out of range.
MaxStep = Annotated[float, Field(gt=1)]
MaxRejectedShare = Annotated[float, Field(ge=0, le=1)]


class IngestError(RuntimeError):
    """A run ended with series that failed or were rejected beyond the limit."""


def ingest_series(
    run_id: str,
    entries: list[Entry],
    *,
    as_of: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
    incremental: bool = True,
    overlap_bars: int = DEFAULT_OVERLAP_BARS,
    lookback_bars: int | None = None,
    max_step: float = DEFAULT_MAX_STEP,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    chunk_bars: int = DEFAULT_CHUNK_BARS,
    repair: bool = False,
) -> list[SeriesLoad]:
    """Fetch, validate and load every entry's series; raise :class:`IngestError` if any went wrong.

    Each entry carries its source options and where a new series starts; ``start``
    and ``lookback_bars``, when given, override the entries'. A series an earlier
    attempt at the same work loaded completely is kept as it was loaded.

    With ``repair`` (which reads the whole requested range, ignoring the watermark), each
    series' stored bars in that range that the source no longer has are removed.
    """
    pieces: dict[Series, list[BarRequest]] = {}
    loads: list[SeriesLoad] = []
    todo: list[Entry] = []
    for entry in entries:
        done = earlier_load(run_id, entry.series)
        if done is not None:
            loads.append(done)
            continue
        first = start or entry.start
        back = lookback_bars or entry.lookback_bars
        if first is None and back is not None:
            first = shift(as_of, -back, entry.interval)
        request = plan_fetch(
            entry.series, as_of, first, end, incremental and not repair, overlap_bars
        )
        pieces[entry.series] = chunks(request, chunk_bars)
        todo.append(entry)

    # The first piece of every series is fetched at once: sources are slow, the writer is not.
    first_fetches = _fetch_first_pieces(todo, pieces)
    failures: dict[str, str] = {}
    for entry in todo:
        one = entry.series
        try:
            for index, piece in enumerate(pieces[one]):
                received = (
                    _first(first_fetches[one], one)
                    if index == 0
                    else fetch_bars(one, piece, entry.options)
                )
                done = load(
                    run_id,
                    one,
                    validate(one, received, max_step),
                    Repair(piece.start, min(piece.end or as_of, as_of)) if repair else None,
                    complete=index == len(pieces[one]) - 1,
                )
        except Exception as error:
            failures[one.label] = f"{type(error).__name__}: {error}"
            continue
        loads.append(done)

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
        raise IngestError(f"{len(failures)} of {len(entries)} series failed: {detail}")
    return loads


def _fetch_first_pieces(
    entries: list[Entry], pieces: dict[Series, list[BarRequest]]
) -> dict[Series, PrefectFuture]:
    """Submit the fetch of every series' first piece: one task per series, or one per group
    of series for a source that serves several tickers per request (see :func:`_first`)."""
    futures: dict[Series, PrefectFuture] = {}
    for group in batches(entries):
        if len(group) == 1:
            [one] = group
            futures[one.series] = fetch_bars.submit(one.series, pieces[one.series][0], one.options)
        else:
            batch = fetch_batch.submit(
                [one.series for one in group],
                [pieces[one.series][0] for one in group],
                group[0].options,
            )
            futures |= dict.fromkeys((one.series for one in group), batch)
    return futures


def _first(fetched: PrefectFuture, series: Series) -> Received:
    """A series' first piece from its fetch: its own, or its share of a group's (by symbol)."""
    result = fetched.result()
    if isinstance(result, Received):
        return result
    if isinstance(result[series.symbol], Exception):
        raise result[series.symbol]
    return result[series.symbol]


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
