"""Where attnviz keeps its files: one place that reads the environment.

Every path is resolved when asked for, not at import, so a test or the CLI can
point a process at another warehouse by setting an environment variable.
"""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """Folder for run outputs (warehouse, checkpoints, figures): ``$ATTNVIZ_HOME`` or ``./var``."""
    return Path(os.environ.get("ATTNVIZ_HOME", "var"))


def warehouse_path() -> Path:
    """The DuckDB file: ``$ATTNVIZ_DB`` or ``<home>/warehouse.duckdb``."""
    explicit = os.environ.get("ATTNVIZ_DB")
    return Path(explicit) if explicit else home() / "warehouse.duckdb"


def sample_dir() -> Path:
    """The committed sample bars: ``$ATTNVIZ_SAMPLE_DIR`` or ``data/sample`` in the repository."""
    return Path(os.environ.get("ATTNVIZ_SAMPLE_DIR", REPO_ROOT / "data" / "sample"))


def catalogue_path() -> Path:
    """The series catalogue: ``$ATTNVIZ_CATALOGUE`` or ``catalogues/sample.yaml`` (repository)."""
    return Path(os.environ.get("ATTNVIZ_CATALOGUE", REPO_ROOT / "catalogues" / "sample.yaml"))


def snapshot_path() -> Path:
    """The read-only copy readers query, published after each run (``<name>-snapshot.duckdb``)."""
    live = warehouse_path()
    return live.with_name(f"{live.stem}-snapshot{live.suffix}")


def write_wait_seconds() -> float:
    """Seconds a run waits for another's writes before it fails: ``$ATTNVIZ_WRITE_WAIT`` or 600."""
    return float(os.environ.get("ATTNVIZ_WRITE_WAIT", "600"))
