"""Shared, small, seeded test data. Kept small so the whole suite stays fast;
each kernel specialisation (covariance family x dtype) compiles once per session."""

from __future__ import annotations

import numpy as np
import pytest

from fastem.datasets import make_blobs, make_mixture

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
DTYPES = [np.float64, np.float32]


@pytest.fixture(scope="session")
def blobs():
    """600 x 3 rows from 3 overlapping components (EM needs several iterations)."""
    X, _ = make_mixture(
        600,
        [0.4, 0.35, 0.25],
        [[0.0, 0.0, 0.0], [2.5, 2.0, 0.0], [-2.0, 2.5, 1.0]],
        [np.eye(3), [[1.0, 0.3, 0.0], [0.3, 0.8, 0.1], [0.0, 0.1, 0.6]], np.diag([0.5, 1.5, 1.0])],
        random_state=1,
    )
    return X


@pytest.fixture(scope="session")
def big_blobs():
    """5000 x 4 rows: several parallel chunks, for thread-count tests."""
    X, _ = make_blobs(5000, 4, 5, separation=3.0, random_state=3)
    return X


def random_init(covariance_type, n_components, n_features, seed=0):
    """A valid (weights, means, precisions) starting point of the right shapes."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(1, 2, n_components)
    weights /= weights.sum()
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    if covariance_type == "full":
        a = rng.normal(size=(n_components, n_features, n_features))
        precisions = np.einsum("kij,klj->kil", a, a) / n_features + np.eye(n_features)
    elif covariance_type == "tied":
        a = rng.normal(size=(n_features, n_features))
        precisions = a @ a.T / n_features + np.eye(n_features)
    elif covariance_type == "diag":
        precisions = rng.uniform(0.5, 2.0, size=(n_components, n_features))
    else:
        precisions = rng.uniform(0.5, 2.0, size=n_components)
    return weights, means, precisions


def init_kwargs(covariance_type, n_components, n_features, seed=0):
    weights, means, precisions = random_init(covariance_type, n_components, n_features, seed)
    return dict(
        n_components=n_components,
        covariance_type=covariance_type,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
    )
