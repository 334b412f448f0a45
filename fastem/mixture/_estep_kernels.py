"""Parallel E-step kernels for Gaussian mixtures: one fused pass over X into additive statistics.

The per-block building blocks live in ``_log_density`` (log-densities),
``_normaliser`` (log-sum-exp into responsibilities) and ``_accumulate``
(statistics); the log-probability kernels for inference in
``_log_prob_kernels``.

Layout shared by every kernel
-----------------------------
* The work is cut into fixed chunks of ``CHUNK_ROWS`` rows. Each chunk writes
  its own partial statistics; a serial loop then adds the partials in chunk
  order. The arithmetic done for a chunk never depends on which thread ran it,
  so results are bit-identical for any thread count. ``prange`` runs over
  tasks of a few consecutive chunks that share scratch arrays.
* Inside a chunk, rows are handled in blocks of ``BLOCK_ROWS``. A block of X is
  copied transposed, ``xt[feature, row]``, so that the innermost loops run over
  rows with unit stride and vectorise.
* Per-point arithmetic (differences, triangular products, Mahalanobis
  distances) is done in the input dtype. For full and diagonal covariances
  the log-probabilities (computed in float64 from float64 constants) and the
  responsibilities are stored in the input dtype too, so for float32 data
  the normaliser runs in float32 vectors, twice as wide, with a float32 exp;
  a row's own total of exps and its log-sum-exp are then float32 values. The
  statistics and the log-likelihood totals are float64 sums. The tied kernel
  keeps float64 responsibilities (see ``estep_tied``), and log-probabilities
  returned to users (``weighted_log_prob_*``) are float64.
* Statistics are *added* into the output arrays, so one set of outputs can
  gather several calls (chunks of an out-of-core data set).

Three covariance families need three kernels:

* ``full``: per-component precision Cholesky factors ``(k, d, d)``; with many
  features, BLAS does the products.
* ``tied``: one factor ``(d, d)``. Log-densities reuse one product ``(x - g) P``
  per row, and the pooled scatter is accumulated as
  ``sum_j r_j (x - c_j)(x - c_j)^T = (x - a)(x - a)^T + C^T (diag(r) - r r^T) C``
  with ``a = sum_j r_j c_j``: O(d^2 + k^2) work per row instead of O(k d^2).
* ``diag``: per-component diagonal factors ``(k, d)``. A spherical model is a
  diagonal one whose factors are equal across features, so it uses this
  kernel too (the M-step then averages the variances).

Statistics are centred at a shift per component (the current means), which
keeps second moments accurate when the data sit far from the origin.

Responsibilities below 2**-52 of their row are exactly 0, so the accumulation
visits only the rows a component really owns (found with bit masks, gathered
in per-component buffers when few). A row with a single owner needs no exp,
log or division: a block of such rows skips them altogether, and a block with
few close components beyond one per row runs them on its shared rows alone.

For two to eight features the full-covariance log-densities and the
accumulation through the pair buffers use generated straight-line code
(``_unrolled_full``), as does the dense accumulation for two to four
features; the general loops serve every other count. Which of them a kernel
contains is decided when it is compiled, from the literal feature count the
caller passes (``steps.full_variant``), so a fit compiles only its own.
"""

from __future__ import annotations

import numpy as np
from numba import literally, prange

from fastem._core.chunks import add_into, chunks_per_task, chunks_per_wave, n_chunks_for
from fastem._core.numba import BLOCK_ROWS, CHUNK_ROWS, kernel
from fastem.mixture._accumulate import (
    accumulate_diag_block,
    accumulate_full_block,
    accumulate_full_rows,
    accumulate_tied_block,
    flush_all_pairs,
    pair_buffer_rows,
)
from fastem.mixture._log_density import (
    load_block,
    load_weights,
    log_prob_diag_block,
    log_prob_full_block,
    log_prob_full_rows,
    log_prob_tied_block,
)
from fastem.mixture._normaliser import normalise_block


# ---------------------------------------------------------------------------
# E-step kernels: one pass over X, statistics added into ``stats``


@kernel
def estep_full(X, sample_weight, model, stats, use_blas, unrolled):
    """Add full-covariance E-step statistics of X into ``stats``.

    ``use_blas`` selects the row-major BLAS helpers (many features; the caller
    must have pinned BLAS to one thread) instead of the loop helpers;
    ``unrolled`` is the feature count whose generated loops the loop helpers
    use, or 0 for their general loops. Both are compile-time constants: each
    value compiles a specialisation of its own with only the code it runs
    (see ``fastem._core.numba``); ``fastem.mixture.steps.full_variant``
    chooses them.

    model = (means (k, d) in X's dtype, prec_chol (k, d, d) in X's dtype,
    log_const (k,) float64 = log w_j + log det prec_chol_j - d/2 log 2 pi).
    stats = (resp_sum (k,), first (k, d), second (k, d, d) upper triangle,
    totals (2,) = [sum w log p(x), sum w]), all float64.
    """
    literally(use_blas)
    literally(unrolled)
    means, prec_chol, log_const = model
    resp_sum, first, second, totals = stats
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_chunks = n_chunks_for(n_samples)
    wave = chunks_per_wave(n_chunks, n_components * (1 + n_features + n_features * n_features) + 2)
    capacity = pair_buffer_rows(n_components, n_features)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features, n_features))
        part_totals = np.zeros((n_wave, 2))
        per_task = chunks_per_task(n_wave)
        for task in prange((n_wave + per_task - 1) // per_task):
            xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
            diff = np.empty((n_features, BLOCK_ROWS), X.dtype)
            proj = np.empty(BLOCK_ROWS, X.dtype)
            maha = np.empty(BLOCK_ROWS, X.dtype)
            weighted_diff = np.empty((n_features, BLOCK_ROWS))
            acc_diff = np.empty((n_features, BLOCK_ROWS))
            log_prob = np.empty((n_components, BLOCK_ROWS), X.dtype)
            weights = np.empty(BLOCK_ROWS)
            row_max = np.empty(BLOCK_ROWS, X.dtype)
            row_flag = np.empty(BLOCK_ROWS, X.dtype)
            soft_prob = np.empty((n_components, BLOCK_ROWS), X.dtype)
            index = np.empty(BLOCK_ROWS, np.intp)
            weighted_resp = np.empty(max(BLOCK_ROWS, capacity))
            loop_components = 0 if use_blas else n_components
            # Differences are formed in X's dtype, so a float32 buffer loses nothing
            # and halves their traffic; the flush multiplies and sums in float64.
            pair_diff = np.empty((loop_components, n_features, capacity), X.dtype)
            pair_weight = np.empty((loop_components, capacity))
            pair_count = np.zeros(loop_components, np.intp)
            blas_rows = BLOCK_ROWS if use_blas else 0
            diff_rows = np.zeros((blas_rows, n_features), X.dtype)
            proj_rows = np.empty((blas_rows, n_features), X.dtype)
            diff_rows64 = np.empty((blas_rows, n_features))
            weighted_rows64 = np.empty((blas_rows, n_features))
            outer = np.empty((n_features, n_features))
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
                # Views made once per chunk: each view costs two atomic reference-count updates.
                chunk_resp = part_resp[c]
                chunk_first = part_first[c]
                chunk_second = part_second[c]
                chunk_totals = part_totals[c]
                for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, chunk_stop - start)
                    if use_blas:
                        load_weights(sample_weight, start, n_rows, weights)
                        log_prob_full_rows(
                            X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob, use_blas
                        )
                        normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                        accumulate_full_rows(
                            X, start, n_rows, weights, means, log_prob, index, diff_rows64, weighted_rows64, outer,
                            chunk_resp, chunk_first, chunk_second, use_blas,
                        )
                        continue
                    load_block(X, sample_weight, start, n_rows, xt, weights)
                    log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob, unrolled)
                    normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                    accumulate_full_block(
                        xt, n_rows, weights, means, log_prob, index, weighted_resp, acc_diff, weighted_diff,
                        pair_diff, pair_weight, pair_count, chunk_resp, chunk_first, chunk_second, unrolled,
                    )
                flush_all_pairs(
                    pair_diff, pair_weight, pair_count, weighted_resp, chunk_resp, chunk_first, chunk_second, unrolled
                )
        for c in range(n_wave):  # ordered reduction: thread-count independent
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(second, part_second[c])
            add_into(totals, part_totals[c])


@kernel
def estep_tied(X, sample_weight, model, stats):
    """Add tied-covariance E-step statistics of X into ``stats``.

    model = (means (k, d), centre (d,), means_proj (k, d) = (means - centre) P,
    prec_chol (d, d), all in X's dtype; log_const (k,) float64).
    stats = (resp_sum (k,), first (k, d), within (d, d), spread (k, k), totals (2,)),
    ``within`` and ``spread`` upper triangle only.
    """
    means, centre, means_proj, prec_chol, log_const = model
    resp_sum, first, within, spread, totals = stats
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_chunks = n_chunks_for(n_samples)
    floats = n_components * (1 + n_features + n_components) + n_features * n_features + 2
    wave = chunks_per_wave(n_chunks, floats)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_within = np.zeros((n_wave, n_features, n_features))
        part_spread = np.zeros((n_wave, n_components, n_components))
        part_totals = np.zeros((n_wave, 2))
        per_task = chunks_per_task(n_wave)
        for task in prange((n_wave + per_task - 1) // per_task):
            xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
            centred = np.empty((n_features, BLOCK_ROWS), X.dtype)
            proj_all = np.empty((n_features, BLOCK_ROWS), X.dtype)
            maha = np.empty(BLOCK_ROWS, X.dtype)
            deviation = np.empty((n_features, BLOCK_ROWS))
            weighted_dev = np.empty((n_features, BLOCK_ROWS))
            # float64 log-probabilities and responsibilities even for float32
            # data: the pooled scatter is split as in the module docstring, an
            # identity that holds only where each row's responsibilities sum
            # to 1, and float32 ones miss by up to about 1e-7 on shared rows,
            # an error that grows with the squared distance of the data from
            # the centre (full and diag statistics hold for any responsibilities).
            log_prob = np.empty((n_components, BLOCK_ROWS))
            weights = np.empty(BLOCK_ROWS)
            row_max = np.empty(BLOCK_ROWS)
            row_flag = np.empty(BLOCK_ROWS)
            soft_prob = np.empty((n_components, BLOCK_ROWS))
            index = np.empty(BLOCK_ROWS, np.intp)
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
                # Views made once per chunk: each view costs two atomic reference-count updates.
                chunk_resp = part_resp[c]
                chunk_first = part_first[c]
                chunk_within = part_within[c]
                chunk_spread = part_spread[c]
                chunk_totals = part_totals[c]
                for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, chunk_stop - start)
                    load_block(X, sample_weight, start, n_rows, xt, weights)
                    log_prob_tied_block(
                        xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob
                    )
                    normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                    accumulate_tied_block(
                        xt, n_rows, weights, means, centre, log_prob, deviation, weighted_dev,
                        chunk_resp, chunk_first, chunk_within, chunk_spread,
                    )
        for c in range(n_wave):
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(within, part_within[c])
            add_into(spread, part_spread[c])
            add_into(totals, part_totals[c])


@kernel
def estep_diag(X, sample_weight, model, stats):
    """Add diagonal/spherical E-step statistics of X into ``stats``.

    model = (means (k, d), prec_chol (k, d) in X's dtype, log_const (k,) float64).
    stats = (resp_sum (k,), first (k, d), second (k, d), totals (2,)).
    """
    means, prec_chol, log_const = model
    resp_sum, first, second, totals = stats
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_chunks = n_chunks_for(n_samples)
    wave = chunks_per_wave(n_chunks, n_components * (1 + 2 * n_features) + 2)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features))
        part_totals = np.zeros((n_wave, 2))
        per_task = chunks_per_task(n_wave)
        for task in prange((n_wave + per_task - 1) // per_task):
            xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
            maha = np.empty(BLOCK_ROWS, X.dtype)
            log_prob = np.empty((n_components, BLOCK_ROWS), X.dtype)
            weights = np.empty(BLOCK_ROWS)
            row_max = np.empty(BLOCK_ROWS, X.dtype)
            row_flag = np.empty(BLOCK_ROWS, X.dtype)
            soft_prob = np.empty((n_components, BLOCK_ROWS), X.dtype)
            index = np.empty(BLOCK_ROWS, np.intp)
            weighted_resp = np.empty(BLOCK_ROWS)
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
                # Views made once per chunk: each view costs two atomic reference-count updates.
                chunk_resp = part_resp[c]
                chunk_first = part_first[c]
                chunk_second = part_second[c]
                chunk_totals = part_totals[c]
                for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, chunk_stop - start)
                    load_block(X, sample_weight, start, n_rows, xt, weights)
                    log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob)
                    normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                    accumulate_diag_block(
                        xt, n_rows, weights, means, log_prob, index, weighted_resp, chunk_resp, chunk_first, chunk_second
                    )
        for c in range(n_wave):
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(second, part_second[c])
            add_into(totals, part_totals[c])



# ---------------------------------------------------------------------------
# Statistics of a hard assignment (k-means initialisation)


@kernel
def label_stats(X, sample_weight, labels, shift, stats):
    """Add N_j, S1_j, S2_j (upper triangle, centred at shift_j) of rows labelled j.

    One row touches only its own component: O(d^2) work per row.
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
            diff = np.empty(n_features)
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
                for i in range(chunk_start, chunk_stop):
                    j = labels[i]
                    w = 1.0 if sample_weight.shape[0] == 0 else sample_weight[i]
                    if w == 0.0:
                        continue
                    part_resp[c, j] += w
                    for a in range(n_features):
                        diff[a] = X[i, a] - shift[j, a]
                        part_first[c, j, a] += w * diff[a]
                    for a in range(n_features):
                        wa = w * diff[a]
                        for b in range(a, n_features):
                            part_second[c, j, a, b] += wa * diff[b]
        for c in range(n_wave):
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(second, part_second[c])
