"""Shared fixtures: an isolated Prefect home and warehouse per test, and bar factories."""

import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Prefect reads these when it is first imported: set them before any test module imports it.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="attnviz-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import numpy as np
import polars as pl
import pytest

from attnviz.bars import RECEIVED_SCHEMA, interval_duration
from attnviz.series import Series
from attnviz.sources.base import with_raw
from catalogues import write_catalogue

START = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def warehouse_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own output folder and warehouse file.

    ``ATTNVIZ_DB`` is set rather than deleted so that monkeypatch removes it again after
    the test: ``attnviz --db`` sets it for the process, and a value a test leaves behind
    would redirect every later test (and the processes they start).
    """
    monkeypatch.setenv("ATTNVIZ_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("ATTNVIZ_DB", str(tmp_path / "var" / "warehouse.duckdb"))
    return tmp_path / "var"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API for the tests that run real flows (started once, ~10 s)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


def make_bars(
    n: int = 5,
    symbol: str = "TEST",
    interval: str = "1d",
    start: datetime = START,
    source: str = "test",
) -> pl.DataFrame:
    """``n`` clean received bars: close rises by 1 a bar from 100, low < open/close < high."""
    close = [100.0 + i for i in range(n)]
    frame = pl.DataFrame(
        {
            "source": source,
            "symbol": symbol,
            "interval": interval,
            "ts": [start + i * interval_duration(interval) for i in range(n)],
            "open": [c - 0.5 for c in close],
            "high": [c + 1.0 for c in close],
            "low": [c - 1.0 for c in close],
            "close": close,
            "volume": [1000.0] * n,
            "turnover": None,
        },
        schema={k: v for k, v in RECEIVED_SCHEMA.items() if k != "raw"},
    )
    return frame.with_columns(with_raw(frame.columns))


@pytest.fixture(scope="session")
def quick() -> dict[str, Any]:
    """Nightly settings small enough to train in seconds; the full sizes run in `make run`."""
    from attnviz.features import FeatureConfig
    from attnviz.model import ModelConfig
    from attnviz.train import TrainConfig

    return {
        "features": FeatureConfig(seq_len=20, horizon=3),
        "model": ModelConfig(d_model=16, n_heads=2, n_layers=1),
        "training": TrainConfig(epochs=2, batch_size=128, warm_epochs=1),
    }


# The backtest's draws, as few as still give an interval: the full 1,000 run in `make run`.
QUICK_BACKTEST = {"random_draws": 100, "bootstrap_draws": 100}


@pytest.fixture
def catalogue(tmp_path: Path, quick: dict[str, Any]) -> Callable[..., str]:
    """Write a catalogue of one group (default: the sample series, quick settings); its path."""
    written = iter(range(1_000))

    def write(series: list[Series] | None = None, **settings: Any) -> str:
        path = tmp_path / f"catalogue-{next(written)}.yaml"
        return write_catalogue(path, series, **{"backtest": QUICK_BACKTEST, **quick, **settings})

    return write


@pytest.fixture
def bars() -> Callable[..., pl.DataFrame]:
    """Factory of clean received bars (see :func:`make_bars`)."""
    return make_bars


def random_walk_bars(n: int, seed: int) -> pl.DataFrame:
    """Hourly bars of a Gaussian random walk: the future is independent of the past."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pl.DataFrame(
        {
            "ts": [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=i) for i in range(n)],
            "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.003, n)),
            "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.003, n)),
            "close": close,
            "volume": rng.uniform(100, 1000, n),
        }
    )


@pytest.fixture(scope="session")
def random_walk() -> Callable[[int, int], pl.DataFrame]:
    """Factory of random-walk bars (see :func:`random_walk_bars`)."""
    return random_walk_bars


# The history of attempts: it grows with every attempt by design, so a rerun adds to it.
ATTEMPT_HISTORY = ("run_attempts", "run_series_attempts", "run_phases")

# A table's row count and the set of its primary keys.
TableState = tuple[int, set[tuple[object, ...]]]


def warehouse_state(database: Path) -> dict[str, TableState]:
    """Per table (but the attempt history): its row count and the set of its primary keys."""
    import duckdb

    with duckdb.connect(str(database), read_only=True) as con:
        keys = con.execute(
            "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
            "WHERE constraint_type = 'PRIMARY KEY' AND table_name NOT IN ?",
            [list(ATTEMPT_HISTORY)],
        ).fetchall()
        return {
            table: (
                con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0],
                set(con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()),
            )
            for table, columns in keys
        }


@pytest.fixture(scope="session")
def state_of() -> Callable[[Path], dict[str, TableState]]:
    """Counts and key sets of a warehouse file (see :func:`warehouse_state`)."""
    return warehouse_state
