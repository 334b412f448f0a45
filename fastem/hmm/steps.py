"""One Baum-Welch iteration of a Gaussian HMM, and inference, over many sequences.

An E-step is three parallel passes:

1. emission log-densities of every row under every state: the mixture's
   kernels (``fastem.mixture.emissions``), parallel over row chunks;
2. forward-backward: parallel over chunks of sequences
   (``_forward_backward``), giving posteriors, start and transition counts;
3. posterior-weighted Gaussian statistics: the mixture's additive statistics,
   parallel over row chunks.

So one long sequence still uses every thread in passes 1 and 3, and many
sequences use them in pass 2 as well. Every pass reduces fixed chunks in a
fixed order: results are bit-identical for any thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem._core.numba import CHUNK_ROWS
from fastem.hmm import _forward_backward
from fastem.hmm.parameters import HMMParams, HMMStats, precisions_cholesky
from fastem.mixture.emissions import log_densities, posterior_statistics


@dataclass
class Sequences:
    """Where each sequence of X starts, how sequences are grouped into parallel chunks, their weights."""

    offsets: np.ndarray         # (n_sequences + 1,) int64 row offsets
    chunk_offsets: np.ndarray   # (n_chunks + 1,) int64 sequence offsets
    weights: np.ndarray         # (n_sequences,) float64
    row_weights: np.ndarray | None  # (n_samples,) float64, None when every weight is 1

    @property
    def n_sequences(self) -> int:
        return self.offsets.shape[0] - 1


def check_lengths(lengths, n_samples: int) -> np.ndarray:
    """Validated sequence lengths as int64: positive integers summing to ``n_samples``."""
    if lengths is None:
        return np.array([n_samples], dtype=np.int64)
    array = np.asarray(lengths)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1 or array.shape[0] == 0:
        raise ValueError(f"lengths must be a non-empty 1D array of sequence lengths, got shape {array.shape}.")
    if array.dtype.kind not in "iu":
        if array.dtype.kind != "f" or not np.isfinite(array).all() or (array != np.round(array)).any():
            raise ValueError(f"lengths must hold integers, got {array.dtype} values.")
        array = array.astype(np.int64)
    array = array.astype(np.int64)
    if (array <= 0).any():
        index = int(np.flatnonzero(array <= 0)[0])
        raise ValueError(f"lengths must be positive: lengths[{index}] = {int(array[index])}.")
    if int(array.sum()) != n_samples:
        raise ValueError(f"lengths array {array} doesn't sum to {n_samples} samples (it sums to {int(array.sum())}).")
    return array


def check_sequence_weights(sample_weight, n_sequences: int) -> np.ndarray | None:
    """Validated per-sequence weights (float64), or None for unit weights."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.ndim == 0:
        weights = np.full(n_sequences, float(weights))
    if weights.shape != (n_sequences,):
        raise ValueError(
            f"sample_weight must have one weight per sequence, shape ({n_sequences},), got shape {weights.shape}."
        )
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (weights < 0).any():
        raise ValueError(f"sample_weight must be non-negative; found minimum {weights.min()!r}.")
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sequence needs a positive weight.")
    return np.ascontiguousarray(weights)


def make_sequences(lengths: np.ndarray, weights: np.ndarray | None = None) -> Sequences:
    """Sequences of the given (validated, positive) lengths.

    Sequences that start within the same window of ``CHUNK_ROWS`` rows form
    one chunk: the grouping depends on the lengths only, so the order of the
    additions, and every result, is the same for any thread count.
    """
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    window = offsets[:-1] // CHUNK_ROWS
    starts = np.flatnonzero(np.diff(window, prepend=-1))
    chunk_offsets = np.append(starts, lengths.shape[0]).astype(np.int64)
    if weights is None:
        return Sequences(offsets, chunk_offsets, np.ones(lengths.shape[0]), None)
    return Sequences(offsets, chunk_offsets, weights, np.repeat(weights, lengths))


class Workspace:
    """The two (n_samples, n_components) buffers of an E-step, allocated once and reused by every iteration.

    Allocating them afresh costs page faults on every iteration (tens of
    milliseconds for a million rows); a fit keeps one workspace.
    """

    def __init__(self):
        self._arrays = None

    def arrays(self, n_samples: int, n_components: int) -> tuple:
        shape = (n_samples, n_components)
        if self._arrays is None or self._arrays[0].shape != shape:
            self._arrays = (np.empty(shape), np.empty(shape))
        return self._arrays


def _emission_log_prob(X, params: HMMParams, covariance_type: str, out=None) -> np.ndarray:
    return log_densities(X, params.means, precisions_cholesky(params.covars, covariance_type), covariance_type, out)


def _run_forward(X, sequences: Sequences, params: HMMParams, covariance_type: str, posteriors: bool,
                 workspace: Workspace | None = None):
    """Forward(-backward); returns (per-sequence log-likelihoods, log_prob array, start, trans).

    The log_prob array holds the posteriors after a backward pass; with a
    ``workspace`` it is one of its buffers (overwritten by the next call).
    """
    n_components = params.means.shape[0]
    if workspace is None:
        log_prob, alpha = np.empty((X.shape[0], n_components)), None
    else:
        log_prob, alpha = workspace.arrays(X.shape[0], n_components)
    log_prob = _emission_log_prob(X, params, covariance_type, log_prob)
    n_chunks = sequences.chunk_offsets.shape[0] - 1
    alpha = np.empty_like(log_prob) if alpha is None else alpha
    log_likelihoods = np.empty(sequences.n_sequences)
    part_start = np.zeros((n_chunks, n_components))
    part_trans = np.zeros((n_chunks, n_components, n_components))
    _forward_backward.forward_backward(
        log_prob, sequences.offsets, sequences.chunk_offsets, np.ascontiguousarray(params.startprob),
        np.ascontiguousarray(params.transmat), sequences.weights, alpha, log_likelihoods, part_start, part_trans,
        posteriors,
    )
    start = np.zeros(n_components)
    trans = np.zeros((n_components, n_components))
    for c in range(n_chunks):  # chunk order: thread-count independent
        start += part_start[c]
        trans += part_trans[c]
    redo = np.flatnonzero(np.isnan(log_likelihoods))
    if redo.size:
        log_start, log_trans = _redo_in_log_space(X, sequences, params, covariance_type, posteriors, redo, log_likelihoods,
                                                  log_prob)
        start += log_start
        trans += log_trans
    return log_likelihoods, log_prob, start, trans


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
    if not np.isfinite(log_likelihoods).all():
        bad = int(np.flatnonzero(~np.isfinite(log_likelihoods))[0])
        raise ValueError(
            f"Sequence {bad} has zero probability under the model (its log-likelihood is -inf): no path "
            "through the allowed transitions (zeros in startprob_ or transmat_) can emit it."
        )
    emission = posterior_statistics(X, sequences.row_weights, posteriors, params.means, covariance_type)
    log_likelihood = float(np.dot(sequences.weights, log_likelihoods))
    return HMMStats(start, trans, emission, log_likelihood)


def sequence_log_likelihoods(X, sequences: Sequences, params: HMMParams, covariance_type: str) -> np.ndarray:
    """log p(sequence) for every sequence (forward pass only)."""
    return _run_forward(X, sequences, params, covariance_type, False)[0]


def posteriors(X, sequences: Sequences, params: HMMParams, covariance_type: str):
    """(per-sequence log-likelihoods, state posteriors (n_samples, n_components))."""
    log_likelihoods, posterior, _, _ = _run_forward(X, sequences, params, covariance_type, True)
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
        lattice, sequences.offsets, sequences.chunk_offsets, log_startprob, np.ascontiguousarray(log_transmat),
        path, log_probs,
    )
    return log_probs, path
