"""Seeded synthetic data sets with known mixture parameters (demo, tests, benchmarks)."""

from __future__ import annotations

import numpy as np


def make_mixture(n_samples: int, weights, means, covariances, *, random_state=0, dtype=np.float64):
    """Draw ``n_samples`` rows from a Gaussian mixture with full covariances.

    Parameters
    ----------
    n_samples : int
    weights : array-like of shape (n_components,)
    means : array-like of shape (n_components, n_features)
    covariances : array-like of shape (n_components, n_features, n_features)
    random_state : int
    dtype : float32 or float64

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
        The component each row was drawn from (rows are grouped by component).
    """
    rng = np.random.default_rng(random_state)
    weights = np.asarray(weights, dtype=np.float64)
    counts = rng.multinomial(n_samples, weights / weights.sum())
    parts = [rng.multivariate_normal(m, c, size=int(n)) for m, c, n in zip(np.asarray(means, float), covariances, counts)]
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.vstack(parts).astype(dtype), labels


DEMO_WEIGHTS = np.array([0.5, 0.3, 0.2])
DEMO_MEANS = np.array([[0.0, 0.0], [6.0, 3.0], [-4.0, 5.0]])
DEMO_COVARIANCES = np.array([[[2.0, 0.8], [0.8, 1.0]], [[1.0, -0.6], [-0.6, 1.5]], [[0.5, 0.0], [0.0, 0.5]]])


def demo_data(n_samples: int = 100_000, random_state: int = 0):
    """The built-in demo: three well-separated, correlated 2-D Gaussians.

    The true parameters are ``DEMO_WEIGHTS``, ``DEMO_MEANS`` and ``DEMO_COVARIANCES``.
    """
    return make_mixture(n_samples, DEMO_WEIGHTS, DEMO_MEANS, DEMO_COVARIANCES, random_state=random_state)


def make_blobs(n_samples: int, n_features: int, n_components: int, *, separation: float = 8.0, random_state=0, dtype=np.float64):
    """Random well-separated mixture in any dimension (benchmarks and tests).

    Means are drawn in a box of side ``separation * n_components ** (1 / n_features)``;
    covariances are random with eigenvalues between 0.5 and 2.
    """
    rng = np.random.default_rng(random_state)
    side = separation * n_components ** (1.0 / n_features)
    means = rng.uniform(-side, side, size=(n_components, n_features))
    covariances = []
    for _ in range(n_components):
        q, _ = np.linalg.qr(rng.normal(size=(n_features, n_features)))
        covariances.append((q * rng.uniform(0.5, 2.0, size=n_features)) @ q.T)
    weights = rng.uniform(1.0, 2.0, size=n_components)
    return make_mixture(n_samples, weights / weights.sum(), means, np.array(covariances), random_state=random_state, dtype=dtype)
