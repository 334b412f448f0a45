"""Bad input gets a clear error naming the problem; inputs are never modified."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastem import ConvergenceWarning, GaussianMixture, NotFittedError
from tests.conftest import COVARIANCE_TYPES, random_init


@pytest.fixture(scope="module")
def fitted(blobs):
    return GaussianMixture(2, random_state=0).fit(blobs)


# NaN is a missing value, which GaussianMixture supports (tests/test_missing_values.py).
@pytest.mark.parametrize("bad, message", [(np.inf, "infinity"), (-np.inf, "infinity")])
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
    with pytest.raises(ValueError, match=r"component 1\) is not symmetric"):
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
    bad[0, 0] = np.inf
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


# ---------------------------------------------------------------------------
# Every public method, every kind of bad input (issue "Reliability: Inputs")

DATA_METHODS = ["fit", "fit_predict", "predict", "predict_proba", "score_samples", "score", "bic", "aic"]

BAD_DATA = [
    ([[1.0, 2.0, 3.0], [4.0, 5.0]], ValueError, "could not be converted to a numeric array"),
    (np.array([[1.0, 2.0, 3.0], [4.0, 5.0]], dtype=object), ValueError, "must contain real numbers"),
    (np.array([[{"a": 1}, 1.0, 2.0], [2.0, 3.0, 4.0]], dtype=object), TypeError, "must contain real numbers"),
    (np.array([["1", "2", "3"], ["4", "5", "6"]]), ValueError, "strings"),
    (np.array([[b"1", b"2", b"3"], [b"4", b"5", b"6"]]), ValueError, "strings"),
    (np.ones((4, 3)) + 1j, ValueError, "Complex"),
    (np.ones((4, 3), dtype="datetime64[s]"), ValueError, "must be numeric"),
    (np.ones(3), ValueError, "Expected a 2D array"),
    (np.float64(1.0), ValueError, "scalar"),
    (np.ones((2, 2, 3)), ValueError, "3D"),
    (np.empty((0, 3)), ValueError, "0 sample"),
    (np.empty((4, 0)), ValueError, "0 feature"),
    (np.array([[1.0, np.inf, 0.0], [1.0, 2.0, 3.0]]), ValueError, "infinity"),
    (np.array([[1.0, -np.inf, 0.0], [1.0, 2.0, 3.0]], dtype=np.float32), ValueError, "infinity"),
]


@pytest.mark.parametrize("method", DATA_METHODS)
@pytest.mark.parametrize("X, error, message", BAD_DATA)
def test_every_method_rejects_bad_data(fitted, method, X, error, message):
    model = GaussianMixture(2) if method.startswith("fit") else fitted
    with pytest.raises(error, match=message):
        getattr(model, method)(X)


@pytest.mark.parametrize("method", DATA_METHODS[2:])
def test_every_inference_method_checks_the_feature_count(fitted, method):
    for n_features in (1, 4):
        with pytest.raises(ValueError, match=f"X has {n_features} features, but GaussianMixture is expecting 3"):
            getattr(fitted, method)(np.ones((5, n_features)))


@pytest.mark.parametrize(
    "n_samples, error",
    [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError), (None, TypeError)],
)
def test_sample_rejects_bad_counts(fitted, n_samples, error):
    with pytest.raises(error, match="n_samples"):
        fitted.sample(n_samples)


def test_sample_accepts_numpy_integers(fitted):
    samples, labels = fitted.sample(np.int64(4))
    assert samples.shape == (4, 3) and labels.shape == (4,)


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
@pytest.mark.parametrize(
    "sample_weight, message",
    [
        (np.ones(599), r"shape \(600,\)"),
        ([1.0, 2.0], r"shape \(600,\)"),
        (-np.ones(600), "non-negative"),
        (np.r_[np.ones(599), np.nan], "NaN"),
        (np.r_[np.ones(599), np.inf], "infinity"),
        (np.full(600, 1e307), "sums to infinity"),
        (np.ones(600) + 0j, "Complex"),
        (np.array(["1"] * 600), "strings"),
        ([[1.0]] * 599 + [[1.0, 2.0]], "could not be converted"),
    ],
)
def test_bad_sample_weight_is_rejected_by_every_fitting_method(blobs, method, sample_weight, message):
    with pytest.raises(ValueError, match=message):
        getattr(GaussianMixture(2), method)(blobs, sample_weight=sample_weight)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bad_initial_arrays_of_every_kind_are_rejected(blobs, covariance_type):
    weights, means, precisions = random_init(covariance_type, 2, 3)
    cases = [
        (dict(weights_init=[[0.5], [0.5, 0.0]]), ValueError, "weights_init could not be converted"),
        (dict(weights_init=np.array([0.5, 0.5]) + 0j), ValueError, "Complex data not supported in weights_init"),
        (dict(weights_init=["0.5", "0.5"]), ValueError, "weights_init must contain real numbers"),
        (dict(weights_init=[np.nan, 1.0]), ValueError, "weights_init contains NaN"),
        (dict(means_init=[[0.0, 0.0, 0.0], [1.0, 1.0]]), ValueError, "means_init could not be converted"),
        (dict(means_init=np.full((2, 3), np.inf)), ValueError, "means_init contains infinity"),
        (dict(means_init=np.array([[{}, 0, 0], [0, 0, 0]], dtype=object)), TypeError, "means_init must contain real numbers"),
        (dict(means_init=means.ravel()), ValueError, "The parameter 'means' should have the shape of \\(2, 3\\), but got \\(6,\\) for means_init"),
        (dict(precisions_init=precisions.astype(complex)), ValueError, "Complex data not supported in precisions_init"),
        (dict(precisions_init=np.full_like(precisions, np.inf)), ValueError, "precisions_init contains infinity"),
        (dict(precisions_init=precisions[None]), ValueError, "precision' should have the shape of .* for precisions_init"),
        (dict(precisions_init=np.zeros_like(precisions)), ValueError, "positive"),
    ]
    for params, error, message in cases:
        with pytest.raises(error, match=message):
            GaussianMixture(2, covariance_type=covariance_type, **params).fit(blobs)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_symmetric_but_indefinite_precision_is_rejected(blobs, covariance_type):
    indefinite = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # eigenvalues 3, 1, -1
    np.testing.assert_array_equal(indefinite, indefinite.T)
    if covariance_type == "full":
        precisions, where = np.stack([np.eye(3), indefinite]), r" \(component 1\)"
    else:
        precisions, where = indefinite, ""
    with pytest.raises(ValueError, match=f"precisions_init{where} is not positive-definite.*smallest eigenvalue is -1"):
        GaussianMixture(2, covariance_type=covariance_type, precisions_init=precisions).fit(blobs)
    # Positive semi-definite (singular) is not enough either.
    singular = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    precisions = np.stack([np.eye(3), singular]) if covariance_type == "full" else singular
    with pytest.raises(ValueError, match="positive-definite"):
        GaussianMixture(2, covariance_type=covariance_type, precisions_init=precisions).fit(blobs)


def test_tiny_non_symmetric_precisions_are_not_called_symmetric(blobs):
    """Symmetry is judged relative to the matrix's scale, not with an absolute 1e-8."""
    tiny = 1e-10 * np.array([[1.0, 0.5, 0.0], [-0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match="symmetric"):
        GaussianMixture(1, precisions_init=tiny[None]).fit(blobs)


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(n_components=True), TypeError, "n_components"),
        (dict(n_components="3"), TypeError, "n_components"),
        (dict(covariance_type=None), ValueError, "covariance_type"),
        (dict(covariance_type="FULL"), ValueError, "covariance_type"),
        (dict(tol=np.inf), ValueError, "tol"),
        (dict(tol="0.1"), TypeError, "tol"),
        (dict(reg_covar=np.nan), ValueError, "reg_covar"),
        (dict(reg_covar=np.inf), ValueError, "reg_covar"),
        (dict(max_iter=2.0), TypeError, "max_iter"),
        (dict(n_init=np.float64(2)), TypeError, "n_init"),
        (dict(init_params=None), ValueError, "init_params"),
        (dict(verbose=0.5), TypeError, "verbose"),
        (dict(verbose_interval=-1), ValueError, "verbose_interval"),
        (dict(n_jobs="2"), TypeError, "n_jobs"),
        (dict(random_state=1.5), ValueError, "random_state"),
        (dict(random_state=np.random.default_rng(0)), ValueError, "random_state"),
    ],
)
def test_more_invalid_parameters_are_rejected_by_fit_and_fit_predict(blobs, params, error, message):
    for method in ("fit", "fit_predict"):
        with pytest.raises(error, match=message):
            getattr(GaussianMixture(**{"n_components": 2, **params}), method)(blobs)


# ---------------------------------------------------------------------------
# Inputs are never modified, fitted state never aliases them


def read_only(array):
    array = np.array(array, copy=True)
    array.setflags(write=False)
    return array


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_no_public_method_modifies_its_inputs(blobs, covariance_type, dtype):
    X = blobs.astype(dtype)
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    # Initial arrays are read-only: writing to one would raise. (X and the
    # weights are compared to copies instead: a read-only X would make Numba
    # compile a separate read-only specialisation of every kernel.)
    weights, means, precisions = (read_only(a) for a in random_init(covariance_type, 2, 3))
    originals = [a.copy() for a in (X, sample_weight, weights, means, precisions)]
    model = GaussianMixture(
        2, covariance_type=covariance_type, weights_init=weights, means_init=means, precisions_init=precisions,
        random_state=0,
    )
    model.fit(X, sample_weight=sample_weight)
    model.fit_predict(X, sample_weight=sample_weight)
    for method in DATA_METHODS[2:]:
        getattr(model, method)(X)
    model.sample(3)
    for current, original in zip((X, sample_weight, weights, means, precisions), originals):
        np.testing.assert_array_equal(current, original)


@pytest.mark.parametrize("max_iter", [0, 2])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_fitted_state_never_aliases_user_arrays(blobs, covariance_type, max_iter):
    X = np.ascontiguousarray(blobs)  # already float64 C-contiguous: used without a copy
    sample_weight = np.ones(len(X))
    user_arrays = dict(zip(("weights_init", "means_init", "precisions_init"), random_init(covariance_type, 2, 3)))
    model = GaussianMixture(2, covariance_type=covariance_type, max_iter=max_iter, tol=0.0, **user_arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=2 stops early on purpose
        model.fit(X, sample_weight=sample_weight)
    fitted_names = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
    for name in fitted_names:
        for user in (X, sample_weight, *user_arrays.values()):
            assert not np.shares_memory(getattr(model, name), user), name
    # Changing the user's arrays afterwards changes nothing in the model.
    before = {name: getattr(model, name).copy() for name in fitted_names}
    scores = model.score_samples(X[:50]).copy()
    for array in user_arrays.values():
        array *= 2.0
    sample_weight[:] = 7.0
    for name in fitted_names:
        np.testing.assert_array_equal(getattr(model, name), before[name])
    np.testing.assert_array_equal(model.score_samples(X[:50]), scores)


# ---------------------------------------------------------------------------
# Array-likes accepted by every method


ARRAY_LIKES = {
    "list": lambda X: X.tolist(),
    "fortran": np.asfortranarray,
    "big-endian": lambda X: X.astype(X.dtype.newbyteorder(">")),
    "strided": lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    "reversed": lambda X: X[::-1][::-1],
    "dataframe": lambda X: __import__("pandas").DataFrame(X),
}


@pytest.mark.parametrize("kind", ARRAY_LIKES)
def test_array_likes_are_accepted_by_inference_methods(fitted, blobs, kind):
    converted = ARRAY_LIKES[kind](blobs[:40])
    for method in DATA_METHODS[2:]:
        expected = getattr(fitted, method)(blobs[:40])
        # rtol as test_array_likes_are_accepted: a read-only array (a DataFrame's
        # under copy-on-write) runs another Numba specialisation (see
        # test_concurrency.py::test_read_only_data_gives_identical_results).
        np.testing.assert_allclose(getattr(fitted, method)(converted), expected, rtol=1e-12, err_msg=method)


@pytest.mark.parametrize("kind", ["big-endian", "fortran", "strided", "dataframe"])
def test_float32_array_likes_stay_float32(blobs, kind):
    data = blobs.astype(np.float32)
    expected = GaussianMixture(2, random_state=0).fit(data)
    model = GaussianMixture(2, random_state=0).fit(ARRAY_LIKES[kind](data))
    assert model.means_.dtype == np.float32
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-6)


def test_array_like_initial_parameters_and_weights_are_accepted(blobs):
    weights, means, precisions = random_init("full", 2, 3)
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(blobs))
    expected = GaussianMixture(2, weights_init=weights, means_init=means, precisions_init=precisions).fit(
        blobs, sample_weight=sample_weight
    )
    pandas = pytest.importorskip("pandas")
    model = GaussianMixture(
        2, weights_init=weights.tolist(), means_init=means.astype(">f8"), precisions_init=np.asfortranarray(precisions)
    ).fit(blobs, sample_weight=pandas.Series(sample_weight))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(model, name), getattr(expected, name), rtol=1e-12)
    labels = GaussianMixture(2, means_init=means.tolist(), random_state=0).fit_predict(
        blobs, sample_weight=sample_weight.astype(">f8")
    )
    reference = GaussianMixture(2, means_init=means, random_state=0).fit(blobs, sample_weight=sample_weight)
    np.testing.assert_array_equal(labels, reference.predict(blobs))
