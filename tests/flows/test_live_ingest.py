"""The ingest flow end to end against the live sources' network edges, never the internet.

A loopback server speaks Bybit v5's kline API (``tests/support/bybit_server.py``); the
catalogue points the Bybit source at it. Two symbols are ingested, then again
incrementally: the watermark is respected, nothing is stored twice, counts reconcile.
Yahoo's edge answers with recorded frames (``tests/support/yahoo_fixtures.py``).
"""

import re
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yahoo_fixtures as yx
import yaml
from bybit_server import BybitServer, random_walk

from attnviz.bars import BarDataError
from attnviz.sources import yfinance
from flows.ingest import ingest
from flows.steps import IngestError
from tasks.ingest import open_source
from warehouse.db import connect

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("prefect_harness")]

FIRST = datetime(2024, 2, 1, tzinfo=UTC)  # the as-of of the first run
HISTORY = datetime(2024, 1, 1, tzinfo=UTC)  # the server's first candle


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def sql(query: str) -> list[tuple[Any, ...]]:
    with closing(connect(read_only=True)) as con:
        return con.execute(query).fetchall()


@pytest.fixture
def bybit() -> Iterator[BybitServer]:
    """Bybit with two perpetuals of hourly candles, January to March 2024."""
    with BybitServer() as server:
        for seed, symbol in enumerate(("BTCUSDT", "ETHUSDT")):
            candles = random_walk(ms(HISTORY), 24 * 60, "60", seed=seed, price="30000.00")
            server.add_candles(symbol, "60", candles)
        yield server


def catalogue(tmp_path: Path, server: BybitServer, **start: Any) -> str:
    """Both perpetuals, starting ``start`` (default: 500 bars back from the as-of)."""
    path = tmp_path / "live.yaml"
    series = [
        {"source": "bybit", "symbol": symbol, "interval": "1h", **(start or {"lookback_bars": 500})}
        for symbol in ("BTCUSDT", "ETHUSDT")
    ]
    document: dict[str, Any] = {
        "sources": {"bybit": {"category": "linear", "endpoint": server.url}},
        "groups": {"crypto": {"series": series}},
    }
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_two_symbols_then_incrementally_watermark_respected_and_counts_reconcile(
    tmp_path: Path, bybit: BybitServer
) -> None:
    live = catalogue(tmp_path, bybit)
    first = ingest(catalogue=live, interval="1h", as_of=FIRST)
    # 500 closed bars back from the as-of; the candle opening at the as-of is not asked for.
    assert [(x.symbol, x.received, x.loaded, x.rejected, x.not_closed) for x in first] == [
        ("BTCUSDT", 500, 500, 0, 0),
        ("ETHUSDT", 500, 500, 0, 0),
    ]
    assert sql("SELECT symbol, min(ts), max(ts), count(*) FROM bars GROUP BY 1 ORDER BY 1") == [
        (symbol, FIRST - timedelta(hours=500), FIRST - timedelta(hours=1), 500)
        for symbol in ("BTCUSDT", "ETHUSDT")
    ]
    assert sql("SELECT count(*) FROM bars WHERE turnover IS NULL OR turnover <= 0") == [(0,)]

    bybit.requests.clear()
    second = ingest(catalogue=live, interval="1h", as_of=FIRST + timedelta(hours=48))
    # From the newest stored bar less the overlap of three: 3 + 48 bars.
    assert [(x.received, x.loaded, x.new_bars, x.revised_bars, x.not_closed) for x in second] == [
        (51, 51, 48, 0, 0),
        (51, 51, 48, 0, 0),
    ]
    assert {int(r["start"]) for r in bybit.requests} == {ms(FIRST - timedelta(hours=3))}
    assert sql("SELECT count(*), count(DISTINCT (symbol, ts)) FROM bars") == [(1096, 1096)]
    [(received, loaded, rejected, not_closed)] = sql(
        "SELECT sum(received), sum(loaded), sum(rejected), sum(not_closed) FROM run_series"
    )
    assert received == loaded + rejected + not_closed == 2 * 500 + 2 * 51
    stored = sql("SELECT ts, open, close, turnover FROM bars WHERE symbol = 'BTCUSDT' ORDER BY ts")
    candles = {int(row[0]): row for row in bybit.candles[("linear", "BTCUSDT", "60")]}
    for ts, open_, close, turnover in stored:  # typed as Bybit sent them, to the last digit
        row = candles[ms(ts)]
        assert (open_, close, turnover) == (float(row[1]), float(row[4]), float(row[6]))


def test_a_catalogue_start_written_as_a_date_is_midnight_utc(
    tmp_path: Path, bybit: BybitServer
) -> None:
    live = catalogue(tmp_path, bybit, start=date(2024, 1, 20))  # YAML: start: 2024-01-20
    assert re.search(r"start: (&\w+ )?2024-01-20\n", Path(live).read_text())  # a date, unquoted
    loads = ingest(catalogue=live, interval="1h", as_of=FIRST)
    assert [(x.first_ts, x.loaded) for x in loads] == [(datetime(2024, 1, 20, tzinfo=UTC), 288)] * 2


def test_an_unknown_symbol_fails_naming_it_while_the_others_load(
    tmp_path: Path, bybit: BybitServer
) -> None:
    live = catalogue(tmp_path, bybit)
    with pytest.raises(IngestError, match=r"1 of 2 series failed: bybit/NOPEUSDT/1h: BarDataError"):
        ingest(
            catalogue=live, source="bybit", symbols=["BTCUSDT", "NOPEUSDT"], interval="1h",
            as_of=FIRST, lookback_bars=10,
        )  # fmt: skip
    assert sql("SELECT DISTINCT symbol FROM bars") == [("BTCUSDT",)]
    [(status, message)] = sql("SELECT status, message FROM runs")
    assert status == "failed" and "bybit linear has no symbol 'NOPEUSDT'" in message


def test_stocks_go_to_yahoo_in_one_request_and_a_failed_ticker_fails_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Yahoo's edge is yfinance.download (our one function that calls yf.download): it answers
    # with recorded frames in yf.download's shapes; everything behind it is the real flow.
    bars: list[yx.Bar] = [
        (10.0, 12.0, 9.0, 11.0, 100),
        (11.0, 13.0, 10.0, 12.0, 200),
        (12, 14, 11, 13, 300),
    ]
    january = yx.history(["2024-01-02", "2024-01-03", "2024-01-04"], bars)
    answer = yx.combine({"AAPL": january, "MSFT": january, "NOPE": yx.failed()})
    recorded = yx.Recorded([(answer, {"NOPE": yx.NO_TIMEZONE})])
    monkeypatch.setattr(yfinance, "_yahoo", lambda *call, session=None: recorded(*call))

    with pytest.raises(IngestError, match=r"1 of 3 series failed: yfinance/NOPE/1d: BarDataError"):
        ingest(
            source="yfinance", symbols=["AAPL", "MSFT", "NOPE"], interval="1d",
            start=datetime(2024, 1, 1, tzinfo=UTC), as_of=datetime(2024, 1, 6, tzinfo=UTC),
        )  # fmt: skip
    [call] = recorded.calls
    assert sorted(call.tickers) == ["AAPL", "MSFT", "NOPE"] and call.adjusted
    assert sql("SELECT symbol, count(*), min(ts), max(ts) FROM bars GROUP BY 1 ORDER BY 1") == [
        (symbol, 3, datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 4, tzinfo=UTC))
        for symbol in ("AAPL", "MSFT")
    ]


def test_a_key_from_a_secret_block_reaches_bybit_and_no_record_of_the_run(
    tmp_path: Path, bybit: BybitServer
) -> None:
    from prefect.blocks.system import Secret

    # Secret takes a plain value and wraps it in a validator; Prefect types only the wrapper.
    keys = {"api_key": "KEY-1234", "api_secret": "SECRET-5678"}
    Secret(value=keys).save("bybit-test", overwrite=True)  # type: ignore[arg-type]
    assert repr(open_source("bybit", {"secret_block": "bybit-test"})).endswith(
        "credentials=<hidden>)"
    )
    live = catalogue(tmp_path, bybit)
    options = {"endpoint": bybit.url, "secret_block": "bybit-test"}
    ingest(catalogue=live, source="bybit", symbols=["BTCUSDT"], interval="1h", as_of=FIRST,
           lookback_bars=5, source_options=options)  # fmt: skip
    recorded = str(sql("SELECT * FROM runs")) + str(sql("SELECT * FROM run_attempts"))
    assert "bybit-test" in recorded and "KEY-1234" not in recorded and "SECRET" not in recorded

    Secret(value="just-a-string").save("bybit-bad", overwrite=True)  # type: ignore[arg-type]
    with pytest.raises(BarDataError, match=r"Secret block 'bybit-bad' must hold") as raised:
        open_source("bybit", {"secret_block": "bybit-bad"})
    assert "just-a-string" not in str(raised.value)
