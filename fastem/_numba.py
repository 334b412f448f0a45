"""The one place that decides how fastem's Numba kernels are compiled and threaded.

Kernels elsewhere are decorated with :func:`kernel` (parallel, over row chunks)
or :func:`helper` (serial building blocks called from kernels), so the compile
options cannot drift apart between modules.
"""

from __future__ import annotations

import contextlib
import operator

import numba

# Fast-math flags: allow reassociation (vectorised reductions), contraction
# (FMA), reciprocal approximation and ignoring the sign of zero. Deliberately
# *not* 'nnan'/'ninf': validation and the post-kernel checks rely on NaN and
# inf propagating honestly.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Rows handled by one parallel task. Fixed, independent of the thread count,
# so the partial statistics (and therefore every result) are the same for any
# number of threads.
CHUNK_ROWS = 2048

# Rows processed together inside a task: small enough that a transposed block
# of X and the (n_components, BLOCK_ROWS) log-probabilities stay in L1/L2, long
# enough that the inner loops over rows vectorise.
BLOCK_ROWS = 128

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)


def kernel(function):
    """Compile a parallel kernel (``prange`` over row chunks)."""
    return numba.njit(parallel=True, **_OPTIONS)(function)


def helper(function):
    """Compile a serial building block that kernels call."""
    return numba.njit(parallel=False, **_OPTIONS)(function)


def max_threads() -> int:
    """Number of threads Numba launched for this process."""
    return int(numba.config.NUMBA_NUM_THREADS)


def resolve_n_jobs(n_jobs) -> int:
    """Turn an ``n_jobs`` value into a thread count for the kernels.

    ``None`` and ``-1`` mean all threads; ``-2`` all but one, and so on.
    Counts larger than the available threads are clipped.
    """
    available = max_threads()
    if n_jobs is None:
        return available
    try:
        n_jobs = operator.index(n_jobs)
    except TypeError:
        raise TypeError(f"n_jobs must be an integer or None, got {n_jobs!r}") from None
    if n_jobs == 0:
        raise ValueError("n_jobs must be a non-zero integer or None, got 0")
    if n_jobs < 0:
        n_jobs = max(available + 1 + n_jobs, 1)
    return min(n_jobs, available)


@contextlib.contextmanager
def numba_threads(n_threads: int):
    """Run the enclosed kernels on ``n_threads`` threads, then restore the setting.

    Numba's thread count is thread-local, so two Python threads fitting at
    once do not disturb each other; the ``finally`` restores the previous
    value even when a fit is interrupted.
    """
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
