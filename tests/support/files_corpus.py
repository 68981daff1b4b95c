"""Malformed (and well-formed) input for the files source, as data.

Each :class:`Case` is one file and what reading it for one series must give: how
many rows go on to validation (``loaded``, of which ``null_ts`` without a timestamp),
how many the source rejects and why, how many had not closed, or else the error. The
rows of the series in the file must all be accounted for: ``rows`` defaults to the
file's non-blank lines less the header.
"""

import bz2
import gzip
import lzma
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

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
    """One file, one request, one expected outcome."""

    name: str
    data: bytes | str
    file: str = "AAPL.csv"
    options: dict[str, Any] = field(default_factory=dict)
    request: dict[str, Any] = field(default_factory=dict)
    loaded: int = 0
    null_ts: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    not_closed: int = 0
    rows: int | None = None
    error: str | None = None
    names_file: bool = True
    first_ts: datetime | None = None

    @property
    def content(self) -> bytes:
        return self.data.encode() if isinstance(self.data, str) else self.data

    def expected_rows(self) -> int:
        if self.rows is not None:
            return self.rows
        return sum(1 for line in str(self.data).splitlines()[1:] if line.strip(", \r"))


CASES: list[Case] = [
    # --- ISO 8601 in its forms -----------------------------------------------------------
    Case("iso-dates", HEADER + rows(DAY, "2024-01-03"), loaded=2, first_ts=utc(2024, 1, 2)),
    Case(
        "iso-T-and-Z",
        HEADER + rows("2024-01-02T10:00:00Z", "2024-01-02T11:00:00Z"),
        request={"interval": "1h"},
        loaded=2,
        first_ts=utc(2024, 1, 2, 10),
    ),
    Case(
        "iso-fraction-and-offset",
        HEADER + rows("2024-07-01T15:00:00.000+02:00", "2024-07-01 16:00:00.0-0000"),
        request={"interval": "1h"},
        loaded=2,
        first_ts=utc(2024, 7, 1, 13),
    ),
    Case(
        "iso-minutes-only",
        HEADER + rows("2024-01-02 09:30", "2024-01-02 10:00"),
        request={"interval": "30m"},
        loaded=2,
        first_ts=utc(2024, 1, 2, 9, 30),
    ),
    Case(
        "padded-timestamps",
        HEADER + rows("  2024-01-02 ", "\t2024-01-03"),
        loaded=2,
        first_ts=utc(2024, 1, 2),
    ),
    Case("a-bad-value-is-quarantined", HEADER + rows(DAY, "n/a"), loaded=2, null_ts=1),
    Case("an-impossible-date", HEADER + rows(DAY, "2024-02-30"), loaded=2, null_ts=1),
    Case("an-empty-timestamp", HEADER + rows(DAY, ""), loaded=2, null_ts=1),
    Case(
        "dst-gap-in-new-york",
        HEADER + rows("2024-03-10 01:00:00", "2024-03-10 02:30:00"),
        options={"timezone": "America/New_York"},
        request={"interval": "30m"},
        loaded=2,
        null_ts=1,
    ),
    # --- numeric dates: the whole column decides the order --------------------------------
    Case(
        "day-first-slashes",
        HEADER + rows("02/01/2024", "13/01/2024"),
        loaded=2,
        first_ts=utc(2024, 1, 2),
    ),
    Case(
        "month-first-slashes",
        HEADER + rows("01/02/2024", "01/13/2024"),
        loaded=2,
        first_ts=utc(2024, 1, 2),
    ),
    Case(
        "day-first-dots-two-digit-year",
        HEADER + rows("02.01.24", "13.01.24"),
        loaded=2,
        first_ts=utc(2024, 1, 2),
    ),
    Case("day-first-dashes", HEADER + rows("13-01-2024"), loaded=1, first_ts=utc(2024, 1, 13)),
    Case(
        "numeric-date-with-time",
        HEADER + rows("01/13/2024 09:30", "01/02/2024 9:30"),
        request={"interval": "30m"},
        loaded=2,
        first_ts=utc(2024, 1, 2, 9, 30),
    ),
    Case(
        "ambiguous-day-month",
        HEADER + rows("01/02/2024", "03/04/2024"),
        error="day/month order is ambiguous: no field is above 12 (line 2 ('01/02/2024') and "
        "line 3 ('03/04/2024')); pass ts_format='%d/%m/%Y' (day first) or "
        "ts_format='%m/%d/%Y' (month first)",
    ),
    Case(
        "contradictory-day-month",
        HEADER + rows("13/01/2024", "01/13/2024"),
        error="line 2 ('13/01/2024') has a day first, line 3 ('01/13/2024') a month first",
    ),
    Case(
        "ambiguous-made-plain-by-ts-format",
        HEADER + rows("01/02/2024", "03/04/2024"),
        options={"ts_format": "%m/%d/%Y"},
        loaded=2,
        first_ts=utc(2024, 1, 2),
    ),
    Case(
        "ts-format-is-strict",
        HEADER + rows("02/01/2024", "2024-01-03", "31/02/2024"),
        options={"ts_format": "%d/%m/%Y"},
        loaded=3,
        null_ts=2,
    ),
    Case(
        "ts-format-fitting-nothing",
        HEADER + rows(DAY),
        options={"ts_format": "%d/%m/%Y"},
        error="ts_format '%d/%m/%Y' fits none of its values, e.g. line 2 ('2024-01-02')",
    ),
    Case(
        "words-without-ts-format",
        HEADER + '"Jan 2, 2024",1,1.2,0.9,1.1,100\n',
        error="column 'Date': line 2 ('Jan 2, 2024') is not a timestamp",
    ),
    Case(
        "words-with-ts-format",
        HEADER + '"Jan 2, 2024",1,1.2,0.9,1.1,100\n',
        options={"ts_format": "%b %d, %Y"},
        loaded=1,
        first_ts=utc(2024, 1, 2),
    ),
    Case(
        "mixed-forms",
        HEADER + rows(DAY, "1704240000"),
        error="timestamps in more than one form (ISO 8601 at line 2 ('2024-01-02'); "
        "an integer epoch at line 3 ('1704240000'))",
    ),
    # --- epochs: the unit is told only when the size leaves no doubt ----------------------
    *(
        Case(f"epoch-{unit}", HEADER + rows(epoch), loaded=1, first_ts=utc(2024, 1, 2))
        for unit, epoch in [
            ("seconds", "1704153600"),
            ("milliseconds", "1704153600000"),
            ("microseconds", "1704153600000000"),
            ("nanoseconds", "1704153600000000000"),
        ]
    ),
    Case(
        "epoch-near-1970",
        HEADER + rows("86400", "172800"),
        error="the unit of these epochs cannot be told from their size (line 2 ('86400') and "
        "line 3 ('172800')): pass ts_format 'epoch_s', 'epoch_ms', 'epoch_us' or 'epoch_ns'",
    ),
    Case("epoch-between-bands", HEADER + rows("50000000000"), error="'epoch_s', 'epoch_ms'"),
    Case("yyyymmdd-is-no-epoch", HEADER + rows("20240102"), error="such as '%Y%m%d'"),
    Case(
        "yyyymmdd-with-ts-format",
        HEADER + rows("20240102"),
        options={"ts_format": "%Y%m%d"},
        loaded=1,
        first_ts=utc(2024, 1, 2),
    ),
    Case(
        "epoch-before-1970-with-its-unit",
        HEADER + rows("-86400", "-172800", "x"),
        options={"ts_format": "epoch_s"},
        loaded=3,
        null_ts=1,
        first_ts=utc(1969, 12, 30),
    ),
    Case(
        "epoch-ignores-timezone",
        HEADER + rows("1704153600"),
        options={"timezone": "America/New_York"},
        loaded=1,
        first_ts=utc(2024, 1, 2),
    ),
    # --- dates name trading days ------------------------------------------------------------
    Case(
        "daily-dates-in-new-york",
        HEADER + rows(DAY, "2024-01-03"),
        options={"timezone": "America/New_York"},
        loaded=2,
        first_ts=utc(2024, 1, 2),
    ),
    Case(
        "weekly-numeric-dates-in-new-york",
        HEADER + rows("01/08/2024", "01/15/2024"),
        options={"timezone": "America/New_York"},
        request={"interval": "1w"},
        loaded=2,
        first_ts=utc(2024, 1, 8),
    ),
    Case(
        "intraday-times-in-new-york",
        HEADER + rows("2024-07-01 09:30"),
        options={"timezone": "America/New_York"},
        request={"interval": "30m"},
        loaded=1,
        first_ts=utc(2024, 7, 1, 13, 30),
    ),
    Case(
        "date-and-time-columns",
        "Date,Time,Open,High,Low,Close,Volume\n2024-01-02,09:30:00,1,1.2,0.9,1.1,100\n"
        "2024-01-02, 10:00,1,1.2,0.9,1.1,100\n",
        request={"interval": "30m"},
        loaded=2,
        first_ts=utc(2024, 1, 2, 9, 30),
    ),
    # --- one interval per file, one symbol per series ---------------------------------------
    Case(
        "interval-mismatch",
        "Date,Interval,Open,High,Low,Close,Volume\n"
        + rows(f"{DAY},1d", "2024-01-03,1D", "2024-01-04,1h", "2024-01-05,"),
        loaded=1,
        rejected={"interval_mismatch": 3},
    ),
    Case(
        "other-symbols-are-other-series",
        "Symbol,Date,Open,High,Low,Close,Volume\n"
        + rows(f"AAPL,{DAY}", f"MSFT,{DAY}", "AAPL,2024-01-03", f"../x,{DAY}", f"A'; DROP,{DAY}"),
        file="bars.csv",
        loaded=2,
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
        loaded=1,
        rejected={"ts_in_future": 1},
    ),
    Case(
        "bars-not-closed-by-as-of",
        HEADER + rows(DAY, "2024-01-03", "2024-01-04"),
        request={"as_of": utc(2024, 1, 3, 12)},
        loaded=1,
        not_closed=2,
    ),
    Case(
        "rows-before-start-not-asked-for",
        HEADER + rows("2023-12-29", DAY, "n/a"),
        request={"start": utc(2024, 1, 1)},
        loaded=2,
        null_ts=1,
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
    Case("blank-and-empty-lines", HEADER + rows(DAY) + "\n,,,,,\n" + rows("2024-01-03"), loaded=2),
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
        loaded=2,
        rejected={"ragged_row": 1},
    ),
    Case(
        "quoted-newline",
        "Date,Open,High,Low,Close,Volume,Note\n"
        + rows(DAY, values='1,1.2,0.9,1.1,100,"two\nlines"')
        + rows("2024-01-03", values="1,1.2,0.9,1.1,100,"),
        loaded=2,
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
