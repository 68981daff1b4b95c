"""The ``attnviz`` command.

This is the one module of the package that reaches up into ``flows`` and
``warehouse``, as the console script of most Python tools does. Heavy packages
(Prefect, Great Expectations, DuckDB, polars) are imported inside the commands
that need them, so ``attnviz --help`` answers at once.

A failure prints one line, ``attnviz <command>: <what went wrong>``, and exits 1;
the full log stays in the Prefect UI, and ``ATTNVIZ_DEBUG=1`` shows tracebacks.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from attnviz.console import print_frame, print_loads, quiet_failures

if TYPE_CHECKING:
    import duckdb


def _timestamp(text: str) -> datetime:
    """An ISO date or datetime from the command line; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _start_api() -> None:
    """Give the flow runs of this process a Prefect server that dies with it (if none is set).

    Call before the first import of a flow module: Prefect reads its settings then.
    """
    from flows.api_server import start_api

    start_api()


def _run(args: argparse.Namespace) -> int:
    _start_api()
    from flows.nightly import nightly

    quiet_failures()

    report = nightly(catalogue=args.catalogue, as_of=args.as_of)
    print_loads(report.loads)
    for version, row in report.models:
        accuracy = row.metrics["transformer"]["direction_accuracy"]
        print(f"{row.name} v{version}: {row.status}, test accuracy {accuracy:.3f}")
        print(f"  {row.status_reason}")
    for label, written in report.analytics.items():
        print(
            f"{label}: {written['attention_window']} windows analysed, {written['figures']} figures"
        )
    return 0


def _ingest(args: argparse.Namespace) -> int:
    options: dict[str, object] = dict(args.option)
    if args.source == "files":
        if not args.path:
            raise UsageError("--source files needs --path")
        options |= {"path": args.path, "timezone": args.timezone, "columns": dict(args.column)}
        if args.ts_format:
            options["ts_format"] = args.ts_format
    elif args.path or args.ts_format or args.column:
        raise UsageError(
            "--path, --ts-format and --column are for --source files, "
            f"not {args.source or 'the catalogue'}"
        )
    if options and not args.source:
        raise UsageError("source options need --source (the catalogue has its own)")
    if args.start and args.end and args.start >= args.end:
        raise UsageError(f"--start {args.start} is not before --end {args.end}")
    if args.repair and not args.full:
        raise UsageError("--repair replaces what is stored in the range: add --full to confirm")
    from attnviz.sources import SOURCES

    if args.source is not None and args.source not in SOURCES:
        raise UsageError(f"unknown source {args.source!r}; expected one of {sorted(SOURCES)}")
    _start_api()
    from flows.ingest import ingest

    quiet_failures()

    loads = ingest(
        catalogue=args.catalogue,
        source=args.source,
        symbols=args.symbols,
        interval=args.interval,
        start=args.start,
        end=args.end,
        as_of=args.as_of,
        incremental=not args.full,
        source_options=options or None,
        repair=args.repair,
        **{name: getattr(args, name) for name in ("max_rejected_share",) if name in args},
    )
    print_loads(loads)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from attnviz import config
    from attnviz.catalogue import load_catalogue

    # Checked before the Prefect server starts: a typo answers at once.
    load_catalogue(args.catalogue or config.catalogue_path()).select(symbols=args.symbols)
    _start_api()
    from flows.backfill import backfill

    quiet_failures()

    written_by = backfill(as_of=args.as_of, catalogue=args.catalogue, symbols=args.symbols)
    for label, written in written_by.items():
        print(f"{label}: {written['attention_window']} windows analysed as of {args.as_of}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from attnviz import config
    from flows.api_server import local_server

    if args.catalogue:
        from attnviz.catalogue import load_catalogue

        load_catalogue(args.catalogue)  # a mistake is said now, not at the first scheduled run
        # The deployments' runs read the catalogue from the environment they inherit.
        os.environ["ATTNVIZ_CATALOGUE"] = str(Path(args.catalogue).resolve())
    with ExitStack() as server:
        if not os.environ.get("PREFECT_API_URL"):
            log = config.home().resolve() / "prefect-server.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            # Set before Prefect is imported: it reads its settings then.
            os.environ["PREFECT_API_URL"] = server.enter_context(local_server(args.port, log=log))
            print(f"started a Prefect server: UI at http://127.0.0.1:{args.port} (log {log})")
        from flows.deployments import serve_deployments

        print(f"serving on {os.environ['PREFECT_API_URL']}; Ctrl-C stops", flush=True)
        serve_deployments(args.file)
    return 0


def _reader(args: argparse.Namespace) -> "duckdb.DuckDBPyConnection":
    """A read-only connection: to the published snapshot, or with ``--live`` the live file."""
    from attnviz import config
    from warehouse.db import connect
    from warehouse.runs import reap_crashed_runs

    reap_crashed_runs(config.warehouse_path(), config.snapshot_path())
    return connect(None if args.live else config.snapshot_path(), read_only=True)


def _sql(args: argparse.Namespace) -> int:
    from contextlib import closing

    from warehouse.db import query

    with closing(_reader(args)) as con:
        print_frame(query(con, args.query), args.format, args.max_rows)
    return 0


def _models(args: argparse.Namespace) -> int:
    from contextlib import closing

    from warehouse.registry import list_models

    with closing(_reader(args)) as con:
        print_frame(list_models(con), args.format, args.max_rows)
    return 0


class UsageError(ValueError):
    """Arguments that do not make sense together; the message says which."""


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
    commands = parser.add_subparsers(dest="command", required=True)

    catalogue = argparse.ArgumentParser(add_help=False)
    catalogue.add_argument(
        "--catalogue",
        help="series catalogue (YAML; default: $ATTNVIZ_CATALOGUE or catalogues/sample.yaml)",
    )

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, parents=[database, catalogue])

    run = command("run", help="run the nightly flow once (sample data by default)")
    run.add_argument(
        "--as-of", type=_timestamp, help="stand at this moment (default: the start of today, UTC)"
    )
    run.set_defaults(handler=_run)

    backfill = command(
        "backfill", help="rebuild the attention tables of a past moment with the models active then"
    )
    backfill.add_argument("--as-of", type=_timestamp, required=True, help="the past moment")
    backfill.add_argument("--symbols", nargs="+", help="catalogue series to rebuild (default: all)")
    backfill.set_defaults(handler=_backfill)

    serve = command(
        "serve",
        help="serve the deployments of prefect.yaml on their schedules "
        "(starts a local Prefect server if PREFECT_API_URL is not set)",
    )
    serve.add_argument("--file", type=Path, help="deployments file (default: prefect.yaml)")
    serve.add_argument("--port", type=int, default=4200, help="port of the local server")
    serve.set_defaults(handler=_serve)

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
    ingest.set_defaults(handler=_ingest)

    sql = command("sql", help="run a read-only SQL query against the warehouse")
    sql.add_argument("query")
    models = command("models", help="list model versions, newest first")
    for reader in (sql, models):
        reader.add_argument("--format", choices=["table", "csv", "json"], default="table")
        reader.add_argument("--max-rows", type=int, default=50, help="rows shown as a table")
        reader.add_argument(
            "--live",
            action="store_true",
            help="read the live warehouse instead of the snapshot published after the last run "
            "(fails while a run is writing)",
        )
    sql.set_defaults(handler=_sql)
    models.set_defaults(handler=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    from flows.lifetime import exit_on_sigterm

    exit_on_sigterm()
    args = build_parser().parse_args(argv)
    if getattr(args, "db", None):
        os.environ["ATTNVIZ_DB"] = args.db
    try:
        return args.handler(args)
    except Exception as error:
        if os.environ.get("ATTNVIZ_DEBUG"):
            raise
        # A mistake in the arguments or the catalogue file is said plainly; the catalogue
        # module is only looked up if loaded (importing it would load torch).
        catalogue = sys.modules.get("attnviz.catalogue")
        plain = UsageError if catalogue is None else (UsageError, catalogue.CatalogueError)
        kind = "" if isinstance(error, plain) else f"{type(error).__name__}: "
        print(f"attnviz {args.command}: {kind}{error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
