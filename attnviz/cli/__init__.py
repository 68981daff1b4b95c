"""The ``attnviz`` command.

This package is the one part of ``attnviz`` that reaches up into ``flows`` and
``warehouse``, as the console script of most Python tools does: :mod:`.parser`
defines the commands, :mod:`.commands` runs them, :mod:`.console` prints. Heavy
packages (Prefect, Great Expectations, DuckDB, polars) are imported inside the
commands that need them, so ``attnviz --help`` answers at once.

A failure prints one line, ``attnviz <command>: <what went wrong>``, and exits 1;
the full log stays in the Prefect UI, and ``ATTNVIZ_DEBUG=1`` shows tracebacks.
"""

import os
import sys
from collections.abc import Sequence

from attnviz.cli.commands import UsageError
from attnviz.cli.parser import build_parser

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    from flows.lifetime import exit_on_sigterm

    exit_on_sigterm()
    args = build_parser().parse_args(argv)
    if getattr(args, "db", None):
        os.environ["ATTNVIZ_DB"] = args.db
    try:
        status: int = args.handler(args)
        return status
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
