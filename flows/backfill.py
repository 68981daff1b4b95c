"""Rebuild the attention tables of a past moment with the models that were active then.

No bars are fetched and nothing is trained: the flow reads the bars that had closed
by ``as_of``, asks the registry which version of each model was active at that
logical time, and analyses, renders and stores as the nightly run does. Running it
again for the same moment and series replaces its rows.
"""

from dataclasses import asdict
from datetime import datetime

from prefect import flow

from attnviz.analysis import AnalysisConfig
from attnviz.series import SAMPLE_SERIES, Series
from flows.nightly import explain, model_groups
from tasks.runs import recorded_run
from tasks.train import models_to_explain, read_training_bars


@flow(name="backfill", flow_run_name="backfill {as_of}")
def backfill(
    as_of: datetime,
    series: list[Series] = SAMPLE_SERIES,
    pool: bool = False,
    analysis: AnalysisConfig = AnalysisConfig(),  # noqa: B008 (frozen dataclass, safe as default)
) -> dict[str, dict[str, int]]:
    """Rebuild the attention tables as they stood at ``as_of``.

    Parameters
    ----------
    as_of
        The past moment: bars closed by then, models active then (in the logical time
        of the runs that registered them).
    series
        The series to rebuild; default: the committed sample data.
    pool
        Whether the models were pooled per interval (as in the nightly flow).
    analysis
        Thresholds and batch size of the attention analytics.

    Returns
    -------
    dict
        Rows written per series label and table.
    """
    parameters = {
        "series": [one.model_dump() for one in series],
        "pool": pool,
        "analysis": asdict(analysis),
    }
    with recorded_run("backfill", parameters, as_of) as run_id:
        groups = model_groups(series, pool)
        bars = {one: read_training_bars(one, as_of) for one in series}
        models = {name: models_to_explain(name, as_of) for name in groups}
        return explain(run_id, groups, bars, models, analysis)
