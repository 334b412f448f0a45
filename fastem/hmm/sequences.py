"""Sequences: checks of ``lengths`` and per-sequence weights, and how the kernels group the sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem._core.numba import CHUNK_ROWS
from fastem._core.validation import plain

# Sequences at least this long run their forward and backward passes on two
# threads at once (``_long_sequences``); shorter ones are many enough to keep
# the threads busy one sequence each, which costs less work. A property of
# the data only, so results do not depend on the thread count.
LONG_SEQUENCE_ROWS = 65_536


@dataclass
class Sequences:
    """Where each sequence of X starts, how the sequences are grouped for the kernels, their weights.

    ``ids``/``chunks`` group every sequence into parallel chunks (forward
    passes, Viterbi); ``short_ids``/``short_chunks`` the sequences whose
    forward-backward runs on one thread each; ``long_ids`` those of at least
    ``LONG_SEQUENCE_ROWS`` rows, whose forward and backward passes meet in
    the middle (``_long_sequences``) at row ``mids``.
    """

    offsets: np.ndarray         # (n_sequences + 1,) int64 row offsets
    weights: np.ndarray         # (n_sequences,) float64
    row_weights: np.ndarray | None  # (n_samples,) float64, None when every weight is 1
    ids: np.ndarray
    chunks: np.ndarray
    short_ids: np.ndarray
    short_chunks: np.ndarray
    long_ids: np.ndarray
    mids: np.ndarray

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
        raise ValueError(f"sample_weight must be non-negative; found minimum {plain(weights.min())!r}.")
    if not weights.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sequence needs a positive weight.")
    return np.ascontiguousarray(weights)


def _chunks(offsets: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Offsets into ``ids`` of chunks of sequences: those starting in the same window of CHUNK_ROWS rows."""
    window = offsets[ids] // CHUNK_ROWS
    starts = np.flatnonzero(np.diff(window, prepend=-1))
    return np.append(starts, ids.shape[0]).astype(np.int64)


def make_sequences(lengths: np.ndarray, weights: np.ndarray | None = None) -> Sequences:
    """Sequences of the given (validated, positive) lengths.

    Every grouping depends on the lengths only, so the order of the
    additions, and every result, is the same for any thread count.
    """
    offsets = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.arange(lengths.shape[0], dtype=np.int64)
    long = lengths >= LONG_SEQUENCE_ROWS
    short_ids, long_ids = ids[~long], ids[long]
    mids = offsets[long_ids] + lengths[long_ids] // 2
    row_weights = None if weights is None else np.repeat(weights, lengths)
    weights = np.ones(lengths.shape[0]) if weights is None else weights
    return Sequences(offsets, weights, row_weights, ids, _chunks(offsets, ids), short_ids, _chunks(offsets, short_ids),
                     long_ids, mids.astype(np.int64))


