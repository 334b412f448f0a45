"""What an inference kernel writes for a block of log-probabilities: the matrix, scores, labels or responsibilities.

The log-probability kernels (``_log_prob_kernels``) compute one block of
``log w_j + log N(x_i | j)`` at a time, (n_components, BLOCK_ROWS) in float64,
and hand it to :func:`write_block`, which writes the block's part of the
caller's output directly. So ``predict`` and ``score_samples`` never hold an
n x k array, and ``predict_proba`` holds only its result.

``output`` is a compile-time constant (``numba.literally`` in the kernel), so
each kind of output compiles only its own writer:

* ``LOG_PROB``: the (n, k) matrix itself (model selection, HMM emissions);
* ``SCORE``: ``log sum_j exp(lp_j)`` per row, with the row's maximum shifted
  out first;
* ``LABELS``: the first index of the row's maximum (``numpy.argmax``'s rule);
* ``PROBA``: ``exp(lp_j - max) / sum``, the responsibilities.

A row can have every log-probability at -inf only when its squared distance
to every component overflows (beyond about 1e154 standard deviations in
float64, 1e19 in float32): the data then carry no evidence the model can
measure. Such a row scores -inf, gets the mixture weights as its
responsibilities (the prior), and the label of the heaviest component. No
NaN is written for any finite row.

Every row is computed on its own, so the output does not depend on the
number of threads or on how rows are chunked.
"""

from __future__ import annotations

import numpy as np

from fastem._core.fast_math import exp_nonpositive, log_positive
from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import helper, literal_value, specialise

LOG_PROB = 0
SCORE = 1
LABELS = 2
PROBA = 3

# The values of ``output`` by the name the estimator uses.
OUTPUTS = {"log_prob": LOG_PROB, "score": SCORE, "labels": LABELS, "proba": PROBA}


def write_block(log_prob, n_rows, start, out, prior, scratch, output):
    """Write rows [start, start + n_rows) of ``out`` from the block ``log_prob`` (k, BLOCK_ROWS).

    ``prior`` holds the mixture weights (for rows infinitely far from every
    component); ``scratch`` is (2, BLOCK_ROWS) float64. Compiled code only.
    """
    raise NotImplementedError("write_block runs only inside Numba kernels")


@specialise(write_block)
def _write_block_for(log_prob, n_rows, start, out, prior, scratch, output):
    kind = literal_value(output, "output")

    def matrix(log_prob, n_rows, start, out, prior, scratch, output):
        _write_log_prob(log_prob, n_rows, start, out)

    def score(log_prob, n_rows, start, out, prior, scratch, output):
        _write_scores(log_prob, n_rows, start, out, scratch)

    def labels(log_prob, n_rows, start, out, prior, scratch, output):
        _write_labels(log_prob, n_rows, start, out, prior, scratch)

    def proba(log_prob, n_rows, start, out, prior, scratch, output):
        _write_responsibilities(log_prob, n_rows, start, out, prior, scratch)

    return {LOG_PROB: matrix, SCORE: score, LABELS: labels, PROBA: proba}[kind]


@helper
def _write_log_prob(log_prob, n_rows, start, out):
    n_components = log_prob.shape[0]
    for row in range(n_rows):
        for j in range(n_components):
            out[start + row, j] = log_prob[j, row]


@helper
def _row_max_and_total(log_prob, n_rows, scratch):
    """scratch[0] = each row's maximum, scratch[1] = sum_j exp(lp_j - max) (1 <= total <= k).

    A row whose maximum is -inf gets total 0 (no exp of -inf - -inf).
    """
    prefer_wide_vectors()
    n_components = log_prob.shape[0]
    row_max = scratch[0]
    total = scratch[1]
    for row in range(n_rows):
        row_max[row] = log_prob[0, row]
        total[row] = 0.0
    for j in range(1, n_components):
        for row in range(n_rows):
            row_max[row] = max(row_max[row], log_prob[j, row])
    for j in range(n_components):
        for row in range(n_rows):
            shift = row_max[row] if row_max[row] > -np.inf else 0.0
            total[row] += exp_nonpositive(log_prob[j, row] - shift)


@helper
def _write_scores(log_prob, n_rows, start, out, scratch):
    _row_max_and_total(log_prob, n_rows, scratch)
    for row in range(n_rows):
        top = scratch[0, row]
        out[start + row] = top + log_positive(scratch[1, row]) if top > -np.inf else -np.inf


@helper
def _heaviest(prior):
    best = 0
    for j in range(1, prior.shape[0]):
        if prior[j] > prior[best]:
            best = j
    return best


@helper
def _write_labels(log_prob, n_rows, start, out, prior, scratch):
    prefer_wide_vectors()
    n_components = log_prob.shape[0]
    best_value = scratch[0]
    best_index = scratch[1]  # small integers, exact in float64
    for row in range(n_rows):
        best_value[row] = log_prob[0, row]
        best_index[row] = 0.0
    for j in range(1, n_components):
        for row in range(n_rows):
            # Strictly greater: the first maximum wins, as numpy.argmax.
            if log_prob[j, row] > best_value[row]:
                best_value[row] = log_prob[j, row]
                best_index[row] = j
    for row in range(n_rows):
        if best_value[row] > -np.inf:
            out[start + row] = np.int64(best_index[row])
        else:
            out[start + row] = _heaviest(prior)


@helper
def _write_responsibilities(log_prob, n_rows, start, out, prior, scratch):
    _row_max_and_total(log_prob, n_rows, scratch)
    n_components = log_prob.shape[0]
    for row in range(n_rows):
        top = scratch[0, row]
        if top > -np.inf:
            inverse = 1.0 / scratch[1, row]
            for j in range(n_components):
                out[start + row, j] = exp_nonpositive(log_prob[j, row] - top) * inverse
        else:
            for j in range(n_components):
                out[start + row, j] = prior[j]


def reduce_log_prob(log_prob: np.ndarray, output: str, weights: np.ndarray, dtype) -> np.ndarray:
    """The same outputs, by the same rules, from an (n, k) log-probability array already computed.

    For rows with missing values, whose log-probabilities come from the
    missing-data kernels. ``output`` is 'score', 'labels' or 'proba'.
    """
    prior = weights.astype(np.float64) / weights.astype(np.float64).sum()
    row_max = log_prob.max(axis=1, initial=-np.inf)
    far = ~(row_max > -np.inf)
    if output == "labels":
        labels = np.argmax(log_prob, axis=1).astype(np.int64)
        labels[far] = int(np.argmax(prior))
        return labels
    shifted = np.exp(log_prob - np.where(far, 0.0, row_max)[:, None])
    total = shifted.sum(axis=1)
    if output == "score":
        with np.errstate(divide="ignore"):
            return (row_max + np.log(total)).astype(dtype)
    with np.errstate(invalid="ignore", divide="ignore"):
        proba = shifted / total[:, None]
    proba[far] = prior
    return proba.astype(dtype)
