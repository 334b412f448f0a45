"""Gaussian emissions for other model families: the mixture's documented shared functions.

A Gaussian HMM's states emit Gaussians, so its E-step needs exactly what the
mixture's does, split in two: per-state log-densities of every row, and the
Gaussian statistics of the rows weighted by posteriors that another
algorithm (forward-backward) computed. Families import these functions, not
the mixture's private kernels, so the kernels can change behind them.
"""

from __future__ import annotations

import numpy as np

from fastem.mixture import _posterior_stats
from fastem.mixture.parameters import GaussianParams, GaussianStats
from fastem.mixture.steps import _symmetrise, weighted_log_prob


def log_densities(
    X: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray, covariance_type: str, out=None
) -> np.ndarray:
    """log N(x_i | mean_j, Sigma_j) for every row and component, float64 (n_samples, n_components).

    Parameters
    ----------
    X : ndarray (n_samples, n_features), float32 or float64, C-contiguous, finite
    means : ndarray (n_components, n_features)
    precisions_cholesky : ndarray
        Upper-triangular factors of the precisions, in the mixture's layout
        for ``covariance_type`` (see ``fastem.mixture.parameters.precision_cholesky``).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    out : ndarray (n_samples, n_components) float64, C-contiguous, optional
        Written and returned instead of a new array (a fit reuses one buffer
        for all its iterations).

    The parallel log-probability kernels of the mixture, with every component
    weight 1. Runs on the calling thread's Numba thread setting.
    """
    n_components = means.shape[0]
    params = GaussianParams(np.ones(n_components), means, None, precisions_cholesky)
    return weighted_log_prob(X, params, covariance_type, out)


def posterior_statistics(
    X: np.ndarray, row_weights, resp: np.ndarray, shift: np.ndarray, covariance_type: str
) -> GaussianStats:
    """Additive Gaussian statistics of X weighted by ``resp``, centred at ``shift``.

    Parameters
    ----------
    X : ndarray (n_samples, n_features), float32 or float64, C-contiguous
    row_weights : ndarray (n_samples,) float64, or None for unit weights
        Multiplies each row's responsibilities.
    resp : ndarray (n_samples, n_components) float64, C-contiguous
    shift : ndarray (n_components, n_features) float64
        Centre of each component's statistics (the current means keep the
        second moments accurate for data far from the origin).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    GaussianStats
        ``second`` is (k, d, d) for 'full' and 'tied' (per component: the
        caller pools them), (k, d) for 'diag' and 'spherical'; ``log_likelihood`` is 0
        (the caller knows it) and ``weight_total`` the sum of the weights.
    """
    n_components, n_features = shift.shape
    weights = np.empty(0) if row_weights is None else row_weights
    shift = np.ascontiguousarray(shift, dtype=np.float64)
    resp_sum = np.zeros(n_components)
    first = np.zeros((n_components, n_features))
    if covariance_type in ("full", "tied"):
        second = np.zeros((n_components, n_features, n_features))
        _posterior_stats.posterior_stats_full(X, weights, resp, shift, (resp_sum, first, second))
        second = _symmetrise(second)
    else:
        second = np.zeros((n_components, n_features))
        _posterior_stats.posterior_stats_diag(X, weights, resp, shift, (resp_sum, first, second))
    return GaussianStats(resp_sum, first, second, shift, 0.0, float(resp_sum.sum()))
