"""The ``attnviz`` command.

Heavy packages (Prefect, Great Expectations, DuckDB, polars) are imported inside
the commands that need them, so ``attnviz --help`` answers at once.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb
    import polars as pl


def _timestamp(text: str) -> datetime:
    """An ISO date or datetime from the command line; naive values are UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _print_loads(loads: list) -> None:
    for x in loads:
        print(
            f"{x.source}/{x.symbol}/{x.interval}: received {x.received}, loaded {x.loaded} "
            f"(new {x.new_bars}, revised {x.revised_bars}), rejected {x.rejected}; "
            f"bars {x.first_ts or '-'} .. {x.last_ts or '-'}"
        )


def _run(args: argparse.Namespace) -> int:
    from flows.nightly import nightly

    report = nightly(as_of=args.as_of)
    _print_loads(report.loads)
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
    from flows.ingest import ingest

    options = {}
    if args.source == "files":
        if not args.path:
            raise SystemExit("attnviz ingest: --source files needs --path")
        options = {"path": args.path, "timezone": args.timezone}
    loads = ingest(
        source=args.source,
        symbols=args.symbols,
        interval=args.interval,
        start=args.start,
        end=args.end,
        as_of=args.as_of,
        incremental=not args.full,
        max_rejected_share=args.max_rejected_share,
        source_options=options,
    )
    _print_loads(loads)
    return 0


def _backfill(args: argparse.Namespace) -> int:
    from attnviz.series import SAMPLE_SERIES
    from flows.backfill import backfill

    series = [one for one in SAMPLE_SERIES if not args.symbols or one.symbol in args.symbols]
    for label, written in backfill(as_of=args.as_of, series=series).items():
        print(f"{label}: {written['attention_window']} windows analysed as of {args.as_of}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from attnviz import config
    from flows.server import local_server

    with ExitStack() as server:
        if not os.environ.get("PREFECT_API_URL"):
            log = config.home().resolve() / "prefect-server.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            # Set before Prefect is imported: it reads its settings then.
            os.environ["PREFECT_API_URL"] = server.enter_context(local_server(args.port, log=log))
            print(f"started a Prefect server: UI at http://127.0.0.1:{args.port} (log {log})")
        from flows.serve import serve_deployments

        print(f"serving on {os.environ['PREFECT_API_URL']}; Ctrl-C stops", flush=True)
        serve_deployments(args.file)
    return 0


def _reader(args: argparse.Namespace) -> "duckdb.DuckDBPyConnection":
    """A read-only connection: to the published snapshot, or with ``--live`` the live file."""
    from attnviz import config
    from warehouse.db import connect

    return connect(None if args.live else config.snapshot_path(), read_only=True)


def _sql(args: argparse.Namespace) -> int:
    from contextlib import closing

    from warehouse.db import query

    with closing(_reader(args)) as con:
        _print_frame(query(con, args.query), args.format, args.max_rows)
    return 0


def _models(args: argparse.Namespace) -> int:
    from contextlib import closing

    from warehouse.models import list_models

    with closing(_reader(args)) as con:
        _print_frame(list_models(con), args.format, args.max_rows)
    return 0


def _print_frame(result: "pl.DataFrame", format: str, max_rows: int) -> None:
    """Print a query result as a table, CSV or JSON."""
    import polars as pl

    if format == "csv":
        print(result.write_csv(), end="")
    elif format == "json":
        print(result.write_json())
    else:
        with pl.Config(
            tbl_rows=max_rows,
            tbl_cols=-1,
            tbl_width_chars=200,
            fmt_str_lengths=60,
            tbl_hide_dataframe_shape=True,
        ):
            print(result)
        print(f"({result.height} row{'s' * (result.height != 1)})")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``attnviz`` command."""
    parser = argparse.ArgumentParser(
        prog="attnviz",
        description="Keep a DuckDB warehouse of bars and of why a trading Transformer decides.",
    )
    parser.add_argument(
        "--db", help="warehouse file (default: $ATTNVIZ_DB or var/warehouse.duckdb)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the nightly flow once (sample data by default)")
    run.add_argument(
        "--as-of", type=_timestamp, help="stand at this moment (default: the start of today, UTC)"
    )
    run.set_defaults(handler=_run)

    backfill = commands.add_parser(
        "backfill", help="rebuild the attention tables of a past moment with the models active then"
    )
    backfill.add_argument("--as-of", type=_timestamp, required=True, help="the past moment")
    backfill.add_argument("--symbols", nargs="+", help="sample series to rebuild (default: all)")
    backfill.set_defaults(handler=_backfill)

    serve = commands.add_parser(
        "serve",
        help="serve the deployments of prefect.yaml on their schedules "
        "(starts a local Prefect server if PREFECT_API_URL is not set)",
    )
    serve.add_argument("--file", type=Path, help="deployments file (default: prefect.yaml)")
    serve.add_argument("--port", type=int, default=4200, help="port of the local server")
    serve.set_defaults(handler=_serve)

    ingest = commands.add_parser("ingest", help="ingest and validate bars of one source")
    ingest.add_argument("--source", default="sample", choices=["sample", "files"])
    ingest.add_argument("--symbols", nargs="+", help="default: the daily sample stocks")
    ingest.add_argument("--interval", default="1d")
    ingest.add_argument("--start", type=_timestamp, help="first bar-open time to take")
    ingest.add_argument("--end", type=_timestamp, help="take bars opening before this")
    ingest.add_argument("--as-of", type=_timestamp, help="only bars closed by then (default: now)")
    ingest.add_argument(
        "--full", action="store_true", help="ignore the watermark, read from --start"
    )
    ingest.add_argument("--path", help="files source: a CSV/Parquet file, folder or glob")
    ingest.add_argument("--timezone", default="UTC", help="files source: zone of naive timestamps")
    ingest.add_argument("--max-rejected-share", type=float, default=0.05)
    ingest.set_defaults(handler=_ingest)

    sql = commands.add_parser("sql", help="run a read-only SQL query against the warehouse")
    sql.add_argument("query")
    models = commands.add_parser("models", help="list model versions, newest first")
    for command in (sql, models):
        command.add_argument("--format", choices=["table", "csv", "json"], default="table")
        command.add_argument("--max-rows", type=int, default=50, help="rows shown as a table")
        command.add_argument(
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
    args = build_parser().parse_args(argv)
    if args.db:
        os.environ["ATTNVIZ_DB"] = args.db
    try:
        return args.handler(args)
    except Exception as error:
        if os.environ.get("ATTNVIZ_DEBUG"):
            raise
        print(f"attnviz {args.command}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
