"""The nightly job: bring every configured series up to date and validate it.

Later stages (train, analyse, render) join this flow as they are built.
"""

from datetime import UTC, datetime
from typing import Any

from prefect import flow

from attnviz.series import SAMPLE_SERIES, Series
from flows.ingest import (
    DEFAULT_MAX_REJECTED_SHARE,
    DEFAULT_MAX_STEP,
    ingest_series,
    recorded_run,
)
from warehouse.bars import SeriesLoad


@flow(name="nightly")
def nightly(
    series: list[Series] = SAMPLE_SERIES,
    as_of: datetime | None = None,
    max_step: float = DEFAULT_MAX_STEP,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
    source_options: dict[str, dict[str, Any]] | None = None,
) -> list[SeriesLoad]:
    """Incrementally ingest and validate every series.

    Parameters
    ----------
    series
        The series to keep; default: the committed sample data.
    as_of
        The moment the run stands at (default now); only bars closed by then enter.
    max_step, max_rejected_share
        Validation limits, as in :func:`flows.ingest.ingest`.
    source_options
        Options per source name, e.g. ``{"files": {"path": "bars/"}}``.
    """
    as_of = as_of or datetime.now(UTC)
    parameters = {
        "series": [one.model_dump() for one in series],
        "max_step": max_step,
        "max_rejected_share": max_rejected_share,
        "source_options": source_options,
    }
    with recorded_run("nightly", parameters, as_of) as run_id:
        return ingest_series(
            run_id,
            series,
            as_of=as_of,
            max_step=max_step,
            max_rejected_share=max_rejected_share,
            source_options=source_options,
        )
