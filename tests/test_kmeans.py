"""The Numba k-means used for initialisation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from fastem._core.kmeans import kmeans, kmeans_plusplus
from fastem.datasets import make_blobs
from tests import naive


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(3000, 3, 6, separation=3.0, random_state=2)
    return X


def test_lloyd_matches_naive_from_the_same_seeds(data, monkeypatch):
    import fastem._core.kmeans as module

    seeds = data[[0, 500, 1000, 1500, 2000, 2500]]
    monkeypatch.setattr(module, "kmeans_plusplus", lambda X, w, k, rs: (seeds.copy(), None))
    centers, labels = kmeans(data, np.empty(0), 6, np.random.RandomState(0), max_iter=300, tol=0.0)
    want_centers, want_labels = naive.lloyd(data, None, seeds, n_iter=300)
    np.testing.assert_allclose(centers, want_centers, rtol=1e-10)
    np.testing.assert_array_equal(labels, want_labels)


def test_matches_sklearn_kmeans_inertia(data):
    centers, labels = kmeans(data, np.empty(0), 6, np.random.RandomState(0))
    inertia = ((data - centers[labels]) ** 2).sum()
    theirs = KMeans(6, n_init=1, random_state=0).fit(data)
    np.testing.assert_allclose(inertia, theirs.inertia_, rtol=1e-3)


def test_kmeans_plusplus_picks_distinct_positive_weight_rows(data):
    weights = np.zeros(len(data))
    weights[::3] = 1.0
    centers, indices = kmeans_plusplus(data, weights, 6, np.random.RandomState(1))
    assert len(set(indices.tolist())) == 6
    assert np.all(weights[indices] > 0)
    np.testing.assert_array_equal(centers, data[indices])


def test_kmeans_plusplus_is_thread_independent(data):
    import numba

    from fastem._core.numba import numba_threads

    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        with numba_threads(threads):
            results.append(kmeans(data, np.empty(0), 6, np.random.RandomState(3)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
