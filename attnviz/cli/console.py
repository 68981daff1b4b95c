"""What the ``attnviz`` command prints: loads, models, analyses, and query results.

When something fails it prints only its own line (Prefect's error lines stay in its UI).

Imports of Prefect and polars happen inside the functions, so ``attnviz --help``
stays fast.
"""

import json
import logging
import math
import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

    from attnviz.registry import ModelRecord
    from warehouse.bars import SeriesLoad


def print_loads(loads: Sequence["SeriesLoad"]) -> None:
    """One line per series: what was received and where each row went."""
    for x in loads:
        removed = f", removed {x.removed_bars}" if x.removed_bars else ""
        print(
            f"{x.label}: received {x.received}, loaded {x.loaded} "
            f"(new {x.new_bars}, revised {x.revised_bars}{removed}), rejected {x.rejected}, "
            f"not closed yet {x.not_closed}; bars {x.first_ts or '-'} .. {x.last_ts or '-'}"
        )


def print_models(models: Sequence["ModelRecord"]) -> None:
    """Two lines per model version registered: its status and test accuracy, and why."""
    for model in models:
        accuracy = model.metrics["transformer"]["direction_accuracy"]
        print(f"{model.name} v{model.version}: {model.status}, test accuracy {accuracy:.3f}")
        print(f"  {model.status_reason}")


def print_analyses(written: dict[str, dict[str, int]], as_of: datetime | None = None) -> None:
    """One line per series analysed: the windows and figures written (as of a backfill's time)."""
    when = "" if as_of is None else f" as of {as_of}"
    for label, rows in written.items():
        print(
            f"{label}: {rows['attention_window']} windows analysed{when}, {rows['figures']} figures"
        )


def print_verdicts(comparison: "pl.DataFrame") -> None:
    """One line per series: the filter chosen on validation, its Sharpe and whether it helped."""
    for row in comparison.filter(comparison["chosen"]).iter_rows(named=True):
        sharpe = (
            "no trades in the test period"
            if math.isnan(row["sharpe"])
            else f"Sharpe {row['sharpe']:.2f} [{row['sharpe_low']:.2f}, {row['sharpe_high']:.2f}]"
        )
        print(
            f"{row['symbol']} {row['interval']}: {row['strategy']} chosen on validation, "
            f"{sharpe}; {row['significance']}"
        )


def quiet_failures() -> None:
    """Keep Prefect's errors and tracebacks off the console: the command prints one line.

    Prefect logs a failing task or flow at ERROR, with its traceback, and then the
    same reason again in the flow's final state line; the console keeps the progress
    lines, the Prefect API and UI keep everything. Call it after importing a flow
    module: importing Prefect's flows (re)configures logging. ``ATTNVIZ_DEBUG=1``
    keeps everything on the console.
    """
    from prefect.logging.handlers import PrefectConsoleHandler

    def progress_only(record: logging.LogRecord) -> bool:
        failed = record.getMessage().startswith("Finished in state Failed")
        return record.levelno < logging.ERROR and not failed

    if os.environ.get("ATTNVIZ_DEBUG"):
        return
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(progress_only)


def print_frame(result: "pl.DataFrame", format: str, max_rows: int) -> None:
    """Print a query result as a table, CSV or JSON."""
    import polars as pl

    if format == "csv":
        # CSV has no lists or structs (check names, top lags, JSON): write those as JSON text.
        nested = [name for name, dtype in result.schema.items() if dtype.is_nested()]
        flat = result.with_columns(
            pl.Series(name, [json.dumps(v, default=str) for v in result[name].to_list()])
            for name in nested
        )
        print(flat.write_csv(), end="")
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
