"""The naive textbook EM for Gaussian mixtures, in plain NumPy/SciPy.

This is the algorithm a user would write first: per-component
``scipy.stats.multivariate_normal`` densities, an explicit n x k
responsibility matrix, two-pass weighted covariances. It is slow on purpose
and kept simple so that it can serve as the correctness oracle for the fast
kernels and as the baseline of the benchmarks.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def full_covariances(covariances, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """Expand covariances of any type to (n_components, n_features, n_features)."""
    covariances = np.asarray(covariances, dtype=np.float64)
    if covariance_type == "full":
        return covariances.copy()
    if covariance_type == "tied":
        return np.repeat(covariances[None], n_components, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in covariances])
    return np.stack([np.eye(n_features) * c for c in covariances])


def weighted_log_prob(X, weights, means, covariances, covariance_type: str) -> np.ndarray:
    """log w_j + log N(x_i | mean_j, Sigma_j), shape (n_samples, n_components)."""
    X = np.asarray(X, dtype=np.float64)
    n_components, n_features = np.shape(means)
    full = full_covariances(covariances, covariance_type, n_components, n_features)
    columns = [
        np.log(weights[j]) + multivariate_normal(mean=means[j], cov=full[j]).logpdf(X).reshape(-1)
        for j in range(n_components)
    ]
    return np.stack(columns, axis=1)


def e_step(X, weights, means, covariances, covariance_type: str):
    """Responsibilities (n_samples, n_components) and per-row log-likelihoods (n_samples,)."""
    log_prob = weighted_log_prob(X, weights, means, covariances, covariance_type)
    log_norm = logsumexp(log_prob, axis=1)
    return np.exp(log_prob - log_norm[:, None]), log_norm


def m_step(X, resp, covariance_type: str, reg_covar: float, sample_weight=None):
    """Weighted maximum-likelihood parameters given responsibilities."""
    X = np.asarray(X, dtype=np.float64)
    n_samples, n_features = X.shape
    sample_weight = np.ones(n_samples) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    weighted_resp = resp * sample_weight[:, None]
    nk = weighted_resp.sum(axis=0)
    means = (weighted_resp.T @ X) / nk[:, None]
    scatter = np.stack([((X - means[j]).T * weighted_resp[:, j]) @ (X - means[j]) for j in range(len(nk))])
    if covariance_type == "full":
        covariances = scatter / nk[:, None, None] + reg_covar * np.eye(n_features)
    elif covariance_type == "tied":
        covariances = scatter.sum(axis=0) / nk.sum() + reg_covar * np.eye(n_features)
    elif covariance_type == "diag":
        covariances = np.diagonal(scatter, axis1=1, axis2=2) / nk[:, None] + reg_covar
    else:
        covariances = np.diagonal(scatter, axis1=1, axis2=2).mean(axis=1) / nk + reg_covar
    return nk / nk.sum(), means, covariances


def fit(X, weights, means, covariances, covariance_type: str = "full", n_iter: int = 10, reg_covar: float = 1e-6, sample_weight=None):
    """Run ``n_iter`` EM iterations from the given parameters.

    Returns
    -------
    result : dict
        ``weights``, ``means``, ``covariances`` after the last M-step and
        ``lower_bounds``: the weighted mean log-likelihood before each M-step.
    """
    X = np.asarray(X, dtype=np.float64)
    sample_weight = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    lower_bounds = []
    for _ in range(n_iter):
        resp, log_norm = e_step(X, weights, means, covariances, covariance_type)
        lower_bounds.append(float(sample_weight @ log_norm / sample_weight.sum()))
        weights, means, covariances = m_step(X, resp, covariance_type, reg_covar, sample_weight)
    return {"weights": weights, "means": means, "covariances": covariances, "lower_bounds": lower_bounds}
