import gzip
import json
import math
from datetime import UTC, datetime
from pathlib import Path

import files_corpus as corpus
import polars as pl
import pytest
from files_corpus import AS_OF, HEADER

from attnviz.bars import RECEIVED_SCHEMA, BarDataError
from attnviz.sources import BarRequest, make_source
from attnviz.sources.files import FileSource, symbol_of


def request(symbol: str = "MSFT", interval: str = "1d", **kwargs: datetime) -> BarRequest:
    return BarRequest(symbol, interval, as_of=kwargs.pop("as_of", AS_OF), **kwargs)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", corpus.CASES, ids=[case.name for case in corpus.CASES])
def test_corpus(case: corpus.Case, tmp_path: Path) -> None:
    corpus.check(case, tmp_path)


def test_csv_named_after_the_symbol_with_common_column_names(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-03,1,2,0.5,1.5,100\n2024-01-02,1,2,0.5,1.2,90\n")
    bars = FileSource(tmp_path).fetch(request()).bars
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
            "h": [1.5, 3.0, 3.0],
            "l": [0.5, 1.0, 1.0],
            "c": [1.2, 2.5, 2.5],
            "qty": [5, 6, 7],
        }
    ).write_parquet(tmp_path / "mixed.parquet")
    source = make_source(
        "files", {"path": tmp_path, "columns": {"ts": "bar_start", "volume": "qty"}}
    )
    bars = source.fetch(request("AAPL", "1h")).bars
    assert bars.drop("raw").rows() == [
        (
            "files",
            "AAPL",
            "1h",
            datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
            1.0,
            1.5,
            0.5,
            1.2,
            5.0,
            None,
        )
    ]


def test_unreadable_values_reach_validation_with_the_raw_row(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-02,1,2,0.5,abc,100\nnot a date,1,2,0.5,1,1\n")
    bars = FileSource(tmp_path).fetch(request()).bars
    assert bars.height == 2
    assert bars["close"].to_list() == [None, 1.0]
    assert bars["ts"].to_list()[1] is None
    assert '"Close":"abc"' in bars["raw"][0]


def test_nan_infinities_and_negative_volume_reach_validation_as_values(tmp_path: Path) -> None:
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-02,NaN,inf,-inf,1e309,-5\n")
    row = FileSource(tmp_path).fetch(request()).bars.row(0, named=True)
    assert math.isnan(row["open"]) and row["high"] == math.inf and row["low"] == -math.inf
    assert row["close"] == math.inf and row["volume"] == -5.0


def test_rejected_rows_keep_the_row_as_received(tmp_path: Path) -> None:
    write(
        tmp_path / "MSFT.csv",
        "Date,Interval,Open,High,Low,Close,Volume\n"
        "2024-01-02,1d,1,2,0.5,1.5,100\n"
        "2024-01-03,1D,1,2,0.5,1.5,100\n"
        "2024-01-04,1d,1,2,0.5,1.5,100,surplus\n",
    )
    rejected = FileSource(tmp_path).fetch(request()).rejected.sort("failed")
    assert rejected.columns == [*RECEIVED_SCHEMA, "failed"]
    assert rejected["failed"].to_list() == [["interval_mismatch"], ["ragged_row"]]
    assert rejected["interval"].to_list() == ["1d", "1d"]  # the series they were read for
    assert json.loads(rejected["raw"][0])["Interval"] == "1D"
    assert rejected["ts"][0] == datetime(2024, 1, 3, tzinfo=UTC)
    assert json.loads(rejected["raw"][1])["_extra"] == ["surplus"]


def test_bounds_and_as_of_filter_rows(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-0{d},1,1,1,1,1\n" for d in range(1, 6))
    write(tmp_path / "MSFT.csv", HEADER + rows)
    received = FileSource(tmp_path).fetch(
        request(start=datetime(2024, 1, 2, tzinfo=UTC), as_of=datetime(2024, 1, 4, 12, tzinfo=UTC))
    )
    # The 2024-01-04 daily bar closes at 2024-01-05 00:00, after as_of.
    assert received.bars["ts"].dt.day().to_list() == [2, 3]
    assert received.not_closed == 2  # 01-04 and 01-05; 01-01 was not asked for


def test_a_latin_1_byte_past_the_head_of_the_file(tmp_path: Path) -> None:
    rows = "".join(f"2024-01-02,1,1,1,1,1,{'x' * 60}\n" for _ in range(2_000))
    text = "Date,Open,High,Low,Close,Volume,Note\n" + rows + "2024-01-03,1,1,1,1,1,café\n"
    (tmp_path / "MSFT.csv").write_bytes(text.encode("latin-1"))
    bars = FileSource(tmp_path).fetch(request()).bars
    assert bars.height == 2_001 and json.loads(bars["raw"][-1])["Note"] == "café"


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
    with pytest.raises(BarDataError, match="ts_format 'dd/mm/yyyy' is neither"):
        FileSource(tmp_path, ts_format="dd/mm/yyyy")


def test_no_files_unknown_symbol_and_unreadable_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BarDataError, match=r"no data files \(\.csv, .*\.parquet\)"):
        FileSource(tmp_path / "nowhere").fetch(request())
    write(tmp_path / "MSFT.csv", HEADER + "2024-01-02,1,2,0.5,1,1\n")
    with pytest.raises(BarDataError, match="no bars for AAPL 1d"):
        FileSource(tmp_path).fetch(request("AAPL"))
    (tmp_path / "MSFT.csv").write_bytes(b"\x00\x01 not parquet")
    (tmp_path / "MSFT.csv").rename(tmp_path / "MSFT.parquet")
    with pytest.raises(BarDataError, match=r"MSFT\.parquet: cannot read it as Parquet"):
        FileSource(tmp_path).fetch(request())


def test_one_unreadable_file_fails_alone(tmp_path: Path) -> None:
    write(tmp_path / "AAPL.csv", HEADER + "2024-01-02,1,2,0.5,1,1\n")
    (tmp_path / "MSFT.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + bytes(range(256)) * 50)
    (tmp_path / "all bars.parquet").write_bytes(b"\xff\xfe garbage" * 100)
    source = FileSource(tmp_path)
    assert source.fetch(request("AAPL")).bars.height == 1
    with pytest.raises(BarDataError) as raised:
        source.fetch(request("MSFT"))
    message = str(raised.value)
    assert "MSFT.csv: not CSV text" in message and "\x00" not in message and len(message) < 300
    # A file whose name is not a symbol holds series nobody can know: listing them fails.
    with pytest.raises(
        BarDataError, match=r"all bars\.parquet: cannot read it as Parquet.*unknown"
    ):
        source.symbols("1d")
    (tmp_path / "all bars.parquet").unlink()
    assert source.symbols("1d") == ["AAPL", "MSFT"]  # MSFT is listed, so its failure shows


def test_a_file_named_for_another_symbol_is_not_read(tmp_path: Path) -> None:
    write(tmp_path / "AAPL.csv", HEADER + "2024-01-02,1,2,0.5,1,1\n")
    write(tmp_path / "MSFT.csv", HEADER + "01/02/2024,1,2,0.5,1,1\n")  # ambiguous if read
    assert FileSource(tmp_path).fetch(request("AAPL")).bars.height == 1
    with pytest.raises(BarDataError, match=r"MSFT\.csv: column 'Date': day/month order"):
        FileSource(tmp_path).fetch(request("MSFT"))


def test_a_broken_file_with_a_symbol_column_fails_every_symbol_naming_it(tmp_path: Path) -> None:
    write(
        tmp_path / "bars.csv",
        "Symbol,Date,Open,High,Low,Close,Volume\n"
        'AAPL,2024-01-02,1,2,0.5,1,1\nMSFT,2024-01-02,"1,2,0.5,1,1\n',
    )
    for symbol in ("AAPL", "MSFT"):
        with pytest.raises(BarDataError, match=r"bars\.csv: line 3: unexpected end of data"):
            FileSource(tmp_path).fetch(request(symbol))
    # Its symbols cannot be listed: it is charged to its name, whose fetch says why.
    assert FileSource(tmp_path).symbols("1d") == ["bars"]


def test_symbols_come_from_symbol_columns_and_file_names(tmp_path: Path) -> None:
    write(tmp_path / "AAPL.csv", HEADER + "2024-01-02,1,2,0.5,1,1\n")
    (tmp_path / "BRK.B.csv.gz").write_bytes(gzip.compress(b"ts,o,h,l,c,v\n2024-01-02,1,1,1,1,1\n"))
    write(tmp_path / "notes.txt", "not data")
    write(tmp_path / ".~lock.AAPL.csv#", "")
    write(
        tmp_path / "many.csv",
        "Ticker,Interval,Date,Open,High,Low,Close,Volume\n"
        "IBM,1d,2024-01-02,1,1,1,1,1\nGOOG,1h,2024-01-02,1,1,1,1,1\n",
    )
    write(
        tmp_path / "HOURLY.csv",
        "Interval,Date,Open,High,Low,Close,Volume\n1h,2024-01-02 10:00,1,1,1,1,1\n",
    )
    source = FileSource(tmp_path)
    assert source.symbols("1d") == ["AAPL", "BRK.B", "IBM"]
    assert source.symbols("1h") == ["AAPL", "BRK.B", "GOOG", "HOURLY"]
    assert source.fetch(request("BRK.B")).bars.height == 1
    assert symbol_of(Path("x/AAPL.CSV.GZ")) == "AAPL"
    assert symbol_of(Path("x/README")) == "README"
    # A glob skips hidden files as a folder does (macOS leaves ._AAPL.csv beside AAPL.csv).
    (tmp_path / "._AAPL.csv").write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
    assert FileSource(tmp_path / "*.csv").symbols("1d") == ["AAPL", "IBM"]


def test_symbols_refuse_rows_of_no_series(tmp_path: Path) -> None:
    write(
        tmp_path / "many.csv",
        "Symbol,Date,Open,High,Low,Close,Volume\n"
        "AAPL,2024-01-02,1,1,1,1,1\n../x,2024-01-02,1,1,1,1,1\n,2024-01-03,1,1,1,1,1\n",
    )
    with pytest.raises(
        BarDataError, match=r"2 value\(s\) are not a symbol \(line 3 '\.\./x', line 4 None\)"
    ):
        FileSource(tmp_path).symbols("1d")
    assert FileSource(tmp_path).fetch(request("AAPL")).bars.height == 1


def test_symbol_never_becomes_a_path(tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    write(outside, HEADER + "2024-01-02,1,2,0.5,1,1\n")
    (tmp_path / "bars").mkdir()
    with pytest.raises(BarDataError, match="invalid symbol"):
        FileSource(tmp_path / "bars").fetch(request("../secret"))
