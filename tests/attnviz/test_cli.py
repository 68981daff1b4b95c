import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import polars as pl
import pytest

from attnviz import config
from attnviz.cli import main
from attnviz.quality import validate_bars
from warehouse.bars import store_series
from warehouse.db import connect
from warehouse.snapshot import publish_snapshot


def test_help_imports_no_heavy_package() -> None:
    probe = (
        "import sys; from attnviz.cli import build_parser; build_parser().format_help();"
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'prefect', 'duckdb', 'polars', 'great_expectations', 'torch', 'pandas'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def publish() -> None:
    assert publish_snapshot(config.warehouse_path(), config.snapshot_path(), wait=1)


@pytest.fixture
def filled(bars: Callable[..., pl.DataFrame]) -> None:
    with closing(connect()) as con:
        result = validate_bars(bars(4, symbol="XYZ"), "1d")
        store_series(con, "r1", ("test", "XYZ", "1d"), result.good, result.rejected, result.checks)
    publish()


@pytest.mark.usefixtures("filled")
def test_sql_prints_query_results(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["sql", "select source, symbol, interval, count(*) as n from bars group by all"]) == 0
    )
    table = capsys.readouterr().out
    assert "XYZ" in table and "(1 row)" in table
    assert main(["sql", "select symbol, close from bars order by ts", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "symbol,close",
        "XYZ,100.0",
        "XYZ,101.0",
        "XYZ,102.0",
        "XYZ,103.0",
    ]


@pytest.mark.usefixtures("filled")
def test_sql_is_read_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "delete from bars"]) == 1
    assert "read-only" in capsys.readouterr().err
    assert main(["sql", "select count(*) as n from bars", "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "4"]


def test_errors_exit_non_zero_with_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--db", str(tmp_path / "none.duckdb"), "sql", "select 1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("attnviz sql: WarehouseError: no warehouse at") and err.count("\n") == 1


@pytest.mark.usefixtures("filled")
def test_sql_reads_the_published_snapshot_unless_asked_for_the_live_file(
    bars: Callable[..., pl.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    with closing(connect()) as con:
        result = validate_bars(bars(2, symbol="NEW"), "1d")
        store_series(con, "r2", ("test", "NEW", "1d"), result.good, result.rejected, result.checks)
    query = "select count(distinct symbol) as n from bars"
    assert main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "1"]
    assert main(["sql", query, "--format", "csv", "--live"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "2"]


def test_models_lists_versions(capsys: pytest.CaptureFixture[str]) -> None:
    connect().close()
    publish()
    assert main(["models", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("name,version,status,training,val_loss,test_accuracy")


@pytest.mark.e2e
@pytest.mark.usefixtures("prefect_harness")
def test_ingest_command_prints_a_line_per_series(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", "--symbols", "MSFT", "--as-of", "2001-01-01"]) == 0
    out = capsys.readouterr().out
    assert "sample/MSFT/1d: received 212, loaded 212 (new 212, revised 0), rejected 0" in out
    assert main(["ingest", "--symbols", "NOPE"]) == 1
    assert "no series NOPE in the catalogue; it has ['sample/AAPL/1d'" in capsys.readouterr().err


@pytest.mark.usefixtures("filled")
def test_db_is_taken_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere.duckdb"
    snapshot = tmp_path / "elsewhere-snapshot.duckdb"
    for argv in (
        ["--db", str(elsewhere), "sql", "select 1"],
        ["sql", "select 1", "--db", str(elsewhere)],
    ):
        assert main(argv) == 1
        assert f"no warehouse at {snapshot}" in capsys.readouterr().err


@pytest.mark.usefixtures("filled")
def test_csv_writes_list_columns_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    query = "select ['a', 'b'] as checks, {'k': 1} as s, 2 as n"
    assert main(["sql", query, "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["checks,s,n", '"[""a"", ""b""]","{""k"": 1}",2']


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["backfill", "--as-of", "2010-01-01", "--symbols", "NOPE"],
            "no series NOPE in the catalogue",
        ),
        (
            ["ingest", "--start", "2020-02-01", "--end", "2020-01-01"],
            "--start 2020-02-01 00:00:00+00:00 is not before --end",
        ),
        (["ingest", "--repair"], "--repair replaces what is stored in the range: add --full"),
        (["ingest", "--ts-format", "%m/%d/%Y"], "are for --source files, not the catalogue"),
        (["ingest", "--source", "files"], "--source files needs --path"),
        (["ingest", "--source", "bloomberg"], "unknown source 'bloomberg'; expected one of"),
    ],
)
def test_arguments_that_cannot_work_fail_before_any_run(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    # One line, the command and the reason: no exception class, and no run (no Prefect) begun.
    err = capsys.readouterr().err
    assert err.startswith(f"attnviz {argv[0]}: ") and message in err
    assert "Error" not in err and err.count("\n") == 1


@pytest.mark.e2e
def test_a_failed_run_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "AAPL.csv").write_text("ts,open,high,low,close,volume\n2020-01-02,1,2,1,1.5,10\n")
    argv = ["ingest", "--source", "files", "--path", str(tmp_path), "--symbols", "MSFT"]
    argv += ["--as-of", "2021-01-01"]
    done = subprocess.run(
        [sys.executable, "-m", "attnviz.cli", *argv], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    output = done.stdout + done.stderr
    failures = [line for line in output.splitlines() if line.startswith("attnviz ingest:")]
    assert len(failures) == 1 and "no bars for MSFT 1d" in failures[0]
    assert "Traceback" not in output and "ERROR" not in output and "Retry" not in output
    assert output.count("no bars for MSFT") == 1
