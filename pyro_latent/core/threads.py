"""One thread for torch and for the BLAS libraries, for the length of a ``with`` block.

The study's experiments run small operations on a shared 2-core machine: there, intra-op threads
spin against other processes (twenty-fold slow-downs were measured), and one thread also makes
the float results independent of the machine's core count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

__all__ = ["in_workers", "single_threaded"]


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


def _single_threaded_call(function: Callable, args: tuple, kwargs: dict):
    with single_threaded():
        return function(*args, **kwargs)


def in_workers(function: Callable, jobs: Sequence[tuple], n_jobs: int | None = None) -> list:
    """``[function(*args, **kwargs) for *args, kwargs in jobs]``, in ``n_jobs`` joblib worker
    processes (default: one per core; ``1``: in this process), every call with one thread, so
    the results are the same whichever way they ran.  Returned in the order of ``jobs``."""
    from joblib import Parallel, delayed

    calls = [(function, tuple(job[:-1]), dict(job[-1])) for job in jobs]
    n_jobs = min(n_jobs or os.cpu_count() or 1, max(len(calls), 1))
    if n_jobs == 1:
        return [_single_threaded_call(*call) for call in calls]
    return Parallel(n_jobs=n_jobs)(delayed(_single_threaded_call)(*call) for call in calls)
