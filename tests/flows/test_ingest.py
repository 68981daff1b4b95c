import json
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prefect.exceptions import ParameterTypeError

from attnviz.catalogue import CatalogueError
from attnviz.quality import DEFAULT_MAX_REJECTED_SHARE
from flows.ingest import ingest
from flows.steps import IngestError
from warehouse.bars import SeriesLoad, store_series
from warehouse.db import connect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

HEADER = "Date,Open,High,Low,Close,Volume\n"
GOOD = [f"2024-01-{day:02d},10,11,9,10.5,100\n" for day in range(2, 12)]
# The as-of of the runs over files: after every bar they hold has closed, whatever today is.
FILES_AS_OF = datetime(2025, 1, 1, tzinfo=UTC)


def sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with closing(connect(read_only=True)) as con:
        return con.execute(query, params or []).fetchall()


def files_ingest(
    path: Path,
    as_of: datetime = FILES_AS_OF,
    max_rejected_share: float = DEFAULT_MAX_REJECTED_SHARE,
) -> list[SeriesLoad]:
    """Ingest MSFT from the files in ``path``."""
    return ingest(
        source="files", symbols=["MSFT"], source_options={"path": str(path)}, as_of=as_of,
        max_rejected_share=max_rejected_share,
    )  # fmt: skip


def test_incremental_replay_reads_only_new_bars_plus_overlap() -> None:
    early = ingest(symbols=["IBM"], as_of=datetime(2005, 1, 1, tzinfo=UTC))
    later = ingest(symbols=["IBM"], as_of=datetime(2006, 1, 1, tzinfo=UTC))
    [(total,)] = sql("SELECT count(*) FROM bars WHERE symbol = 'IBM'")
    [(in_2005,)] = sql("SELECT count(*) FROM bars WHERE symbol = 'IBM' AND year(ts) = 2005")
    assert early[0].last_ts == datetime(2004, 12, 31, tzinfo=UTC)
    assert later[0].new_bars == in_2005 and total == early[0].loaded + in_2005
    assert later[0].received == in_2005 + 3  # the overlap re-reads the last three stored bars


def test_a_moment_without_a_zone_is_utc_and_the_same_work() -> None:
    ingest(symbols=["IBM"], as_of=datetime(2005, 1, 1))  # as a form field or a YAML date gives it
    ingest(symbols=["IBM"], as_of=datetime(2005, 1, 1, tzinfo=UTC), start=datetime(2004, 12, 1))
    assert (
        sql("SELECT as_of, status FROM runs ORDER BY started_at")
        == [(datetime(2005, 1, 1, tzinfo=UTC), "succeeded")] * 2
    )


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_load(tmp_path: Path) -> None:
    bad = [
        "2024-01-12,10,11,9,,100\n",  # missing close
        "2024-01-13,-10,11,9,10.5,100\n",  # negative open
        "2024-01-14,10,8,9,10.5,100\n",  # high < low
        "2024-01-15T06:00:00,10,11,9,10.5,100\n",  # off the daily grid
        "2024-01-16,10,11,9,abc,100\n",  # not a number
        "someday,10,11,9,10.5,100\n",  # not a time
        "2024-01-11,10,11,9,10.5,100\n",  # duplicate of a good day
    ]
    (tmp_path / "MSFT.csv").write_text(HEADER + "".join(GOOD + bad))
    [load] = files_ingest(tmp_path, max_rejected_share=1.0)

    assert (load.received, load.loaded, load.rejected) == (17, 9, 8)
    rejected = {
        json.loads(raw)["Date"]: set(failed)
        for raw, failed in sql("SELECT raw, failed FROM bars_rejected ORDER BY ts")
    }
    assert rejected["2024-01-12"] >= {"close_not_null"}
    assert rejected["2024-01-13"] >= {"open_positive"}
    assert rejected["2024-01-14"] >= {"high_ge_open", "high_ge_close"}
    assert rejected["2024-01-15T06:00:00"] == {"ts_on_grid"}
    assert rejected["2024-01-16"] >= {"close_not_null"}
    assert rejected["someday"] == {"ts_not_null"}
    assert rejected["2024-01-11"] >= {"key_unique"}  # both copies of 2024-01-11
    [(received, loaded, rejected_n, status)] = sql(
        "SELECT received, loaded, rejected, status FROM runs"
    )
    assert (received, loaded, rejected_n, status) == (17, 9, 8, "succeeded")
    [(bars_n,)] = sql("SELECT count(*) FROM bars")
    assert bars_n == 9


def test_too_many_rejections_fail_the_run_after_loading_the_good_bars(tmp_path: Path) -> None:
    (tmp_path / "MSFT.csv").write_text(HEADER + "".join(GOOD[:3]) + "2024-01-20,-1,1,1,1,1\n")
    with pytest.raises(IngestError, match=r"files/MSFT/1d: 1 of 4 rows rejected \(25.0% > 5.0%\)"):
        files_ingest(tmp_path)
    [(status, message, loaded, rejected)] = sql(
        "SELECT status, message, loaded, rejected FROM runs"
    )
    assert status == "failed" and "IngestError" in message and (loaded, rejected) == (3, 1)
    assert sql("SELECT count(*) FROM bars") == [(3,)]


def test_a_corrected_bar_in_the_source_replaces_the_stored_one(tmp_path: Path) -> None:
    csv = tmp_path / "MSFT.csv"
    csv.write_text(HEADER + "".join(GOOD))
    files_ingest(tmp_path)
    csv.write_text(HEADER + "".join(GOOD[:-1]) + "2024-01-11,10,11,9,10.75,100\n")
    [load] = files_ingest(tmp_path)
    assert (load.new_bars, load.revised_bars) == (0, 1)
    assert sql("SELECT close FROM bars WHERE ts = '2024-01-11'") == [(10.75,)]
    assert sql("SELECT count(*) FROM bars") == [(10,)]


def test_unknown_symbol_fails_clearly_without_stopping_the_others() -> None:
    with pytest.raises(IngestError, match="1 of 2 series failed: sample/TSLA/1d: BarDataError"):
        ingest(source="sample", symbols=["IBM", "TSLA"], as_of=datetime(2001, 1, 1, tzinfo=UTC))
    assert sql("SELECT DISTINCT symbol FROM bars") == [("IBM",)]
    [(status, message)] = sql("SELECT status, message FROM runs")
    assert status == "failed" and "no series TSLA 1d" in message


def test_without_a_source_the_catalogue_says_what_to_ingest(catalogue: Callable[..., str]) -> None:
    cat = catalogue()
    loads = ingest(catalogue=cat, interval="1d", as_of=datetime(2001, 1, 1, tzinfo=UTC))
    assert [load.label for load in loads] == [
        "sample/AAPL/1d",
        "sample/GOOG/1d",
        "sample/IBM/1d",
        "sample/MSFT/1d",
    ]
    with pytest.raises(CatalogueError, match=r"no series TSLA in the catalogue; it has \['sample"):
        ingest(catalogue=cat, symbols=["TSLA"])
    assert sql("SELECT count(*) FROM runs") == [(1,)]  # refused before any run started


def test_a_long_range_loads_in_pieces_and_a_failed_run_resumes_without_gap_or_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = [f"2024-01-{day:02d},10,11,9,10.5,100\n" for day in range(1, 31)]
    (tmp_path / "MSFT.csv").write_text(HEADER + "".join(days))
    work: dict[str, Any] = {
        "source": "files",
        "symbols": ["MSFT"],
        "source_options": {"path": str(tmp_path)},
        "start": datetime(2024, 1, 1, tzinfo=UTC),
        "as_of": datetime(2024, 2, 1, tzinfo=UTC),
        "chunk_bars": 7,  # 30 days: pieces of 7, 7, 7, 7 and 2 bars
    }
    pieces = iter(range(100))

    def fails_on_the_third_piece(*args: Any, **kwargs: Any) -> Any:
        if next(pieces) == 2:
            raise OSError("disk gone")
        return store_series(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr("tasks.ingest.store_series", fails_on_the_third_piece)
        with pytest.raises(IngestError, match="OSError: disk gone"):
            ingest(**work)
    assert sql("SELECT loaded, new_bars, complete FROM run_series") == [(14, 14, False)]

    [load] = ingest(**work)  # the same work: resumes from the 14 stored bars (less the overlap)
    assert sql("SELECT count(*), count(DISTINCT ts), min(ts)::DATE, max(ts)::DATE FROM bars") == [
        (30, 30, datetime(2024, 1, 1).date(), datetime(2024, 1, 30).date())
    ]
    # The work's counts add both attempts': every bar new once, the overlap read twice.
    assert (load.new_bars, load.loaded, load.received) == (30, 14 + 19, 14 + 19)
    assert sql("SELECT complete FROM run_series") == [(True,)]
    assert sql("SELECT attempt, status, received, loaded FROM run_attempts ORDER BY 1") == [
        (1, "failed", 14, 14),
        (2, "succeeded", 19, 19),
    ]
    assert sql("SELECT unexpected_count FROM validation_results WHERE NOT success") == []


@pytest.mark.parametrize("symbol", ["../../x", "A'; DROP TABLE bars;--"])
def test_hostile_symbols_are_refused_before_any_work(symbol: str, warehouse_home: Path) -> None:
    # Prefect validates the parameters against the flow's types, so the run fails with
    # the reason in its log before it opens the warehouse or builds a path.
    with pytest.raises(ParameterTypeError, match=r"symbols\.0: Value error, invalid symbol"):
        ingest(symbols=[symbol])
    assert not warehouse_home.exists()


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"interval": "7q"}, "interval"),
        ({"max_rejected_share": 1.5}, "max_rejected_share"),
        ({"overlap_bars": -1}, "overlap_bars"),
        ({"source": "nope"}, "source"),
    ],
)
def test_out_of_range_parameters_are_refused_naming_the_field(
    parameters: dict[str, Any], field: str
) -> None:
    with pytest.raises(ParameterTypeError, match=rf"\b{field}: "):
        ingest(**parameters)


def test_bars_loaded_on_the_wrong_days_are_repaired_and_counts_reconcile(tmp_path: Path) -> None:
    # Month-first dates; January 2024, so every day of the first twelve could also be a month.
    month_first = [f"01/{day:02d}/2024,10,11,9,10.5,100\n" for day in range(2, 13)]
    (tmp_path / "MSFT.csv").write_text(HEADER + "".join(month_first))
    # Read with the wrong order: eleven bars land on the 1st of February .. December.
    wrong = {"path": str(tmp_path), "ts_format": "%d/%m/%Y"}
    ingest(
        source="files", symbols=["MSFT"], source_options=wrong, max_rejected_share=1.0,
        as_of=FILES_AS_OF,
    )  # fmt: skip
    assert sql("SELECT count(*) FROM bars WHERE day(ts) = 1") == [(11,)]

    right = {"path": str(tmp_path), "ts_format": "%m/%d/%Y"}
    [load] = ingest(
        source="files", symbols=["MSFT"], source_options=right, incremental=False, repair=True,
        as_of=FILES_AS_OF,
    )  # fmt: skip
    assert (load.received, load.loaded, load.new_bars, load.removed_bars) == (11, 11, 11, 11)
    assert sql("SELECT min(ts)::DATE, max(ts)::DATE, count(*) FROM bars") == [
        (datetime(2024, 1, 2).date(), datetime(2024, 1, 12).date(), 11)
    ]
    [(received, loaded, rejected, not_closed)] = sql(
        "SELECT received, loaded, rejected, not_closed FROM runs ORDER BY started_at DESC LIMIT 1"
    )
    assert received == loaded + rejected + not_closed == 11


def test_rows_read_after_the_as_of_are_counted_as_not_closed(tmp_path: Path) -> None:
    (tmp_path / "MSFT.csv").write_text(HEADER + "".join(GOOD))
    [load] = files_ingest(tmp_path, as_of=datetime(2024, 1, 7, tzinfo=UTC))
    # 2024-01-02 .. 01-06 had closed; 01-07 .. 01-11 had not.
    assert (load.received, load.loaded, load.rejected, load.not_closed) == (10, 5, 0, 5)
    assert sql("SELECT received, loaded, rejected, not_closed FROM run_series") == [(10, 5, 0, 5)]
