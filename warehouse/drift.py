"""What the drift monitors said last: the flags on in the newest window analysed with a version."""

from datetime import datetime

import duckdb

from attnviz.series import Series

# The monitors whose alarm in the newest window calls for a full retrain (attention_window).
DRIFT_FLAGS = ("collapse", "regime_change")


def newest_flags(
    con: duckdb.DuckDBPyConnection, series: list[Series], model: tuple[str, int], before: datetime
) -> dict[str, list[str]]:
    """Series label -> the drift flags on in its newest window analysed with ``model``.

    The newest window is the latest bar time in the newest run (by as-of, then start)
    with an as-of before ``before`` that analysed the series with that version: a run
    does not read its own analysis (a rerun plans as its first attempt did) nor a later
    run's. Series no such run analysed are left out.
    """
    flagged: dict[str, list[str]] = {}
    for one in series:
        newest = con.execute(
            f"""
            SELECT {", ".join(DRIFT_FLAGS)}
            FROM attention_window w JOIN runs r USING (run_id)
            WHERE w.source = ? AND w.symbol = ? AND w.interval = ?
              AND w.model_name = ? AND w.model_version = ? AND r.as_of < ?
            ORDER BY r.as_of DESC, r.started_at DESC, w.ts DESC LIMIT 1
            """,
            [*one.key, *model, before],
        ).fetchone()
        if newest is not None:
            flagged[one.label] = [flag for flag, on in zip(DRIFT_FLAGS, newest, strict=True) if on]
    return flagged
