"""Gaussian log-densities of one block of rows, per covariance type (serial helpers).

``log_prob[j, row] = log w_j + log N(x_row | mean_j, Sigma_j)`` for a block of
at most ``BLOCK_ROWS`` rows copied transposed (``xt[feature, row]``), so the
innermost loops run over rows with unit stride and vectorise. The E-step and
log-probability kernels call these; so may other families whose emissions
are Gaussian (a documented shared function, see DESIGN.md).

For two to eight features the full-covariance log-densities are generated
straight-line code (``_unrolled_full``), chosen at compile time by the
literal feature count the kernels pass down (see ``fastem._core.numba``).
"""

from __future__ import annotations

import numpy as np

from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import allocating_helper, helper, literal_value, specialise
from fastem.mixture._unrolled_full import LOG_PROB_FULL


# Block building blocks (serial; called once per block of rows)


@helper
def load_block(X, sample_weight, start, n_rows, xt, weights):
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
    load_weights(sample_weight, start, n_rows, weights)


@helper
def load_weights(sample_weight, start, n_rows, weights):
    """Weights of rows [start, start + n_rows); an empty ``sample_weight`` means unit weights."""
    prefer_wide_vectors()
    if sample_weight.shape[0] == 0:
        for row in range(n_rows):
            weights[row] = 1.0
    else:
        for row in range(n_rows):
            weights[row] = sample_weight[start + row]


def log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob, unrolled):
    """log_prob[j, row] = log w_j + log N(x_row | mean_j, prec_chol_j) for one block.

    The differences ``x - mean_j`` are formed first, exactly as far as the
    data allow: projecting ``x`` and ``mean_j`` separately and subtracting
    (what scikit-learn does) loses the digits of a small cluster that sits far
    from the origin or from the other clusters.

    ``unrolled`` is a compile-time constant (see ``fastem._core.numba``): a
    feature count with generated code in ``LOG_PROB_FULL`` (two to eight),
    which does the whole product for a row in registers, or 0 for the general
    loops. ``diff`` and ``proj`` are the loops' scratch, ``maha`` both's.
    """
    raise TypeError("log_prob_full_block is only callable from Numba-compiled code")


@specialise(log_prob_full_block)
def _log_prob_full_block_for(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob, unrolled):
    generated = LOG_PROB_FULL.get(literal_value(unrolled, "unrolled"))
    if generated is None:
        def general(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob, unrolled):
            _log_prob_full_loops(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob)
        return general

    def specialised(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob, unrolled):
        generated(xt, n_rows, means, prec_chol, log_const, maha, log_prob)
    return specialised


@helper
def _log_prob_full_loops(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob):
    """``log_prob_full_block`` for any feature count, in loops over features outside loops over rows."""
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = means.shape[0]
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


def log_prob_full_rows(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob, use_blas):
    """BLAS version of ``log_prob_full_block`` for many features, on rows in X's own layout.

    ``use_blas`` is a compile-time constant: kernels compiled without BLAS
    get an empty function here (they never take the branch that calls it),
    so they do not compile the matrix products.
    """
    raise TypeError("log_prob_full_rows is only callable from Numba-compiled code")


@specialise(log_prob_full_rows)
def _log_prob_full_rows_for(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob, use_blas):
    if not literal_value(use_blas, "use_blas"):
        return lambda X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob, use_blas: None

    def with_blas(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob, use_blas):
        _log_prob_full_blas(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob)
    return with_blas


@allocating_helper
def _log_prob_full_blas(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob):
    """The per-component products of ``log_prob_full_rows``.

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
def log_prob_tied_block(xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob):
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
def log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob):
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
