"""Memory that the batches of an analysis reuse for their largest tensors.

A batch's attention, (B, L, H, T, T) floats, takes 44 MB at 256 windows of T = 60 with 3
layers of 4 heads. glibc maps every block above its largest mmap threshold (32 MB) afresh
and unmaps it when freed, and each page of a fresh mapping is faulted in when first
written: on two cores that took about a third of the inference time per batch
(``bench/analytics_speed.py``). A :class:`Workspace` hands each batch the memory that the
batch before it used.
"""

import math

import torch


class Workspace:
    """Named blocks of float32 memory, each reused by every request under its name.

    A tensor from :meth:`take` is overwritten by the next request under the same name:
    what must outlive a batch is copied out of it, never kept as a view.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, torch.Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """Uninitialised float32 memory of ``shape``: the block ``name``, grown if too small."""
        size = math.prod(shape)
        block = self._blocks.get(name)
        if block is None or len(block) < size:
            block = self._blocks[name] = torch.empty(size)
        return block[:size].view(shape)
