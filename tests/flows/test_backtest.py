"""The backtest on demand: the active models' newest analyses, under a run of its own."""

from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pytest

from attnviz.cli import main
from attnviz.series import Series
from flows.backtest import backtest
from flows.nightly import nightly
from warehouse.db import connect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

DAY = datetime(2030, 1, 1, tzinfo=UTC)
SERIES = [Series(symbol="IBM"), Series(symbol="MSFT")]


def sql(query: str) -> list[tuple[Any, ...]]:
    with closing(connect(read_only=True)) as con:
        return con.execute(query).fetchall()


def test_a_backtest_on_demand_compares_the_newest_analyses_and_a_rerun_replaces(
    catalogue: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalogue(SERIES)
    with pytest.raises(LookupError, match="no version of model 'sample/IBM/1d' was active"):
        backtest(catalogue=path, as_of=DAY)
    nightly(catalogue=path, as_of=DAY)
    rows = backtest(catalogue=path, symbols=["MSFT"], as_of=DAY)
    assert set(rows["symbol"]) == {"MSFT"} and rows.filter(rows["chosen"]).height == 1
    by_run = "SELECT r.flow, count(*) FROM backtest_results b JOIN runs r USING (run_id) GROUP BY 1"
    before = dict(sql(by_run))
    assert set(before) == {"nightly", "backtest"}

    assert (
        main(["backtest", "--catalogue", path, "--symbols", "MSFT", "--as-of", "2030-01-01"]) == 0
    )
    assert dict(sql(by_run)) == before  # the same work again: its rows replaced, not added
    printed = capsys.readouterr().out
    assert "MSFT 1d: filtered_p" in printed and "chosen on validation" in printed
    # Its own run's numbers equal the nightly's: the same analysis, settings and seed.
    same = sql(
        """
        SELECT count(*) FROM (
            SELECT strategy, metric, value FROM backtest_results JOIN runs USING (run_id)
            WHERE flow = 'nightly' AND symbol = 'MSFT'
            EXCEPT
            SELECT strategy, metric, value FROM backtest_results JOIN runs USING (run_id)
            WHERE flow = 'backtest'
        )
        """
    )
    assert same == [(0,)]
