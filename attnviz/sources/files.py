"""Bars from the user's own CSV or Parquet files.

The column contract
-------------------
Each file holds bars of one interval. Required columns: a timestamp and
open, high, low, close, volume. Names are matched case-insensitively (and ignoring
spaces around them) against :data:`ALIASES` (``Date``, ``timestamp``, ``Close``,
``vol`` ... all work), and ``columns={"ts": "Bar Time", ...}`` maps any other names.
A ``Date`` and a ``Time`` column, with no other timestamp column, are read together
as one timestamp (``ts_format`` then describes ``"<date> <time>"``). Two columns that
could both be the one wanted (``Close`` and ``close``) are an error, not a choice.

Which symbol a row belongs to: a ``symbol`` (or ``ticker``) column when the file
has one; otherwise the file's name less its suffix (``AAPL.csv.gz`` holds AAPL).
Rows of other symbols are other series. An ``interval`` column, when present, must
equal the requested interval exactly (``1D`` is not ``1d``): rows naming another
interval are rejected as ``interval_mismatch``.

Timestamps are bar-open times, read as :mod:`attnviz.sources.timestamps` explains:
nothing ambiguous is guessed (day/month order, epoch units), and a date without a
time of day names that day at 00:00 UTC for daily and weekly bars, whatever the
``timezone`` of times of day. Values are trimmed of surrounding spaces; numbers are
plain decimals (``NaN``, ``inf`` and ``1e309`` included, for validation to judge). A
number with thousands separators (``"1,234.5"``) is not read, since ``1,234`` is 1234
in one locale and 1.234 in another: its row reaches validation without that value.
How a file is read is told in :mod:`attnviz.sources.tables`, in short: ``.csv`` (also
compressed: ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``, ``.csv.zst``) and ``.parquet``; text
in UTF-8, in UTF-16 or UTF-32 with a BOM, or else Latin-1; the separator the header
line uses; blank lines are not rows; a row with more fields than the header is
rejected as ``ragged_row``.

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
from datetime import datetime
from pathlib import Path

import polars as pl

from attnviz.bars import RECEIVED_SCHEMA, SYMBOL_PATTERN, VALUES, BarDataError, is_symbol
from attnviz.sources.base import BarRequest, Received, empty_rejected, in_request, with_raw
from attnviz.sources.tables import SUFFIXES, Head, Table, data_suffix, load, peek
from attnviz.sources.timestamps import Where, check_ts_format, quote, timestamps

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "datetime", "date", "open_time", "start"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
    "symbol": ("symbol", "ticker"),
    "interval": ("interval",),
}
REQUIRED = ("ts", *VALUES)
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
        Canonical name -> column name in the files, for names :data:`ALIASES` misses.
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
        self.columns = dict(columns or {})
        self.timezone = timezone
        self.ts_format = check_ts_format(ts_format)
        unknown = set(self.columns) - set(ALIASES)
        if unknown:
            raise BarDataError(
                f"files source: unknown column mapping {sorted(unknown)}; "
                f"map any of {sorted(ALIASES)}"
            )
        try:
            pl.select(pl.lit(datetime(2000, 1, 1)).dt.replace_time_zone(timezone))
        except pl.exceptions.PolarsError:
            raise BarDataError(
                f"files source: unknown timezone {timezone!r}; "
                "use an IANA name such as 'America/New_York' or 'UTC'"
            ) from None

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
                symbol_column = self._column("symbol", table.head)
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
        symbol_column = self._column("symbol", head)
        if symbol_column is None and not named_for_it:
            return None  # another symbol's file: its rows are not read
        table = load(head)
        bars, rejected = self._rows(table, request, symbol_column)
        if symbol_column is not None and bars.is_empty() and rejected.is_empty():
            of_symbol = table.rows.filter(_text(symbol_column) == request.symbol)
            if not _has_rows(of_symbol, file):
                return None  # not one row of the symbol, even outside the request's bounds
        return bars, rejected

    def _rows(self, table: Table, request: BarRequest, symbol_column: str | None) -> Part:
        """The series' rows in a file, within the request's bounds: bars and rejections."""
        names = self._resolve_columns(table.head)
        frame, ts = self._timestamps(table, names, request.interval)
        if symbol_column is not None:
            frame = frame.filter(_text(symbol_column) == request.symbol)
        ragged = pl.col("_raw").is_not_null() if table.ragged else pl.lit(False)
        reason = pl.when(ragged).then(pl.lit("ragged_row"))
        if "interval" in names:
            other = (_text(names["interval"]) != request.interval).fill_null(True)
            reason = reason.when(other).then(pl.lit("interval_mismatch"))
        # The bounds are applied before the rows are built, so that an incremental run builds
        # (and holds) only the rows it asked for; in_request applies them again, to no effect.
        within = pl.lit(True)
        if request.start is not None:
            within &= pl.col("_ts") >= request.start
        if request.end is not None:
            within &= pl.col("_ts") < request.end
        raw = with_raw(table.names)
        rows = _collect(
            frame.with_columns(pl.when(~ragged).then(ts).alias("_ts"))
            .filter(within | pl.col("_ts").is_null())
            .select(
                pl.lit(self.name).alias("source"),
                pl.lit(request.symbol).alias("symbol"),
                pl.lit(request.interval).alias("interval"),
                pl.col("_ts").alias("ts"),
                *[pl.when(~ragged).then(_number(table, names[c])).alias(c) for c in VALUES],
                pl.lit(None).alias("turnover"),
                (pl.coalesce("_raw", raw) if table.ragged else raw).alias("raw"),
                reason.otherwise(None).alias("_reason"),
            ),
            table.head.file,
        )
        rejected = rows["_reason"].is_not_null()
        if not rejected.any():  # the common case: no copy of the rows
            return rows.drop("_reason").cast(RECEIVED_SCHEMA), empty_rejected()
        return (
            rows.filter(~rejected).drop("_reason").cast(RECEIVED_SCHEMA),
            rows.filter(rejected)
            .select(*RECEIVED_SCHEMA, pl.concat_list("_reason").alias("failed"))
            .cast(empty_rejected().schema),
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
            date_time = pl.concat_str(_text(date), _text(time), separator=" ").alias(column)
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
        column = self._column("interval", table.head)
        if column is None:
            return True
        return _has_rows(table.rows.filter(_text(column) == interval), table.head.file)

    def _symbols_in(self, table: Table, symbol_column: str, interval: str) -> set[str]:
        """The symbols in a file's symbol column, at ``interval``."""
        interval_column = self._column("interval", table.head)
        frame = table.rows
        if interval_column is not None:
            frame = frame.filter(_text(interval_column) == interval)
        found = _collect(
            frame.group_by(_text(symbol_column).alias("symbol")).agg(pl.col("_line").min()),
            table.head.file,
        )
        bad = found.filter(~pl.col("symbol").str.contains(SYMBOL_PATTERN).fill_null(False))
        if not bad.is_empty():
            shown = ", ".join(
                f"{table.unit} {line} {quote(s)}" for s, line in bad.sort("_line").head(3).rows()
            )
            raise BarDataError(
                f"{table.head.file}: column {symbol_column!r}: {bad.height} value(s) are not a "
                f"symbol ({shown}): fix or remove those rows, or name the symbols to ingest"
            )
        return set(found["symbol"])

    def _column(self, canonical: str, head: Head) -> str | None:
        """The file's column for ``canonical``, if any; two candidates are an error."""
        wanted = self.columns.get(canonical)
        if wanted is not None:
            candidates = [name for name in head.header if name == wanted]
        else:
            keys = [name.strip().lower() for name in head.header]
            alias = next((a for a in ALIASES[canonical] if a in keys), None)
            candidates = [n for n, key in zip(head.header, keys, strict=True) if key == alias]
        if len(candidates) > 1:
            raise BarDataError(
                f"{head.file}: {len(candidates)} columns could be {canonical} "
                f"({', '.join(map(quote, candidates))}): keep one, or rename the others"
            )
        return candidates[0] if candidates else None

    def _resolve_columns(self, head: Head) -> dict[str, str]:
        """Canonical name -> the file's column, failing clearly when a required one is absent.

        ``time_of_day`` joins ``ts`` when the timestamp is a ``Date`` and a ``Time`` column.
        """
        resolved = {c: name for c in ALIASES if (name := self._column(c, head)) is not None}
        for canonical, wanted in self.columns.items():
            if canonical not in resolved:
                raise BarDataError(
                    f"{head.file}: mapped column {wanted!r} (for {canonical}) not found; "
                    f"columns are {_shown(head.header)}"
                )
        keys = {name.strip().lower(): name for name in head.header}
        one_column = (set(ALIASES["ts"]) - {"date", "time"}) & keys.keys()
        if "ts" not in self.columns and {"date", "time"} <= keys.keys() and not one_column:
            resolved["ts"], resolved["time_of_day"] = keys["date"], keys["time"]
        missing = [c for c in REQUIRED if c not in resolved]
        if missing:
            raise BarDataError(
                f"{head.file}: missing column(s) {missing}; columns are "
                f"{_shown(head.header)}. Map them with --column {missing[0]}=NAME on the "
                f"command line, or columns={{'{missing[0]}': NAME}} in source_options"
            )
        return resolved


def _text(column: str) -> pl.Expr:
    """A column as trimmed text, whatever its type."""
    return pl.col(column).cast(pl.String).str.strip_chars()


def _number(table: Table, column: str) -> pl.Expr:
    """A value column as a float; text that is not a plain number becomes null."""
    value = _text(column) if table.schema[column] == pl.String else pl.col(column)
    return value.cast(pl.Float64, strict=False)


def _collect(frame: pl.LazyFrame, file: Path) -> pl.DataFrame:
    """Run a query on a file, its errors told as the file's."""
    try:
        return frame.collect()
    except pl.exceptions.PolarsError as error:
        raise BarDataError(f"{file}: cannot read it: {quote(str(error), 200)}") from None


def _has_rows(frame: pl.LazyFrame, file: Path) -> bool:
    return _collect(frame.select(pl.len()), file).item() > 0


def _shown(names: list[str], most: int = 12) -> str:
    """Column names for a message: quoted, cut short, at most ``most`` of them."""
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return f"[{', '.join(map(quote, names[:most]))}{more}]"
