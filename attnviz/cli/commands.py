"""What each ``attnviz`` command does, given its parsed arguments; each returns the exit status.

Flows, the warehouse and their heavy dependencies are imported inside the commands,
so that ``attnviz --help`` answers at once.
"""

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from attnviz.cli.console import (
    print_analyses,
    print_frame,
    print_loads,
    print_models,
    print_verdicts,
    quiet_failures,
)

if TYPE_CHECKING:
    import duckdb


class UsageError(ValueError):
    """Arguments that do not make sense together; the message says which."""


def _start_api() -> None:
    """Give the flow runs of this process a Prefect server that dies with it (if none is set).

    Call before the first import of a flow module: Prefect reads its settings then.
    """
    from flows.api_server import start_api

    start_api()


def run(args: argparse.Namespace) -> int:
    """``attnviz run``: the nightly flow once; prints loads, model versions and analyses."""
    _start_api()
    from flows.nightly import nightly

    quiet_failures()

    report = nightly(catalogue=args.catalogue, as_of=args.as_of)
    print_loads(report.loads)
    print_models(report.models)
    print_analyses(report.analytics)
    print_verdicts(report.backtests)
    return 0


def ingest(args: argparse.Namespace) -> int:
    """``attnviz ingest``: the catalogue's series, or symbols of one ``--source``."""
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


def backfill(args: argparse.Namespace) -> int:
    """``attnviz backfill``: the attention tables of a past moment, with the models active then."""
    from attnviz import config
    from attnviz.catalogue import load_catalogue

    # Checked before the Prefect server starts: a typo answers at once.
    load_catalogue(args.catalogue or config.catalogue_path()).select(symbols=args.symbols)
    _start_api()
    from flows.backfill import backfill

    quiet_failures()

    written = backfill(as_of=args.as_of, catalogue=args.catalogue, symbols=args.symbols)
    print_analyses(written, as_of=args.as_of)
    return 0


def serve(args: argparse.Namespace) -> int:
    """``attnviz serve``: the deployments of ``prefect.yaml`` on their schedules, until stopped."""
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


def backtest(args: argparse.Namespace) -> int:
    """``attnviz backtest``: the strategy comparison of the active models, printed."""
    from attnviz import config
    from attnviz.catalogue import load_catalogue

    # Checked before the Prefect server starts: a typo answers at once.
    load_catalogue(args.catalogue or config.catalogue_path()).select(symbols=args.symbols)
    _start_api()
    from flows.backtest import backtest

    quiet_failures()

    rows = backtest(catalogue=args.catalogue, symbols=args.symbols, as_of=args.as_of)
    print_frame(rows, args.format, args.max_rows)
    print_verdicts(rows)
    return 0


def sql(args: argparse.Namespace) -> int:
    """``attnviz sql``: one read-only query, printed as a table, CSV or JSON."""
    from contextlib import closing

    from warehouse.db import query

    with closing(_reader(args)) as con:
        print_frame(query(con, args.query), args.format, args.max_rows)
    return 0


def models(args: argparse.Namespace) -> int:
    """``attnviz models``: every model version, newest first."""
    from contextlib import closing

    from warehouse.registry import list_models

    with closing(_reader(args)) as con:
        print_frame(list_models(con), args.format, args.max_rows)
    return 0
