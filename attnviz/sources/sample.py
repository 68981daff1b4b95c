"""The committed sample bars, served like a live source.

Real OHLCV bars shipped with the repository (see ``data/sample/PROVENANCE.md``):
daily AAPL, IBM, MSFT and GOOG (2000-2013) and hourly EURUSD (2017). With an
``as_of`` in the past the source replays history: it returns only the bars that
had closed by then, so incremental runs can be exercised offline.
"""

from functools import cache
from pathlib import Path

import polars as pl

from attnviz import config
from attnviz.bars import VALUES, BarDataError
from attnviz.sources.base import RECEIVED, BarRequest, Received, in_request, with_raw


@cache
def _load(directory: Path) -> pl.DataFrame:
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise BarDataError(f"no sample data (*.parquet) in {directory}")
    return pl.concat([pl.read_parquet(file) for file in files]).sort("symbol", "interval", "ts")


class SampleSource:
    """Bars from the committed sample Parquet files.

    Parameters
    ----------
    directory
        Folder of sample Parquet files; defaults to :func:`attnviz.config.sample_dir`.
    """

    name = "sample"

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory else config.sample_dir()

    def series(self) -> list[tuple[str, str]]:
        """The (symbol, interval) pairs the sample holds."""
        bars = _load(self.directory.resolve())
        pairs = bars.select("symbol", "interval").unique().sort("symbol", "interval")
        return [(row[0], row[1]) for row in pairs.iter_rows()]

    def symbols(self, interval: str) -> list[str]:
        """The symbols the sample holds at ``interval``."""
        return [symbol for symbol, held in self.series() if held == interval]

    def fetch(self, request: BarRequest) -> Received:
        """Closed bars of one sample series; raises :class:`BarDataError` for a series it lacks.

        Bars opening after ``as_of`` do not exist yet in the replayed history; only the
        bar forming at ``as_of`` is counted as not closed.
        """
        if (request.symbol, request.interval) not in self.series():
            known = ", ".join(f"{symbol} {interval}" for symbol, interval in self.series())
            raise BarDataError(
                f"sample source has no series {request.symbol} {request.interval}; it has: {known}"
            )
        bars = _load(self.directory.resolve()).filter(
            pl.col("symbol") == request.symbol,
            pl.col("interval") == request.interval,
            pl.col("ts") < request.as_of,
        )
        received = bars.select(
            pl.lit(self.name).alias("source"),
            "symbol",
            "interval",
            "ts",
            *VALUES,
            pl.lit(None).alias("turnover"),
            with_raw(bars.columns),
        ).cast(RECEIVED)
        return in_request(received, request, now=request.as_of)
