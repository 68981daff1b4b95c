"""Steps the flows share: bring series up to date, and explain the active models.

Each is a plain function that submits tasks, called inside a flow run: the ingest,
nightly and backfill flows compose them, and no flow imports another flow.
"""

from datetime import datetime

import polars as pl
from prefect.futures import PrefectFuture

from attnviz.analysis import Analysis, AnalysisConfig
from attnviz.bars import shift
from attnviz.catalogue import Entry, batches
from attnviz.comparison import ComparisonConfig
from attnviz.quality import DEFAULT_MAX_REJECTED_SHARE, DEFAULT_MAX_STEP
from attnviz.registry import ModelsToExplain
from attnviz.series import Series
from attnviz.sources import BarRequest, Received, chunks
from tasks.analyze import analyze_series, store, summarise_analysis
from tasks.backtest import backtest_series, render_backtest, summarise_backtest
from tasks.backtest import store as store_backtest
from tasks.ingest import (
    earlier_load,
    fetch_bars,
    fetch_batch,
    load,
    plan_fetch,
    summarise,
    validate,
)
from tasks.render import render
from warehouse.bars import Repair, SeriesLoad

DEFAULT_OVERLAP_BARS = 3
# Bars read, validated and loaded at once when filling a long range: ~50 MB of rows.
DEFAULT_CHUNK_BARS = 100_000


class IngestError(RuntimeError):
    """A run ended with series that failed or were rejected beyond the limit."""


# The fetch of a series' first piece: its own bars, or a group's bars (or error) by symbol.
FirstFetch = PrefectFuture[Received] | PrefectFuture[dict[str, Received | Exception]]


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
                loaded = load(
                    run_id,
                    one,
                    validate(one, received, max_step),
                    Repair(piece.start, min(piece.end or as_of, as_of)) if repair else None,
                    complete=index == len(pieces[one]) - 1,
                )
        except Exception as error:
            failures[one.label] = f"{type(error).__name__}: {error}"
            continue
        loads.append(loaded)

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
) -> dict[Series, FirstFetch]:
    """Submit the fetch of every series' first piece.

    One task per series, or one per group of series for a source that serves several
    tickers per request (see :func:`_first`).
    """
    futures: dict[Series, FirstFetch] = {}
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


def _first(fetched: FirstFetch, series: Series) -> Received:
    """A series' first piece from its fetch: its own, or its share of a group's (by symbol)."""
    result = fetched.result()
    own = result if isinstance(result, Received) else result[series.symbol]
    if isinstance(own, Exception):
        raise own
    return own


def explain(
    run_id: str,
    groups: dict[str, list[Series]],
    bars: dict[Series, pl.DataFrame],
    models: dict[str, ModelsToExplain],
    settings: AnalysisConfig,
) -> dict[str, dict[str, int]]:
    """Analyse, render and store every series with its group's active and previous model.

    One series at a time (see :mod:`flows.nightly` on the thread budget). Returns the
    rows written per series label and table.
    """
    results: list[tuple[Series, Analysis, pl.DataFrame]] = []
    written: dict[str, dict[str, int]] = {}
    for name, group in groups.items():
        for one in group:
            result = analyze_series(one, bars[one], models[name], settings)
            figures = render(run_id, one, result, bars[one])
            written[one.label] = store(run_id, one, models[name].active, result, figures)
            results.append((one, result, figures))
    summarise_analysis(results)
    return written


def backtest(
    run_id: str,
    as_of: datetime,
    groups: dict[str, list[Series]],
    bars: dict[Series, pl.DataFrame],
    models: dict[str, ModelsToExplain],
    analysis: AnalysisConfig,
    settings: ComparisonConfig,
) -> pl.DataFrame:
    """Backtest, draw and store every series with its group's active model; publish the table.

    One series at a time (see :mod:`flows.nightly` on the thread budget). Returns the
    run's ``strategy_comparison`` rows (:data:`warehouse.backtest.COMPARISON_COLUMNS`).
    """
    for name, group in groups.items():
        for one in group:
            comparison = backtest_series(one, bars[one], models[name], analysis, settings)
            figures = render_backtest(run_id, one, comparison, settings)
            store_backtest(run_id, one, comparison, figures)
    return summarise_backtest(run_id, as_of)
