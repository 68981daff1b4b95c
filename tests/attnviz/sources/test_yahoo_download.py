"""The edge itself: ``download`` around ``yf.download``, and through yfinance on a canned Yahoo."""

import logging
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import yahoo_fixtures as yx
from yahoo_kit import NOW, jan, utc

from attnviz.sources import SourceError
from attnviz.sources.yahoo_download import download
from attnviz.sources.yfinance import YFinanceSource


def test_download_collects_the_reasons_yfinance_logs_and_restores_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yfinance as yf

    seen: dict[str, object] = {}

    def fake_download(tickers: list[str], **kwargs: object) -> pd.DataFrame:
        seen.update(kwargs, tickers=tickers, hide=yf.config.debug.hide_exceptions)
        logger = logging.getLogger("yfinance")
        logger.error("\n2 Failed downloads:")  # what yfinance logs, verbatim
        logger.error(f"['AAPL', '^GSPC']: {yx.DNS_ERROR}")
        logger.error(f"['NOPE']: {yx.NO_TIMEZONE}")
        logger.error("[Errno 5] not a list of tickers: ignored")
        return yx.combine({t: yx.failed() for t in tickers})

    monkeypatch.setattr(yf, "download", fake_download)
    monkeypatch.setattr(logging.getLogger("yfinance"), "level", logging.CRITICAL)
    hide = yf.config.debug.hide_exceptions
    frame, reasons = download(["AAPL", "^GSPC", "NOPE"], "1d", None, None, True)
    assert reasons == {"AAPL": yx.DNS_ERROR, "^GSPC": yx.DNS_ERROR, "NOPE": yx.NO_TIMEZONE}
    assert frame.shape == (0, 18)
    assert seen == {
        "tickers": ["AAPL", "^GSPC", "NOPE"],
        "interval": "1d",
        "auto_adjust": True,
        "group_by": "column",
        "progress": False,
        "threads": False,
        "session": None,
        "period": "max",  # no start: from the first trade
        "end": None,
        "hide": False,  # so that a network error is reported as one
    }
    assert yf.config.debug.hide_exceptions == hide
    assert logging.getLogger("yfinance").level == logging.CRITICAL
    assert not any(type(h).__name__ == "_Reasons" for h in logging.getLogger("yfinance").handlers)


# --- Through yfinance itself, on a canned Yahoo -----------------------------------------

SESSION_BARS = [  # 09:30 New York in UTC; the adjusted close halves the first two (a split)
    ("2024-01-02 14:30:00", 10.0, 12.0, 9.0, 11.0, 100, 5.5),
    ("2024-01-03 14:30:00", 11.0, 13.0, 10.0, 12.0, 200, 6.0),
    ("2024-01-04 14:30:00", 12.0, 14.0, 11.0, 13.0, 300, 13.0),
]
FIVE_MINUTES = [
    ("2024-03-08 14:30:00", 1.0, 2.0, 0.5, 1.5, 10, 1.5),
    ("2024-03-08 14:35:00", 1.5, 2.5, 1.0, 2.0, 20, 2.0),
    ("2024-03-11 13:30:00", 2.0, 3.0, 1.5, 2.5, 30, 2.5),
]


@pytest.fixture
def yahoo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[yx.YahooAdapter]:
    """A canned Yahoo for AAPL (daily) and SPY, MSFT (5m); any real connection fails."""

    def refuse(*args: object) -> None:
        raise AssertionError(f"a test tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    adapter = yx.YahooAdapter(
        {
            "AAPL": yx.Ticker(SESSION_BARS),
            "SPY": yx.Ticker(FIVE_MINUTES, granularity_s=300),
            "MSFT": yx.Ticker(FIVE_MINUTES, granularity_s=300),
        }
    )
    with yx.isolated_yfinance(tmp_path / "yfinance-cache"):
        yield adapter


def test_through_yfinance_with_a_canned_yahoo(yahoo: yx.YahooAdapter, tmp_path: Path) -> None:
    made = YFinanceSource(session=yx.yahoo_session(yahoo), clock=lambda: NOW)
    results = made.fetch_many([jan("AAPL"), jan("ZZZZ")])
    bars = results["AAPL"].bars
    assert bars["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 3), utc(2024, 1, 4)]
    # Adjusted (the default): open, high and low scaled by Adj Close / Close, close = Adj Close.
    assert bars.select("open", "high", "low", "close").row(0) == (5.0, 6.0, 4.5, 5.5)
    assert bars["volume"].to_list() == [100.0, 200.0, 300.0]
    # The reason yfinance logged for the ticker the canned Yahoo does not know reached us.
    assert isinstance(results["ZZZZ"], SourceError)
    assert "ZZZZ 1d" in str(results["ZZZZ"]) and "no canned answer" in str(results["ZZZZ"])
    assert [url for url in yahoo.unexpected if "ZZZZ" not in url] == []
    assert any("/v8/finance/chart/AAPL?period1=" in url for url in yahoo.urls)
    assert (tmp_path / "yfinance-cache").is_dir()  # yfinance's caches stayed in the test's folder


def test_fixture_frames_are_what_yf_download_returns(yahoo: yx.YahooAdapter) -> None:
    from yfinance.utils import empty_df

    session = yx.yahoo_session(yahoo)
    stamps = [bar[0][:10] for bar in SESSION_BARS]
    values = [bar[1:6] for bar in SESSION_BARS]
    for adjusted in (False, True):
        got, reasons = download(
            ["AAPL"], "1d", datetime(2024, 1, 1), None, adjusted, session=session
        )
        adj = [bar[6] for bar in SESSION_BARS]
        expected = yx.history(stamps, values, adj_close=adj)
        if adjusted:  # yfinance's auto_adjust: OHLC scaled by Adj Close / Close
            ratio = expected["Adj Close"] / expected["Close"]
            expected[["Open", "High", "Low"]] = expected[["Open", "High", "Low"]].mul(ratio, axis=0)
            expected = expected.assign(Close=expected["Adj Close"]).drop(columns="Adj Close")
        pd.testing.assert_frame_equal(got, yx.combine({"AAPL": expected}))
        assert reasons == {}
    start, end = utc(2024, 3, 8), utc(2024, 3, 12)
    got, _ = download(["SPY", "MSFT"], "5m", start, end, False, session=session)
    frames = {
        t: yx.history([b[0][:16] for b in FIVE_MINUTES], [b[1:6] for b in FIVE_MINUTES],
                      intraday=True, adj_close=[b[6] for b in FIVE_MINUTES])
        for t in ("SPY", "MSFT")
    }  # fmt: skip
    pd.testing.assert_frame_equal(got, yx.combine(frames, intraday=True))
    pd.testing.assert_frame_equal(yx.failed(), empty_df())
    assert yahoo.unexpected == []
