"""Malformed (and well-formed) files for the files source, as data, and the check they pass.

Each :class:`Case` is one file and what reading it for one series must give: the bars that
go on to validation (every ``ts``, in order, or else how many, of which ``null_ts`` without
a timestamp), how many rows the source rejects and why, how many had not closed, or else
the error. The rows of the series in the file must all be accounted for: ``rows`` defaults
to the file's non-blank lines less the header. :func:`check` reads a case and checks it.

The cases here are about files, text, columns and rows; those about reading timestamps
are in ``tests/attnviz/sources/test_file_timestamps.py``.
"""

import bz2
import gzip
import lzma
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources import BarRequest
from attnviz.sources.files import FileSource

HEADER = "Date,Open,High,Low,Close,Volume\n"
DAY = "2024-01-02"  # a Tuesday
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def rows(*timestamps: str, values: str = "1,1.2,0.9,1.1,100") -> str:
    """CSV rows with the same values at each timestamp."""
    return "".join(f"{ts},{values}\n" for ts in timestamps)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@dataclass(frozen=True)
class Case:
    """One file, one request, one expected outcome.

    ``ts`` lists the bars' timestamps in the order the source gives them (``None``: a
    value that could not be read); without it, ``loaded`` and ``null_ts`` count them.
    """

    name: str
    data: bytes | str
    file: str = "AAPL.csv"
    options: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    ts: tuple[datetime | None, ...] | None = None
    loaded: int = 0
    null_ts: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    not_closed: int = 0
    rows: int | None = None
    error: str | None = None
    names_file: bool = True

    @property
    def content(self) -> bytes:
        return self.data.encode() if isinstance(self.data, str) else self.data

    def expected_rows(self) -> int:
        if self.rows is not None:
            return self.rows
        return sum(1 for line in str(self.data).splitlines()[1:] if line.strip(", \r"))


def check(case: Case, folder: Path) -> None:
    """Write ``case``'s file into ``folder``, read it for AAPL 1d (or the case's request)."""
    (folder / case.file).write_bytes(case.content)
    wanted = BarRequest(**{"symbol": "AAPL", "interval": "1d", "as_of": AS_OF, **case.request})
    if case.error is not None:
        with pytest.raises(BarDataError) as raised:
            FileSource(folder, **case.options).fetch(wanted)
        assert case.error in str(raised.value)
        assert not case.names_file or case.file in str(raised.value)
        return
    received = FileSource(folder, **case.options).fetch(wanted)
    assert received.bars.schema == pl.Schema(RECEIVED_SCHEMA)
    if case.ts is not None:
        assert received.bars["ts"].to_list() == list(case.ts)
    else:
        assert received.bars.height == case.loaded
        assert received.bars["ts"].null_count() == case.null_ts
    reasons = Counter(reason for failed in received.rejected["failed"] for reason in failed)
    assert reasons == Counter(case.rejected)
    assert received.not_closed == case.not_closed
    assert received.received == case.expected_rows()


CASES: list[Case] = [
    # --- one interval per file, one symbol per series ---------------------------------------
    Case(
        "interval-mismatch",
        "Date,Interval,Open,High,Low,Close,Volume\n"
        + rows(f"{DAY},1d", "2024-01-03,1D", "2024-01-04,1h", "2024-01-05,"),
        ts=(utc(2024, 1, 2),),
        rejected={"interval_mismatch": 3},
    ),
    Case(
        "other-symbols-are-other-series",
        "Symbol,Date,Open,High,Low,Close,Volume\n"
        + rows(f"AAPL,{DAY}", f"MSFT,{DAY}", "AAPL,2024-01-03", f"../x,{DAY}", f"A'; DROP,{DAY}"),
        file="bars.csv",
        ts=(utc(2024, 1, 2), utc(2024, 1, 3)),
        rows=2,
    ),
    Case(
        "no-row-of-the-symbol",
        "Symbol,Date,Open,High,Low,Close,Volume\n" + rows(f"MSFT,{DAY}"),
        file="bars.csv",
        error="no bars for AAPL 1d",
    ),
    # --- every row counted ------------------------------------------------------------------
    Case(
        "timestamps-in-the-future",
        HEADER + rows(DAY, "2100-01-01"),
        ts=(utc(2024, 1, 2),),
        rejected={"ts_in_future": 1},
    ),
    Case(
        "bars-not-closed-by-as-of",
        HEADER + rows(DAY, "2024-01-03", "2024-01-04"),
        request={"as_of": utc(2024, 1, 3, 12)},
        ts=(utc(2024, 1, 2),),
        not_closed=2,
    ),
    Case(
        "rows-before-start-not-asked-for",
        HEADER + rows("2023-12-29", DAY, "n/a"),
        request={"start": utc(2024, 1, 1)},
        ts=(utc(2024, 1, 2), None),
        rows=2,
    ),
    # --- text, encodings, compression -------------------------------------------------------
    Case("utf-8-bom", "\ufeff" + HEADER + rows(DAY), loaded=1),
    Case("utf-16-bom", (HEADER + rows(DAY)).encode("utf-16"), loaded=1, rows=1),
    Case(
        "latin-1",
        (
            "Date,Open,High,Low,Close,Volume,Note\n" + rows(DAY, values="1,1.2,0.9,1.1,100,café")
        ).encode("latin-1"),
        loaded=1,
        rows=1,
    ),
    Case("crlf", (HEADER + rows(DAY, "2024-01-03")).replace("\n", "\r\n"), loaded=2),
    Case("trailing-empty-line", HEADER + rows(DAY) + "\n", loaded=1),
    Case(
        "blank-and-empty-lines",
        HEADER + rows(DAY) + "\n,,,,,\n" + rows("2024-01-03"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 3)),
    ),
    Case("semicolons", (HEADER + rows(DAY)).replace(",", ";"), loaded=1),
    Case("tabs", (HEADER + rows(DAY)).replace(",", "\t"), loaded=1),
    Case("padded-header-names", " Date , Open,High,Low ,Close,Volume\n" + rows(DAY), loaded=1),
    *(
        Case(
            f"compressed-{suffix}",
            pack((HEADER + rows(DAY)).encode()),
            f"AAPL.csv.{suffix}",
            loaded=1,
            rows=1,
        )
        for suffix, pack in [
            ("gz", gzip.compress),
            ("bz2", bz2.compress),
            ("xz", lzma.compress),
            ("zst", lambda data: pa.compress(data, codec="zstd", asbytes=True)),
        ]
    ),
    # --- values -----------------------------------------------------------------------------
    Case(
        "thousands-separators-are-not-read",
        HEADER + f'{DAY},1,2,0.5,"1,234.5",100\n',
        loaded=1,
    ),
    Case(
        "nan-and-infinities-reach-validation",
        HEADER + rows(DAY, values="NaN,inf,-inf,1e309,1"),
        loaded=1,
    ),
    Case(
        "negative-volume-reaches-validation", HEADER + rows(DAY, values="1,2,0.5,1.5,-5"), loaded=1
    ),
    Case("a-short-row", HEADER + rows(DAY) + "2024-01-03,1,2\n", loaded=2),
    Case(
        "a-ragged-row",
        HEADER + rows(DAY) + "2024-01-03,1,1.2,0.9,1.1,100,extra\n" + rows("2024-01-04"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 4)),
        rejected={"ragged_row": 1},
    ),
    Case(
        "quoted-newline",
        "Date,Open,High,Low,Close,Volume,Note\n"
        + rows(DAY, values='1,1.2,0.9,1.1,100,"two\nlines"')
        + rows("2024-01-03", values="1,1.2,0.9,1.1,100,"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 3)),
        rows=2,
    ),
    Case(
        "unused-duplicate-column",
        "Date,Open,High,Low,Close,Volume,Note,Note\n" + rows(DAY, values="1,1.2,0.9,1.1,100,a,b"),
        loaded=1,
    ),
    # --- files that cannot be read ----------------------------------------------------------
    Case(
        "unknown-timezone",
        HEADER + rows(DAY),
        options={"timezone": "America/NewYork"},
        error="unknown timezone 'America/NewYork'",
        names_file=False,
    ),
    Case("empty-file", "", error="AAPL.csv: the file is empty"),
    Case("header-only", HEADER, loaded=0),
    Case(
        "missing-column",
        "Date,Open,High,Low,Close\n" + rows(DAY, values="1,2,0.5,1.5"),
        error="missing column(s) ['volume']",
    ),
    Case(
        "duplicate-column",
        "Date,Open,High,Low,Close,close,Volume\n" + rows(DAY, values="1,2,0.5,1.5,1.5,100"),
        error="2 columns could be close ('Close', 'close')",
    ),
    Case(
        "unterminated-quote",
        HEADER + rows(DAY) + '2024-01-03,"1,1.2,0.9,1.1,100\n' + rows("2024-01-04"),
        error="AAPL.csv: line 3: unexpected end of data",
    ),
    Case("binary", bytes(range(256)) * 4, error="AAPL.csv: not CSV text: it looks like binary"),
    Case("parquet-named-csv", b"PAR1\x15\x04" + bytes(100), error="it looks like a Parquet file"),
    Case("xlsx-named-csv", b"PK\x03\x04" + bytes(100), error="a zip archive"),
    Case("corrupt-gzip", b"\x1f\x8b\x08\x00garbage", "AAPL.csv.gz", error="cannot decompress it"),
    Case(
        "long-values-are-cut-short",
        HEADER + rows("x" * 500),
        error="line 2 ('" + "x" * 36 + "...)",
    ),
]
