"""The Numba k-means used for initialisation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

import fastem._core.kmeans as kmeans_module
from fastem import GaussianMixture
from fastem._core.kmeans import draw_rows, kmeans, kmeans_plusplus
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

    from fastem._core.threads import numba_threads

    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        with numba_threads(threads):
            results.append(kmeans(data, np.empty(0), 6, np.random.RandomState(3)))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_draw_rows_is_a_seeded_weighted_draw_or_none_for_small_data():
    size = max(kmeans_module.SAMPLE_ROWS, kmeans_module.SAMPLE_ROWS_PER_CLUSTER * 4)
    assert draw_rows(size, np.empty(0), 4, np.random.RandomState(0)) is None  # all rows are used
    n = 4 * size
    rows, counts = draw_rows(n, np.empty(0), 4, np.random.RandomState(0))
    again, _ = draw_rows(n, np.empty(0), 4, np.random.RandomState(0))
    np.testing.assert_array_equal(rows, again)
    assert counts.sum() == size and (np.diff(rows) > 0).all() and rows[-1] < n
    # With weights: rows are drawn in proportion to them, never a zero-weight row.
    weights = np.tile([0.0, 1.0, 3.0], n // 3 + 1)[:n]
    rows, counts = draw_rows(n, weights, 4, np.random.RandomState(1))
    assert (weights[rows] > 0).all()
    heavy = counts[weights[rows] == 3.0].sum() / counts.sum()
    assert abs(heavy - 0.75) < 0.02
    # Fewer distinct rows than clusters can be drawn: k-means runs on all rows instead.
    weights = np.zeros(n)
    weights[[5, 9]] = 1.0
    assert draw_rows(n, weights, 3, np.random.RandomState(0)) is None


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_start_on_a_sample_ends_em_as_well_as_one_on_all_rows(monkeypatch, covariance_type):
    """The default start's k-means on a seeded sample: the final log-likelihood after EM is as good (median of seeds).

    The rule's sizes are scaled down with the data (12,000 rows, a 2,048-row
    draw with at least 512 per cluster, as 2**15 and 2**9 are for millions).
    """
    X, _ = make_blobs(12_000, 3, 4, separation=3.0, random_state=6)

    def median_final_bound():
        bounds = [GaussianMixture(4, covariance_type=covariance_type, random_state=seed).fit(X).lower_bound_
                  for seed in range(5)]
        return float(np.median(bounds))

    import fastem.mixture.steps as steps

    rows_seen = []
    monkeypatch.setattr(steps, "kmeans", lambda X, *a, **k: rows_seen.append(len(X)) or kmeans(X, *a, **k))
    all_rows = median_final_bound()  # 12,000 rows <= SAMPLE_ROWS: k-means on all of them
    assert set(rows_seen) == {len(X)}
    monkeypatch.setattr(kmeans_module, "SAMPLE_ROWS", 2048)
    monkeypatch.setattr(kmeans_module, "SAMPLE_ROWS_PER_CLUSTER", 512)
    rows_seen.clear()
    sampled = median_final_bound()
    assert 0 < max(rows_seen) <= 2048  # the k-means ran on the draw (distinct rows of 2,048 draws)
    assert sampled >= all_rows - 1e-6 * abs(all_rows), (sampled, all_rows)
