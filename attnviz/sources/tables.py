"""Opening a data file as a lazy table of its rows, as received.

Opening happens in two steps, so that a source can tell a file it cannot read at all
from one whose rows are broken: :func:`peek` reads only the head of the file (its
encoding and header, or a Parquet file's schema), :func:`load` then sets up the rows.
:mod:`attnviz.sources.file_text` tells which files are data and how their bytes become
text.

CSV rows
--------
The header line decides the separator: a comma if it has one, else a semicolon, tab
or ``|``. Every value is read as text. A line without a single value (blank, or only
separators) is not a row. A row with more fields than the header is *ragged*: its
values are not trusted to be in their columns, and the whole row is kept in ``_raw``
(the extra fields under ``_extra``). A row with fewer fields has the others empty.
Rows are numbered by the line they begin on, the header being line 1.
"""

import codecs
import csv
import io
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import polars as pl

from attnviz.bars import BarDataError
from attnviz.sources.file_text import HEAD_BYTES, as_utf8, data_suffix, read_bytes, text_encoding
from attnviz.sources.messages import quote

SEPARATORS = (",", ";", "\t", "|")
HELPERS = ("_line", "_raw")


@dataclass(frozen=True)
class Head:
    """What the first bytes of a data file say about it.

    Attributes
    ----------
    file
        The file.
    header
        Its column names, as it gives them.
    encoding, separator
        Of a CSV file; ``None`` for Parquet.
    """

    file: Path
    header: list[str]
    encoding: str | None = None
    separator: str | None = None


@dataclass(frozen=True)
class Table:
    """A file's rows as received, as a lazy frame (nothing is read until it is collected).

    Attributes
    ----------
    head
        The file and its header.
    frame
        Every line (or Parquet row): the file's columns (a repeated name gets
        ``_duplicated_<n>``, as in polars), ``_line`` (where it is) and, when some rows
        are ragged, ``_raw``: such a row as received, null for the others.
    unit
        What ``_line`` counts: the ``"line"`` of a CSV file or the ``"row"`` of a Parquet file.
    """

    head: Head
    frame: pl.LazyFrame
    unit: str

    @cached_property
    def schema(self) -> pl.Schema:
        """The frame's columns and types."""
        return self.frame.collect_schema()

    @property
    def rows(self) -> pl.LazyFrame:
        """:attr:`frame` less the blank lines of a CSV file, which are not rows.

        A query that needs only some columns (timestamps, symbols) can read :attr:`frame`
        instead, where a blank line is all nulls: looking for blank lines reads every column.
        """
        if self.unit == "row":
            return self.frame
        return self.frame.filter(~pl.all_horizontal(pl.col(self.names).is_null()))

    @property
    def names(self) -> list[str]:
        """The file's own columns in :attr:`frame`."""
        return [name for name in self.schema if name not in HELPERS]

    @property
    def ragged(self) -> bool:
        """Whether some rows have more fields than the header (and the frame has ``_raw``)."""
        return "_raw" in self.schema

    def collect(self, query: pl.LazyFrame) -> pl.DataFrame:
        """Run a query on the file's rows; raises its errors as the file's :class:`BarDataError`."""
        try:
            return query.collect()
        except pl.exceptions.PolarsError as error:
            raise BarDataError(
                f"{self.head.file}: cannot read it: {quote(str(error), 200)}"
            ) from None

    def has_rows(self, query: pl.LazyFrame) -> bool:
        """Whether a query on the file's rows finds any."""
        found: int = self.collect(query.select(pl.len())).item()
        return found > 0


def peek(file: Path) -> Head:
    """The head of a data file: read enough to know its columns, and no more.

    Raises
    ------
    BarDataError
        If the file is empty, binary, not what its suffix says, or cannot be decompressed.
    """
    if data_suffix(file) == ".parquet":
        try:
            return Head(file, list(pl.scan_parquet(file).collect_schema()))
        except (pl.exceptions.PolarsError, OSError) as error:
            raise BarDataError(
                f"{file}: cannot read it as Parquet: {quote(str(error), 200)}"
            ) from None
    head = read_bytes(file, HEAD_BYTES)
    if not head.strip():
        raise BarDataError(f"{file}: the file is empty: no header line")
    encoding = text_encoding(file, head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    first_line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if not first_line.strip():
        raise BarDataError(f"{file}: line 1 is empty; the header must be the first line")
    separator = next((s for s in SEPARATORS if s in first_line), ",")
    header = next(csv.reader([first_line], delimiter=separator))
    return Head(file, header, encoding, separator)


def load(head: Head) -> Table:
    """The rows of a peeked file, as a lazy table.

    Raises
    ------
    BarDataError
        If the rows cannot be read: a quote never closed, text in no encoding it claims.
    """
    file = head.file
    if head.separator is None:  # a Parquet file
        return Table(head, pl.scan_parquet(file).with_row_index("_line", offset=1), "row")
    names = _unique(head.header)
    source, uneven = _csv_text(head, len(names))
    if uneven:
        frame = _rows_one_by_one(head, source, names).lazy()
    else:
        frame = pl.scan_csv(
            _polars_source(source),
            separator=head.separator,
            infer_schema=False,
            new_columns=names,
            row_index_name="_line",
            row_index_offset=2,
        )
    return Table(head, frame, "line")


def _csv_text(head: Head, width: int) -> tuple[Path | bytes, bool]:
    """A CSV file's text for polars, and whether some of its lines are uneven."""
    source = as_utf8(head.file, head.encoding or "utf-8")
    try:
        return source, _uneven_lines(source, head.separator or ",", width)
    except pl.exceptions.PolarsError as error:
        if "utf-8" not in str(error):
            raise BarDataError(
                f"{head.file}: cannot read it as CSV: {quote(str(error), 200)}"
            ) from None
    source = as_utf8(head.file, "latin-1")  # not UTF-8 after all, past the head
    return source, _uneven_lines(source, head.separator or ",", width)


def _polars_source(source: Path | bytes) -> Path | io.BytesIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _uneven_lines(source: Path | bytes, separator: str, width: int) -> bool:
    """Whether a line may hold more fields than the header, or a quote that spans lines.

    polars would silently cut such a row short (or misread the rest of the file), so the
    rows are then read one by one. Quoted text is set aside before separators are
    counted; a quote left unpaired on its line is reason enough to look closer.
    """
    line = pl.col("line")
    unquoted = line.str.replace_all(r'"[^"\r\n]*"', "")
    lines = pl.scan_csv(
        _polars_source(source),
        has_header=False,
        separator="\x00",  # no text has one (binary files are refused): one field per line
        quote_char=None,
        infer_schema=False,
        new_columns=["line"],
    )
    found = lines.select(
        (unquoted.str.count_matches(separator, literal=True) >= width).any()
        | unquoted.str.contains('"', literal=True).any()
    ).collect()
    return bool(found.item())


def _unique(header: list[str]) -> list[str]:
    """Column names for the frame: a repeated name gets ``_duplicated_<n>``, as in polars."""
    seen: dict[str, int] = {}
    names = []
    for name in header:
        repeats = seen.get(name, -1)
        names.append(name if repeats < 0 else f"{name}_duplicated_{repeats}")
        seen[name] = repeats + 1
    return names


def _rows_one_by_one(head: Head, source: Path | bytes, names: list[str]) -> pl.DataFrame:
    """The rows as Python's csv module reads them: exact about quotes, ragged rows and lines."""
    data = source.read_bytes() if isinstance(source, Path) else source
    text = io.StringIO(data.decode("utf-8-sig"), newline="")
    reader = csv.reader(text, delimiter=head.separator or ",", strict=True)
    header, width = head.header, len(head.header)
    lines: list[int] = []
    columns: list[list[str | None]] = [[] for _ in header]
    raws: list[str | None] = []
    start = 2  # the line a row begins on (a quoted field may span lines)
    try:
        next(reader)  # the header, known already
        for row in reader:
            if any(row):  # a blank line is not a row
                lines.append(start)
                fields = row[:width] + [""] * (width - len(row))
                for column, value in zip(columns, fields, strict=True):
                    column.append(value or None)
                raws.append(_ragged_raw(header, row) if len(row) > width else None)
            start = reader.line_num + 1
    except csv.Error as error:
        raise BarDataError(f"{head.file}: line {start}: {error}") from None
    return pl.DataFrame(
        {"_line": lines, **dict(zip(names, columns, strict=True)), "_raw": raws},
        schema={"_line": pl.UInt32, **dict.fromkeys(names, pl.String), "_raw": pl.String},
    )


def _ragged_raw(header: list[str], row: list[str]) -> str:
    """A row with more fields than the header, as received: the extra ones under ``_extra``."""
    named = dict(zip(header, row[: len(header)], strict=True))
    return json.dumps(named | {"_extra": row[len(header) :]})
