"""One thread for torch and for the BLAS libraries, for the length of a ``with`` block.

The study's experiments run small operations on a shared 2-core machine: there, intra-op threads
spin against other processes (twenty-fold slow-downs were measured), and one thread also makes
the float results independent of the machine's core count.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

__all__ = ["single_threaded"]


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with one torch thread and one BLAS/OpenMP thread; restore both after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)
