"""CPU thread limits for the small networks of this library.

Per-operation threading overhead dominates for networks this small, and two
threads competing with another busy process (a dashboard, a second job) run an
order of magnitude slower than one. :func:`limit_cpu_threads` lowers torch's
intra-op thread count, and the OpenMP/BLAS pools' (through threadpoolctl), while
a block runs, and restores them afterwards.

torch's intra-op count is a property of the calling thread (OpenMP), so a
training job in a worker thread limits only itself: the dashboard's other
threads keep their own counts.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["limit_cpu_threads"]


@contextlib.contextmanager
def limit_cpu_threads(n: int | None, *, other_pools: bool = True) -> Iterator[None]:
    """Run the block with at most ``n`` CPU threads in this thread (``None``: no change).

    ``other_pools=False`` limits torch's threads alone: what a block of torch products needs,
    without threadpoolctl's scan of the loaded libraries (about 30 ms the first time).
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError("the thread limit must be at least 1")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        if other_pools:
            from threadpoolctl import threadpool_limits

            with threadpool_limits(limits=n):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(before)
