"""Slow, obviously-correct references for fastem's kernels (loops and plain NumPy)."""

from __future__ import annotations

import numpy as np

from fastem import reference


def estep_stats(X, sample_weight, weights, means, covariances, covariance_type):
    """What an E-step kernel must produce, computed from an explicit responsibility matrix.

    Returns resp_sum (k,), first (k, d) and second in the covariance type's
    layout, all centred at ``means``, plus sum_i w_i log p(x_i) and sum_i w_i.
    """
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    resp, log_norm = reference.e_step(X, weights, means, covariances, covariance_type)
    weighted = resp * w[:, None]
    k = len(weights)
    diffs = [X - means[j] for j in range(k)]
    resp_sum = weighted.sum(axis=0)
    first = np.stack([weighted[:, j] @ diffs[j] for j in range(k)])
    full = np.stack([(diffs[j].T * weighted[:, j]) @ diffs[j] for j in range(k)])
    if covariance_type == "full":
        second = full
    elif covariance_type == "tied":
        second = full.sum(axis=0)
    else:
        second = np.diagonal(full, axis1=1, axis2=2)
    return resp_sum, first, second, float(w @ log_norm), float(w.sum())


def label_stats(X, sample_weight, labels, shift):
    """N_j, S1_j, S2_j of the rows labelled j, centred at shift_j, by a loop over rows."""
    k, d = shift.shape
    resp_sum = np.zeros(k)
    first = np.zeros((k, d))
    second = np.zeros((k, d, d))
    for i, j in enumerate(labels):
        w = 1.0 if sample_weight is None else sample_weight[i]
        diff = X[i].astype(np.float64) - shift[j]
        resp_sum[j] += w
        first[j] += w * diff
        second[j] += w * np.outer(diff, diff)
    return resp_sum, first, second


def lloyd(X, sample_weight, centers, n_iter):
    """Plain weighted Lloyd iterations from given centres; returns (centers, labels)."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    centers = np.array(centers, dtype=np.float64)
    for _ in range(n_iter):
        labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        for j in range(len(centers)):
            mask = labels == j
            if w[mask].sum() > 0:
                centers[j] = (w[mask] @ X[mask]) / w[mask].sum()
    labels = np.argmin(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
    return centers, labels
