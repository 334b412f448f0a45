"""Bad input gets a clear error naming the problem; inputs are never modified."""

from __future__ import annotations

import numpy as np
import pytest

from fastem import GaussianMixture, NotFittedError
from tests.conftest import COVARIANCE_TYPES, random_init


@pytest.fixture(scope="module")
def fitted(blobs):
    return GaussianMixture(2, random_state=0).fit(blobs)


@pytest.mark.parametrize("bad, message", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
def test_non_finite_data_is_rejected(blobs, fitted, bad, message):
    X = blobs.copy()
    X[5, 1] = bad
    with pytest.raises(ValueError, match=message):
        GaussianMixture(2).fit(X)
    for method in (fitted.predict, fitted.predict_proba, fitted.score_samples, fitted.score):
        with pytest.raises(ValueError, match=message):
            method(X)


@pytest.mark.parametrize(
    "X, message",
    [
        (np.arange(10.0), "Expected a 2D array"),
        (np.empty((0, 3)), "0 sample"),
        (np.empty((5, 0)), "0 feature"),
        (np.ones((1, 3)), "1 sample"),
        (np.ones((2, 2, 2)), "3D"),
        ([[1, 2], [3]], "numeric array"),
        (np.array([["a", "b"], ["c", "d"]]), "real numbers"),
        (np.ones((4, 2)) * 1j, "Complex"),
    ],
)
def test_malformed_data_is_rejected(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X)


def test_unconvertible_objects_raise_type_error():
    X = np.array([[{"a": 1}, 1.0], [2.0, 3.0]], dtype=object)
    with pytest.raises(TypeError, match="X must contain real numbers"):
        GaussianMixture(1).fit(X)


def test_sparse_input_is_rejected_with_advice():
    import scipy.sparse

    with pytest.raises(TypeError, match="Sparse data.*toarray"):
        GaussianMixture(1).fit(scipy.sparse.random(10, 3, density=0.5, format="csr"))


def test_pandas_dataframe_is_accepted(blobs):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(blobs, columns=["a", "b", "c"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    np.testing.assert_allclose(model.means_, GaussianMixture(2, random_state=0).fit(blobs).means_, rtol=1e-12)
    assert model.predict(frame).shape == (len(blobs),)


def test_sklearn_exception_classes_catch_fastem_errors(blobs):
    """Code written for scikit-learn keeps working: its except clauses and warning filters apply."""
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    with pytest.raises(SklearnNotFittedError):
        GaussianMixture(2).predict(blobs)
    with pytest.warns(SklearnConvergenceWarning):
        GaussianMixture(2, max_iter=1, random_state=0).fit(blobs)


def test_fewer_samples_than_components():
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(np.random.default_rng(0).normal(size=(4, 2)))


def test_wrong_number_of_features_at_predict(fitted):
    X = np.ones((4, 2))
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
            getattr(fitted, method)(X)


def test_unfitted_model_raises_not_fitted():
    model = GaussianMixture(2)
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(model, method)(np.ones((3, 2)))
    with pytest.raises(NotFittedError):
        model.sample(3)


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(n_components=0), ValueError, "n_components"),
        (dict(n_components=2.5), TypeError, "n_components"),
        (dict(covariance_type="banana"), ValueError, "covariance_type"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(tol=np.nan), ValueError, "tol"),
        (dict(reg_covar=-1e-3), ValueError, "reg_covar"),
        (dict(max_iter=-1), ValueError, "max_iter"),
        (dict(n_init=0), ValueError, "n_init"),
        (dict(init_params="kmeans++"), ValueError, "init_params"),
        (dict(warm_start="yes"), TypeError, "warm_start"),
        (dict(verbose=-1), ValueError, "verbose"),
        (dict(verbose_interval=0), ValueError, "verbose_interval"),
        (dict(n_jobs=0), ValueError, "n_jobs"),
        (dict(n_jobs=1.5), TypeError, "n_jobs"),
        (dict(random_state="seed"), ValueError, "random_state"),
    ],
)
def test_invalid_parameters_are_rejected(blobs, params, error, message):
    with pytest.raises(error, match=message):
        GaussianMixture(**{"n_components": 2, **params}).fit(blobs)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bad_initial_parameters_are_rejected(blobs, covariance_type):
    weights, means, precisions = random_init(covariance_type, 2, 3)
    cases = [
        (dict(weights_init=[0.5, 0.2]), "normalized"),
        (dict(weights_init=[1.5, -0.5]), "range"),
        (dict(weights_init=[1.0]), "shape"),
        (dict(means_init=means[:, :2]), "shape"),
        (dict(means_init=np.full_like(means, np.nan)), "NaN"),
        (dict(precisions_init=precisions[..., :1]), "shape"),
        (dict(precisions_init=-np.abs(precisions)), "positive"),
    ]
    for params, message in cases:
        with pytest.raises(ValueError, match=message):
            GaussianMixture(2, covariance_type=covariance_type, **params).fit(blobs)


def test_non_symmetric_precision_is_rejected(blobs):
    precisions = np.stack([np.eye(3), np.eye(3)])
    precisions[1, 0, 2] = 0.5
    with pytest.raises(ValueError, match=r"component 1\) must be symmetric"):
        GaussianMixture(2, precisions_init=precisions).fit(blobs)


def test_inputs_and_parameters_are_never_modified(blobs):
    X = blobs.copy()
    weights, means, precisions = random_init("full", 2, 3)
    originals = [a.copy() for a in (X, weights, means, precisions)]
    model = GaussianMixture(2, weights_init=weights, means_init=means, precisions_init=precisions, random_state=0)
    model.fit(X, sample_weight=np.ones(len(X)))
    model.predict(X)
    model.score_samples(X)
    for current, original in zip((X, weights, means, precisions), originals):
        np.testing.assert_array_equal(current, original)
    # Parameters still are the very objects the user passed; fitted state does not alias them.
    assert model.means_init is means and model.weights_init is weights
    assert not np.shares_memory(model.means_, means)


def test_failed_fit_keeps_previous_fitted_state(blobs):
    model = GaussianMixture(2, random_state=0).fit(blobs)
    means = model.means_.copy()
    bad = blobs.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.fit(bad)
    np.testing.assert_array_equal(model.means_, means)


@pytest.mark.parametrize(
    "convert",
    [
        lambda X: X.tolist(),
        lambda X: np.asfortranarray(X),
        lambda X: X.astype(">f8"),
        lambda X: np.repeat(X, 2, axis=1)[:, ::2],
        lambda X: X.astype(np.int64),
    ],
    ids=["list", "fortran", "big-endian", "strided", "int64"],
)
def test_array_likes_are_accepted(blobs, convert):
    data = np.round(blobs * 100)  # integer-valued, so the int64 conversion is exact
    expected = GaussianMixture(2, random_state=0).fit(data)
    model = GaussianMixture(2, random_state=0).fit(convert(data))
    assert model.means_.dtype == np.float64
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-12)
