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
from attnviz.bars import RECEIVED_SCHEMA, VALUES, BarDataError
from attnviz.sources.base import BarRequest, in_request, with_raw


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

    def fetch(self, request: BarRequest) -> pl.DataFrame:
        """Closed bars of one sample series; raises :class:`BarDataError` for a series it lacks."""
        if (request.symbol, request.interval) not in self.series():
            known = ", ".join(f"{symbol} {interval}" for symbol, interval in self.series())
            raise BarDataError(
                f"sample source has no series {request.symbol} {request.interval}; it has: {known}"
            )
        bars = _load(self.directory.resolve()).filter(
            pl.col("symbol") == request.symbol, pl.col("interval") == request.interval
        )
        bars = in_request(bars, request)
        return bars.select(
            pl.lit(self.name).alias("source"),
            "symbol",
            "interval",
            "ts",
            *VALUES,
            with_raw(bars),
        ).cast(RECEIVED_SCHEMA)
