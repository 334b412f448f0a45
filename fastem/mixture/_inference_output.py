"""What an inference kernel writes for a block of log-probabilities: the matrix, scores, labels or responsibilities.

The log-probability kernels (``_log_prob_kernels``) compute one block of
``log w_j + log N(x_i | j)`` at a time, (n_components, BLOCK_ROWS) in float64,
and hand it to :func:`write_block`, which writes the block's part of the
caller's output directly. So ``predict`` and ``score_samples`` never hold an
n x k array, and ``predict_proba`` holds only its result.

``output`` is a run-time argument: one compiled kernel per data dtype
serves all four outputs. (Made a compile-time constant, each output
compiled a whole parallel kernel of its own, about 2.4 s each: the first
``predict`` + ``predict_proba`` + ``score_samples`` in a fresh process took
7.4 s.) The outputs:

* ``LOG_PROB``: the (n, k) matrix itself (model selection, HMM emissions);
* ``SCORE``: ``log sum_j exp(lp_j)`` per row, with the row's maximum shifted
  out first;
* ``LABELS``: the first index of the row's maximum (``numpy.argmax``'s rule);
* ``PROBA``: ``exp(lp_j - max) / sum``, the responsibilities.

A row can have every log-probability at -inf only when its squared distance
to every component overflows (beyond about 1e154 standard deviations in
float64, 1e19 in float32): the data then carry no evidence the model can
measure. Such a row scores -inf, gets the mixture weights as its
responsibilities (the prior), and the label of the heaviest component. A
NaN log-probability (inf - inf inside a projection, for entries near the
float range) counts as -inf. No NaN is written for any finite row.

Every row is computed on its own, so the output does not depend on the
number of threads or on how rows are chunked.
"""

from __future__ import annotations

import numpy as np

from fastem._core.fast_math import exp_nonpositive, log_positive
from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import helper

LOG_PROB = 0
SCORE = 1
LABELS = 2
PROBA = 3

# The values of ``output`` by the name the estimator uses.
OUTPUTS = {"log_prob": LOG_PROB, "score": SCORE, "labels": LABELS, "proba": PROBA}


@helper
def write_block(log_prob, n_rows, start, outputs, prior, scratch, output):
    """Write rows [start, start + n_rows) of the output ``output`` names, from the block ``log_prob`` (k, BLOCK_ROWS).

    ``outputs`` is ``(matrix, score, labels, proba)``, indexed by the
    constants above: the (n, k) float64 log-probabilities, the (n,) scores
    in the data's dtype, the (n,) int64 labels, the (n, k) responsibilities
    in the data's dtype; only the one ``output`` names is written (the
    others may be empty). ``prior`` holds the mixture weights (for rows
    infinitely far from every component); ``scratch`` is (2, BLOCK_ROWS)
    float64.

    One function rather than one helper per output: each Numba function
    costs compile time of its own (about 0.3 s here), and the first call of
    a method in a fresh process pays it.
    """
    prefer_wide_vectors()
    matrix, score, labels, proba = outputs
    n_components = log_prob.shape[0]
    if output == LOG_PROB:
        for row in range(n_rows):
            for j in range(n_components):
                matrix[start + row, j] = log_prob[j, row]
        return
    # Each row's largest log-probability (scratch[0]) and, for labels, its
    # first index (scratch[1], exact in float64). Written as comparisons from
    # -inf: a NaN log-probability (inf - inf in a projection, for entries
    # near the float range) never wins, wherever it is in the row.
    top = scratch[0]
    second = scratch[1]
    for row in range(n_rows):
        top[row] = -np.inf
        second[row] = 0.0
    for j in range(n_components):
        for row in range(n_rows):
            if log_prob[j, row] > top[row]:  # strictly: the first maximum wins, as numpy.argmax
                top[row] = log_prob[j, row]
                second[row] = j
    if output == LABELS:
        heaviest = 0
        for j in range(1, n_components):
            if prior[j] > prior[heaviest]:
                heaviest = j
        for row in range(n_rows):
            labels[start + row] = np.int64(second[row]) if top[row] > -np.inf else heaviest
        return
    # sum_j exp(lp_j - max), between 1 and k for a row with a finite maximum,
    # into scratch[1]; a NaN term adds exp_nonpositive(NaN) = 0.
    for row in range(n_rows):
        second[row] = 0.0
    for j in range(n_components):
        for row in range(n_rows):
            shift = top[row] if top[row] > -np.inf else 0.0
            second[row] += exp_nonpositive(log_prob[j, row] - shift)
    if output == SCORE:
        for row in range(n_rows):
            score[start + row] = top[row] + log_positive(second[row]) if top[row] > -np.inf else -np.inf
        return
    for row in range(n_rows):
        if top[row] > -np.inf:
            inverse = 1.0 / second[row]
            for j in range(n_components):
                proba[start + row, j] = exp_nonpositive(log_prob[j, row] - top[row]) * inverse
        else:
            for j in range(n_components):
                proba[start + row, j] = prior[j]


def reduce_log_prob(log_prob: np.ndarray, output: str, weights: np.ndarray, dtype) -> np.ndarray:
    """The same outputs, by the same rules, from an (n, k) log-probability array already computed.

    For rows with missing values, whose log-probabilities come from the
    missing-data kernels. ``output`` is 'score', 'labels' or 'proba'.
    """
    prior = weights.astype(np.float64) / weights.astype(np.float64).sum()
    log_prob = np.where(np.isnan(log_prob), -np.inf, log_prob)  # as the kernels: a NaN term counts for nothing
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
