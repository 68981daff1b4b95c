"""Rebuild the attention tables of a past moment with the models that were active then.

No bars are fetched and nothing is trained: the flow reads the bars that had closed
by ``as_of``, asks the registry which version of each model was active at that
logical time, and analyses, renders and stores as the nightly run does. Running it
again for the same moment and series replaces its rows.
"""

from prefect import flow

from attnviz import config
from attnviz.catalogue import load_catalogue
from attnviz.series import Moment, Symbol
from flows.steps import explain
from tasks.runs import recorded_run
from tasks.train import models_to_explain, read_training_bars


@flow(name="backfill", flow_run_name="backfill {as_of}")
def backfill(
    as_of: Moment,
    catalogue: str | None = None,
    symbols: list[Symbol] | None = None,
) -> dict[str, dict[str, int]]:
    """Rebuild the attention tables as they stood at a past moment.

    Args:
        as_of: The past moment: bars closed by then, models active then (in the logical
            time of the runs that registered them).
        catalogue: Catalogue file (YAML) whose series and groups to rebuild. Default:
            $ATTNVIZ_CATALOGUE or catalogues/sample.yaml.
        symbols: Rebuild only the models of these symbols. Default: every model.

    Returns:
        Rows written per series label and table.
    """
    chosen = load_catalogue(catalogue or config.catalogue_path())
    # A symbol the catalogue lacks is refused here, named, before any run.
    models = {name: spec.series for name, spec in chosen.models(symbols).items()}
    parameters = {"catalogue": chosen.model_dump(mode="json"), "symbols": symbols}
    with recorded_run("backfill", parameters, as_of) as run_id:
        series = [one for members in models.values() for one in members]
        bars = {one: read_training_bars(one, as_of) for one in series}
        active = {name: models_to_explain(name, as_of) for name in models}
        return explain(run_id, models, bars, active, chosen.analysis)
