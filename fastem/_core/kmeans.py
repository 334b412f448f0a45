"""Weighted k-means (greedy k-means++ seeding, then Lloyd) for initialising mixtures and HMMs.

It lives in the engine because more than one family starts from it (the
mixture's ``init_params='kmeans'``, the HMM's initial means).

On large data the mixture's start runs k-means on a seeded sample of the
rows (:func:`draw_rows`): the full-data k-means was 76 to 93% of a whole
default fit at 2e6 x 10, and a sample of tens of thousands of rows gives a
start that the first full-data E-step makes as good.

The algorithm follows scikit-learn's ``KMeans(n_init=1)`` (the default
``init_params='kmeans'`` of its GaussianMixture): greedy k-means++ with
``2 + int(log(k))`` candidates per centre, Lloyd iterations until the squared
centre shift falls below ``tol * mean feature variance`` or the labels stop
changing, then a final assignment to the final centres. Random numbers are
drawn in Python from the caller's ``RandomState`` so seeding is reproducible;
the kernels are deterministic and thread-count independent (per-chunk
partials reduced in chunk order).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from fastem._core.chunks import n_chunks_for
from fastem._core.numba import CHUNK_ROWS, helper, kernel

# ---------------------------------------------------------------------------
# Kernels


@helper
def _row_weight(sample_weight, i):
    return 1.0 if sample_weight.shape[0] == 0 else sample_weight[i]


@helper
def _squared_distance(X, i, point):
    s = 0.0
    for feature in range(X.shape[1]):
        t = X[i, feature] - point[feature]
        s += t * t
    return s


@helper
def _search_cumulative(cumulative, target):
    """Index of the first entry of ``cumulative`` that is >= target (clipped to the last)."""
    lo = 0
    hi = cumulative.shape[0]
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] < target:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, cumulative.shape[0] - 1)


@kernel
def _distances_to_point(X, point, out):
    for i in prange(X.shape[0]):
        out[i] = _squared_distance(X, i, point)


@kernel
def _candidate_potentials(X, sample_weight, candidates, closest, partials):
    """partials[chunk, t] = sum over the chunk of w_i * min(closest_i, |x_i - x_candidate_t|^2)."""
    n_samples = X.shape[0]
    for c in prange(partials.shape[0]):
        start = c * CHUNK_ROWS
        stop = min(start + CHUNK_ROWS, n_samples)
        for t in range(candidates.shape[0]):
            point = X[candidates[t]]
            s = 0.0
            for i in range(start, stop):
                dist = _squared_distance(X, i, point)
                s += _row_weight(sample_weight, i) * min(closest[i], dist)
            partials[c, t] = s


@helper
def _weighted_cumulative(sample_weight, values, out):
    """Running sum of w_i * values_i (serial: the order is the definition)."""
    total = 0.0
    for i in range(values.shape[0]):
        total += _row_weight(sample_weight, i) * values[i]
        out[i] = total
    return total


def kmeans_plusplus(X, sample_weight, n_clusters, random_state):
    """Greedy k-means++ seeding; returns (centers (k, d) float64, indices (k,)).

    Row i is picked with probability proportional to ``w_i * D(x_i)^2``; among
    ``2 + int(log k)`` such candidates the one that lowers the potential most wins.
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight.shape[0] == 0 else sample_weight
    n_trials = 2 + int(math.log(n_clusters))
    centers = np.empty((n_clusters, n_features))
    indices = np.empty(n_clusters, dtype=np.intp)
    cumulative = np.empty(n_samples)

    _weighted_cumulative(sample_weight, np.ones(n_samples), cumulative)
    first = _search_cumulative(cumulative, random_state.uniform() * cumulative[-1])
    # A zero-weight row can never be drawn: step forward to one that can.
    while weights[first] == 0.0:
        first += 1
    indices[0] = first
    centers[0] = X[first]
    closest = np.empty(n_samples)
    _distances_to_point(X, X[first], closest)
    potential = _weighted_cumulative(sample_weight, closest, cumulative)

    partials = np.empty((n_chunks_for(n_samples), n_trials))
    candidate_dist = np.empty(n_samples)
    for c in range(1, n_clusters):
        targets = random_state.uniform(size=n_trials) * potential
        candidates = np.array([_search_cumulative(cumulative, t) for t in targets], dtype=np.intp)
        _candidate_potentials(X, sample_weight, candidates, closest, partials)
        potentials = partials.sum(axis=0)  # fixed order: deterministic
        best = int(np.argmin(potentials))
        indices[c] = candidates[best]
        centers[c] = X[candidates[best]]
        _distances_to_point(X, X[candidates[best]], candidate_dist)
        np.minimum(closest, candidate_dist, out=closest)
        potential = _weighted_cumulative(sample_weight, closest, cumulative)
    return centers, indices


@kernel
def _assign_and_sum(X, sample_weight, centers, labels, distances, partial_sums, partial_counts):
    """Label each row by its nearest centre; per-chunk weighted sums of (x - centre) per cluster."""
    n_samples = X.shape[0]
    n_clusters, n_features = centers.shape
    for c in prange(partial_sums.shape[0]):
        start = c * CHUNK_ROWS
        stop = min(start + CHUNK_ROWS, n_samples)
        for j in range(n_clusters):
            partial_counts[c, j] = 0.0
            for feature in range(n_features):
                partial_sums[c, j, feature] = 0.0
        for i in range(start, stop):
            best = 0
            best_dist = np.inf
            for j in range(n_clusters):
                dist = _squared_distance(X, i, centers[j])
                if dist < best_dist:
                    best_dist = dist
                    best = j
            labels[i] = best
            distances[i] = best_dist
            w = _row_weight(sample_weight, i)
            partial_counts[c, best] += w
            for feature in range(n_features):
                partial_sums[c, best, feature] += w * (X[i, feature] - centers[best, feature])


def kmeans(X, sample_weight, n_clusters, random_state, *, max_iter=300, tol=1e-4):
    """Weighted k-means; returns (centers (k, d) float64, labels (n,) intp).

    Parameters
    ----------
    X : ndarray (n_samples, n_features), float32 or float64, C-contiguous
    sample_weight : ndarray (n_samples,) float64, or empty for unit weights
    n_clusters : int
    random_state : numpy.random.RandomState
    max_iter : int
        Lloyd iterations at most.
    tol : float
        Relative tolerance: stop when the summed squared centre shift is at
        most ``tol`` times the mean (weighted) feature variance.
    """
    n_samples, _ = X.shape
    weights = np.ones(n_samples) if sample_weight.shape[0] == 0 else sample_weight
    total = weights.sum()
    # Data near the float range overflow here; the fit then fails with a clear
    # error in the M-step. Without a finite threshold, stop on labels alone.
    with np.errstate(over="ignore", invalid="ignore"):
        data_mean = (weights @ X) / total
        variance = (weights @ np.square(X - data_mean)) / total
        threshold = tol * float(np.mean(variance))
    if not np.isfinite(threshold):
        threshold = 0.0

    centers, _ = kmeans_plusplus(X, sample_weight, n_clusters, random_state)
    n_chunks = n_chunks_for(n_samples)
    labels = np.full(n_samples, -1, dtype=np.intp)
    previous = np.empty_like(labels)
    distances = np.empty(n_samples)
    partial_sums = np.empty((n_chunks, n_clusters, X.shape[1]))
    partial_counts = np.empty((n_chunks, n_clusters))
    for _ in range(max_iter):
        previous[:] = labels
        _assign_and_sum(X, sample_weight, centers, labels, distances, partial_sums, partial_counts)
        counts = partial_counts.sum(axis=0)
        offsets = partial_sums.sum(axis=0)
        new_centers = centers.copy()
        filled = counts > 0
        new_centers[filled] += offsets[filled] / counts[filled, None]
        # An empty cluster moves to the (positive-weight) row farthest from its centre.
        for j in np.flatnonzero(~filled):
            far = int(np.argmax(np.where(weights > 0, distances, -1.0)))
            new_centers[j] = X[far]
            distances[far] = -1.0
        with np.errstate(over="ignore", invalid="ignore"):
            shift = float(np.sum((new_centers - centers) ** 2))
        centers = new_centers
        if np.array_equal(labels, previous) or shift <= threshold:
            break
    # Final assignment so the labels belong to the returned centres.
    _assign_and_sum(X, sample_weight, centers, labels, distances, partial_sums, partial_counts)
    return centers, labels


# The sample the default start of a large fit runs on: at least SAMPLE_ROWS
# draws, and SAMPLE_ROWS_PER_CLUSTER per cluster when there are many clusters
# (so each cluster's covariance is estimated from hundreds of draws). With
# very skewed sample weights the draws repeat the heavy rows, and a cluster
# may hold few distinct rows; its start covariance then leans on reg_covar
# (reg_covar=0 can make that start singular, as on a few distinct rows).
SAMPLE_ROWS = 2**15
SAMPLE_ROWS_PER_CLUSTER = 2**9


def draw_rows(n_samples: int, sample_weight, n_clusters: int, random_state):
    """A seeded with-replacement draw of rows for k-means, or None to use all rows.

    Rows are drawn with probability proportional to their weight (uniformly
    without weights), ``max(SAMPLE_ROWS, SAMPLE_ROWS_PER_CLUSTER * k)`` times;
    each distinct row drawn weighs the number of times it was drawn, so the
    sample's weighted distribution estimates the data's. Returns None when the
    data are not larger than the draw, or when fewer than ``n_clusters``
    distinct rows were drawn (k-means needs k of them).

    Returns
    -------
    (rows, weights) : sorted int64 row indices and their float64 counts, or None
    """
    size = max(SAMPLE_ROWS, SAMPLE_ROWS_PER_CLUSTER * n_clusters)
    if n_samples <= size:
        return None
    if sample_weight.shape[0] == 0:
        draws = random_state.randint(0, n_samples, size=size)
    else:
        cumulative = np.cumsum(sample_weight)
        targets = random_state.uniform(size=size) * cumulative[-1]
        # side="right" never lands on a zero-weight row (its cumulative sum equals its predecessor's).
        draws = np.minimum(np.searchsorted(cumulative, targets, side="right"), n_samples - 1)
    rows, counts = np.unique(draws, return_counts=True)
    if rows.size < n_clusters:
        return None
    return rows, counts.astype(np.float64)
