"""Numba kernels for Gaussian mixtures: fused E-step statistics and log-probabilities.

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
features; these loops are the general case.
"""

from __future__ import annotations

import numpy as np
from numba import prange
from numba.core import types
from numba.extending import overload

from fastem._numba import (
    BLOCK_ROWS,
    CHUNK_ROWS,
    FASTMATH,
    allocating_helper,
    bits_from_float,
    float_from_bits,
    float_like,
    helper,
    kernel,
    prefer_wide_vectors,
    trailing_zeros,
)
from fastem._unrolled_full import (
    accumulate_dense_unrolled,
    append_pairs_unrolled,
    flush_pairs_unrolled,
    log_prob_full_unrolled,
)

# Partial statistics of one wave of chunks are kept in memory at once. Bounding
# their size keeps memory flat for large n_components * n_features**2; the
# bound depends only on the problem shape, never on the thread count.
_PARTIALS_BUDGET_FLOATS = (32 * 2**20) // 8
_MIN_CHUNKS_PER_WAVE = 64
_MAX_CHUNKS_PER_TASK = 8
# Per-task buffers of sparse (row, component) pairs waiting to be accumulated
# (see _accumulate_full_block): about 256 KiB, which stays in L2, unless
# n_components * (n_features + 1) exceeds 512 (see pair_buffer_rows).
_PAIR_BUFFER_FLOATS = (256 * 2**10) // 8


@helper
def n_chunks_for(n_samples):
    return (n_samples + CHUNK_ROWS - 1) // CHUNK_ROWS


@helper
def _add_into(total, part):
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
def _chunks_per_task(n_chunks):
    """Chunks that one parallel task handles in turn, reusing its scratch arrays.

    Allocating a task's dozen scratch arrays for every chunk of 2048 rows
    measured several percent of a small E-step. Every chunk still starts its
    statistics from zero, so results do not depend on this grouping. Grouping
    starts only when it leaves at least 64 tasks, enough to balance the
    threads of any ordinary machine.
    """
    return max(1, min(_MAX_CHUNKS_PER_TASK, n_chunks // 64))


@helper
def _chunks_per_wave(n_chunks, floats_per_chunk):
    wave = max(_MIN_CHUNKS_PER_WAVE, _PARTIALS_BUDGET_FLOATS // max(floats_per_chunk, 1))
    return max(min(wave, n_chunks), 1)


# ---------------------------------------------------------------------------
# Vectorisable exp and log
#
# Numba lowers np.exp/np.log inside loops to scalar libm calls, which would
# cost more than all the arithmetic around them. These versions use only
# arithmetic, comparisons and bit casts that LLVM vectorises when they are
# inlined into a loop over rows: Cody-Waite range reduction and a polynomial,
# with the power of two built directly in the exponent bits. Both are
# accurate to a few ulp on the ranges used here (arguments <= 0 for exp,
# values in [1, n_components] for log).

_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: HI has 32 significant
_LN2_LO = 1.90821492927058770002e-10  # bits, so n * HI is exact for |n| < 2**21
_MANTISSA_MASK = (1 << 52) - 1
_SQRT2 = 1.4142135623730951

# A responsibility below 2**-52 of its row is below the float64 resolution of
# the row's unit mass: it is flushed to exactly zero (in the normaliser and in
# the statistics), which lets the accumulation skip it. exp(x) < 2**-52 for
# x < -36.04. float32 data use the same floor, rounded to float32 (1.8e-6
# higher), against differences rounded to float32: for log-probabilities of
# modest magnitude (their float32 rounding is about |log p| * 6e-8), only a
# component within a few 1e-6 of the floor can be kept in one precision and
# flushed in the other.
RESP_LOG_FLOOR = -36.04365338911715


def _exp_flushed(x):
    """exp(x) for x <= 0, and exactly 0 for x < RESP_LOG_FLOOR (or NaN), in x's precision.

    Callable from compiled code only: the overload below picks the float64
    or float32 version by the argument's type.
    """
    raise TypeError("_exp_flushed is only callable from Numba-compiled code")


@overload(_exp_flushed, jit_options=dict(fastmath=FASTMATH))
def _exp_flushed_for(x):
    if x == types.float64:
        return lambda x: _exp_flushed64(x)
    if x == types.float32:
        return lambda x: _exp_flushed32(x)
    return None


@helper
def _exp_flushed64(x):
    """float64 ``_exp_flushed``."""
    y = max(x, RESP_LOG_FLOOR - 1.0)  # keeps the exponent below in range
    k = np.floor(y * _LOG2E + 0.5)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    # Taylor series to r**13: |r| <= ln2 / 2 leaves a truncation error below 1e-17.
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = float_from_bits((np.int64(k) + 1023) << 52)  # 2**k, built in the exponent bits
    return p * scale if x >= RESP_LOG_FLOOR else 0.0


# float32 versions of the constants. ln 2 is split for float32 as above: HI
# has 9 significant bits, so n * HI is exact for |n| < 2**15.
_LOG2E_32 = np.float32(_LOG2E)
_LN2_HI_32 = np.float32(0.693359375)
_LN2_LO_32 = np.float32(-2.12194440e-4)
_RESP_LOG_FLOOR_32 = np.float32(RESP_LOG_FLOOR)


@helper
def _exp_flushed32(x):
    """float32 ``_exp_flushed``: the same reduction in float32 and a shorter series.

    The floor is RESP_LOG_FLOOR rounded to float32, as in the float32
    normaliser's comparisons, so both agree on which values are flushed.
    """
    y = max(x, _RESP_LOG_FLOOR_32 - np.float32(1.0))
    k = np.floor(y * _LOG2E_32 + np.float32(0.5))
    r = (y - k * _LN2_HI_32) - k * _LN2_LO_32
    # Taylor series to r**7: |r| <= ln2 / 2 leaves a truncation error below 1e-8.
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    scale = float_from_bits(np.int32((np.int32(k) + 127) << 23))  # 2**k in the exponent bits (Numba widens int32 sums)
    return p * scale if x >= _RESP_LOG_FLOOR_32 else np.float32(0.0)


@helper
def _log_positive(value):
    """log(value) for a positive, finite, normal float64."""
    word = bits_from_float(value)
    e = np.float64((word >> 52) - 1023)
    m = float_from_bits((word & _MANTISSA_MASK) | (np.int64(1023) << 52))  # mantissa in [1, 2)
    if m > _SQRT2:  # centre the mantissa on 1: [sqrt(1/2), sqrt(2))
        m *= 0.5
        e += 1.0
    u = (m - 1.0) / (m + 1.0)  # log m = 2 atanh(u), |u| <= 0.1716
    u2 = u * u
    series = 1.0 / 21.0
    series = series * u2 + 1.0 / 19.0
    series = series * u2 + 1.0 / 17.0
    series = series * u2 + 1.0 / 15.0
    series = series * u2 + 1.0 / 13.0
    series = series * u2 + 1.0 / 11.0
    series = series * u2 + 1.0 / 9.0
    series = series * u2 + 1.0 / 7.0
    series = series * u2 + 1.0 / 5.0
    series = series * u2 + 1.0 / 3.0
    series = series * u2 + 1.0
    return e * _LN2_HI + (e * _LN2_LO + 2.0 * u * series)


# ---------------------------------------------------------------------------
# Block building blocks (serial; called once per block of rows)


@helper
def _load_block(X, sample_weight, start, n_rows, xt, weights):
    """Copy rows [start, start + n_rows) of X transposed into ``xt``; fill their weights."""
    prefer_wide_vectors()
    n_features = X.shape[1]
    # Rows innermost: each feature's column is written with unit stride, which
    # vectorises; a loop over a handful of features per row does not. Indexing
    # a view with the loop counter (never negative) rather than X with
    # `start + row` (a sign Numba cannot know) lets LLVM drop the
    # negative-index wrap-around that kept this loop scalar.
    block = X[start:start + n_rows]
    if n_features == 2:
        # Both features in one loop: LLVM loads the interleaved pairs with
        # wide loads and shuffles instead of one gather per feature.
        for row in range(n_rows):
            xt[0, row] = block[row, 0]
            xt[1, row] = block[row, 1]
    else:
        for feature in range(n_features):
            for row in range(n_rows):
                xt[feature, row] = block[row, feature]
    _load_weights(sample_weight, start, n_rows, weights)


@helper
def _load_weights(sample_weight, start, n_rows, weights):
    """Weights of rows [start, start + n_rows); an empty ``sample_weight`` means unit weights."""
    prefer_wide_vectors()
    if sample_weight.shape[0] == 0:
        for row in range(n_rows):
            weights[row] = 1.0
    else:
        for row in range(n_rows):
            weights[row] = sample_weight[start + row]


@helper
def _log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob):
    """log_prob[j, row] = log w_j + log N(x_row | mean_j, prec_chol_j) for one block.

    The differences ``x - mean_j`` are formed first, exactly as far as the
    data allow: projecting ``x`` and ``mean_j`` separately and subtracting
    (what scikit-learn does) loses the digits of a small cluster that sits far
    from the origin or from the other clusters.
    """
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = means.shape[0]
    # Up to MAX_UNROLLED_FEATURES, generated code does the whole product for
    # a row in registers (see fastem/_unrolled_full.py); the loops below
    # serve any feature count.
    if log_prob_full_unrolled(xt, n_rows, means, prec_chol, log_const, maha, log_prob):
        return
    for j in range(n_components):
        for feature in range(n_features):
            mean = means[j, feature]
            for row in range(n_rows):
                diff[feature, row] = xt[feature, row] - mean
        # One output column of the projection diff^T P_j at a time. P_j is
        # upper triangular: column `col` needs features 0..col. They are taken
        # two at a time, so each pass over the rows does two multiply-adds per
        # load and store of proj instead of one, and the last step adds
        # proj**2 to maha directly. (Pairs measured faster than groups of
        # four, whose padding wastes multiply-adds on a triangle.)
        for col in range(n_features):
            f0 = prec_chol[j, 0, col]
            if col == 0:  # maha starts here (no separate zeroing pass)
                for row in range(n_rows):
                    t = diff[0, row] * f0
                    maha[row] = t * t
                continue
            f1 = prec_chol[j, 1, col]
            if col == 1:
                for row in range(n_rows):
                    t = diff[0, row] * f0 + diff[1, row] * f1
                    maha[row] += t * t
                continue
            for row in range(n_rows):
                proj[row] = diff[0, row] * f0 + diff[1, row] * f1
            feature = 2
            while feature + 1 < col:
                f0 = prec_chol[j, feature, col]
                f1 = prec_chol[j, feature + 1, col]
                following = feature + 1
                for row in range(n_rows):
                    proj[row] += diff[feature, row] * f0 + diff[following, row] * f1
                feature += 2
            f0 = prec_chol[j, feature, col]
            if feature == col:  # one feature left
                for row in range(n_rows):
                    t = proj[row] + diff[col, row] * f0
                    maha[row] += t * t
            else:  # two: feature and col
                f1 = prec_chol[j, col, col]
                for row in range(n_rows):
                    t = proj[row] + diff[feature, row] * f0 + diff[col, row] * f1
                    maha[row] += t * t
        const = log_const[j]
        for row in range(n_rows):
            log_prob[j, row] = const - 0.5 * maha[row]


@allocating_helper
def _log_prob_full_rows(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob):
    """BLAS version of ``_log_prob_full_block`` for many features, on rows in X's own layout.

    ``proj = (x - mean_j) P_j`` is a (n_rows, d) x (d, d) matrix product per
    component; from about 32 features BLAS does it several times faster than
    loops can (see BENCHMARKS.md).
    """
    prefer_wide_vectors()
    n_features = X.shape[1]
    n_components = means.shape[0]
    for j in range(n_components):
        for row in range(n_rows):
            for feature in range(n_features):
                diff_rows[row, feature] = X[start + row, feature] - means[j, feature]
        np.dot(diff_rows[:n_rows], prec_chol[j], proj_rows[:n_rows])
        const = log_const[j]
        for row in range(n_rows):
            maha = 0.0
            for feature in range(n_features):
                maha += proj_rows[row, feature] * proj_rows[row, feature]
            log_prob[j, row] = const - 0.5 * maha


@helper
def _log_prob_tied_block(xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob):
    """Tied covariance: project ``x - centre`` once, then subtract each projected mean."""
    prefer_wide_vectors()
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
    prefer_wide_vectors()
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
def _normalise_block(log_prob, n_rows, weights, row_max, row_flag, soft_rows, soft_prob, totals):
    """Turn log-probabilities into responsibilities in place (log-sum-exp).

    Responsibilities below 2**-52 of their row become exactly 0 (see
    RESP_LOG_FLOOR). Adds ``sum_row w_row * log p(x_row)`` to ``totals[0]``
    and ``sum w_row`` to ``totals[1]``; rows of weight zero contribute
    nothing (not even a NaN from ``0 * -inf``). ``row_max``, ``row_flag``
    (n_rows), ``soft_rows`` (n_rows) and ``soft_prob`` (k, n_rows) are
    scratch; ``row_flag`` holds each row's close components beyond one, then
    ``_exp_normalise``'s reciprocal totals.
    """
    prefer_wide_vectors()
    n_components = log_prob.shape[0]
    floor = float_like(RESP_LOG_FLOOR, log_prob)  # in log_prob's dtype, as _exp_flushed uses it
    one = float_like(1.0, log_prob)
    zero = float_like(0.0, log_prob)
    for row in range(n_rows):
        row_max[row] = log_prob[0, row]
    for j in range(1, n_components):
        for row in range(n_rows):
            row_max[row] = max(row_max[row], log_prob[j, row])
    # A *hard* row has exactly one component within RESP_LOG_FLOOR of its
    # maximum (the maximum itself), which is most rows once separated
    # clusters are found. The exp path would give it exactly 1 for that
    # component and exactly 0 for the others, and log 1 = 0, so the same
    # responsibilities are written without any exp, log or division (the
    # log-likelihood sums may round differently in the last bit). Every
    # other row is *soft*.
    # A row with a finite maximum has at least one close component, so with
    # every maximum finite, `excess` counts the close components beyond one
    # per row: 0 means every row is hard, and it bounds the number of soft
    # rows. A row whose maximum is -inf, +inf or NaN has no close component
    # and could hide a row with two; it sends the block down the exp path,
    # where its non-finite total is caught in Python.
    # row_flag[row] counts the row's close components beyond one (-1 for a
    # row with none), and their sum is the block's `excess`: one pass serves
    # both the decision below and the listing of soft rows.
    n_finite = 0
    for row in range(n_rows):
        n_finite += (row_max[row] - row_max[row]) == 0.0  # False for inf and NaN
        row_flag[row] = -one
    for j in range(n_components):
        for row in range(n_rows):
            row_flag[row] += one if (log_prob[j, row] - row_max[row]) >= floor else zero
    excess = 0.0  # float64: exact for any block
    for row in range(n_rows):
        excess += row_flag[row]
    log_likelihood = 0.0
    weight_total = 0.0
    if n_finite < n_rows or 2.0 * excess > n_rows:
        # Many close components beyond one per row (perhaps in a few rows
        # only), or a maximum that is not finite: the exp over the whole block.
        _exp_normalise(log_prob, n_rows, row_max, row_flag)
        for row in range(n_rows):
            w = weights[row]
            log_likelihood += w * row_max[row] if w != 0.0 else 0.0
            weight_total += w
    else:
        # At most n_rows / 2 soft rows (there are at most `excess`), or none.
        # The soft rows are copied out to contiguous columns so that the exp
        # runs on them alone, the whole block is written as if hard, and the
        # soft rows' responsibilities are copied back over it. (After six
        # iterations at eight features and sixteen components a tenth of the
        # rows are soft, spread over every block, so few blocks are entirely
        # hard.)
        n_soft = 0
        if excess > 0.0:
            n_soft = _list_nonzero(row_flag, n_rows, soft_rows)  # rows with a flag != 0
            for j in range(n_components):
                for t in range(n_soft):
                    soft_prob[j, t] = log_prob[j, soft_rows[t]]
        for j in range(n_components):
            for row in range(n_rows):
                log_prob[j, row] = one if (log_prob[j, row] - row_max[row]) >= floor else zero
        for row in range(n_rows):
            w = weights[row]
            hard = row_flag[row] == 0.0
            log_likelihood += w * row_max[row] if (w != 0.0 and hard) else 0.0
            weight_total += w
        if n_soft > 0:
            for t in range(n_soft):  # in place: soft_rows is increasing, so soft_rows[t] >= t
                row_max[t] = row_max[soft_rows[t]]
            _exp_normalise(soft_prob, n_soft, row_max, row_flag)
            for j in range(n_components):
                for t in range(n_soft):
                    log_prob[j, soft_rows[t]] = soft_prob[j, t]
            for t in range(n_soft):
                w = weights[soft_rows[t]]
                log_likelihood += w * row_max[t] if w != 0.0 else 0.0
    totals[0] += log_likelihood
    totals[1] += weight_total


@helper
def _exp_normalise(values, n_cols, col_max, scratch):
    """Normalise columns of log-probabilities: ``values[j, t] <- exp(values[j, t] - col_max[t]) / total_t``.

    Values below RESP_LOG_FLOOR of the column maximum become exactly 0. On
    return ``col_max[t]`` holds the column's log-sum-exp, ``col_max[t] +
    log total_t``; ``scratch`` (n_cols) is overwritten.
    """
    prefer_wide_vectors()
    n_components = values.shape[0]
    for t in range(n_cols):
        value = _exp_flushed(values[0, t] - col_max[t])
        values[0, t] = value
        scratch[t] = value
    for j in range(1, n_components):
        for t in range(n_cols):
            value = _exp_flushed(values[j, t] - col_max[t])
            values[j, t] = value
            scratch[t] += value
    for t in range(n_cols):
        total = scratch[t]
        scratch[t] = float_like(1.0, scratch) / total  # one division per column, then multiplications
        # With a finite maximum, total >= 1 (the largest term is exp(0)), so
        # its log is safe. A maximum of -inf, +inf or NaN gives a total of 0 or
        # NaN and a non-finite log-sum-exp, which the caller's totals carry to
        # the check in Python.
        col_max[t] += _log_positive(np.float64(total))
    for j in range(n_components):
        for t in range(n_cols):
            values[j, t] *= scratch[t]


@helper
def _select_rows(resp, j, n_rows, n_features, index):
    """Choose the rows a component's accumulation visits.

    Returns 0 when every responsibility is zero (nothing to add), ``n_rows``
    for a dense pass over the block, or ``count < n_rows`` after writing the
    rows with a non-zero responsibility into ``index``. Listed rows cost
    indirect loads (and, for full covariances, a copy into the pair buffers),
    so the list is used only when it skips enough work: at most half the rows
    remain, or a quarter below four features, where the dense loops are cheap
    per row (measured at two features, with the general dense loops: 6.0
    ns/row with a quarter against 7.9 with a third; re-checked with the
    generated dense loops at two features and three components, where
    listing each component's third of the rows made the E-step 1.65x slower).
    """
    prefer_wide_vectors()
    count = 0
    for row in range(n_rows):  # vectorises: a count, no stores
        count += resp[j, row] != 0.0
    if count == 0:
        return 0
    limit = n_rows // 2 if n_features >= 4 else n_rows // 4
    if count > limit:
        return n_rows
    return _list_nonzero(resp[j], n_rows, index)


@helper
def _list_nonzero(values, n_rows, index):
    """Write the positions of the non-zero entries of ``values[:n_rows]`` into ``index``.

    Returns their number; the positions are in increasing order.
    """
    prefer_wide_vectors()
    # Which entries are non-zero is data-dependent: a branch per row would be
    # mispredicted for a large share of them (that once cost more than all the
    # arithmetic of the accumulation). Instead a vectorised loop packs 64 rows
    # into a bit mask, and the loop over its set bits runs once per kept row.
    count = 0
    for base in range(0, n_rows, 64):
        # A view indexed by the loop counter: an index such as `base + bit`
        # could be negative as far as Numba knows, and its wrap-around check
        # turns the loads into gathers.
        word = values[base:min(base + 64, n_rows)]
        mask = np.uint64(0)
        if word.shape[0] == 64:  # a constant trip count: LLVM vectorises the packing
            for bit in range(64):
                mask |= np.uint64(word[bit] != 0.0) << np.uint64(bit)
        else:
            for bit in range(word.shape[0]):
                mask |= np.uint64(word[bit] != 0.0) << np.uint64(bit)
        while mask != 0:
            index[count] = base + np.intp(trailing_zeros(mask))
            count += 1
            mask &= mask - np.uint64(1)
    return count


@helper
def pair_buffer_rows(n_components, n_features):
    """Capacity of each component's buffer of (row, component) pairs; see ``_accumulate_full_block``.

    At least half a block (a sparse selection never exceeds that), at most
    four blocks, and about ``_PAIR_BUFFER_FLOATS`` floats over all components
    where that allows half a block: with many components and features the
    floor wins, and the buffers take k * (d + 1) * 64 floats per task (16 MiB
    at k = 1000, d = 31).
    """
    rows = _PAIR_BUFFER_FLOATS // max(n_components * (n_features + 1), 1)
    return max(BLOCK_ROWS // 2, min(rows, 4 * BLOCK_ROWS))


@helper
def _flush_pairs(j, pair_diff, pair_weight, pair_count, weighted_row, resp_sum, first, second):
    """Add component j's buffered pairs to N_j, S1_j, S2_j (upper triangle) and empty its buffer."""
    prefer_wide_vectors()
    count = pair_count[j]
    if count == 0:
        return
    pair_count[j] = 0
    if flush_pairs_unrolled(j, pair_diff, pair_weight, count, resp_sum, first, second):
        return
    n_features = pair_diff.shape[1]
    weight = pair_weight[j]
    diff = pair_diff[j]
    n_j = 0.0
    for t in range(count):
        n_j += weight[t]
    resp_sum[j] += n_j
    for a in range(n_features):
        s = 0.0
        for t in range(count):
            weighted_row[t] = weight[t] * diff[a, t]
            s += weighted_row[t]
        first[j, a] += s
        for b in range(a, n_features):
            s = 0.0
            for t in range(count):
                s += weighted_row[t] * diff[b, t]
            second[j, a, b] += s


@helper
def _flush_all_pairs(pair_diff, pair_weight, pair_count, weighted_row, resp_sum, first, second):
    for j in range(pair_count.shape[0]):
        _flush_pairs(j, pair_diff, pair_weight, pair_count, weighted_row, resp_sum, first, second)


@helper
def _accumulate_full_block(
    xt, n_rows, weights, shift, resp, index, weighted_resp, diff, weighted_diff,
    pair_diff, pair_weight, pair_count, resp_sum, first, second,
):
    """Add this block's N_j, S1_j, S2_j (centred at shift_j); S2 upper triangle only.

    Only rows with a non-zero responsibility are visited: with separated
    components most rows belong to one or two of them, which turns the
    O(k d^2) accumulation per row into O(d^2). A component that owns most of
    the block is added directly. Otherwise its few rows (about n_rows / k)
    would make loops too short to vectorise, so their centred values and
    weights are appended to the component's pair buffer, which
    ``_flush_pairs`` adds in long loops when it fills and at the end of the
    chunk. The caller must flush every buffer after the chunk's last block.
    """
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    capacity = pair_weight.shape[1]
    for j in range(n_components):
        count = _select_rows(resp, j, n_rows, n_features, index)
        if count == 0:
            continue
        if count < n_rows:
            if pair_count[j] + count > capacity:
                _flush_pairs(j, pair_diff, pair_weight, pair_count, weighted_resp, resp_sum, first, second)
            fill = pair_count[j]
            pair_count[j] = fill + count
            if append_pairs_unrolled(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill):
                continue
            # Rows outer: a loop over `count` (about n_rows / k) rows per
            # feature would be too short to pay for its own overhead.
            for t in range(count):
                row = index[t]
                pair_weight[j, fill + t] = weights[row] * resp[j, row]
                for feature in range(n_features):
                    pair_diff[j, feature, fill + t] = xt[feature, row] - shift[j, feature]
            continue
        if accumulate_dense_unrolled(j, xt, n_rows, weights, resp, shift, resp_sum, first, second):
            continue
        n_j = 0.0
        for t in range(n_rows):
            weighted_resp[t] = weights[t] * resp[j, t]
            n_j += weighted_resp[t]
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s = 0.0
            for t in range(n_rows):
                dv = xt[feature, t] - c
                diff[feature, t] = dv
                weighted_diff[feature, t] = weighted_resp[t] * dv
                s += weighted_diff[feature, t]
            first[j, feature] += s
        for a in range(n_features):
            for b in range(a, n_features):
                s = 0.0
                for t in range(n_rows):
                    s += weighted_diff[a, t] * diff[b, t]
                second[j, a, b] += s


@allocating_helper
def _accumulate_full_rows(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second):
    """BLAS version of ``_accumulate_full_block`` for many features.

    The selected rows' centred values are gathered in float64 (also for
    float32 data: sums stay float64) and S2_j grows by one (d, count) x
    (count, d) product.
    """
    prefer_wide_vectors()
    n_features = X.shape[1]
    n_components = shift.shape[0]
    for j in range(n_components):
        count = _select_rows(resp, j, n_rows, n_features, index)
        if count == 0:
            continue
        n_j = 0.0
        for t in range(count):
            row = t if count == n_rows else index[t]
            w = weights[row] * resp[j, row]
            n_j += w
            for feature in range(n_features):
                dv = np.float64(X[start + row, feature]) - shift[j, feature]
                diff_rows[t, feature] = dv
                weighted_rows[t, feature] = w * dv
        resp_sum[j] += n_j
        for t in range(count):
            for feature in range(n_features):
                first[j, feature] += weighted_rows[t, feature]
        np.dot(weighted_rows[:count].T, diff_rows[:count], outer)
        for a in range(n_features):
            for b in range(a, n_features):
                second[j, a, b] += outer[a, b]


@helper
def _accumulate_tied_block(xt, n_rows, weights, shift, centre, resp, deviation, weighted_dev, resp_sum, first, within, spread):
    """Add N_j, S1_j and the pooled scatter's two parts (see module docstring).

    within += w (x~ - a~)(x~ - a~)^T with x~ = x - centre, a~ = sum_j r_j (shift_j - centre)
    spread += w (diag(r) - r r^T)    (upper triangle)
    """
    prefer_wide_vectors()
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
def _accumulate_diag_block(xt, n_rows, weights, shift, resp, index, weighted_resp, resp_sum, first, second):
    """Add N_j, S1_j and the diagonal of S2_j (centred at shift_j), visiting non-zero responsibilities only."""
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    for j in range(n_components):
        count = _select_rows(resp, j, n_rows, n_features, index)
        if count == 0:
            continue
        n_j = 0.0
        if count == n_rows:
            for t in range(count):
                weighted_resp[t] = weights[t] * resp[j, t]
                n_j += weighted_resp[t]
        else:
            for t in range(count):
                row = index[t]
                weighted_resp[t] = weights[row] * resp[j, row]
                n_j += weighted_resp[t]
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s1 = 0.0
            s2 = 0.0
            if count == n_rows:
                for t in range(count):
                    dv = xt[feature, t] - c
                    wd = weighted_resp[t] * dv
                    s1 += wd
                    s2 += wd * dv
            else:
                for t in range(count):
                    dv = xt[feature, index[t]] - c
                    wd = weighted_resp[t] * dv
                    s1 += wd
                    s2 += wd * dv
            first[j, feature] += s1
            second[j, feature] += s2


# ---------------------------------------------------------------------------
# E-step kernels: one pass over X, statistics added into ``stats``


@kernel
def estep_full(X, sample_weight, model, stats, use_blas):
    """Add full-covariance E-step statistics of X into ``stats``.

    ``use_blas`` selects the row-major BLAS helpers (many features; the caller
    must have pinned BLAS to one thread) instead of the loop helpers.

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
    capacity = pair_buffer_rows(n_components, n_features)
    for wave_start in range(0, n_chunks, wave):
        n_wave = min(wave, n_chunks - wave_start)
        part_resp = np.zeros((n_wave, n_components))
        part_first = np.zeros((n_wave, n_components, n_features))
        part_second = np.zeros((n_wave, n_components, n_features, n_features))
        part_totals = np.zeros((n_wave, 2))
        per_task = _chunks_per_task(n_wave)
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
                        _load_weights(sample_weight, start, n_rows, weights)
                        _log_prob_full_rows(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob)
                        _normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                        _accumulate_full_rows(
                            X, start, n_rows, weights, means, log_prob, index, diff_rows64, weighted_rows64, outer,
                            chunk_resp, chunk_first, chunk_second,
                        )
                        continue
                    _load_block(X, sample_weight, start, n_rows, xt, weights)
                    _log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob)
                    _normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                    _accumulate_full_block(
                        xt, n_rows, weights, means, log_prob, index, weighted_resp, acc_diff, weighted_diff,
                        pair_diff, pair_weight, pair_count, chunk_resp, chunk_first, chunk_second,
                    )
                _flush_all_pairs(pair_diff, pair_weight, pair_count, weighted_resp, chunk_resp, chunk_first, chunk_second)
        for c in range(n_wave):  # ordered reduction: thread-count independent
            _add_into(resp_sum, part_resp[c])
            _add_into(first, part_first[c])
            _add_into(second, part_second[c])
            _add_into(totals, part_totals[c])


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
        per_task = _chunks_per_task(n_wave)
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
                    _load_block(X, sample_weight, start, n_rows, xt, weights)
                    _log_prob_tied_block(
                        xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob
                    )
                    _normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                    _accumulate_tied_block(
                        xt, n_rows, weights, means, centre, log_prob, deviation, weighted_dev,
                        chunk_resp, chunk_first, chunk_within, chunk_spread,
                    )
        for c in range(n_wave):
            _add_into(resp_sum, part_resp[c])
            _add_into(first, part_first[c])
            _add_into(within, part_within[c])
            _add_into(spread, part_spread[c])
            _add_into(totals, part_totals[c])


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
        per_task = _chunks_per_task(n_wave)
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
                    _load_block(X, sample_weight, start, n_rows, xt, weights)
                    _log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob)
                    _normalise_block(log_prob, n_rows, weights, row_max, row_flag, index, soft_prob, chunk_totals)
                    _accumulate_diag_block(
                        xt, n_rows, weights, means, log_prob, index, weighted_resp, chunk_resp, chunk_first, chunk_second
                    )
        for c in range(n_wave):
            _add_into(resp_sum, part_resp[c])
            _add_into(first, part_first[c])
            _add_into(second, part_second[c])
            _add_into(totals, part_totals[c])


# ---------------------------------------------------------------------------
# Log-probability kernels for predict / predict_proba / score_samples


@kernel
def weighted_log_prob_full(X, model, out, use_blas):
    """out[i, j] = log w_j + log N(x_i | mean_j, Sigma_j); model and use_blas as for ``estep_full``."""
    means, prec_chol, log_const = model
    n_samples, n_features = X.shape
    n_components = means.shape[0]
    no_weights = np.empty(0)
    for c in prange(n_chunks_for(n_samples)):
        xt = np.empty((n_features, BLOCK_ROWS), X.dtype)
        diff = np.empty((n_features, BLOCK_ROWS), X.dtype)
        blas_rows = BLOCK_ROWS if use_blas else 0
        diff_rows = np.empty((blas_rows, n_features), X.dtype)
        proj_rows = np.empty((blas_rows, n_features), X.dtype)
        proj = np.empty(BLOCK_ROWS, X.dtype)
        maha = np.empty(BLOCK_ROWS, X.dtype)
        log_prob = np.empty((n_components, BLOCK_ROWS))
        weights = np.empty(BLOCK_ROWS)
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            if use_blas:
                _log_prob_full_rows(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob)
            else:
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
        per_task = _chunks_per_task(n_wave)
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
            _add_into(resp_sum, part_resp[c])
            _add_into(first, part_first[c])
            _add_into(second, part_second[c])
