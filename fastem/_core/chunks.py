"""Fixed row chunks and their ordered reduction: the parallel layout every kernel shares.

Work is cut into chunks of ``CHUNK_ROWS`` rows whatever the thread count; each
chunk writes partial results of its own, and a serial loop adds the partials
in chunk order. The arithmetic done for a chunk never depends on which thread
ran it, so results are bit-identical for any thread count.
"""

from __future__ import annotations

from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import CHUNK_ROWS, helper


# Partial statistics of one wave of chunks are kept in memory at once. Bounding
# their size keeps memory flat for large n_components * n_features**2; the
# bound depends only on the problem shape, never on the thread count.
_PARTIALS_BUDGET_FLOATS = (32 * 2**20) // 8
_MIN_CHUNKS_PER_WAVE = 64
_MAX_CHUNKS_PER_TASK = 8


@helper
def n_chunks_for(n_samples):
    return (n_samples + CHUNK_ROWS - 1) // CHUNK_ROWS


@helper
def add_into(total, part):
    """total += part, elementwise, serially.

    Inside a parallel kernel an array expression such as ``total += part``
    becomes a parallel region of its own; in the ordered reduction loop that
    would launch one per chunk and array. Explicit loops in a serial helper do not.
    """
    prefer_wide_vectors()
    flat_total = total.reshape(-1)
    flat_part = part.reshape(-1)
    for i in range(flat_total.shape[0]):
        flat_total[i] += flat_part[i]


@helper
def chunks_per_task(n_chunks):
    """Chunks that one parallel task handles in turn, reusing its scratch arrays.

    Allocating a task's dozen scratch arrays for every chunk of 2048 rows
    measured several percent of a small E-step. Every chunk still starts its
    statistics from zero, so results do not depend on this grouping. Grouping
    starts only when it leaves at least 64 tasks, enough to balance the
    threads of any ordinary machine.
    """
    return max(1, min(_MAX_CHUNKS_PER_TASK, n_chunks // 64))


@helper
def chunks_per_wave(n_chunks, floats_per_chunk):
    wave = max(_MIN_CHUNKS_PER_WAVE, _PARTIALS_BUDGET_FLOATS // max(floats_per_chunk, 1))
    return max(min(wave, n_chunks), 1)
