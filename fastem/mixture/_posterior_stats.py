"""Gaussian statistics of data weighted by given responsibilities (parallel kernels).

The mixture's own E-step computes its responsibilities on the fly and never
stores them. Other families compute them elsewhere (an HMM's
forward-backward) and hand over the (n_samples, n_components) matrix; these
kernels turn it into the same additive statistics the mixture's M-step
reads: N_j, S1_j and S2_j, centred at a shift per component.

The layout follows the E-step kernels: fixed chunks of ``CHUNK_ROWS`` rows,
each with its own partial statistics, added in chunk order (bit-identical for
any thread count); inside a chunk, blocks of ``BLOCK_ROWS`` rows are copied
transposed so that the innermost loops run over rows and vectorise.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from fastem._core.chunks import add_into, chunks_per_task, chunks_per_wave, n_chunks_for
from fastem._core.numba import BLOCK_ROWS, CHUNK_ROWS, helper, kernel


@helper
def _load_weighted_block(X, row_weights, resp, j, shift, start, n_rows, diff, weighted):
    """diff[a, r] = x_(start+r),a - shift_j,a and weighted[r] = w_r * resp[start+r, j]; returns their sum."""
    n_features = X.shape[1]
    total = 0.0
    for r in range(n_rows):
        w = resp[start + r, j]
        if row_weights.shape[0] != 0:
            w *= row_weights[start + r]
        weighted[r] = w
        total += w
    for a in range(n_features):
        s = shift[j, a]
        for r in range(n_rows):
            diff[a, r] = X[start + r, a] - s
    return total


@kernel
def posterior_stats_full(X, row_weights, resp, shift, stats):
    """Add N_j, S1_j and S2_j (upper triangle) of X weighted by ``resp`` into ``stats``.

    X (n, d) float32/float64; row_weights (n,) float64, or empty for unit
    weights; resp (n, k) float64; shift (k, d) float64.
    stats = (resp_sum (k,), first (k, d), second (k, d, d)), float64.
    """
    resp_sum, first, second = stats
    n_samples, n_features = X.shape
    n_components = shift.shape[0]
    n_chunks = n_chunks_for(n_samples)
    wave = chunks_per_wave(n_chunks, n_components * (1 + n_features + n_features * n_features))
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features, n_features))
        per_task = chunks_per_task(n_wave)
        for task in prange((n_wave + per_task - 1) // per_task):
            diff = np.empty((n_features, BLOCK_ROWS))
            weighted = np.empty(BLOCK_ROWS)
            weighted_diff = np.empty(BLOCK_ROWS)
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
                for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, chunk_stop - start)
                    for j in range(n_components):
                        total = _load_weighted_block(X, row_weights, resp, j, shift, start, n_rows, diff, weighted)
                        if total == 0.0:
                            continue
                        part_resp[c, j] += total
                        for a in range(n_features):
                            s1 = 0.0
                            for r in range(n_rows):
                                weighted_diff[r] = weighted[r] * diff[a, r]
                                s1 += weighted_diff[r]
                            part_first[c, j, a] += s1
                            for b in range(a, n_features):
                                s2 = 0.0
                                for r in range(n_rows):
                                    s2 += weighted_diff[r] * diff[b, r]
                                part_second[c, j, a, b] += s2
        for c in range(n_wave):  # ordered reduction: thread-count independent
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(second, part_second[c])


@kernel
def posterior_stats_diag(X, row_weights, resp, shift, stats):
    """Diagonal version of ``posterior_stats_full``: second (k, d) holds the weighted squares only."""
    resp_sum, first, second = stats
    n_samples, n_features = X.shape
    n_components = shift.shape[0]
    n_chunks = n_chunks_for(n_samples)
    wave = chunks_per_wave(n_chunks, n_components * (1 + 2 * n_features))
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features))
        per_task = chunks_per_task(n_wave)
        for task in prange((n_wave + per_task - 1) // per_task):
            diff = np.empty((n_features, BLOCK_ROWS))
            weighted = np.empty(BLOCK_ROWS)
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
                for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, chunk_stop - start)
                    for j in range(n_components):
                        total = _load_weighted_block(X, row_weights, resp, j, shift, start, n_rows, diff, weighted)
                        if total == 0.0:
                            continue
                        part_resp[c, j] += total
                        for a in range(n_features):
                            s1 = 0.0
                            s2 = 0.0
                            for r in range(n_rows):
                                wd = weighted[r] * diff[a, r]
                                s1 += wd
                                s2 += wd * diff[a, r]
                            part_first[c, j, a] += s1
                            part_second[c, j, a] += s2
        for c in range(n_wave):
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(second, part_second[c])
