"""Bars from the user's own CSV or Parquet files.

What is read how
----------------
Which column is which: :mod:`attnviz.sources.columns`. Timestamps are bar-open times,
read as :mod:`attnviz.sources.timestamps` explains: nothing ambiguous is guessed. Files
and their rows (``.csv``, compressed or not, and ``.parquet``; a row with more fields
than the header is rejected as ``ragged_row``): :mod:`attnviz.sources.tables`.

Which symbol a row belongs to: a ``symbol`` (or ``ticker``) column when the file
has one; otherwise the file's name less its suffix (``AAPL.csv.gz`` holds AAPL).
Rows of other symbols are other series. An ``interval`` column, when present, must
equal the requested interval exactly (``1D`` is not ``1d``): rows naming another
interval are rejected as ``interval_mismatch``.

Accounting
----------
Every row the source reads for a series is in :class:`~attnviz.sources.base.Received`:
a bar for validation (values that cannot be read reach it empty, with the row as
received in ``raw``), a rejection with its reason (``interval_mismatch``,
``ragged_row``, ``ts_in_future``), or a bar not closed by the as-of. Rows outside the
request's ``[start, end)`` were not asked for.

Files that cannot be read
-------------------------
Every error is a :class:`~attnviz.bars.BarDataError` naming the file (and the column
and line where they apply); values are quoted at most 40 characters long. A file that
cannot be opened at all (binary, corrupt, empty) cannot say which symbols it holds, so
it is charged to the symbol its name spells: fetching that series fails, other series
skip the file, and :meth:`FileSource.symbols` lists that name so the failure shows in
the run. A file that opens but whose rows cannot be read fails every series it may
hold: the one it is named for, or all of them if it has a symbol column. Where no
series can be charged (an unreadable file whose name is not a symbol, rows whose
symbol is empty or malformed), :meth:`FileSource.symbols` fails naming them: fix the
file, or name the symbols to ingest. Files whose names start with ``.`` are ignored.
"""

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from attnviz.bars import SYMBOL_PATTERN, VALUES, BarDataError, is_symbol
from attnviz.sources.base import (
    RECEIVED,
    REJECTED,
    BarRequest,
    Received,
    empty_rejected,
    in_request,
    labels,
    with_raw,
)
from attnviz.sources.columns import (
    as_number,
    as_text,
    check_mapping,
    find_column,
    resolve_columns,
)
from attnviz.sources.file_text import SUFFIXES, data_suffix
from attnviz.sources.messages import Where, quote
from attnviz.sources.tables import Table, load, peek
from attnviz.sources.timestamps import check_timezone, check_ts_format, timestamps

# Bars and rejections read from one file for one request.
Part = tuple[pl.DataFrame, pl.DataFrame]


def symbol_of(path: Path) -> str:
    """The symbol a data file's name spells: the name less its suffix (``AAPL.csv.gz``: AAPL)."""
    suffix = data_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.name


class FileSource:
    """Bars read from CSV or Parquet files.

    Parameters
    ----------
    path
        A file, a folder (every data file in it: ``*.csv``, ``*.csv.gz`` ... ``*.parquet``),
        or a glob pattern.
    columns
        Canonical name -> column name in the files, for names
        :data:`~attnviz.sources.columns.ALIASES` misses.
    timezone
        IANA zone of times of day without an offset, e.g. ``"America/New_York"``.
    ts_format
        How text (or integer) timestamps are written when their form does not say: a
        strftime format (``"%m/%d/%Y"``) or ``epoch_s``, ``epoch_ms``, ``epoch_us``,
        ``epoch_ns``. ``None`` reads ISO 8601, epochs of a telling size and numeric dates
        of a telling order. Parquet dates and datetimes need none.

    Raises
    ------
    BarDataError
        For an unknown column mapping, time zone or timestamp format.
    """

    name = "files"

    def __init__(
        self,
        path: Path | str,
        columns: Mapping[str, str] | None = None,
        timezone: str = "UTC",
        ts_format: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.ts_format = check_ts_format(ts_format)
        self.columns = check_mapping(columns)
        self.timezone = check_timezone(timezone)

    def files(self) -> list[Path]:
        """The data files the source reads, in a stable order."""
        if self.path.is_file():
            found = [self.path]
        else:
            # A folder's files, or a glob's: never hidden files (macOS's ._AAPL.csv) or folders.
            listed = (
                self.path.iterdir() if self.path.is_dir() else self.path.parent.glob(self.path.name)
            )
            found = [p for p in listed if p.is_file() and not p.name.startswith(".")]
        found = [p for p in found if data_suffix(p) is not None]
        if not found:
            raise BarDataError(
                f"files source: no data files ({', '.join(SUFFIXES)}) at {self.path}"
            )
        return sorted(found)

    def symbols(self, interval: str) -> list[str]:
        """The symbols the files hold at ``interval``: what to ingest when none are named.

        A file without a symbol column holds the symbol its name spells, unless its
        ``interval`` column names only other intervals. A file that cannot be read is
        listed under its name, so that fetching it reports why.

        Raises
        ------
        BarDataError
            For a file whose series cannot be known: unreadable and not named for a
            symbol, or with rows whose symbol is empty or malformed.
        """
        held: set[str] = set()
        for file in self.files():
            name = symbol_of(file)
            try:
                table = load(peek(file))
                symbol_column = find_column(table.head, "symbol", self.columns)
            except BarDataError as error:
                if not is_symbol(name):
                    raise BarDataError(
                        f"{error}; and its name is not a symbol, so which series it holds is "
                        "unknown: fix or remove it, or name the symbols to ingest"
                    ) from None
                held.add(name)  # fetching it will report the error
                continue
            if symbol_column is not None:
                held |= self._symbols_in(table, symbol_column, interval)
            elif not is_symbol(name):
                raise BarDataError(
                    f"{file}: its name is not a symbol ({quote(name)}) and it has no symbol "
                    "column, so its bars belong to no series: rename it to its symbol"
                )
            elif self._holds_interval(table, interval):
                held.add(name)
        return sorted(held)

    def fetch(self, request: BarRequest) -> Received:
        """Closed bars of ``request.symbol`` from every file that holds it.

        Raises
        ------
        BarDataError
            If no file holds the series at all (a typo, not merely no new bars), or a file
            that may hold it cannot be read.
        """
        files = self.files()
        parts = [part for file in files if (part := self._read(file, request)) is not None]
        if not parts:
            raise BarDataError(
                f"files source: no bars for {request.symbol} {request.interval} in "
                f"{[str(file) for file in files]}"
            )
        bars = pl.concat([bars for bars, _ in parts]) if len(parts) > 1 else parts[0][0]
        received = in_request(bars, request)
        bars = received.bars
        if not bars["ts"].is_sorted(nulls_last=True):  # sorting copies every row
            bars = bars.sort("ts", nulls_last=True, maintain_order=True)
        rejected = pl.concat([*(rejected for _, rejected in parts), received.rejected])
        return Received(bars, rejected, received.not_closed)

    def _read(self, file: Path, request: BarRequest) -> Part | None:
        """The file's rows of the series; ``None`` if the file holds none."""
        named_for_it = symbol_of(file) == request.symbol
        try:
            head = peek(file)
        except BarDataError:
            if named_for_it:
                raise
            return None  # charged to the series its name spells
        symbol_column = find_column(head, "symbol", self.columns)
        if symbol_column is None and not named_for_it:
            return None  # another symbol's file: its rows are not read
        table = load(head)
        bars, rejected = self._rows(table, request, symbol_column)
        if symbol_column is not None and bars.is_empty() and rejected.is_empty():
            of_symbol = table.rows.filter(as_text(symbol_column) == request.symbol)
            if not table.has_rows(of_symbol):
                return None  # not one row of the symbol, even outside the request's bounds
        return bars, rejected

    def _rows(self, table: Table, request: BarRequest, symbol_column: str | None) -> Part:
        """The series' rows in a file, within the request's bounds: bars and rejections."""
        names = resolve_columns(table.head, self.columns)
        frame, ts = self._timestamps(table, names, request.interval)
        if symbol_column is not None:
            frame = frame.filter(as_text(symbol_column) == request.symbol)
        ragged = pl.col("_raw").is_not_null() if table.ragged else pl.lit(False)
        # A row's reason to be rejected, the first that applies; null for a bar.
        reasons = [pl.when(ragged).then(pl.lit("ragged_row"))]
        if "interval" in names:
            other = (as_text(names["interval"]) != request.interval).fill_null(True)
            reasons.append(pl.when(other).then(pl.lit("interval_mismatch")))
        # The bounds are applied before the rows are built, so that an incremental run builds
        # (and holds) only the rows it asked for; in_request applies them again, to no effect.
        read_ts = pl.col("_ts")
        raw = with_raw(table.names)
        rows = table.collect(
            frame.with_columns(pl.when(~ragged).then(ts).alias("_ts"))
            .filter(request.asked_for(read_ts) | read_ts.is_null())
            .select(
                *labels(self.name, request),
                read_ts.alias("ts"),
                *[
                    pl.when(~ragged).then(as_number(names[c], table.schema[names[c]])).alias(c)
                    for c in VALUES
                ],
                pl.lit(None).alias("turnover"),
                (pl.coalesce("_raw", raw) if table.ragged else raw).alias("raw"),
                pl.coalesce(reasons).alias("_reason"),
            )
        )
        rejected = rows["_reason"].is_not_null()
        if not rejected.any():  # the common case: no copy of the rows
            return rows.drop("_reason").cast(RECEIVED), empty_rejected()
        return (
            rows.filter(~rejected).drop("_reason").cast(RECEIVED),
            rows.filter(rejected)
            .select(*RECEIVED, pl.concat_list("_reason").alias("failed"))
            .cast(REJECTED),
        )

    def _timestamps(
        self, table: Table, names: dict[str, str], interval: str
    ) -> tuple[pl.LazyFrame, pl.Expr]:
        """The file's rows, and the expression that reads their bar-open times."""
        frame, rows, column = table.frame, table.rows, names["ts"]
        where = Where(table.head.file, column, table.unit)
        if "time_of_day" in names:
            date, time = names["ts"], names["time_of_day"]
            column, where = "_date_time", Where(table.head.file, f"{date} + {time}", table.unit)
            date_time = pl.concat_str(as_text(date), as_text(time), separator=" ").alias(column)
            frame, rows = frame.with_columns(date_time), rows.with_columns(date_time)
        try:
            ts = timestamps(
                frame,  # every line: blank ones have no timestamp, and need no other column
                column,
                where,
                ts_format=self.ts_format,
                timezone=self.timezone,
                interval=interval,
            )
        except pl.exceptions.PolarsError as error:
            raise BarDataError(f"{where}: cannot read it: {quote(str(error), 200)}") from None
        return rows, ts

    def _holds_interval(self, table: Table, interval: str) -> bool:
        """Whether a file without a symbol column has bars of ``interval`` (or says no interval)."""
        column = find_column(table.head, "interval", self.columns)
        if column is None:
            return True
        return table.has_rows(table.rows.filter(as_text(column) == interval))

    def _symbols_in(self, table: Table, symbol_column: str, interval: str) -> set[str]:
        """The symbols in a file's symbol column, at ``interval``."""
        interval_column = find_column(table.head, "interval", self.columns)
        frame = table.rows
        if interval_column is not None:
            frame = frame.filter(as_text(interval_column) == interval)
        found = table.collect(
            frame.group_by(as_text(symbol_column).alias("symbol")).agg(pl.col("_line").min())
        )
        bad = found.filter(~pl.col("symbol").str.contains(SYMBOL_PATTERN).fill_null(False))
        if not bad.is_empty():
            examples = ", ".join(
                f"{table.unit} {line} {quote(s)}" for s, line in bad.sort("_line").head(3).rows()
            )
            raise BarDataError(
                f"{table.head.file}: column {symbol_column!r}: {bad.height} value(s) are not a "
                f"symbol ({examples}): fix or remove those rows, or name the symbols to ingest"
            )
        return set(found["symbol"])
