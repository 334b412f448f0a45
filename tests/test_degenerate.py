"""Degenerate data: no NaN ever; empty components follow the documented policy; failures are clear.

The policy (GaussianMixture's docstring, "Degenerate data"): an empty
component keeps its previous mean, gets covariance reg_covar * I and a weight
of about 10 eps / n (as scikit-learn); a covariance that is not
positive-definite after reg_covar raises a ValueError naming the component and
suggesting reg_covar; the model then keeps its previous fitted state.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastem import ConvergenceWarning, GaussianMixture
from tests.conftest import COVARIANCE_TYPES, DTYPES, random_init

FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
INIT_METHODS = ["kmeans", "k-means++", "random", "random_from_data"]
WEIGHT_SUM_RTOL = {np.float64: 1e-12, np.float32: 1e-6}


def _duplicated_points():
    rows = np.random.default_rng(0).normal(size=(20, 3))
    return np.repeat(rows, 3, axis=0), 4


def _constant_column():
    X = np.random.default_rng(1).normal(size=(30, 3))
    X[:, 1] = 7.0
    return X, 3


def _ones_and_zeros():
    return np.r_[np.ones((5, 2)), np.zeros((5, 2))], 10


def _one_component_three_points():
    return np.array([[0.0, 1.0], [2.0, -1.0], [1.0, 3.0]]), 1


def _fewer_points_than_dimensions():
    return np.random.default_rng(2).normal(size=(3, 5)), 1


def _all_points_identical():
    return np.full((8, 2), 3.5), 2


DEGENERATE = {
    "duplicated points": _duplicated_points,
    "constant column": _constant_column,
    "5 ones, 5 zeros, 10 components": _ones_and_zeros,
    "1 component, 3 points": _one_component_three_points,
    "3 points in 5 dimensions": _fewer_points_than_dimensions,
    "all points identical": _all_points_identical,
}


def assert_sound(model, X):
    """Every fitted attribute finite, weights a distribution, variances >= reg_covar (up to rounding)."""
    for name in FITTED:
        assert np.isfinite(getattr(model, name)).all(), name
    dtype = X.dtype.type
    assert (model.weights_ >= 0).all()
    np.testing.assert_allclose(model.weights_.astype(np.float64).sum(), 1.0, rtol=WEIGHT_SUM_RTOL[dtype])
    variances = {
        "full": lambda c: np.diagonal(c, axis1=1, axis2=2),
        "tied": np.diag,
        "diag": lambda c: c,
        "spherical": lambda c: c,
    }[model.covariance_type](model.covariances_)
    # A centred second moment is >= 0, so every variance is >= reg_covar; a
    # raw-moment or cancelling implementation would dip below.
    assert (variances >= 0.5 * model.reg_covar).all(), variances.min()
    assert np.isfinite(model.lower_bound_)
    proba = model.predict_proba(X)
    assert np.isfinite(proba).all()
    # Responsibilities come in X's dtype: float32 rows sum to 1 within its rounding.
    np.testing.assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, rtol=model.n_components * np.finfo(dtype).eps)
    assert np.isfinite(model.score_samples(X)).all()
    samples, _ = model.sample(7)
    assert np.isfinite(samples).all()


def fit_allowing_non_convergence(model, X, fit=lambda model, X: model.fit(X)):
    # Degenerate data may stop at max_iter (the ConvergenceWarning itself is
    # tested in test_em_invariants); what is tested here is the fitted state.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(model, X)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("case", DEGENERATE)
def test_degenerate_data_fits_without_nan(case, covariance_type, dtype):
    X, n_components = DEGENERATE[case]()
    X = X.astype(dtype)
    kwargs = dict(covariance_type=covariance_type, random_state=0)
    model = fit_allowing_non_convergence(GaussianMixture(n_components, **kwargs), X)
    assert_sound(model, X)
    labels = fit_allowing_non_convergence(GaussianMixture(n_components, **kwargs), X, lambda m, X: m.fit_predict(X))
    np.testing.assert_array_equal(labels, model.predict(X))


@pytest.mark.parametrize("init_params", INIT_METHODS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_more_components_than_distinct_points_with_every_init(covariance_type, init_params):
    X, n_components = _ones_and_zeros()
    model = GaussianMixture(n_components, covariance_type=covariance_type, init_params=init_params, random_state=0)
    assert_sound(fit_allowing_non_convergence(model, X), X)
    # Every mean is a weighted average of the data (an empty component keeps
    # one from an earlier iteration), so it lies within the data's range.
    assert ((model.means_ >= -1e-9) & (model.means_ <= 1 + 1e-9)).all(), model.means_


# ---------------------------------------------------------------------------
# The empty-component policy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_empty_component_keeps_its_mean_and_gets_reg_covar(covariance_type, dtype):
    """A component far from all data receives exactly zero responsibility and stays finite."""
    X = np.random.default_rng(3).normal(size=(50, 3)).astype(dtype)
    far = 1000.0
    weights, _, precisions = random_init(covariance_type, 2, 3)
    means = np.array([[0.0, 0.0, 0.0], [far, far, far]])
    reg_covar = 1e-4
    model = GaussianMixture(
        2, covariance_type=covariance_type, weights_init=weights, means_init=means, precisions_init=precisions,
        reg_covar=reg_covar, max_iter=5, tol=0.0,
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    assert_sound(model, X)
    np.testing.assert_array_equal(model.means_[1], np.full(3, far, dtype=dtype))
    resp_eps = 10 * np.finfo(dtype).eps
    np.testing.assert_allclose(model.weights_[1], resp_eps / (len(X) + 2 * resp_eps), rtol=1e-5)
    if covariance_type == "full":
        np.testing.assert_array_equal(model.covariances_[1], (reg_covar * np.eye(3)).astype(dtype))
    elif covariance_type in ("diag", "spherical"):
        np.testing.assert_array_equal(model.covariances_[1], np.full_like(model.covariances_[1], reg_covar))
    assert (model.predict(X) == 0).all()
    assert (model.predict_proba(X)[:, 1] == 0).all()


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zero_initial_weight_is_an_empty_component(blobs, covariance_type):
    weights, means, precisions = random_init(covariance_type, 2, 3)
    kwargs = dict(covariance_type=covariance_type, weights_init=[1.0, 0.0], means_init=means, precisions_init=precisions)
    start = GaussianMixture(2, max_iter=0, **kwargs).fit(blobs)  # the initial parameters themselves
    assert start.weights_[1] == 0.0
    assert np.isfinite(start.score_samples(blobs)).all()
    assert (start.predict_proba(blobs)[:, 1] == 0).all()
    with pytest.warns(ConvergenceWarning):
        model = GaussianMixture(2, max_iter=3, tol=0.0, **kwargs).fit(blobs)
    assert_sound(model, blobs)
    # From the first M-step on its weight is 10 eps / n, not 0: it stays (nearly) empty.
    assert 0 < model.weights_[1] < 1e-12


def _collapse_case(covariance_type):
    """Data and a start on which a component (the tied covariance) must collapse with reg_covar=0."""
    if covariance_type == "tied":
        # Two distinct points, one component on each: the pooled scatter is zero.
        X = np.r_[np.ones((5, 2)), np.zeros((5, 2))]
        return X, np.array([[0.0, 0.0], [1.0, 1.0]]), "the shared \\(tied\\) covariance"
    # An isolated point far from a cloud: component 1 owns it alone.
    X = np.r_[np.random.default_rng(4).normal(size=(20, 2)), [[50.0, 50.0]]]
    return X, np.array([[0.0, 0.0], [50.0, 50.0]]), "the covariance of component 1"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_collapsing_component_raises_naming_it(covariance_type, dtype):
    X, means, who = _collapse_case(covariance_type)
    X = X.astype(dtype)
    kwargs = dict(covariance_type=covariance_type, means_init=means, random_state=0)
    model = GaussianMixture(2, reg_covar=0.0, **kwargs)
    # scikit-learn's sentence first (code matches it), then which covariance failed.
    with pytest.raises(ValueError, match=f"ill-defined empirical covariance.*increase reg_covar.*{who} is not positive") as error:
        model.fit(X)
    anchor = (
        "Fitting the mixture model failed because some components have ill-defined empirical covariance (for "
        "instance caused by singleton or collapsed samples). Try to decrease the number of components, increase "
        "reg_covar, or scale the input data."
    )
    if dtype == np.float32:  # scikit-learn's float32 message, whole
        anchor += " The numerical accuracy can also be improved by passing float64 data instead of float32."
    assert str(error.value).startswith(anchor)
    assert not hasattr(model, "weights_")  # nothing half-fitted is left behind
    # The same start with a positive reg_covar is the remedy the message names.
    healthy = fit_allowing_non_convergence(GaussianMixture(2, reg_covar=1e-6, **kwargs), X)
    assert_sound(healthy, X)


def test_failed_collapse_keeps_the_previous_fit(blobs):
    model = GaussianMixture(2, random_state=0).fit(blobs)
    before = {name: getattr(model, name).copy() for name in FITTED}
    X, means, _ = _collapse_case("full")
    model.set_params(reg_covar=0.0, means_init=means)
    with pytest.raises(ValueError, match="component 1"):
        model.fit(X)
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(model, name), value)


# ---------------------------------------------------------------------------
# Extreme initial precisions and data at the edge of the floating-point range


@pytest.mark.parametrize(
    "dtype, scale",
    [(np.float64, 1e-300), (np.float64, 1e300), (np.float32, 1e-30), (np.float32, 1e30)],
)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_extreme_precisions_init_one_iteration(blobs, covariance_type, dtype, scale):
    X = blobs.astype(dtype)
    weights, means, precisions = random_init(covariance_type, 3, 3)
    model = GaussianMixture(
        3, covariance_type=covariance_type, weights_init=weights, means_init=means,
        precisions_init=precisions * scale, max_iter=1,
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    assert_sound(model, X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_precisions_init_beyond_float32_is_rejected_for_float32_data(blobs, covariance_type):
    weights, means, precisions = random_init(covariance_type, 2, 3)
    for scale in (1e-60, 1e60):
        model = GaussianMixture(2, covariance_type=covariance_type, precisions_init=precisions * scale, max_iter=0)
        with pytest.raises(ValueError, match="precisions_init.*float32"):
            model.fit(blobs.astype(np.float32))
        model.fit(blobs)  # the same precisions are fine for float64 data
        assert np.isfinite(model.precisions_cholesky_).all()
    with pytest.raises(ValueError, match="means_init.*float32"):
        GaussianMixture(2, covariance_type=covariance_type, means_init=np.full((2, 3), 1e39)).fit(blobs.astype(np.float32))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_densities_that_all_underflow_raise_clearly(blobs, covariance_type):
    """Precisions so large that every row has zero density under every component: an error, not NaN."""
    weights, means, precisions = random_init(covariance_type, 2, 3)
    model = GaussianMixture(
        2, covariance_type=covariance_type, weights_init=weights, means_init=means + 100.0,
        precisions_init=precisions * 1e306, max_iter=1,
    )
    with pytest.raises(ValueError, match="not finite"):
        model.fit(blobs)


def _two_clusters(dtype, scale):
    X = np.random.default_rng(5).normal(size=(40, 2))
    X[:20] += 5
    return (X * scale).astype(dtype)


# The error depends on where the fit first meets the problem: a non-finite
# covariance ("overflow float64"), float32's range ("float32"), densities that
# all underflow when the initial covariances are reg_covar (one point per
# component: "not finite"), or with reg_covar=0 a zero initial covariance
# ("ill-defined"). Every message asks to scale the data.
BEYOND_RANGE_MESSAGE = "(overflow float64|float32|not finite|ill-defined).*(?i:scale the)"
BEYOND_RANGE = [(np.float64, 1e200, 1e-6), (np.float32, 1e25, 1e-6), (np.float32, 1e-25, 0.0)]


@pytest.mark.parametrize("dtype, scale, reg_covar", BEYOND_RANGE)
@pytest.mark.parametrize("init_params", ["random", "random_from_data", "k-means++"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_beyond_the_dtype_range_raise_clearly(covariance_type, init_params, dtype, scale, reg_covar):
    """Variances that the dtype cannot hold give an error naming the cause, never inf/NaN attributes."""
    X = _two_clusters(dtype, scale)
    model = GaussianMixture(2, covariance_type=covariance_type, init_params=init_params, reg_covar=reg_covar, random_state=0)
    with pytest.raises(ValueError, match=BEYOND_RANGE_MESSAGE):
        model.fit(X)
    assert not hasattr(model, "weights_")


@pytest.mark.parametrize("dtype, scale, reg_covar", BEYOND_RANGE)
def test_kmeans_init_beyond_the_dtype_range_raises_clearly(dtype, scale, reg_covar):
    """The same with the default k-means initialisation (fastem/_core/kmeans.py), without numpy warnings."""
    model = GaussianMixture(2, reg_covar=reg_covar, random_state=0)
    with pytest.raises(ValueError, match=BEYOND_RANGE_MESSAGE):
        model.fit(_two_clusters(dtype, scale))


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e150), (np.float64, 1e-150), (np.float32, 1e15), (np.float32, 1e-15)])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_data_near_the_dtype_range_fit_soundly(covariance_type, dtype, scale):
    X = _two_clusters(dtype, scale)
    # reg_covar must be on the data's scale to be a regularisation at all.
    model = GaussianMixture(2, covariance_type=covariance_type, reg_covar=1e-6 * scale**2, random_state=0)
    assert_sound(fit_allowing_non_convergence(model, X), X)
    np.testing.assert_allclose(np.sort(model.means_[:, 0].astype(np.float64)) / scale, [0, 5], atol=0.6)


def test_a_non_finite_row_is_not_hidden_by_a_tied_row():
    """A row exactly between two components (two responsibilities of 1/2) and a
    weight-0 row whose density underflows everywhere, in one block.

    Counted over the block, the tied row's two close components would make up
    for the other row's none, and the block would take the hard path (one
    owner per row): the tie would be lost and the overflow hidden. The fit
    must fail loudly instead, as it does without the tied row.
    """
    rng = np.random.default_rng(0)
    X = np.concatenate([
        [-50.0, 0.0] + rng.normal(size=(60, 2)),
        [50.0, 0.0] + rng.normal(size=(60, 2)),
        [[0.0, 0.0], [1e200, 0.0]],
    ])
    sample_weight = np.ones(len(X))
    sample_weight[-1] = 0.0
    model = GaussianMixture(
        2,
        means_init=[[-50.0, 0.0], [50.0, 0.0]],
        weights_init=[0.5, 0.5],
        precisions_init=np.stack([np.eye(2)] * 2),
        max_iter=1,
        tol=0,
    )
    with pytest.raises(ValueError, match="not finite"):
        model.fit(X, sample_weight=sample_weight)
