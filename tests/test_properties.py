"""Property-based tests: random valid mixtures and points, every covariance type, both dtypes.

For each drawn mixture, the model is built through the public API
(``max_iter=0`` with the drawn ``weights_init``/``means_init``/
``precisions_init``) and compared with the SciPy reference
(``fastem.reference``): per-component log-densities, ``score_samples`` and
``predict_proba`` agree within a rounding bound, responsibilities sum to one
and nothing is NaN. Hypothesis runs derandomized (the same examples on every
run) with few, tiny examples, so this costs seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.special import logsumexp

from fastem import GaussianMixture, reference
from fastem.mixture._unrolled_full import MAX_UNROLLED_FEATURES
from fastem.mixture.steps import weighted_log_prob
from tests.conftest import COVARIANCE_TYPES, DTYPES

PROPERTY_SETTINGS = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,  # the first example may wait for Numba to load or compile a kernel
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def finite_floats(low, high):
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def mixtures(draw, covariance_type):
    """(weights, means, precisions, points) of a random valid mixture; tiny sizes.

    Precision matrices have eigenvalues in [0.1, 10] (condition number <= 100)
    and random orientation; points lie within a few standard deviations of the
    means and sometimes far out, where the densities differ by many orders.
    """
    n_components = draw(st.integers(1, 3))
    n_features = draw(st.integers(1, 3))
    n_points = draw(st.integers(max(2, n_components), 8))
    raw_weights = draw(arrays(np.float64, n_components, elements=finite_floats(0.05, 1.0)))
    weights = raw_weights / raw_weights.sum()
    means = draw(arrays(np.float64, (n_components, n_features), elements=finite_floats(-5, 5)))
    eigenvalues = st.floats(0.1, 10.0)

    def precision_matrix():
        values = draw(arrays(np.float64, n_features, elements=eigenvalues))
        seed = draw(arrays(np.float64, (n_features, n_features), elements=finite_floats(-1, 1)))
        rotation, _ = np.linalg.qr(seed + 3 * np.eye(n_features))  # shifted: never singular
        matrix = (rotation * values) @ rotation.T
        return (matrix + matrix.T) / 2

    if covariance_type == "full":
        precisions = np.stack([precision_matrix() for _ in range(n_components)])
    elif covariance_type == "tied":
        precisions = precision_matrix()
    elif covariance_type == "diag":
        precisions = draw(arrays(np.float64, (n_components, n_features), elements=eigenvalues))
    else:
        precisions = draw(arrays(np.float64, n_components, elements=eigenvalues))
    points = draw(arrays(np.float64, (n_points, n_features), elements=finite_floats(-12, 12)))
    return weights, means, precisions, points


def reference_covariances(model):
    """Covariances implied by the model's stored (possibly float32) precision Cholesky factors, in float64."""
    prec_chol = model.precisions_cholesky_.astype(np.float64)
    if model.covariance_type == "full":
        return np.linalg.inv(prec_chol @ np.swapaxes(prec_chol, 1, 2))
    if model.covariance_type == "tied":
        return np.linalg.inv(prec_chol @ prec_chol.T)
    return 1.0 / prec_chol**2


def projection_magnitude(model, X):
    """sum_c (sum_f |x_f - mean_f| |P_fc|)^2 per point and component: the scale of the rounding error
    of the squared Mahalanobis distance computed as |(x - mean) P|^2 in the data dtype."""
    diff = np.abs(X.astype(np.float64)[:, None, :] - model.means_.astype(np.float64)[None])  # (n, k, d)
    prec_chol = np.abs(model.precisions_cholesky_.astype(np.float64))
    n_components, n_features = model.means_.shape
    if model.covariance_type == "full":
        projected = np.einsum("nkf,kfc->nkc", diff, prec_chol)
    elif model.covariance_type == "tied":
        projected = np.einsum("nkf,fc->nkc", diff, prec_chol)
    elif model.covariance_type == "diag":
        projected = diff * prec_chol[None]
    else:
        projected = diff * prec_chol[None, :, None]
    return (projected**2).sum(axis=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_densities_and_responsibilities_match_reference(covariance_type, dtype):
    @PROPERTY_SETTINGS
    @given(mixture=mixtures(covariance_type))
    def check(mixture):
        weights, means, precisions, points = mixture
        X = points.astype(dtype)
        model = GaussianMixture(
            len(weights), covariance_type=covariance_type, weights_init=weights, means_init=means,
            precisions_init=precisions, max_iter=0,
        ).fit(X)
        # The reference evaluates exactly the parameters the model holds
        # (rounded to the data dtype), in float64.
        expected = reference.weighted_log_prob(
            X.astype(np.float64), model.weights_.astype(np.float64), model.means_.astype(np.float64),
            reference_covariances(model), covariance_type,
        )
        ours = weighted_log_prob(X, model._params(), covariance_type)
        eps = np.finfo(dtype).eps
        n_features = X.shape[1]
        # float64: both sides are accurate to a few ulps of the terms involved.
        # float32: differences and projections are rounded in float32.
        tolerance = 16 * (n_features + 1) * eps * (1 + np.abs(expected) + projection_magnitude(model, X))
        assert np.isfinite(ours).all()
        assert (np.abs(ours - expected) <= tolerance).all(), np.max(np.abs(ours - expected) / tolerance)

        score = model.score_samples(X)
        expected_score = logsumexp(expected, axis=1)
        resp = np.exp(expected - expected_score[:, None])
        # Scores and responsibilities are returned in the data dtype: one more rounding.
        output_eps = np.finfo(dtype).eps
        score_tolerance = (resp * tolerance).sum(axis=1) + output_eps * np.abs(expected_score) + 1e-12
        assert np.isfinite(score).all()
        assert (np.abs(score - expected_score) <= score_tolerance).all()

        proba = model.predict_proba(X)
        assert np.isfinite(proba).all()
        assert (proba >= 0).all()
        np.testing.assert_allclose(proba.sum(axis=1, dtype=np.float64), 1.0, rtol=0, atol=len(weights) * output_eps + 1e-12)
        # A responsibility moves by at most twice the largest log-density error of its row.
        row_error = 2 * tolerance.max(axis=1, keepdims=True) + output_eps + 1e-12
        assert (np.abs(proba - resp) <= row_error).all()
        np.testing.assert_array_equal(model.predict(X), np.argmax(ours, axis=1))

    check()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_features", range(1, MAX_UNROLLED_FEATURES + 2))
def test_full_log_densities_match_reference_over_several_blocks(n_features, dtype):
    # Two to MAX_UNROLLED_FEATURES features have generated log-density code
    # (and two a fused load); one and more take the general loops. Enough rows
    # for several blocks and a partial last one, so the vectorised loop bodies
    # run, not only their scalar remainders.
    rng = np.random.default_rng(n_features)
    n_components = 3
    X = rng.normal(scale=3.0, size=(300, n_features)).astype(dtype)
    means = rng.normal(scale=2.0, size=(n_components, n_features))
    factors = rng.normal(size=(n_components, n_features, n_features))
    precisions = factors @ np.swapaxes(factors, 1, 2) + np.eye(n_features)
    model = GaussianMixture(
        n_components, weights_init=[0.2, 0.3, 0.5], means_init=means, precisions_init=precisions, max_iter=0,
    ).fit(X)
    expected = reference.weighted_log_prob(
        X.astype(np.float64), model.weights_.astype(np.float64), model.means_.astype(np.float64),
        reference_covariances(model), "full",
    )
    ours = weighted_log_prob(X, model._params(), "full")
    tolerance = 16 * (n_features + 1) * np.finfo(dtype).eps * (1 + np.abs(expected) + projection_magnitude(model, X))
    assert (np.abs(ours - expected) <= tolerance).all()
