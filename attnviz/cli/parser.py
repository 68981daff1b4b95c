"""The ``attnviz`` command line: its commands, their arguments and what each argument means."""

import argparse
from datetime import UTC, datetime
from pathlib import Path

from attnviz.cli import commands


def _timestamp(text: str) -> datetime:
    """An ISO date or datetime from the command line; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` from the command line; the value is read as YAML (``true``, ``3``, text)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. category=spot), got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _column(text: str) -> tuple[str, str]:
    """``CANONICAL=NAME`` from the command line, e.g. ``ts=Bar Time``."""
    canonical, sep, name = text.partition("=")
    if not sep or not canonical or not name:
        raise argparse.ArgumentTypeError(
            f"expected CANONICAL=NAME (e.g. ts='Bar Time'), got {text!r}"
        )
    return canonical.strip(), name


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``attnviz`` command."""
    # --db is accepted before or after the command: `attnviz --db X sql ...` and
    # `attnviz sql ... --db X`. SUPPRESS keeps a command's absent --db from hiding the other.
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--db",
        default=argparse.SUPPRESS,
        help="warehouse file (default: $ATTNVIZ_DB or var/warehouse.duckdb)",
    )
    parser = argparse.ArgumentParser(
        prog="attnviz",
        description="Keep a DuckDB warehouse of bars and of why a trading Transformer decides.",
        parents=[database],
    )
    subcommands = parser.add_subparsers(dest="command", required=True)

    catalogue = argparse.ArgumentParser(add_help=False)
    catalogue.add_argument(
        "--catalogue",
        help="series catalogue (YAML; default: $ATTNVIZ_CATALOGUE or catalogues/sample.yaml)",
    )

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return subcommands.add_parser(name, help=help, parents=[database, catalogue])

    run = command("run", help="run the nightly flow once (sample data by default)")
    run.add_argument(
        "--as-of", type=_timestamp, help="stand at this moment (default: the start of today, UTC)"
    )
    run.set_defaults(handler=commands.run)

    backfill = command(
        "backfill", help="rebuild the attention tables of a past moment with the models active then"
    )
    backfill.add_argument("--as-of", type=_timestamp, required=True, help="the past moment")
    backfill.add_argument("--symbols", nargs="+", help="catalogue series to rebuild (default: all)")
    backfill.set_defaults(handler=commands.backfill)

    serve = command(
        "serve",
        help="serve the deployments of prefect.yaml on their schedules "
        "(starts a local Prefect server if PREFECT_API_URL is not set)",
    )
    serve.add_argument("--file", type=Path, help="deployments file (default: prefect.yaml)")
    serve.add_argument("--port", type=int, default=4200, help="port of the local server")
    serve.set_defaults(handler=commands.serve)

    ingest = command(
        "ingest",
        help="ingest and validate bars: the catalogue's series, or symbols of one --source "
        "(bybit and yfinance need a network)",
    )
    ingest.add_argument(
        "--source",
        help="read this source (sample, files, bybit or yfinance) instead of the catalogue's "
        "series",
    )
    ingest.add_argument(
        "--symbols",
        nargs="+",
        help="default: the catalogue's series (of --source), or every symbol the source holds",
    )
    ingest.add_argument(
        "--interval", help="bar interval, e.g. 1h (default: 1d with --source, else all)"
    )
    ingest.add_argument("--start", type=_timestamp, help="first bar-open time to take")
    ingest.add_argument("--end", type=_timestamp, help="take bars opening before this")
    ingest.add_argument("--as-of", type=_timestamp, help="only bars closed by then (default: now)")
    ingest.add_argument(
        "--full", action="store_true", help="ignore the watermark, read from --start"
    )
    ingest.add_argument(
        "--repair",
        action="store_true",
        help="with --full: also remove the stored bars of --start..--end that the source "
        "no longer has (bars loaded wrong)",
    )
    ingest.add_argument("--path", help="files source: a CSV/Parquet file, folder or glob")
    ingest.add_argument("--timezone", default="UTC", help="files source: zone of naive timestamps")
    ingest.add_argument(
        "--ts-format",
        help="files source: strftime format of the timestamps (e.g. %%m/%%d/%%Y), or "
        "epoch_s, epoch_ms, epoch_us, epoch_ns; needed when the order or unit is ambiguous",
    )
    ingest.add_argument(
        "--column",
        type=_column,
        action="append",
        default=[],
        metavar="CANONICAL=NAME",
        help="files source: the file's column for ts, open, high, low, close, volume or symbol "
        "(repeatable), e.g. --column 'ts=Bar Time'",
    )
    ingest.add_argument(
        "--option",
        type=_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of --source (repeatable), e.g. --option category=spot for bybit, "
        "--option adjusted=false for yfinance",
    )
    ingest.add_argument(
        "--max-rejected-share",
        type=float,
        default=argparse.SUPPRESS,
        help="fail a series whose share of rejected rows is above this (default: the flow's)",
    )
    ingest.set_defaults(handler=commands.ingest)

    backtest = command(
        "backtest",
        help="compare the strategies of the active models on their newest analyses "
        "(buy and hold, unfiltered, LSTM, confidence-filtered, the chapter's rule, random)",
    )
    backtest.add_argument(
        "--symbols", nargs="+", help="catalogue series to backtest (default: all)"
    )
    backtest.add_argument(
        "--as-of", type=_timestamp, help="bars closed by then (default: the start of today, UTC)"
    )
    backtest.set_defaults(handler=commands.backtest)

    sql = command("sql", help="run a read-only SQL query against the warehouse")
    sql.add_argument("query")
    models = command("models", help="list model versions, newest first")
    for printer in (sql, models, backtest):
        printer.add_argument("--format", choices=["table", "csv", "json"], default="table")
        printer.add_argument("--max-rows", type=int, default=50, help="rows shown as a table")
    for reader in (sql, models):
        reader.add_argument(
            "--live",
            action="store_true",
            help="read the live warehouse instead of the snapshot published after the last run "
            "(fails while a run is writing)",
        )
    sql.set_defaults(handler=commands.sql)
    models.set_defaults(handler=commands.models)
    return parser
