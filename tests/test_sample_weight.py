"""sample_weight: a weight multiplies a row's contribution."""

from __future__ import annotations

import numpy as np
import pytest

from fastem import GaussianMixture
from tests.conftest import COVARIANCE_TYPES, init_kwargs

FITTED = ["weights_", "means_", "covariances_", "precisions_cholesky_"]


def assert_same_fit(a, b, rtol=1e-10):
    for name in FITTED:
        want = getattr(b, name)
        np.testing.assert_allclose(getattr(a, name), want, rtol=rtol, atol=rtol * np.abs(want).max())
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


@pytest.mark.parametrize("init", ["given", "kmeans"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zero_weight_equals_removing_rows(blobs, covariance_type, init):
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 2, len(blobs)).astype(float)
    kwargs = init_kwargs(covariance_type, 3, 3, seed=1) if init == "given" else dict(n_components=3, covariance_type=covariance_type)
    kwargs.update(random_state=0, tol=1e-8, max_iter=300)
    weighted = GaussianMixture(**kwargs).fit(blobs, sample_weight=weights)
    removed = GaussianMixture(**kwargs).fit(blobs[weights > 0])
    assert_same_fit(weighted, removed)


@pytest.mark.parametrize("init", ["given", "kmeans"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weight_equals_repeating_rows(blobs, covariance_type, init):
    rng = np.random.default_rng(1)
    weights = rng.integers(1, 4, len(blobs))
    kwargs = init_kwargs(covariance_type, 3, 3, seed=2) if init == "given" else dict(n_components=3, covariance_type=covariance_type)
    kwargs.update(random_state=0, tol=1e-8, max_iter=300)
    weighted = GaussianMixture(**kwargs).fit(blobs, sample_weight=weights.astype(float))
    repeated = GaussianMixture(**kwargs).fit(np.repeat(blobs, weights, axis=0))
    assert_same_fit(weighted, repeated)


def test_unit_weights_equal_no_weights(blobs):
    a = GaussianMixture(3, random_state=0).fit(blobs)
    b = GaussianMixture(3, random_state=0).fit(blobs, sample_weight=np.ones(len(blobs)))
    assert_same_fit(a, b, rtol=1e-12)


def test_scaling_all_weights_changes_nothing(blobs):
    kwargs = init_kwargs("full", 3, 3, seed=3)
    a = GaussianMixture(**kwargs, tol=1e-8).fit(blobs, sample_weight=np.full(len(blobs), 1.0))
    b = GaussianMixture(**kwargs, tol=1e-8).fit(blobs, sample_weight=np.full(len(blobs), 7.5))
    assert_same_fit(a, b, rtol=1e-9)


@pytest.mark.parametrize(
    "sample_weight, message",
    [
        (np.ones(5), "shape"),
        (-np.ones(600), "non-negative"),
        (np.full(600, np.nan), "NaN"),
        (np.full(600, np.inf), "infinity"),
        (np.zeros(600), "sums to zero"),
        (np.r_[np.ones(2), np.zeros(598)], "fewer than n_components"),
        (np.ones((600, 2)), "shape"),
    ],
)
def test_bad_sample_weight_is_rejected(blobs, sample_weight, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(3).fit(blobs, sample_weight=sample_weight)


def test_sample_weight_is_not_modified(blobs):
    weights = np.random.default_rng(0).uniform(0, 2, len(blobs))
    before = weights.copy()
    GaussianMixture(3, random_state=0).fit(blobs, sample_weight=weights)
    np.testing.assert_array_equal(weights, before)
