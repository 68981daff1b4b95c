"""Replace a file in one step: readers see the old file or the whole new one, never a part.

Everything attnviz writes for others to read (PNGs, model checkpoints, the
warehouse snapshot) is written to a temporary file beside its destination and
renamed onto it; ``os.replace`` within one folder is atomic on POSIX. A write that
fails, or a process killed while writing, leaves the destination as it was.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` if the block succeeds.

    The temporary file is ``<name>.partial`` in the same folder (created with its
    parents). If the block raises, the temporary file is removed and ``path`` is
    untouched. The name is fixed, not random, so what a killed writer left behind
    is overwritten by the next write of the same file instead of piling up; the
    caller makes sure one process writes a given path at a time (the warehouse
    locks do).

    Examples
    --------
    >>> with replacing(Path("var/figures/flow.png")) as partial:
    ...     figure.savefig(partial, format="png")
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
