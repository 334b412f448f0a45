"""Numba kernels for Gaussian mixtures: fused E-step statistics and log-probabilities.

Layout shared by every kernel
-----------------------------
* ``prange`` runs over fixed chunks of ``CHUNK_ROWS`` rows. Each chunk writes
  its own partial statistics; a serial loop then adds the partials in chunk
  order. The arithmetic done for a chunk never depends on which thread ran it,
  so results are bit-identical for any thread count.
* Inside a chunk, rows are handled in blocks of ``BLOCK_ROWS``. A block of X is
  copied transposed, ``xt[feature, row]``, so that the innermost loops run over
  rows with unit stride and vectorise.
* Per-point arithmetic (differences, triangular products, Mahalanobis
  distances) is done in the input dtype; log-probabilities, responsibilities
  and every sum are float64.
* Statistics are *added* into the output arrays, so one set of outputs can
  gather several calls (chunks of an out-of-core data set).

Three covariance families need three kernels:

* ``full``: per-component precision Cholesky factors ``(k, d, d)``.
* ``tied``: one factor ``(d, d)``. Log-densities reuse one product ``(x - g) P``
  per row, and the pooled scatter is accumulated as
  ``sum_j r_j (x - c_j)(x - c_j)^T = (x - a)(x - a)^T + C^T (diag(r) - r r^T) C``
  with ``a = sum_j r_j c_j``: O(d^2 + k^2) work per row instead of O(k d^2).
* ``diag``: per-component diagonal factors ``(k, d)``. A spherical model is a
  diagonal one whose factors are equal across features, so it uses this
  kernel too (the M-step then averages the variances).

Statistics are centred at a shift per component (the current means), which
keeps second moments accurate when the data sit far from the origin.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from fastem._numba import BLOCK_ROWS, CHUNK_ROWS, helper, kernel

# Partial statistics of one wave of chunks are kept in memory at once. Bounding
# their size keeps memory flat for large n_components * n_features**2; the
# bound depends only on the problem shape, never on the thread count.
_PARTIALS_BUDGET_FLOATS = (32 * 2**20) // 8
_MIN_CHUNKS_PER_WAVE = 64


@helper
def n_chunks_for(n_samples):
    return (n_samples + CHUNK_ROWS - 1) // CHUNK_ROWS


@helper
def _chunks_per_wave(n_chunks, floats_per_chunk):
    wave = max(_MIN_CHUNKS_PER_WAVE, _PARTIALS_BUDGET_FLOATS // max(floats_per_chunk, 1))
    return max(min(wave, n_chunks), 1)


# ---------------------------------------------------------------------------
# Block building blocks (serial; called once per block of rows)


@helper
def _load_block(X, sample_weight, start, n_rows, xt, weights):
    """Copy rows [start, start + n_rows) of X transposed into ``xt``; fill their weights."""
    n_features = X.shape[1]
    for row in range(n_rows):
        for feature in range(n_features):
            xt[feature, row] = X[start + row, feature]
    if sample_weight.shape[0] == 0:
        for row in range(n_rows):
            weights[row] = 1.0
    else:
        for row in range(n_rows):
            weights[row] = sample_weight[start + row]


@helper
def _log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob):
    """log_prob[j, row] = log w_j + log N(x_row | mean_j, prec_chol_j) for one block."""
    n_features = xt.shape[0]
    n_components = means.shape[0]
    for j in range(n_components):
        for feature in range(n_features):
            mean = means[j, feature]
            for row in range(n_rows):
                diff[feature, row] = xt[feature, row] - mean
        for row in range(n_rows):
            maha[row] = 0.0
        # proj = diff^T P_j, one output column at a time; P_j is upper triangular.
        for col in range(n_features):
            for row in range(n_rows):
                proj[row] = 0.0
            for feature in range(col + 1):
                factor = prec_chol[j, feature, col]
                for row in range(n_rows):
                    proj[row] += diff[feature, row] * factor
            for row in range(n_rows):
                maha[row] += proj[row] * proj[row]
        const = log_const[j]
        for row in range(n_rows):
            log_prob[j, row] = const - 0.5 * maha[row]


@helper
def _log_prob_tied_block(xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob):
    """Tied covariance: project ``x - centre`` once, then subtract each projected mean."""
    n_features = xt.shape[0]
    n_components = means_proj.shape[0]
    for feature in range(n_features):
        c = centre[feature]
        for row in range(n_rows):
            centred[feature, row] = xt[feature, row] - c
    for col in range(n_features):
        for row in range(n_rows):
            proj_all[col, row] = 0.0
        for feature in range(col + 1):
            factor = prec_chol[feature, col]
            for row in range(n_rows):
                proj_all[col, row] += centred[feature, row] * factor
    for j in range(n_components):
        for row in range(n_rows):
            maha[row] = 0.0
        for col in range(n_features):
            mean_proj = means_proj[j, col]
            for row in range(n_rows):
                t = proj_all[col, row] - mean_proj
                maha[row] += t * t
        const = log_const[j]
        for row in range(n_rows):
            log_prob[j, row] = const - 0.5 * maha[row]


@helper
def _log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob):
    """Diagonal (and spherical) covariance log-probabilities for one block."""
    n_features = xt.shape[0]
    n_components = means.shape[0]
    for j in range(n_components):
        for row in range(n_rows):
            maha[row] = 0.0
        for feature in range(n_features):
            mean = means[j, feature]
            factor = prec_chol[j, feature]
            for row in range(n_rows):
                t = (xt[feature, row] - mean) * factor
                maha[row] += t * t
        const = log_const[j]
        for row in range(n_rows):
            log_prob[j, row] = const - 0.5 * maha[row]


@helper
def _normalise_block(log_prob, n_rows, weights, row_max, row_sum, totals):
    """Turn log-probabilities into responsibilities in place (log-sum-exp).

    Adds ``sum_row w_row * log p(x_row)`` to ``totals[0]`` and ``sum w_row`` to
    ``totals[1]``. Rows of weight zero contribute nothing (not even a NaN from
    ``0 * -inf``).
    """
    n_components = log_prob.shape[0]
    for row in range(n_rows):
        row_max[row] = log_prob[0, row]
    for j in range(1, n_components):
        for row in range(n_rows):
            row_max[row] = max(row_max[row], log_prob[j, row])
    for row in range(n_rows):
        row_sum[row] = 0.0
    for j in range(n_components):
        for row in range(n_rows):
            e = np.exp(log_prob[j, row] - row_max[row])
            log_prob[j, row] = e
            row_sum[row] += e
    log_likelihood = 0.0
    weight_total = 0.0
    for row in range(n_rows):
        w = weights[row]
        if w != 0.0:
            log_likelihood += w * (row_max[row] + np.log(row_sum[row]))
            weight_total += w
        row_sum[row] = 1.0 / row_sum[row]
    for j in range(n_components):
        for row in range(n_rows):
            log_prob[j, row] *= row_sum[row]
    totals[0] += log_likelihood
    totals[1] += weight_total


@helper
def _accumulate_full_block(xt, n_rows, weights, shift, resp, diff, weighted_diff, resp_sum, first, second):
    """Add this block's N_j, S1_j, S2_j (centred at shift_j); S2 upper triangle only."""
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    for j in range(n_components):
        n_j = 0.0
        for row in range(n_rows):
            resp[j, row] *= weights[row]
            n_j += resp[j, row]
        if n_j == 0.0:
            continue  # every contribution is exactly zero
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s = 0.0
            for row in range(n_rows):
                dv = xt[feature, row] - c
                diff[feature, row] = dv
                wd = resp[j, row] * dv
                weighted_diff[feature, row] = wd
                s += wd
            first[j, feature] += s
        for a in range(n_features):
            for b in range(a, n_features):
                s = 0.0
                for row in range(n_rows):
                    s += weighted_diff[a, row] * diff[b, row]
                second[j, a, b] += s


@helper
def _accumulate_tied_block(xt, n_rows, weights, shift, centre, resp, deviation, weighted_dev, resp_sum, first, within, spread):
    """Add N_j, S1_j and the pooled scatter's two parts (see module docstring).

    within += w (x~ - a~)(x~ - a~)^T with x~ = x - centre, a~ = sum_j r_j (shift_j - centre)
    spread += w (diag(r) - r r^T)    (upper triangle)
    """
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    for feature in range(n_features):
        c = centre[feature]
        for row in range(n_rows):
            deviation[feature, row] = xt[feature, row] - c
    for j in range(n_components):
        n_j = 0.0
        for row in range(n_rows):
            n_j += weights[row] * resp[j, row]
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s = 0.0
            for row in range(n_rows):
                s += weights[row] * resp[j, row] * (xt[feature, row] - c)
            first[j, feature] += s
        for l in range(j, n_components):
            s = 0.0
            for row in range(n_rows):
                s += weights[row] * resp[j, row] * resp[l, row]
            spread[j, l] -= s
        spread[j, j] += n_j
        for feature in range(n_features):
            c = shift[j, feature] - centre[feature]
            for row in range(n_rows):
                deviation[feature, row] -= resp[j, row] * c
    for feature in range(n_features):
        for row in range(n_rows):
            weighted_dev[feature, row] = weights[row] * deviation[feature, row]
    for a in range(n_features):
        for b in range(a, n_features):
            s = 0.0
            for row in range(n_rows):
                s += weighted_dev[a, row] * deviation[b, row]
            within[a, b] += s


@helper
def _accumulate_diag_block(xt, n_rows, weights, shift, resp, resp_sum, first, second):
    """Add N_j, S1_j and the diagonal of S2_j (centred at shift_j)."""
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    for j in range(n_components):
        n_j = 0.0
        for row in range(n_rows):
            resp[j, row] *= weights[row]
            n_j += resp[j, row]
        if n_j == 0.0:
            continue
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s1 = 0.0
            s2 = 0.0
            for row in range(n_rows):
                dv = xt[feature, row] - c
                wd = resp[j, row] * dv
                s1 += wd
                s2 += wd * dv
            first[j, feature] += s1
            second[j, feature] += s2


# ---------------------------------------------------------------------------
# E-step kernels: one pass over X, statistics added into ``stats``


@kernel
def estep_full(X, sample_weight, model, stats):
    """Add full-covariance E-step statistics of X into ``stats``.

    model = (means (k, d) in X's dtype, prec_chol (k, d, d) in X's dtype,
    log_const (k,) float64 = log w_j + log det prec_chol_j - d/2 log 2 pi).
    stats = (resp_sum (k,), first (k, d), second (k, d, d) upper triangle,
    totals (2,) = [sum w log p(x), sum w]), all float64.
    """
    means, prec_chol, log_const = model
    resp_sum, first, second, totals = stats
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    n_chunks = n_chunks_for(n_samples)
    wave = _chunks_per_wave(n_chunks, n_components * (1 + n_features + n_features * n_features) + 2)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features, n_features))
        part_totals = np.zeros((n_wave, 2))
        for c in prange(n_wave):
            xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
            diff = np.empty((n_features, BLOCK_ROWS), X.dtype)
            proj = np.empty(BLOCK_ROWS, X.dtype)
            maha = np.empty(BLOCK_ROWS, X.dtype)
            weighted_diff = np.empty((n_features, BLOCK_ROWS))
            log_prob = np.empty((n_components, BLOCK_ROWS))
            weights = np.empty(BLOCK_ROWS)
            row_max = np.empty(BLOCK_ROWS)
            row_sum = np.empty(BLOCK_ROWS)
            chunk_start = (wave_start + c) * CHUNK_ROWS
            chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
            for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                n_rows = min(BLOCK_ROWS, chunk_stop - start)
                _load_block(X, sample_weight, start, n_rows, xt, weights)
                _log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob)
                _normalise_block(log_prob, n_rows, weights, row_max, row_sum, part_totals[c])
                _accumulate_full_block(
                    xt, n_rows, weights, means, log_prob, diff, weighted_diff,
                    part_resp[c], part_first[c], part_second[c],
                )
        for c in range(n_wave):  # ordered reduction: thread-count independent
            resp_sum += part_resp[c]
            first += part_first[c]
            second += part_second[c]
            totals += part_totals[c]


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
    wave = _chunks_per_wave(n_chunks, floats)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_within = np.zeros((n_wave, n_features, n_features))
        part_spread = np.zeros((n_wave, n_components, n_components))
        part_totals = np.zeros((n_wave, 2))
        for c in prange(n_wave):
            xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
            centred = np.empty((n_features, BLOCK_ROWS), X.dtype)
            proj_all = np.empty((n_features, BLOCK_ROWS), X.dtype)
            maha = np.empty(BLOCK_ROWS, X.dtype)
            deviation = np.empty((n_features, BLOCK_ROWS))
            weighted_dev = np.empty((n_features, BLOCK_ROWS))
            log_prob = np.empty((n_components, BLOCK_ROWS))
            weights = np.empty(BLOCK_ROWS)
            row_max = np.empty(BLOCK_ROWS)
            row_sum = np.empty(BLOCK_ROWS)
            chunk_start = (wave_start + c) * CHUNK_ROWS
            chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
            for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                n_rows = min(BLOCK_ROWS, chunk_stop - start)
                _load_block(X, sample_weight, start, n_rows, xt, weights)
                _log_prob_tied_block(
                    xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob
                )
                _normalise_block(log_prob, n_rows, weights, row_max, row_sum, part_totals[c])
                _accumulate_tied_block(
                    xt, n_rows, weights, means, centre, log_prob, deviation, weighted_dev,
                    part_resp[c], part_first[c], part_within[c], part_spread[c],
                )
        for c in range(n_wave):
            resp_sum += part_resp[c]
            first += part_first[c]
            within += part_within[c]
            spread += part_spread[c]
            totals += part_totals[c]


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
    wave = _chunks_per_wave(n_chunks, n_components * (1 + 2 * n_features) + 2)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features))
        part_totals = np.zeros((n_wave, 2))
        for c in prange(n_wave):
            xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
            maha = np.empty(BLOCK_ROWS, X.dtype)
            log_prob = np.empty((n_components, BLOCK_ROWS))
            weights = np.empty(BLOCK_ROWS)
            row_max = np.empty(BLOCK_ROWS)
            row_sum = np.empty(BLOCK_ROWS)
            chunk_start = (wave_start + c) * CHUNK_ROWS
            chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
            for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
                n_rows = min(BLOCK_ROWS, chunk_stop - start)
                _load_block(X, sample_weight, start, n_rows, xt, weights)
                _log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob)
                _normalise_block(log_prob, n_rows, weights, row_max, row_sum, part_totals[c])
                _accumulate_diag_block(
                    xt, n_rows, weights, means, log_prob, part_resp[c], part_first[c], part_second[c]
                )
        for c in range(n_wave):
            resp_sum += part_resp[c]
            first += part_first[c]
            second += part_second[c]
            totals += part_totals[c]


# ---------------------------------------------------------------------------
# Log-probability kernels for predict / predict_proba / score_samples


@kernel
def weighted_log_prob_full(X, model, out):
    """out[i, j] = log w_j + log N(x_i | mean_j, Sigma_j); model as for ``estep_full``."""
    means, prec_chol, log_const = model
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    no_weights = np.empty(0)
    for c in prange(n_chunks_for(n_samples)):
        xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
        diff = np.empty((n_features, BLOCK_ROWS), X.dtype)
        proj = np.empty(BLOCK_ROWS, X.dtype)
        maha = np.empty(BLOCK_ROWS, X.dtype)
        log_prob = np.empty((n_components, BLOCK_ROWS))
        weights = np.empty(BLOCK_ROWS)
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            _load_block(X, no_weights, start, n_rows, xt, weights)
            _log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob)
            for row in range(n_rows):
                for j in range(n_components):
                    out[start + row, j] = log_prob[j, row]


@kernel
def weighted_log_prob_tied(X, model, out):
    """Tied-covariance version of ``weighted_log_prob_full``; model as for ``estep_tied``."""
    means, centre, means_proj, prec_chol, log_const = model
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    no_weights = np.empty(0)
    for c in prange(n_chunks_for(n_samples)):
        xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
        centred = np.empty((n_features, BLOCK_ROWS), X.dtype)
        proj_all = np.empty((n_features, BLOCK_ROWS), X.dtype)
        maha = np.empty(BLOCK_ROWS, X.dtype)
        log_prob = np.empty((n_components, BLOCK_ROWS))
        weights = np.empty(BLOCK_ROWS)
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            _load_block(X, no_weights, start, n_rows, xt, weights)
            _log_prob_tied_block(
                xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob
            )
            for row in range(n_rows):
                for j in range(n_components):
                    out[start + row, j] = log_prob[j, row]


@kernel
def weighted_log_prob_diag(X, model, out):
    """Diagonal/spherical version of ``weighted_log_prob_full``; model as for ``estep_diag``."""
    means, prec_chol, log_const = model
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    no_weights = np.empty(0)
    for c in prange(n_chunks_for(n_samples)):
        xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
        maha = np.empty(BLOCK_ROWS, X.dtype)
        log_prob = np.empty((n_components, BLOCK_ROWS))
        weights = np.empty(BLOCK_ROWS)
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            _load_block(X, no_weights, start, n_rows, xt, weights)
            _log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob)
            for row in range(n_rows):
                for j in range(n_components):
                    out[start + row, j] = log_prob[j, row]


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
    wave = _chunks_per_wave(n_chunks, n_components * (1 + n_features + n_features * n_features))
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features, n_features))
        for c in prange(n_wave):
            diff = np.empty(n_features)
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
            resp_sum += part_resp[c]
            first += part_first[c]
            second += part_second[c]
