"""Cache keys of the expensive tasks: a digest of exactly what their result depends on.

Training and analysis are cached by their inputs, with results persisted, so a
retry or a rerun of the same work skips what it already did: a task whose inputs
are unchanged returns its stored result instead of running again. The key covers
the inputs' content (bars as data, checkpoints as bytes) and the package's own
source, so changed data or changed code always computes afresh.
"""

import hashlib
import json
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl

from attnviz import config

# Results older than this are recomputed even when their inputs match.
CACHE_EXPIRATION = timedelta(days=30)


@cache
def code_digest() -> str:
    """Digest of the attnviz package's source: results of other code are not reused."""
    package = config.REPO_ROOT / "attnviz"
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        name, source = path.relative_to(package).as_posix().encode(), path.read_bytes()
        # Lengths first: without a boundary, moving text from one file's end into the
        # next file's name would leave the digest unchanged.
        digest.update(b"%d:%s%d:" % (len(name), name, len(source)))
        digest.update(source)
    return digest.hexdigest()


def frame_digest(frame: pl.DataFrame) -> str:
    """Digest of a frame's schema and values."""
    return hashlib.sha256(f"{frame.schema}\n{frame.write_csv()}".encode()).hexdigest()


def file_digest(path: str | Path) -> str:
    """Digest of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def cache_key(task: str, *parts: Any) -> str:
    """The cache key of ``task`` for inputs summarised by ``parts`` (JSON-able values)."""
    canonical = json.dumps([task, code_digest(), *parts], default=str, sort_keys=True)
    return f"{task}-{hashlib.sha256(canonical.encode()).hexdigest()}"
