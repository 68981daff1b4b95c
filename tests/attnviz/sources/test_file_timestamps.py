"""How the files source reads bar-open times: forms, zones, offsets, and what it will not guess."""

import json
from datetime import UTC, date, datetime
from pathlib import Path

import files_corpus as corpus
import polars as pl
import pytest
from files_corpus import DAY, HEADER, Case, rows, utc

from attnviz.sources import BarRequest
from attnviz.sources.files import FileSource

CASES: list[Case] = [
    # --- ISO 8601 in its forms -----------------------------------------------------------
    Case("iso-dates", HEADER + rows(DAY, "2024-01-03"), ts=(utc(2024, 1, 2), utc(2024, 1, 3))),
    Case(
        "iso-T-and-Z",
        HEADER + rows("2024-01-02T10:00:00Z", "2024-01-02T11:00:00Z"),
        request={"interval": "1h"},
        ts=(utc(2024, 1, 2, 10), utc(2024, 1, 2, 11)),
    ),
    Case(
        "iso-fraction-and-offset",
        HEADER + rows("2024-07-01T15:00:00.000+02:00", "2024-07-01 16:00:00.0-0000"),
        request={"interval": "1h"},
        ts=(utc(2024, 7, 1, 13), utc(2024, 7, 1, 16)),
    ),
    Case(
        "iso-minutes-only",
        HEADER + rows("2024-01-02 09:30", "2024-01-02 10:00"),
        request={"interval": "30m"},
        ts=(utc(2024, 1, 2, 9, 30), utc(2024, 1, 2, 10)),
    ),
    Case(
        "padded-timestamps",
        HEADER + rows("  2024-01-02 ", "\t2024-01-03"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 3)),
    ),
    Case("a-bad-value-is-quarantined", HEADER + rows(DAY, "n/a"), ts=(utc(2024, 1, 2), None)),
    Case("an-impossible-date", HEADER + rows(DAY, "2024-02-30"), ts=(utc(2024, 1, 2), None)),
    Case("an-empty-timestamp", HEADER + rows(DAY, ""), ts=(utc(2024, 1, 2), None)),
    Case(
        "dst-gap-in-new-york",  # 02:30 on 2024-03-10 never happened in New York
        HEADER + rows("2024-03-10 01:00:00", "2024-03-10 02:30:00"),
        options={"timezone": "America/New_York"},
        request={"interval": "30m"},
        ts=(utc(2024, 3, 10, 6), None),
    ),
    # --- numeric dates: the whole column decides the order --------------------------------
    Case(
        "day-first-slashes",
        HEADER + rows("02/01/2024", "13/01/2024"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 13)),
    ),
    Case(
        "month-first-slashes",
        HEADER + rows("01/02/2024", "01/13/2024"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 13)),
    ),
    Case(
        "day-first-dots-two-digit-year",
        HEADER + rows("02.01.24", "13.01.24"),
        ts=(utc(2024, 1, 2), utc(2024, 1, 13)),
    ),
    Case("day-first-dashes", HEADER + rows("13-01-2024"), ts=(utc(2024, 1, 13),)),
    Case(
        "numeric-date-with-time",
        HEADER + rows("01/13/2024 09:30", "01/02/2024 9:30"),
        request={"interval": "30m"},
        ts=(utc(2024, 1, 2, 9, 30), utc(2024, 1, 13, 9, 30)),
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
        ts=(utc(2024, 1, 2), utc(2024, 3, 4)),
    ),
    Case(
        "ts-format-is-strict",
        HEADER + rows("02/01/2024", "2024-01-03", "31/02/2024"),
        options={"ts_format": "%d/%m/%Y"},
        ts=(utc(2024, 1, 2), None, None),
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
        ts=(utc(2024, 1, 2),),
    ),
    Case(
        "mixed-forms",
        HEADER + rows(DAY, "1704240000"),
        error="timestamps in more than one form (ISO 8601 at line 2 ('2024-01-02'); "
        "an integer epoch at line 3 ('1704240000'))",
    ),
    # --- epochs: the unit is told only when the size leaves no doubt ----------------------
    *(
        Case(f"epoch-{unit}", HEADER + rows(epoch), ts=(utc(2024, 1, 2),))
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
        ts=(utc(2024, 1, 2),),
    ),
    Case(
        "epoch-before-1970-with-its-unit",
        HEADER + rows("-86400", "-172800", "x"),
        options={"ts_format": "epoch_s"},
        ts=(utc(1969, 12, 30), utc(1969, 12, 31), None),
    ),
    Case(
        "epoch-ignores-timezone",
        HEADER + rows("1704153600"),
        options={"timezone": "America/New_York"},
        ts=(utc(2024, 1, 2),),
    ),
    # --- dates name trading days ------------------------------------------------------------
    Case(
        "daily-dates-in-new-york",
        HEADER + rows(DAY, "2024-01-03"),
        options={"timezone": "America/New_York"},
        ts=(utc(2024, 1, 2), utc(2024, 1, 3)),
    ),
    Case(
        "weekly-numeric-dates-in-new-york",
        HEADER + rows("01/08/2024", "01/15/2024"),
        options={"timezone": "America/New_York"},
        request={"interval": "1w"},
        ts=(utc(2024, 1, 8), utc(2024, 1, 15)),
    ),
    Case(
        "intraday-times-in-new-york",
        HEADER + rows("2024-07-01 09:30"),
        options={"timezone": "America/New_York"},
        request={"interval": "30m"},
        ts=(utc(2024, 7, 1, 13, 30),),
    ),
    Case(
        "date-and-time-columns",
        "Date,Time,Open,High,Low,Close,Volume\n2024-01-02,09:30:00,1,1.2,0.9,1.1,100\n"
        "2024-01-02, 10:00,1,1.2,0.9,1.1,100\n",
        request={"interval": "30m"},
        ts=(utc(2024, 1, 2, 9, 30), utc(2024, 1, 2, 10)),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_timestamp_corpus(case: Case, tmp_path: Path) -> None:
    corpus.check(case, tmp_path)


def test_naive_times_are_read_in_the_given_zone_and_offsets_are_honoured(tmp_path: Path) -> None:
    # Each value names another instant; read without its offset (or with the zone's), none
    # of those with an offset would land where it should.
    instants = {
        "2024-07-01 09:00:00": utc(2024, 7, 1, 13),  # naive, in New York's summer (UTC-4)
        "2024-01-02 09:00:00": utc(2024, 1, 2, 14),  # naive, in New York's winter (UTC-5)
        "2024-07-01T15:00:00Z": utc(2024, 7, 1, 15),
        "2024-07-01T11:00:00-05:00": utc(2024, 7, 1, 16),
        "2024-07-01T22:30:00+05:30": utc(2024, 7, 1, 17),
        "2024-07-01T20:00:00+02:00": utc(2024, 7, 1, 18),
    }
    lines = "".join(f"{stamp},1,1,1,1,1\n" for stamp in instants)
    (tmp_path / "SPY.csv").write_text("timestamp,open,high,low,close,volume\n" + lines)
    source = FileSource(tmp_path / "SPY.csv", timezone="America/New_York")
    bars = source.fetch(BarRequest("SPY", "1h", as_of=corpus.AS_OF)).bars
    read = {json.loads(raw)["timestamp"]: ts for raw, ts in bars.select("raw", "ts").iter_rows()}
    assert read == instants


def test_parquet_dates_epochs_and_zoned_times(tmp_path: Path) -> None:
    values = {c: [1.0] for c in ("open", "high", "low", "close", "volume")}
    pl.DataFrame({"date": [date(2024, 1, 2)], **values}).write_parquet(tmp_path / "D.parquet")
    pl.DataFrame({"ts": [1_704_153_600_000_000_000], **values}).write_parquet(
        tmp_path / "N.parquet"
    )
    zoned = pl.Series("ts", [datetime(2024, 1, 2, 9, 30)], pl.Datetime("ns"))
    pl.DataFrame({"ts": zoned.dt.replace_time_zone("Asia/Tokyo"), **values}).write_parquet(
        tmp_path / "Z.parquet"
    )
    source = FileSource(tmp_path, timezone="America/New_York")
    midnight = datetime(2024, 1, 2, tzinfo=UTC)

    def read(symbol: str, interval: str = "1d") -> list[datetime]:
        request = BarRequest(symbol, interval, as_of=corpus.AS_OF)
        ts: list[datetime] = source.fetch(request).bars["ts"].to_list()
        return ts

    # A Date names a trading day: 00:00 UTC for daily bars, whatever the zone.
    assert read("D") == [midnight]
    assert read("N") == [midnight]  # nanoseconds
    assert read("Z", "30m") == [datetime(2024, 1, 2, 0, 30, tzinfo=UTC)]  # 09:30 in Tokyo
