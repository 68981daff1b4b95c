import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources import BarRequest, make_source
from attnviz.sources.files import FileSource

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = "Date,Open,High,Low,Close,Volume\n"


def request(symbol: str = "MSFT", interval: str = "1d", **kwargs: datetime) -> BarRequest:
    return BarRequest(symbol, interval, as_of=kwargs.pop("as_of", NOW), **kwargs)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_named_after_the_symbol_with_common_column_names(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-03,1,2,0.5,1.5,100\n2024-01-02,1,2,0.5,1.2,90\n")
    bars = FileSource(tmp_path).fetch(request())
    assert bars.schema == pl.Schema(RECEIVED_SCHEMA)
    assert bars["ts"].to_list() == [
        datetime(2024, 1, 2, tzinfo=UTC),
        datetime(2024, 1, 3, tzinfo=UTC),
    ]
    assert bars["close"].to_list() == [1.2, 1.5]
    assert json.loads(bars["raw"][0]) == dict(
        Date="2024-01-02", Open="1", High="2", Low="0.5", Close="1.2", Volume="90"
    )


def test_parquet_with_symbol_column_and_mapped_names(tmp_path: Path) -> None:
    pl.DataFrame(
        {
            "ticker": ["AAPL", "MSFT", "MSFT"],
            "bar_start": [datetime(2024, 1, 2, 14, 30)] * 3,
            "o": [1.0, 2.0, 2.0],
            "h": [1.0, 3.0, 3.0],
            "l": [1.0, 1.0, 1.0],
            "c": [1.0, 2.5, 2.5],
            "qty": [5, 6, 7],
        }
    ).write_parquet(tmp_path / "mixed.parquet")
    source = make_source(
        "files", {"path": tmp_path, "columns": {"ts": "bar_start", "volume": "qty"}}
    )
    bars = source.fetch(request("AAPL", "1h"))
    assert bars.height == 1 and bars["volume"].to_list() == [5.0]
    assert bars["symbol"].to_list() == ["AAPL"] and bars["source"].to_list() == ["files"]


def test_naive_times_are_read_in_the_given_zone_and_offsets_are_honoured(tmp_path: Path) -> None:
    write(
        tmp_path / "SPY.csv",
        "timestamp,open,high,low,close,volume\n"
        "2024-07-01 09:00:00,1,1,1,1,1\n"
        "2024-07-01T15:00:00+02:00,1,1,1,1,1\n",
    )
    naive = FileSource(tmp_path / "SPY.csv", timezone="America/New_York").fetch(
        request("SPY", "1h")
    )
    assert naive["ts"][0] == datetime(2024, 7, 1, 13, tzinfo=UTC)  # 09:00 EDT


def test_offset_timestamps_convert_to_utc(tmp_path: Path) -> None:
    write(
        tmp_path / "SPY.csv", "ts,open,high,low,close,volume\n2024-07-01T15:00:00+02:00,1,1,1,1,1\n"
    )
    assert FileSource(tmp_path).fetch(request("SPY", "1h"))["ts"][0] == datetime(
        2024, 7, 1, 13, tzinfo=UTC
    )


def test_epoch_milliseconds_are_read(tmp_path: Path) -> None:
    write(
        tmp_path / "BTCUSDT.csv", "open_time,open,high,low,close,volume\n1704067200000,1,1,1,1,1\n"
    )
    bars = FileSource(tmp_path).fetch(request("BTCUSDT", "1h"))
    assert bars["ts"][0] == datetime(2024, 1, 1, tzinfo=UTC)


def test_a_local_time_that_does_not_exist_is_left_for_quarantine(tmp_path: Path) -> None:
    # 02:30 on 2024-03-10 never happened in New York (clocks jumped from 02:00 to 03:00).
    write(tmp_path / "SPY.csv", HEADER + "2024-03-10 02:30:00,1,1,1,1,1\n")
    bars = FileSource(tmp_path, timezone="America/New_York").fetch(request("SPY", "1h"))
    assert bars.height == 1 and bars["ts"][0] is None


def test_unreadable_values_reach_validation_with_the_raw_row(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-02,1,2,0.5,abc,100\nnot a date,1,2,0.5,1,1\n")
    bars = FileSource(tmp_path).fetch(request())
    assert bars.height == 2
    assert bars["close"].to_list() == [None, 1.0]
    assert bars["ts"].to_list()[1] is None
    assert '"Close":"abc"' in bars["raw"][0]


def test_bounds_and_as_of_filter_rows(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-0{d},1,1,1,1,1\n" for d in range(1, 6))
    write(tmp_path / "MSFT.csv", HEADER + rows)
    bars = FileSource(tmp_path).fetch(
        request(start=datetime(2024, 1, 2, tzinfo=UTC), as_of=datetime(2024, 1, 4, 12, tzinfo=UTC))
    )
    # The 2024-01-04 daily bar closes at 2024-01-05 00:00, after as_of.
    assert bars["ts"].dt.day().to_list() == [2, 3]


def test_missing_column_is_named_with_the_file(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", "Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1\n")
    with pytest.raises(BarDataError, match=r"MSFT.csv: missing column\(s\) \['volume'\]"):
        FileSource(tmp_path).fetch(request())


def test_mapping_to_an_absent_column_is_named(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-02,1,2,0.5,1,1\n")
    with pytest.raises(BarDataError, match="mapped column 'When' \\(for ts\\) not found"):
        FileSource(tmp_path, columns={"ts": "When"}).fetch(request())
    with pytest.raises(BarDataError, match="unknown column mapping"):
        FileSource(tmp_path, columns={"price": "Close"})


def test_no_files_unknown_symbol_and_unreadable_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BarDataError, match=r"no \.csv or \.parquet files"):
        FileSource(tmp_path / "nowhere").fetch(request())
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-02,1,2,0.5,1,1\n")
    with pytest.raises(BarDataError, match="no bars for AAPL 1d"):
        FileSource(tmp_path).fetch(request("AAPL"))
    (tmp_path / "MSFT.csv").write_bytes(b"\x00\x01 not parquet")
    (tmp_path / "MSFT.csv").rename(tmp_path / "MSFT.parquet")
    with pytest.raises(BarDataError, match=r"MSFT\.parquet: cannot read it as parquet"):
        FileSource(tmp_path).fetch(request())


def test_symbol_never_becomes_a_path(tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    write(outside, HEADER + "2024-01-02,1,2,0.5,1,1\n")
    (tmp_path / "bars").mkdir()
    with pytest.raises(BarDataError, match="invalid symbol"):
        FileSource(tmp_path / "bars").fetch(request("../secret"))
