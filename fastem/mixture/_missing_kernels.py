"""Parallel kernels for Gaussian mixtures on data with missing values (NaN).

The rows arrive grouped by missingness pattern: ``X_sorted`` is a copy of the
rows with rows of the same pattern consecutive, ``order`` says which row of X
each one is, and ``pattern_starts`` marks where each pattern begins (see
``fastem.mixture.missing``).
For a pattern with observed coordinates O and missing coordinates M, every
component j needs the same few factors of its covariance Sigma_j:

* ``inv_chol``: L^-1, with L L^T = Sigma_OO (lower triangular), which whitens
  the observed part: log N(x_O) = log det L^-1 - o/2 log 2 pi - |L^-1 (x_O - mu_O)|^2 / 2;
* ``regression``: B = Sigma_MO Sigma_OO^-1, so E[x_M | x_O, j] = mu_M + B (x_O - mu_O);
* ``cond_cov``: C = Sigma_MM - B Sigma_OM, the covariance of x_M given x_O and j.

They are computed once per pattern segment and component, never per row.

The E-step exploits that the conditional expectation of a row is an affine
function of its observed part: centred at the component mean,
E[x - mu | x_O, j] = A (x_O - mu_O) with A = [I; B]. So a segment's
statistics are gathered in the *observed* coordinates only (responsibility
sums s0, first moments s1 (o), second moments S2 (o, o)) and lifted to all d
coordinates once per segment:

    first[O] += s1,  first[M] += B s1,
    second[OO] += S2, second[MO] += B S2, second[MM] += B S2 B^T + s0 C.

This is exactly the expected complete-data statistic of EM (the conditional
covariance enters through s0 C), at a per-row cost of O(k o^2), no more than
a complete row costs, plus O(k d^3) per segment for the factors and the
lifting. Rows that share patterns (few features, or few distinct ways of
missing) amortise the latter; where most rows have a pattern of their own
(many features missing at random) it dominates: measured at 32 features, 20%
missing, about 85x the complete-data iteration. Computing the factors from
the precision matrices (O(m^3 + m^2 o) per pattern for m missing
coordinates) would cut that; it is not done yet.

Layout as in the other kernels: the sorted rows are cut into fixed
chunks of ``CHUNK_ROWS``; a chunk is split further where patterns change;
each chunk writes its own partial statistics, added in chunk order, so
results are bit-identical for any thread count. Everything here computes in
float64, whatever the dtype of X.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from fastem._core.chunks import add_into, chunks_per_task, chunks_per_wave, n_chunks_for
from fastem._core.fast_math import exp_flushed, log_positive
from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import BLOCK_ROWS, CHUNK_ROWS, allocating_helper, helper, kernel

_LOG_2PI = math.log(2.0 * math.pi)

# A component that owns more than 1/_DENSE_FROM_FRACTION of a block's rows is
# accumulated over all of them with vectorised loops (zero responsibilities
# add nothing); below that, its owners are visited one by one. Measured: a
# visit costs about ten times a row of the vectorised loops.
_DENSE_FROM_FRACTION = 10


# ---------------------------------------------------------------------------
# Building blocks


@helper
def _pattern_of(pattern_starts, position):
    """Index p with pattern_starts[p] <= position < pattern_starts[p + 1] (binary search)."""
    lo = 0
    hi = pattern_starts.shape[0] - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pattern_starts[mid] <= position:
            lo = mid
        else:
            hi = mid
    return lo


@helper
def _split_features(X, row, observed, missing):
    """Fill ``observed``/``missing`` with the feature indices of row ``row``; returns their counts."""
    n_observed = 0
    n_missing = 0
    for a in range(X.shape[1]):
        if np.isnan(X[row, a]):
            missing[n_missing] = a
            n_missing += 1
        else:
            observed[n_observed] = a
            n_observed += 1
    return n_observed, n_missing


@helper
def _conditional_factors(cov, observed, n_observed, missing, n_missing, chol, gain, inv_chol, regression, cond_cov):
    """Factors of one covariance ``cov`` (d, d) for one pattern; returns log det L^-1.

    Writes the leading blocks of: ``inv_chol`` (o, o) = L^-1 (lower), with
    L L^T = Sigma_OO; ``regression`` (m, o) = Sigma_MO Sigma_OO^-1;
    ``cond_cov`` (m, m) = Sigma_MM - Sigma_MO Sigma_OO^-1 Sigma_OM.
    ``chol`` and ``gain`` are (d, d) scratch. A pivot that is not positive
    (Sigma_OO not numerically positive-definite) gives NaN, which the caller
    reports; kernels never raise.
    """
    o = n_observed
    m = n_missing
    log_det = 0.0
    # Cholesky factor L of Sigma_OO.
    for t in range(o):
        for u in range(t + 1):
            s = cov[observed[t], observed[u]]
            for v in range(u):
                s -= chol[t, v] * chol[u, v]
            if t == u:
                if not s > 0.0:
                    return np.nan
                chol[t, t] = math.sqrt(s)
                log_det -= math.log(chol[t, t])
            else:
                chol[t, u] = s / chol[u, u]
    # L^-1 by forward substitution, one column at a time.
    for u in range(o):
        inv_chol[u, u] = 1.0 / chol[u, u]
        for t in range(u + 1, o):
            s = 0.0
            for v in range(u, t):
                s -= chol[t, v] * inv_chol[v, u]
            inv_chol[t, u] = s / chol[t, t]
        for t in range(u):
            inv_chol[t, u] = 0.0
    # gain = Sigma_MO L^-T, so that regression = gain L^-1 and C = Sigma_MM - gain gain^T.
    for r in range(m):
        for t in range(o):
            s = 0.0
            for v in range(t + 1):
                s += inv_chol[t, v] * cov[missing[r], observed[v]]
            gain[r, t] = s
    for r in range(m):
        for t in range(o):
            s = 0.0
            for v in range(t, o):
                s += gain[r, v] * inv_chol[v, t]
            regression[r, t] = s
    for r in range(m):
        for q in range(r + 1):
            s = cov[missing[r], missing[q]]
            for t in range(o):
                s -= gain[r, t] * gain[q, t]
            cond_cov[r, q] = s
            cond_cov[q, r] = s
    return log_det


@helper
def _segment_factors(covariances, observed, n_observed, missing, n_missing, chol, gain, inv_chol, regression,
                     cond_cov, log_det):
    """The factors of every covariance in ``covariances`` (1 for tied, k otherwise) for one pattern."""
    for q in range(covariances.shape[0]):
        log_det[q] = _conditional_factors(
            covariances[q], observed, n_observed, missing, n_missing, chol, gain,
            inv_chol[q], regression[q], cond_cov[q],
        )


@allocating_helper
def _factor_scratch(n_features, n_cov):
    """A task's arrays for one pattern's factors (see ``_begin_segment``)."""
    return (
        np.empty(n_features, np.intp),  # observed feature indices
        np.empty(n_features, np.intp),  # missing feature indices
        np.empty((n_features, n_features)),  # chol (scratch)
        np.empty((n_features, n_features)),  # gain (scratch)
        np.empty((n_cov, n_features, n_features)),  # inv_chol
        np.empty((n_cov, n_features, n_features)),  # regression
        np.empty((n_cov, n_features, n_features)),  # cond_cov
        np.empty(n_cov),  # log_det
    )


@helper
def _begin_segment(X_sorted, pattern_starts, position, chunk_stop, covariances, factors, conditionals):
    """Start the run of rows from ``position`` that share a pattern, within the chunk ending at ``chunk_stop``.

    Fills ``factors`` for that pattern (the regression and conditional
    covariance only if ``conditionals``) and returns (segment_stop, n_observed, n_missing).
    """
    observed, missing, chol, gain, inv_chol, regression, cond_cov, log_det = factors
    pattern = _pattern_of(pattern_starts, position)
    segment_stop = min(pattern_starts[pattern + 1], chunk_stop)
    n_observed, n_missing = _split_features(X_sorted, position, observed, missing)
    _segment_factors(covariances, observed, n_observed, missing, n_missing if conditionals else 0, chol, gain,
                     inv_chol, regression, cond_cov, log_det)
    return segment_stop, n_observed, n_missing


@allocating_helper
def _block_scratch(n_features, n_components):
    """A task's arrays for one block of rows (see ``_block_posteriors``)."""
    return (
        np.empty((n_features, BLOCK_ROWS)),  # xt: the observed values, transposed
        np.empty((n_features, BLOCK_ROWS)),  # diff (scratch)
        np.empty(BLOCK_ROWS),  # z (scratch)
        np.empty(BLOCK_ROWS),  # weights
        np.empty((n_components, BLOCK_ROWS)),  # prob
        np.empty(BLOCK_ROWS),  # log_norm
        np.empty(BLOCK_ROWS),  # total
    )


@helper
def _load_block(X_sorted, start, n_rows, observed, n_observed, sorted_weights, xt, weights):
    """xt[t, r] = X_sorted[start + r, observed[t]] in float64, and the rows' weights."""
    for r in range(n_rows):
        weights[r] = 1.0 if sorted_weights.shape[0] == 0 else sorted_weights[start + r]
        for t in range(n_observed):
            xt[t, r] = X_sorted[start + r, observed[t]]


@helper
def _block_log_probs(xt, n_rows, observed, n_observed, means, log_weights, inv_chol, log_det, diff, z, log_prob):
    """log_prob[j, r] = log w_j + log N(x_rO | mu_jO, Sigma_jOO) for a block of rows of one pattern.

    The innermost loops run over the block's rows with unit stride, so they vectorise.
    """
    prefer_wide_vectors()
    n_components = means.shape[0]
    shared = inv_chol.shape[0] == 1
    for j in range(n_components):
        q = 0 if shared else j
        constant = log_weights[j] + log_det[q] - 0.5 * n_observed * _LOG_2PI
        for r in range(n_rows):
            log_prob[j, r] = 0.0
        for t in range(n_observed):
            centre = means[j, observed[t]]
            for r in range(n_rows):
                diff[t, r] = xt[t, r] - centre
        for t in range(n_observed):
            for r in range(n_rows):
                z[r] = 0.0
            for v in range(t + 1):
                factor = inv_chol[q, t, v]
                for r in range(n_rows):
                    z[r] += factor * diff[v, r]
            for r in range(n_rows):
                log_prob[j, r] += z[r] * z[r]
        for r in range(n_rows):
            log_prob[j, r] = constant - 0.5 * log_prob[j, r]


@helper
def _block_log_norm(log_prob, n_rows, n_components, log_norm, total):
    """log_norm[r] = log sum_j exp(log_prob[j, r]) (-inf when every term is -inf, NaN if one is NaN).

    Leaves exp(log_prob[j, r] - max_j log_prob[j, r]) in ``log_prob`` (flushed to 0 below 2**-52),
    and their sum in ``total``: responsibilities are then log_prob[j, r] / total[r].
    """
    prefer_wide_vectors()
    for r in range(n_rows):
        log_norm[r] = log_prob[0, r]
    for j in range(1, n_components):
        for r in range(n_rows):
            value = log_prob[j, r]
            # NaN (a failed factorisation) propagates, and the caller reports it.
            log_norm[r] = value if (value > log_norm[r] or value != value) else log_norm[r]
    for r in range(n_rows):
        total[r] = 0.0
    for j in range(n_components):
        for r in range(n_rows):
            value = exp_flushed(log_prob[j, r] - log_norm[r])
            log_prob[j, r] = value
            total[r] += value
    for r in range(n_rows):
        top = log_norm[r]
        if top == -np.inf or top != top:
            total[r] = 1.0  # no responsibilities: the row's log-likelihood reports the problem
            continue
        log_norm[r] = top + log_positive(total[r])


@helper
def _block_posteriors(X_sorted, start, n_rows, sorted_weights, means, log_weights, factors, n_observed, block):
    """Load rows start .. start + n_rows of one pattern and compute their posteriors.

    Leaves in ``block``: xt (the observed values), weights, prob (k, n_rows)
    with prob[j, r] / total[r] the responsibilities, and log_norm (the rows'
    log-likelihoods of their observed values).
    """
    observed, _, _, _, inv_chol, _, _, log_det = factors
    xt, diff, z, weights, prob, log_norm, total = block
    _load_block(X_sorted, start, n_rows, observed, n_observed, sorted_weights, xt, weights)
    _block_log_probs(xt, n_rows, observed, n_observed, means, log_weights, inv_chol, log_det, diff, z, prob)
    _block_log_norm(prob, n_rows, means.shape[0], log_norm, total)


# ---------------------------------------------------------------------------
# E-step


@helper
def _lift_segment(seg_resp, seg_first, seg_second, observed, n_observed, missing, n_missing, regression,
                  cond_cov, product, resp_sum, first, second):
    """Add a segment's observed-coordinate statistics, lifted to all coordinates, into a chunk's partials."""
    n_components = seg_resp.shape[0]
    shared = regression.shape[0] == 1
    o = n_observed
    m = n_missing
    for j in range(n_components):
        q = 0 if shared else j
        s0 = seg_resp[j]
        if s0 == 0.0:
            continue
        resp_sum[j] += s0
        # Observed block; seg_second holds the upper triangle.
        for t in range(o):
            first[j, observed[t]] += seg_first[j, t]
            for u in range(t, o):
                value = seg_second[j, t, u]
                second[j, observed[t], observed[u]] += value
                if u != t:
                    second[j, observed[u], observed[t]] += value
        if m == 0:
            continue
        # product = B S2 (m, o), with S2 symmetric from its upper triangle.
        for r in range(m):
            s = 0.0
            for t in range(o):
                s += regression[q, r, t] * seg_first[j, t]
            first[j, missing[r]] += s
            for u in range(o):
                s = 0.0
                for t in range(o):
                    value = seg_second[j, t, u] if t <= u else seg_second[j, u, t]
                    s += regression[q, r, t] * value
                product[r, u] = s
                second[j, missing[r], observed[u]] += s
                second[j, observed[u], missing[r]] += s
        for r in range(m):
            for v in range(r + 1):
                s = s0 * cond_cov[q, r, v]
                for u in range(o):
                    s += product[r, u] * regression[q, v, u]
                second[j, missing[r], missing[v]] += s
                if v != r:
                    second[j, missing[v], missing[r]] += s


@helper
def _accumulate_component(xt, observed, n_observed, mean, resp, owners, n_owners, centred, seg_resp, seg_first,
                          seg_second, j):
    """Add the block rows ``owners[:n_owners]``, weighted by ``resp``, to component j's segment statistics.

    Centred at the component mean, in the observed coordinates; upper triangle of seg_second.
    """
    for index in range(n_owners):
        r = owners[index]
        weight = resp[r]
        seg_resp[j] += weight
        for t in range(n_observed):
            centred[t] = xt[t, r] - mean[observed[t]]
        for t in range(n_observed):
            wt = weight * centred[t]
            seg_first[j, t] += wt
            for u in range(t, n_observed):
                seg_second[j, t, u] += wt * centred[u]


@helper
def _accumulate_component_dense(xt, n_rows, observed, n_observed, mean, resp, diff, seg_resp, seg_first,
                                seg_second, j):
    """As ``_accumulate_component`` for every row of the block, in loops over rows that vectorise.

    Cheaper than visiting the owners one by one as soon as a component owns
    more than a few rows of the block.
    """
    prefer_wide_vectors()
    total = 0.0
    for r in range(n_rows):
        total += resp[r]
    seg_resp[j] += total
    for t in range(n_observed):
        centre = mean[observed[t]]
        for r in range(n_rows):
            diff[t, r] = xt[t, r] - centre
    for t in range(n_observed):
        s = 0.0
        for r in range(n_rows):
            s += resp[r] * diff[t, r]
        seg_first[j, t] += s
        for u in range(t, n_observed):
            s = 0.0
            for r in range(n_rows):
                s += resp[r] * diff[t, r] * diff[u, r]
            seg_second[j, t, u] += s


@kernel
def estep_missing(X_sorted, sorted_weights, pattern_starts, means, covariances, log_weights, stats):
    """Add the exact EM statistics of the rows of ``X_sorted`` (with NaN) into ``stats``.

    X_sorted (n_used, d) float32/float64 with NaN for missing entries, rows
    grouped by pattern (a sorted copy: reading the rows of X in pattern order
    in place would cost a cache miss per row, more than all the arithmetic);
    sorted_weights (n_used,) float64 or empty for unit weights, in the same
    order; pattern_starts (n_patterns + 1,) intp; means (k, d),
    covariances (k or 1, d, d) and log_weights (k,), float64.
    stats = (resp_sum (k,), first (k, d), second (k, d, d) both triangles,
    totals (2,) = [sum w log p(x_O), sum w]), float64, centred at ``means``.

    Responsibilities below 2**-52 of their row are dropped (as in the
    complete-data kernels), so a row adds to the statistics of the few
    components that own it, not to all k.
    """
    resp_sum, first, second, totals = stats
    n_used, n_features = X_sorted.shape
    n_components = means.shape[0]
    n_cov = covariances.shape[0]
    n_chunks = n_chunks_for(n_used)
    wave = chunks_per_wave(n_chunks, n_components * (1 + n_features + n_features * n_features) + 2)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features, n_features))
        part_totals = np.zeros((n_wave, 2))
        per_task = chunks_per_task(n_wave)
        for task in prange((n_wave + per_task - 1) // per_task):
            factors = _factor_scratch(n_features, n_cov)
            observed, missing, _, _, _, regression, cond_cov, _ = factors
            block = _block_scratch(n_features, n_components)
            xt, diff, _, weights, prob, log_norm, total = block
            product = np.empty((n_features, n_features))
            resp = np.empty(BLOCK_ROWS)
            owners = np.empty(BLOCK_ROWS, np.intp)
            centred = np.empty(n_features)
            seg_resp = np.empty(n_components)
            seg_first = np.empty((n_components, n_features))
            seg_second = np.empty((n_components, n_features, n_features))
            for c in range(task * per_task, min((task + 1) * per_task, n_wave)):
                chunk_start = (wave_start + c) * CHUNK_ROWS
                chunk_stop = min(chunk_start + CHUNK_ROWS, n_used)
                chunk_totals = part_totals[c]
                position = chunk_start
                while position < chunk_stop:
                    segment_stop, n_observed, n_missing = _begin_segment(
                        X_sorted, pattern_starts, position, chunk_stop, covariances, factors, True
                    )
                    seg_resp[:] = 0.0
                    seg_first[:] = 0.0
                    seg_second[:] = 0.0
                    for start in range(position, segment_stop, BLOCK_ROWS):
                        n_rows = min(BLOCK_ROWS, segment_stop - start)
                        _block_posteriors(X_sorted, start, n_rows, sorted_weights, means, log_weights, factors,
                                          n_observed, block)
                        for r in range(n_rows):
                            chunk_totals[0] += weights[r] * log_norm[r]
                            chunk_totals[1] += weights[r]
                            total[r] = weights[r] / total[r]
                        for j in range(n_components):
                            for r in range(n_rows):
                                resp[r] = prob[j, r] * total[r]
                            # Branch-free compaction: which rows a component owns is unpredictable.
                            n_owners = 0
                            for r in range(n_rows):
                                owners[n_owners] = r
                                n_owners += resp[r] != 0.0
                            if n_owners * _DENSE_FROM_FRACTION > n_rows:
                                _accumulate_component_dense(xt, n_rows, observed, n_observed, means[j], resp, diff,
                                                            seg_resp, seg_first, seg_second, j)
                            elif n_owners > 0:
                                _accumulate_component(xt, observed, n_observed, means[j], resp, owners, n_owners,
                                                      centred, seg_resp, seg_first, seg_second, j)
                    _lift_segment(seg_resp, seg_first, seg_second, observed, n_observed, missing, n_missing,
                                  regression, cond_cov, product, part_resp[c], part_first[c], part_second[c])
                    position = segment_stop
        for c in range(n_wave):
            add_into(resp_sum, part_resp[c])
            add_into(first, part_first[c])
            add_into(second, part_second[c])
            add_into(totals, part_totals[c])


# ---------------------------------------------------------------------------
# Inference and imputation


@kernel
def log_prob_missing(X_sorted, order, pattern_starts, means, covariances, log_weights, out):
    """out[order[s], j] = log w_j + log N(x_O | mu_jO, Sigma_jOO) for x = X_sorted[s].

    A row with no observed value gets log w_j (its marginal density is 1).
    """
    n_used, n_features = X_sorted.shape
    n_components = means.shape[0]
    n_chunks = n_chunks_for(n_used)
    per_task = chunks_per_task(n_chunks)
    no_weights = np.empty(0)
    for task in prange((n_chunks + per_task - 1) // per_task):
        factors = _factor_scratch(n_features, covariances.shape[0])
        observed, _, _, _, inv_chol, _, _, log_det = factors
        xt, diff, z, weights, log_prob, _, _ = _block_scratch(n_features, n_components)
        for c in range(task * per_task, min((task + 1) * per_task, n_chunks)):
            chunk_stop = min((c + 1) * CHUNK_ROWS, n_used)
            position = c * CHUNK_ROWS
            while position < chunk_stop:
                segment_stop, n_observed, _ = _begin_segment(
                    X_sorted, pattern_starts, position, chunk_stop, covariances, factors, False
                )
                for start in range(position, segment_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, segment_stop - start)
                    _load_block(X_sorted, start, n_rows, observed, n_observed, no_weights, xt, weights)
                    _block_log_probs(xt, n_rows, observed, n_observed, means, log_weights, inv_chol, log_det,
                                     diff, z, log_prob)
                    for r in range(n_rows):
                        row = order[start + r]
                        for j in range(n_components):
                            out[row, j] = log_prob[j, r]
                position = segment_stop


@helper
def _cholesky_in_place(matrix, size):
    """Overwrite the leading (size, size) block of ``matrix`` with its lower Cholesky factor.

    For a conditional covariance that is only positive semi-definite in
    floating point, a pivot that is not positive becomes 0 (no spread along
    that direction) instead of failing.
    """
    for t in range(size):
        for u in range(t + 1):
            s = matrix[t, u]
            for v in range(u):
                s -= matrix[t, v] * matrix[u, v]
            if t == u:
                matrix[t, t] = math.sqrt(s) if s > 0.0 else 0.0
            else:
                matrix[t, u] = s / matrix[u, u] if matrix[u, u] > 0.0 else 0.0
        for u in range(t + 1, size):
            matrix[t, u] = 0.0


@helper
def _impute_row(r, observed, n_observed, missing, n_missing, means, prob, total, log_norm, xt, regression,
                cond_chol, uniform, normals, normal_start, sampling, value):
    """The imputed missing values of block row r into ``value[:m]``: a conditional mean, or a draw.

    The row's responsibilities are prob[j, r] / total[r] (see ``_block_log_norm``).
    A row without any (zero density under every component) gets NaN, which
    the caller reports.
    """
    n_components = means.shape[0]
    shared = regression.shape[0] == 1
    if not log_norm[r] > -np.inf:  # -inf, or NaN from a failed factorisation
        for i in range(n_missing):
            value[i] = np.nan
        return
    if sampling:
        # The component: the first whose cumulative responsibility exceeds the
        # uniform; if rounding leaves the sum just below it, the last one with
        # a responsibility (never one the row cannot belong to).
        chosen = -1
        cumulative = 0.0
        for j in range(n_components):
            resp = prob[j, r] / total[r]
            if resp == 0.0:
                continue
            chosen = j
            cumulative += resp
            if uniform < cumulative:
                break
        q = 0 if shared else chosen
        for i in range(n_missing):
            v = means[chosen, missing[i]]
            for t in range(n_observed):
                v += regression[q, i, t] * (xt[t, r] - means[chosen, observed[t]])
            for t in range(i + 1):
                v += cond_chol[q, i, t] * normals[normal_start + t]
            value[i] = v
        return
    for i in range(n_missing):
        value[i] = 0.0
    for j in range(n_components):
        resp = prob[j, r] / total[r]
        if resp == 0.0:
            continue
        q = 0 if shared else j
        for i in range(n_missing):
            v = means[j, missing[i]]
            for t in range(n_observed):
                v += regression[q, i, t] * (xt[t, r] - means[j, observed[t]])
            value[i] += resp * v


@kernel
def impute_missing(X_sorted, order, pattern_starts, means, covariances, log_weights, uniforms, normals, normal_starts,
                   out):
    """Write imputed values into the NaN entries of ``out`` (a copy of X); X_sorted[s] is row order[s] of X.

    With empty ``uniforms``: the conditional expectation
    sum_j r_j (mu_jM + B_j (x_O - mu_jO)), r_j the responsibilities given x_O.
    Otherwise a draw: component j where the cumulative responsibilities first
    exceed ``uniforms[s]`` (s the row's position in ``order``), then
    mu_jM + B_j (x_O - mu_jO) + chol(C_j) z, with z read from ``normals``
    starting at ``normal_starts[s]``. The random numbers come from the
    caller, so results do not depend on the threads.
    """
    n_used, n_features = X_sorted.shape
    n_components = means.shape[0]
    n_cov = covariances.shape[0]
    sampling = uniforms.shape[0] != 0
    n_chunks = n_chunks_for(n_used)
    per_task = chunks_per_task(n_chunks)
    no_weights = np.empty(0)
    for task in prange((n_chunks + per_task - 1) // per_task):
        factors = _factor_scratch(n_features, n_cov)
        observed, missing, _, _, _, regression, cond_cov, _ = factors
        block = _block_scratch(n_features, n_components)
        xt, _, _, _, prob, log_norm, total = block
        value = np.empty(n_features)
        for c in range(task * per_task, min((task + 1) * per_task, n_chunks)):
            chunk_stop = min((c + 1) * CHUNK_ROWS, n_used)
            position = c * CHUNK_ROWS
            while position < chunk_stop:
                segment_stop, n_observed, n_missing = _begin_segment(
                    X_sorted, pattern_starts, position, chunk_stop, covariances, factors, True
                )
                if sampling:
                    for q in range(n_cov):
                        _cholesky_in_place(cond_cov[q], n_missing)
                for start in range(position, segment_stop, BLOCK_ROWS):
                    n_rows = min(BLOCK_ROWS, segment_stop - start)
                    _block_posteriors(X_sorted, start, n_rows, no_weights, means, log_weights, factors, n_observed,
                                      block)
                    for r in range(n_rows):
                        s = start + r
                        uniform = uniforms[s] if sampling else 0.0
                        normal_start = normal_starts[s] if sampling else 0
                        _impute_row(r, observed, n_observed, missing, n_missing, means, prob, total, log_norm, xt,
                                    regression, cond_cov, uniform, normals, normal_start, sampling, value)
                        row = order[s]
                        for i in range(n_missing):
                            out[row, missing[i]] = value[i]
                position = segment_stop
