"""Forward-backward in log space, for the rare sequences that scaling cannot represent exactly.

``_forward_backward.forward_backward`` returns NaN for a sequence whose
relative state probabilities leave float64's range (see its module
docstring). Those sequences are redone here with the textbook recursions in
log space, which keep any ratio of probabilities:

    log alpha_t,j = logsumexp_i(log alpha_(t-1),i + log A_ij) + log p(x_t | j)
    log beta_t,i  = logsumexp_j(log A_ij + log p(x_(t+1) | j) + log beta_(t+1),j)

This kernel is compiled only the first time such a sequence appears.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from fastem._core.numba import helper, kernel


@helper
def _log_sum_exp(values):
    """log(sum(exp(values))) of a 1-d array; -inf when every value is -inf."""
    top = -np.inf
    for value in values:
        top = max(top, value)
    if top == -np.inf:
        return -np.inf
    total = 0.0
    for value in values:
        total += math.exp(value - top)
    return top + math.log(total)


@kernel
def forward_backward_log(log_prob, offsets, sequences, log_startprob, log_transmat, sequence_weights,
                         log_likelihoods, part_start, part_trans, posteriors):
    """Forward(-backward) in log space for the listed sequences, in parallel over them.

    log_prob : (n, k) float64 emission log-densities; the listed sequences'
        rows are overwritten with their posteriors when ``posteriors``.
    sequences : (m,) int64 indices of the sequences to process.
    log_likelihoods : (n_sequences,) float64, written for the listed sequences.
    part_start (m, k), part_trans (m, k, k): zeroed, out, per listed sequence,
        weighted by ``sequence_weights``.
    """
    n_components = log_prob.shape[1]
    for q in prange(sequences.shape[0]):
        s = sequences[q]
        start = offsets[s]
        n_rows = offsets[s + 1] - start
        forward = np.empty((n_rows, n_components))
        backward = np.zeros((n_rows, n_components))
        terms = np.empty(n_components)
        for j in range(n_components):
            forward[0, j] = log_startprob[j] + log_prob[start, j]
        for t in range(1, n_rows):
            for j in range(n_components):
                for i in range(n_components):
                    terms[i] = forward[t - 1, i] + log_transmat[i, j]
                forward[t, j] = _log_sum_exp(terms) + log_prob[start + t, j]
        log_likelihood = _log_sum_exp(forward[n_rows - 1])
        log_likelihoods[s] = log_likelihood
        if not posteriors or log_likelihood == -np.inf:
            continue
        weight = sequence_weights[s]
        for t in range(n_rows - 2, -1, -1):
            for i in range(n_components):
                for j in range(n_components):
                    terms[j] = log_transmat[i, j] + log_prob[start + t + 1, j] + backward[t + 1, j]
                backward[t, i] = _log_sum_exp(terms)
        for t in range(n_rows - 1):
            for i in range(n_components):
                for j in range(n_components):
                    value = (forward[t, i] + log_transmat[i, j] + log_prob[start + t + 1, j] + backward[t + 1, j]
                             - log_likelihood)
                    part_trans[q, i, j] += weight * math.exp(value)
        for t in range(n_rows):
            for j in range(n_components):
                terms[j] = forward[t, j] + backward[t, j]
            norm = _log_sum_exp(terms)
            for j in range(n_components):
                log_prob[start + t, j] = math.exp(terms[j] - norm)
        for j in range(n_components):
            part_start[q, j] += weight * log_prob[start, j]
