"""Bars from the user's own CSV or Parquet files.

The column contract
-------------------
Each file holds bars of one interval. Required columns: a timestamp and
open, high, low, close, volume. Names are matched case-insensitively against
:data:`ALIASES` (``Date``, ``timestamp``, ``Close``, ``vol`` ... all work), and
``columns={"ts": "Bar Time", ...}`` maps any other names.

Which symbol a row belongs to: a ``symbol`` (or ``ticker``) column when the file
has one; otherwise the file's name without extension (``AAPL.csv``). An
``interval`` column, when present, must match the requested interval.

Timestamps are bar-open times. Strings (ISO 8601, or ``ts_format``), dates,
datetimes and integer epochs (seconds, milliseconds or microseconds, told apart
by magnitude) are read. Timestamps with an offset are converted to UTC;
naive ones are taken to be in ``timezone`` (default UTC), and a local time that
does not exist or is ambiguous (DST changes) is left empty, so validation
quarantines that row instead of guessing.

Rows whose values cannot be read are not dropped here: they reach validation
with empty fields and the original row in ``raw``, and are quarantined there.
Row order in a file does not matter; bars are returned sorted by time.
"""

from collections.abc import Mapping
from pathlib import Path

import polars as pl

from attnviz.bars import RECEIVED_SCHEMA, UTC_TS, VALUES, BarDataError, empty_received
from attnviz.sources.base import BarRequest, in_request, with_raw

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "timestamp", "time", "datetime", "date", "open_time", "start"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c"),
    "volume": ("volume", "vol", "v"),
    "symbol": ("symbol", "ticker"),
    "interval": ("interval",),
}
REQUIRED = ("ts", *VALUES)
SUFFIXES = (".csv", ".parquet")


class FileSource:
    """Bars read from CSV or Parquet files.

    Parameters
    ----------
    path
        A file, a folder (every ``*.csv`` and ``*.parquet`` in it), or a glob pattern.
    columns
        Canonical name -> column name in the files, for names :data:`ALIASES` misses.
    timezone
        IANA zone of naive timestamps, e.g. ``"America/New_York"``.
    ts_format
        ``strftime`` format of string timestamps; ``None`` reads ISO 8601.
    """

    name = "files"

    def __init__(
        self,
        path: Path | str,
        columns: Mapping[str, str] | None = None,
        timezone: str = "UTC",
        ts_format: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.columns = dict(columns or {})
        self.timezone = timezone
        self.ts_format = ts_format
        unknown = set(self.columns) - set(ALIASES)
        if unknown:
            raise BarDataError(
                f"files source: unknown column mapping {sorted(unknown)}; "
                f"map any of {sorted(ALIASES)}"
            )

    def files(self) -> list[Path]:
        """The data files the source reads, in a stable order."""
        if self.path.is_file():
            found = [self.path]
        elif self.path.is_dir():
            found = [p for p in self.path.iterdir() if p.suffix.lower() in SUFFIXES]
        else:
            found = [
                p for p in self.path.parent.glob(self.path.name) if p.suffix.lower() in SUFFIXES
            ]
        if not found:
            raise BarDataError(f"files source: no .csv or .parquet files at {self.path}")
        return sorted(found)

    def fetch(self, request: BarRequest) -> pl.DataFrame:
        """Closed bars of ``request.symbol`` from every file that holds it.

        Raises
        ------
        BarDataError
            If no file holds the series at all (a typo, not merely no new bars).
        """
        files = self.files()
        bars = pl.concat([empty_received(), *(self._read(file, request) for file in files)])
        if bars.is_empty():
            raise BarDataError(
                f"files source: no bars for {request.symbol} {request.interval} in "
                f"{[str(file) for file in files]}"
            )
        return in_request(bars, request).sort("ts", nulls_last=True, maintain_order=True)

    def _read(self, file: Path, request: BarRequest) -> pl.DataFrame:
        raw = _read_file(file)
        names = self._resolve_columns(file, raw.columns)
        if "symbol" in names:
            raw = raw.filter(pl.col(names["symbol"]).cast(pl.String) == request.symbol)
        elif file.stem != request.symbol:
            return empty_received()
        if "interval" in names:
            raw = raw.filter(pl.col(names["interval"]).cast(pl.String) == request.interval)
        return raw.select(
            pl.lit(self.name).alias("source"),
            pl.lit(request.symbol).alias("symbol"),
            pl.lit(request.interval).alias("interval"),
            self._ts(raw[names["ts"]]).alias("ts"),
            *[pl.col(names[c]).cast(pl.Float64, strict=False).alias(c) for c in VALUES],
            with_raw(raw),
        ).cast(RECEIVED_SCHEMA)

    def _resolve_columns(self, file: Path, present: list[str]) -> dict[str, str]:
        """Canonical name -> the file's column, failing clearly when a required one is absent."""
        by_lower = {name.lower(): name for name in present}
        resolved: dict[str, str] = {}
        for canonical, aliases in ALIASES.items():
            wanted = self.columns.get(canonical)
            if wanted is not None:
                if wanted not in present:
                    raise BarDataError(
                        f"{file}: mapped column {wanted!r} (for {canonical}) not found; "
                        f"columns are {present}"
                    )
                resolved[canonical] = wanted
                continue
            match = next((by_lower[a] for a in aliases if a in by_lower), None)
            if match is not None:
                resolved[canonical] = match
        missing = [c for c in REQUIRED if c not in resolved]
        if missing:
            raise BarDataError(
                f"{file}: missing column(s) {missing}; columns are {present}. "
                "Map them with columns={...} (see attnviz.sources.files)"
            )
        return resolved

    def _ts(self, values: pl.Series) -> pl.Series:
        """Bar-open times in UTC; values that cannot be read become null."""
        if values.dtype == pl.String:
            if values.str.contains(r"^\s*\d+\s*$").all() and values.len() > 0:
                values = values.str.strip_chars().cast(pl.Int64)
            else:
                values = values.str.to_datetime(self.ts_format, time_unit="us", strict=False)
        if values.dtype.is_integer():
            values = _from_epoch(values)
        elif values.dtype == pl.Date:
            values = values.cast(pl.Datetime("us"))
        if not isinstance(values.dtype, pl.Datetime):
            raise BarDataError(f"files source: cannot read timestamps of type {values.dtype}")
        if values.dtype.time_zone is None:
            values = values.dt.replace_time_zone(
                self.timezone, ambiguous="null", non_existent="null"
            )
        return values.dt.convert_time_zone("UTC").cast(UTC_TS)


def _read_file(file: Path) -> pl.DataFrame:
    """The file as received: CSV as text (nothing coerced yet), Parquet with its own types."""
    try:
        if file.suffix.lower() == ".csv":
            return pl.read_csv(file, infer_schema=False)
        return pl.read_parquet(file)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise BarDataError(f"{file}: cannot read it as {file.suffix[1:]}: {error}") from error


def _from_epoch(values: pl.Series) -> pl.Series:
    """Integer epochs to datetimes, telling seconds, milliseconds and microseconds apart."""
    largest = values.abs().max() or 0
    unit = "us" if largest >= 10**14 else "ms" if largest >= 10**11 else "s"
    return pl.from_epoch(values, time_unit=unit)
