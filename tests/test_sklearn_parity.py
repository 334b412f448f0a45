"""fastem and scikit-learn 1.9 give the same answers from the same starting point."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from fastem import ConvergenceWarning, GaussianMixture
from tests.conftest import COVARIANCE_TYPES, init_kwargs

TOLERANCE = {np.float64: 1e-8, np.float32: 1e-4}
N_ITER = 8


def assert_close(ours, theirs, rtol):
    """Relative tolerance, with entries near zero judged against the array's scale."""
    theirs = np.asarray(theirs, dtype=np.float64)
    scale = max(np.max(np.abs(theirs)), 1e-300)
    np.testing.assert_allclose(np.asarray(ours, dtype=np.float64), theirs, rtol=rtol, atol=rtol * scale)


def fit_both(X, **kwargs):
    with pytest.warns(ConvergenceWarning):
        ours = GaussianMixture(**kwargs).fit(X)
    with pytest.warns(SklearnConvergenceWarning):
        theirs = SklearnGaussianMixture(**kwargs).fit(X)
    return ours, theirs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_parameters_after_fixed_iterations(blobs, covariance_type, dtype):
    X = blobs.astype(dtype)
    kwargs = init_kwargs(covariance_type, 3, X.shape[1], seed=2)
    ours, theirs = fit_both(X, max_iter=N_ITER, tol=0.0, **kwargs)
    rtol = TOLERANCE[dtype]
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        assert getattr(ours, name).dtype == dtype
        assert_close(getattr(ours, name), getattr(theirs, name), rtol)
    assert ours.n_iter_ == theirs.n_iter_ == N_ITER
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=rtol)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_same_convergence_and_predictions(blobs, covariance_type):
    kwargs = init_kwargs(covariance_type, 3, blobs.shape[1], seed=4)
    ours = GaussianMixture(tol=1e-6, max_iter=500, **kwargs).fit(blobs)
    theirs = SklearnGaussianMixture(tol=1e-6, max_iter=500, **kwargs).fit(blobs)
    assert ours.converged_ and theirs.converged_
    assert ours.n_iter_ == theirs.n_iter_
    assert_close(ours.means_, theirs.means_, 1e-8)
    probe = blobs[::7] + 0.25
    np.testing.assert_array_equal(ours.predict(probe), theirs.predict(probe))
    assert_close(ours.predict_proba(probe), theirs.predict_proba(probe), 1e-8)
    np.testing.assert_allclose(ours.score_samples(probe), theirs.score_samples(probe), rtol=1e-8)
    np.testing.assert_allclose(ours.score(probe), theirs.score(probe), rtol=1e-8)
    np.testing.assert_allclose(ours.bic(probe), theirs.bic(probe), rtol=1e-8)
    np.testing.assert_allclose(ours.aic(probe), theirs.aic(probe), rtol=1e-8)
    assert ours._n_parameters() == theirs._n_parameters()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_random_init_reproduces_sklearn(blobs, covariance_type):
    """init_params='random' consumes the RandomState exactly as scikit-learn does."""
    kwargs = dict(n_components=3, covariance_type=covariance_type, init_params="random", random_state=7)
    ours, theirs = fit_both(blobs, max_iter=5, tol=0.0, **kwargs)
    assert_close(ours.means_, theirs.means_, 1e-8)
    assert_close(ours.covariances_, theirs.covariances_, 1e-8)
    np.testing.assert_allclose(ours.lower_bounds_, theirs.lower_bounds_, rtol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_matches_sklearn(blobs, covariance_type):
    kwargs = init_kwargs(covariance_type, 3, blobs.shape[1], seed=5)
    ours, theirs = fit_both(blobs, max_iter=2, tol=0.0, random_state=11, **kwargs)
    # Same fitted parameters to 1e-8, so the same random stream gives the same draws.
    X_ours, y_ours = ours.sample(50)
    X_theirs, y_theirs = theirs.sample(50)
    np.testing.assert_array_equal(y_ours, y_theirs)
    np.testing.assert_allclose(X_ours, X_theirs, rtol=1e-6, atol=1e-6)


def test_kmeans_init_agrees_with_sklearn_on_separated_data():
    """Different k-means code, same clustering on clear structure: same fitted mixture."""
    from fastem.datasets import make_blobs

    X, _ = make_blobs(3000, 2, 4, separation=10.0, random_state=0)
    ours = GaussianMixture(4, random_state=0).fit(X)
    theirs = SklearnGaussianMixture(4, random_state=0).fit(X)
    order_ours = np.lexsort(ours.means_.T)
    order_theirs = np.lexsort(theirs.means_.T)
    np.testing.assert_allclose(ours.means_[order_ours], theirs.means_[order_theirs], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-4)
