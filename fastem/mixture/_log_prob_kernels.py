"""Parallel log-probability kernels for predict / predict_proba / score_samples.

Each kernel computes a block of log-probabilities at a time and writes the
caller's output from it through ``_inference_output.write_block``: the
(n, k) matrix, scores, labels or responsibilities, as ``output`` says.
"""

from __future__ import annotations

import numpy as np
from numba import literally, prange

from fastem._core.chunks import n_chunks_for
from fastem._core.numba import BLOCK_ROWS, CHUNK_ROWS, kernel
from fastem.mixture._inference_output import write_block
from fastem.mixture._log_density import (
    load_block,
    log_prob_diag_block,
    log_prob_full_block,
    log_prob_full_rows,
    log_prob_tied_block,
)


# ---------------------------------------------------------------------------
# Log-probability kernels for predict / predict_proba / score_samples


@kernel
def weighted_log_prob_full(X, model, outputs, prior, output, use_blas, unrolled):
    """``output`` (see ``_inference_output``) of lp[i, j] = log w_j + log N(x_i | mean_j, Sigma_j) into ``outputs``.

    ``prior`` holds the weights; model, use_blas and unrolled as for ``estep_full``.
    """
    literally(use_blas)
    literally(unrolled)
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
        scratch = np.empty((2, BLOCK_ROWS))
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            if use_blas:
                log_prob_full_rows(X, start, n_rows, means, prec_chol, log_const, diff_rows, proj_rows, log_prob, use_blas)
            else:
                load_block(X, no_weights, start, n_rows, xt, weights)
                log_prob_full_block(xt, n_rows, means, prec_chol, log_const, diff, proj, maha, log_prob, unrolled)
            write_block(log_prob, n_rows, start, outputs, prior, scratch, output)


@kernel
def weighted_log_prob_tied(X, model, outputs, prior, output):
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
        scratch = np.empty((2, BLOCK_ROWS))
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            load_block(X, no_weights, start, n_rows, xt, weights)
            log_prob_tied_block(
                xt, n_rows, centre, means_proj, prec_chol, log_const, centred, proj_all, maha, log_prob
            )
            write_block(log_prob, n_rows, start, outputs, prior, scratch, output)


@kernel
def weighted_log_prob_diag(X, model, outputs, prior, output):
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
        scratch = np.empty((2, BLOCK_ROWS))
        chunk_start = c * CHUNK_ROWS
        chunk_stop = min(chunk_start + CHUNK_ROWS, n_samples)
        for start in range(chunk_start, chunk_stop, BLOCK_ROWS):
            n_rows = min(BLOCK_ROWS, chunk_stop - start)
            load_block(X, no_weights, start, n_rows, xt, weights)
            log_prob_diag_block(xt, n_rows, means, prec_chol, log_const, maha, log_prob)
            write_block(log_prob, n_rows, start, outputs, prior, scratch, output)
