"""One Baum-Welch iteration of a Gaussian HMM, and inference, over many sequences.

An E-step is three parallel passes:

1. emission log-densities of every row under every state: the mixture's
   kernels (``fastem.mixture.emissions``), parallel over row chunks;
2. forward-backward: parallel over chunks of sequences
   (``_forward_backward``), and for sequences of at least
   ``sequences.LONG_SEQUENCE_ROWS`` rows over the two halves of each, whose
   forward and backward passes meet in the middle (``_long_sequences``);
   they give posteriors, start and transition counts;
3. posterior-weighted Gaussian statistics: the mixture's additive statistics,
   parallel over row chunks.

So one long sequence still uses every thread in passes 1 and 3, and many
sequences use them in pass 2 as well. Every pass reduces fixed chunks in a
fixed order: results are bit-identical for any thread count.
"""

from __future__ import annotations

import numpy as np

from fastem.hmm import _forward_backward, _long_sequences
from fastem.hmm.parameters import HMMParams, HMMStats, precisions_cholesky
from fastem.hmm.sequences import Sequences
from fastem.mixture.emissions import log_densities, posterior_statistics


class Workspace:
    """The (n_samples, n_components) buffers of an E-step, allocated once and reused by every iteration.

    Allocating them afresh costs page faults on every iteration (tens of
    milliseconds for a million rows); a fit keeps one workspace.
    """

    def __init__(self):
        self._arrays = {}

    def array(self, name: str, shape: tuple) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != shape:
            array = self._arrays[name] = np.empty(shape)
        return array


def _emission_log_prob(X, params: HMMParams, covariance_type: str, out=None) -> np.ndarray:
    return log_densities(X, params.means, precisions_cholesky(params.covars, covariance_type), covariance_type, out)


def _run_forward(X, sequences: Sequences, params: HMMParams, covariance_type: str, posteriors: bool,
                 workspace: Workspace | None = None):
    """Forward(-backward); returns (per-sequence log-likelihoods, log_prob array, start, trans).

    The log_prob array holds the posteriors after a backward pass; with a
    ``workspace`` it is one of its buffers (overwritten by the next call).
    """
    workspace = Workspace() if workspace is None else workspace
    n_samples, n_components = X.shape[0], params.means.shape[0]
    log_prob = _emission_log_prob(X, params, covariance_type, workspace.array("log_prob", (n_samples, n_components)))
    alpha = workspace.array("alpha", (n_samples, n_components))
    startprob = np.ascontiguousarray(params.startprob)
    transmat = np.ascontiguousarray(params.transmat)
    # Forward passes alone (scores) go through one kernel whatever the lengths.
    ids, chunks = (sequences.short_ids, sequences.short_chunks) if posteriors else (sequences.ids, sequences.chunks)
    n_chunks = chunks.shape[0] - 1
    log_likelihoods = np.empty(sequences.n_sequences)
    part_start = np.zeros((n_chunks, n_components))
    part_trans = np.zeros((n_chunks, n_components, n_components))
    row_max = workspace.array("row_max", (n_samples,))
    inverse_scale = workspace.array("inverse_scale", (n_samples,))
    guard_losses = bool((transmat < _forward_backward.RESUPPLY_FLOOR).any())
    _forward_backward.forward_backward(
        log_prob, sequences.offsets, ids, chunks, startprob, transmat, sequences.weights, alpha, row_max,
        inverse_scale, log_likelihoods, part_start, part_trans, posteriors, guard_losses,
    )
    start = np.zeros(n_components)
    trans = np.zeros((n_components, n_components))
    for c in range(n_chunks):  # chunk order: thread-count independent
        start += part_start[c]
        trans += part_trans[c]
    if posteriors and sequences.long_ids.size:
        long_start, long_trans = _run_long(log_prob, sequences, startprob, transmat, alpha, log_likelihoods, workspace,
                                           guard_losses)
        start += long_start
        trans += long_trans
    redo = np.flatnonzero(np.isnan(log_likelihoods))
    if redo.size:
        log_start, log_trans = _redo_in_log_space(X, sequences, params, covariance_type, posteriors, redo, log_likelihoods,
                                                  log_prob)
        start += log_start
        trans += log_trans
    return log_likelihoods, log_prob, start, trans


def _run_long(log_prob, sequences: Sequences, startprob, transmat, alpha, log_likelihoods, workspace: Workspace,
              guard_losses: bool):
    """The long sequences' forward-backward, two phases of two tasks each; returns their start and trans counts.

    A sequence that must go to log space gets a NaN log-likelihood and adds nothing.
    """
    n_samples, n_components = log_prob.shape
    long_ids = sequences.long_ids
    m = long_ids.size
    beta = workspace.array("beta", (n_samples, n_components))
    row_max = workspace.array("row_max", (n_samples,))
    inverse_scale = workspace.array("inverse_scale", (n_samples,))
    boundary = np.empty((m, n_components))
    partial_ll = np.zeros((m, 3))
    part_start = np.zeros((2 * m, n_components))
    part_xi = np.zeros((2 * m, n_components, n_components))
    for phase in (1, 2):
        _long_sequences.meet_in_the_middle(
            phase, log_prob, sequences.offsets, long_ids, sequences.mids, startprob, transmat, sequences.weights,
            alpha, beta, row_max, inverse_scale, boundary, partial_ll, part_start, part_xi, guard_losses,
        )
    start = np.zeros(n_components)
    xi = np.zeros((n_components, n_components))
    for q in range(m):  # sequence order: thread-count independent
        log_likelihood = partial_ll[q, 0] + partial_ll[q, 1] + partial_ll[q, 2]
        log_likelihoods[long_ids[q]] = log_likelihood
        if np.isnan(log_likelihood):
            continue
        for task in (2 * q, 2 * q + 1):
            start += part_start[task]
            xi += part_xi[task]
    return start, transmat * xi


def _redo_in_log_space(X, sequences, params, covariance_type, posteriors, redo, log_likelihoods, out):
    """Forward(-backward) in log space for the sequences ``redo`` (see ``_forward_backward``).

    Writes their log-likelihoods and (with ``posteriors``) their posteriors
    into ``out``; returns their weighted start and transition statistics.
    """
    from fastem.hmm._forward_backward_log import forward_backward_log  # compiled only when needed

    offsets = sequences.offsets
    rows = np.concatenate([np.arange(offsets[s], offsets[s + 1]) for s in redo])
    lengths = offsets[redo + 1] - offsets[redo]
    local_offsets = np.zeros(redo.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=local_offsets[1:])
    log_prob = _emission_log_prob(np.ascontiguousarray(X[rows]), params, covariance_type)
    n_components = log_prob.shape[1]
    local_likelihoods = np.empty(redo.size)
    part_start = np.zeros((redo.size, n_components))
    part_trans = np.zeros((redo.size, n_components, n_components))
    with np.errstate(divide="ignore"):  # log(0) = -inf: a forbidden start or transition
        log_startprob = np.log(params.startprob)
        log_transmat = np.ascontiguousarray(np.log(params.transmat))
    forward_backward_log(
        log_prob, local_offsets, np.arange(redo.size, dtype=np.int64), log_startprob, log_transmat,
        np.ascontiguousarray(sequences.weights[redo]), local_likelihoods, part_start, part_trans, posteriors,
    )
    log_likelihoods[redo] = local_likelihoods
    out[rows] = log_prob
    return part_start.sum(axis=0), part_trans.sum(axis=0)


def estep(X, sequences: Sequences, params: HMMParams, covariance_type: str, workspace: Workspace | None = None) -> HMMStats:
    """Start, transition and emission statistics of X under ``params``."""
    log_likelihoods, posteriors, start, trans = _run_forward(X, sequences, params, covariance_type, True, workspace)
    _require_possible(log_likelihoods)
    emission = posterior_statistics(X, sequences.row_weights, posteriors, params.means, covariance_type)
    log_likelihood = float(np.dot(sequences.weights, log_likelihoods))
    return HMMStats(start, trans, emission, log_likelihood)


def _require_possible(log_likelihoods: np.ndarray) -> None:
    """Raise a ValueError if a sequence has zero probability (its posteriors are undefined)."""
    if not np.isfinite(log_likelihoods).all():
        bad = int(np.flatnonzero(~np.isfinite(log_likelihoods))[0])
        raise ValueError(
            f"Sequence {bad} has zero probability under the model (its log-likelihood is -inf): no path "
            "through the allowed transitions (zeros in startprob_ or transmat_) can emit it."
        )


def sequence_log_likelihoods(X, sequences: Sequences, params: HMMParams, covariance_type: str) -> np.ndarray:
    """log p(sequence) for every sequence (forward pass only)."""
    return _run_forward(X, sequences, params, covariance_type, False)[0]


def posteriors(X, sequences: Sequences, params: HMMParams, covariance_type: str):
    """(per-sequence log-likelihoods, state posteriors (n_samples, n_components))."""
    log_likelihoods, posterior, _, _ = _run_forward(X, sequences, params, covariance_type, True)
    _require_possible(log_likelihoods)
    return log_likelihoods, posterior


def viterbi(X, sequences: Sequences, params: HMMParams, covariance_type: str):
    """(per-sequence log-probability of the best path, the best path (n_samples,) int64)."""
    lattice = _emission_log_prob(X, params, covariance_type)
    with np.errstate(divide="ignore"):  # log(0) = -inf: a forbidden start or transition
        log_startprob = np.log(params.startprob)
        log_transmat = np.log(params.transmat)
    path = np.empty(X.shape[0], dtype=np.int64)
    log_probs = np.empty(sequences.n_sequences)
    _forward_backward.viterbi(
        lattice, sequences.offsets, sequences.ids, sequences.chunks, log_startprob, np.ascontiguousarray(log_transmat),
        path, log_probs,
    )
    return log_probs, path
