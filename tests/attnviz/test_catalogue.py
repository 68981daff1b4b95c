from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest

from attnviz import config
from attnviz.catalogue import CatalogueError, batches, load_catalogue, model_groups
from attnviz.series import Series
from attnviz.sources import SOURCES, SourceName

LIVE = config.REPO_ROOT / "catalogues" / "live.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalogue.yaml"
    path.write_text(text)
    return path


def test_the_default_catalogue_is_the_sample_data_and_needs_no_network() -> None:
    catalogue = load_catalogue(config.catalogue_path())
    assert {entry.source for entry in catalogue.entries} == {"sample"}
    assert [entry.series.label for entry in catalogue.entries] == [
        "sample/AAPL/1d",
        "sample/GOOG/1d",
        "sample/IBM/1d",
        "sample/MSFT/1d",
        "sample/EURUSD/1h",
    ]


def test_the_live_example_names_bybit_perpetuals_hourly_and_stocks_daily() -> None:
    catalogue = load_catalogue(LIVE)
    bybit = [e for e in catalogue.entries if e.source == "bybit"]
    assert [(e.symbol, e.interval) for e in bybit] == [("BTCUSDT", "1h"), ("ETHUSDT", "1h")]
    assert catalogue.options(bybit[0]) == {"category": "linear"}
    stocks = catalogue.select(sources=["yfinance"])
    assert len(stocks) >= 3 and {e.interval for e in stocks} == {"1d"}
    # The stocks go to Yahoo in one request; each Bybit series is a request of its own.
    assert [len(group) for group in batches(catalogue.entries)] == [1, 1, len(stocks)]


def test_a_start_without_a_zone_is_utc() -> None:
    # live.yaml writes `start: 2024-01-01`: a date, read as midnight UTC, comparable with
    # the aware times of the warehouse (a naive one would fail the first incremental run).
    assert load_catalogue(LIVE).entries[0].start == datetime(2024, 1, 1, tzinfo=UTC)


def test_an_entry_s_options_win_over_its_source_s() -> None:
    catalogue = load_catalogue(LIVE)
    entry = catalogue.entries[0].model_copy(update={"options": {"category": "spot"}})
    assert catalogue.options(entry) == {"category": "spot"}
    assert catalogue.select(symbols=["ETHUSDT"])[0].options == {"category": "linear"}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "groups:\n  g:\n    series:\n      - {source: sample, symbol: AAPL, interval: 1hr}\n",
            r"line 4, groups\.g\.series\[0\]\.interval: Value error, unknown interval '1hr'",
        ),
        (
            "groups:\n  g:\n    series:\n      - source: sample\n        symbol: A B\n",
            r"line 5, groups\.g\.series\[0\]\.symbol: Value error, invalid symbol 'A B'",
        ),
        (
            "groups:\n  g:\n    training: {epochs: 0}\n    series: [{source: sample, symbol: X}]\n",
            r"line 3, groups\.g\.training\.epochs: Input should be greater than or equal to 1",
        ),
        (
            "groups:\n  g:\n    series:\n      - {source: sample, symbol: X, optionz: {}}\n",
            r"line 4, groups\.g\.series\[0\]\.optionz: Extra inputs are not permitted",
        ),
        (
            "groups:\n  g:\n    series: [{source: nasdaq, symbol: X}]\n",
            r"unknown source 'nasdaq'; expected one of",
        ),
        (
            "groups:\n  a:\n    series: [{source: sample, symbol: X}]\n"
            "  b:\n    series: [{source: sample, symbol: X}]\n",
            r"sample/X/1d is listed twice \(groups 'a' and 'b'\)",
        ),
        (
            "groups:\n  g:\n    series: []\n",
            r"line 3, groups\.g\.series: List should have at least 1",
        ),
        ("groups: {}\n", r"groups: Dictionary should have at least 1 item"),
        (
            "groups:\n  a:\n    series: [{source: sample, symbol: X}]\n"
            "  a:\n    series: [{source: sample, symbol: Y}]\n",
            r"line 4: 'a' is given twice in the same mapping",
        ),
        (
            "groups:\n  a:\n    series:\n      - {source: sample, symbol: X, symbol: Y}\n",
            r"line 4: 'symbol' is given twice",
        ),
        ("sources: {}\n", r"line 1, groups: Field required"),
        ("- just a list\n", r"expected a mapping with 'groups'"),
        ("groups: {g: [\n", r"not valid YAML"),
        (
            "groups:\n  '../etc':\n    series: [{source: sample, symbol: X}]\n",
            r"groups\.\.\./etc\.\[key\]: String should match pattern",
        ),
    ],
)
def test_a_mistake_names_the_file_the_line_and_the_field(
    tmp_path: Path, text: str, says: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(CatalogueError, match=says) as raised:
        load_catalogue(path)
    assert str(path) in str(raised.value)


def test_a_missing_file_is_a_catalogue_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match=f"cannot read catalogue {tmp_path}/nope.yaml"):
        load_catalogue(tmp_path / "nope.yaml")


def test_select_filters_and_names_a_symbol_it_lacks() -> None:
    catalogue = load_catalogue(config.catalogue_path())
    assert [e.symbol for e in catalogue.select(intervals=["1h"])] == ["EURUSD"]
    assert [e.symbol for e in catalogue.select(symbols=["IBM", "AAPL"])] == ["AAPL", "IBM"]
    with pytest.raises(CatalogueError, match="no series TSLA in the catalogue"):
        catalogue.select(symbols=["TSLA", "IBM"])


def test_every_source_is_a_flow_parameter_choice() -> None:
    assert get_args(SourceName) == tuple(SOURCES)


def test_one_model_per_series_or_one_per_interval_when_pooled() -> None:
    series = [Series(symbol="AAPL"), Series(symbol="IBM"), Series(symbol="EURUSD", interval="1h")]
    assert list(model_groups(series, pool=False)) == [
        "sample/AAPL/1d",
        "sample/IBM/1d",
        "sample/EURUSD/1h",
    ]
    pooled = model_groups(series, pool=True)
    assert pooled == {"sample/AAPL/1d+sample/IBM/1d": series[:2], "sample/EURUSD/1h": series[2:]}


def test_models_of_some_symbols_keep_a_pooled_model_that_holds_one_of_them() -> None:
    catalogue = load_catalogue(config.catalogue_path())
    assert list(catalogue.models(["IBM"])) == ["sample/IBM/1d"]
    pooled = catalogue.model_copy(
        update={
            "groups": {k: g.model_copy(update={"pool": True}) for k, g in catalogue.groups.items()}
        }
    )
    [(name, spec)] = pooled.models(["IBM"]).items()
    assert "sample/IBM/1d" in name and len(spec.series) == 4
    with pytest.raises(CatalogueError, match="no series TSLA"):
        catalogue.models(["TSLA"])
