"""predict, predict_proba, score_samples and score: the fused kernels against the reference.

The kernels write their output block by block (``_inference_output``); these
tests hold them to ``fastem.reference`` for every covariance type and dtype,
to the documented rule for rows infinitely far from every component, to the
same answer for any thread count, and to allocating nothing of size
n_samples x n_components beyond ``predict_proba``'s result.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.special import logsumexp

from fastem import GaussianMixture, reference
from fastem.mixture._inference_output import reduce_log_prob
from fastem.mixture.steps import weighted_log_prob
from tests.conftest import COVARIANCE_TYPES, DTYPES, init_kwargs

RTOL = {np.float64: 1e-10, np.float32: 2e-4}

# Farther than any squared distance the dtype can hold: every log-density is -inf.
INFINITELY_FAR = {np.float64: 1e200, np.float32: 1e25}


def fitted(covariance_type, dtype, n_components=3, n_features=3):
    """A model one EM iteration from the fixed start of ``init_kwargs``."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, n_features)) * 2.0
    model = GaussianMixture(max_iter=1, tol=0.0, random_state=0, **init_kwargs(covariance_type, n_components, n_features, seed=2))
    model._silent_fit = True  # one iteration does not converge, by design
    return model.fit(X.astype(dtype))


def query_rows(dtype, n_features=3):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, n_features)) * 3.0  # more than one chunk of rows
    X[10] = 40.0  # far from every component: log-densities of order -1e3, still finite
    X[11] = -1e6  # farther: of order -1e12, finite, one component takes it all
    return X.astype(dtype)


def reference_log_prob(model, X):
    """log w_j + log N(x | j) in float64 from the model's parameters, rounded to the model's dtype."""
    return reference.weighted_log_prob(
        X.astype(np.float64), model.weights_.astype(np.float64), model.means_.astype(np.float64),
        model.covariances_.astype(np.float64), model.covariance_type,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_inference_matches_reference(covariance_type, dtype):
    model = fitted(covariance_type, dtype)
    X = query_rows(dtype)
    log_prob = reference_log_prob(model, X)
    expected_score = logsumexp(log_prob, axis=1)
    expected_proba = np.exp(log_prob - expected_score[:, None])
    rtol = RTOL[dtype]

    score = model.score_samples(X)
    assert score.dtype == dtype and score.shape == (len(X),)
    np.testing.assert_allclose(score, expected_score, rtol=rtol)

    proba = model.predict_proba(X)
    assert proba.dtype == dtype and proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba, expected_proba, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=rtol)
    assert np.isfinite(proba).all() and np.isfinite(score).all()

    labels = model.predict(X)
    assert labels.dtype == np.int64
    # Rows whose two best components are within rounding may legitimately differ.
    top_two = np.sort(log_prob, axis=1)[:, -2:]
    clear = (top_two[:, 1] - top_two[:, 0]) > 1e-3
    np.testing.assert_array_equal(labels[clear], np.argmax(log_prob, axis=1)[clear])
    assert model.score(X) == pytest.approx(float(np.mean(expected_score)), rel=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_row_infinitely_far_gets_the_prior_and_no_nan(covariance_type, dtype):
    model = fitted(covariance_type, dtype)
    X = query_rows(dtype)[:20]
    X[5] = INFINITELY_FAR[dtype]
    X[6, 0] = -INFINITELY_FAR[dtype]
    proba = model.predict_proba(X)
    assert not np.isnan(proba).any()
    for row in (5, 6):
        np.testing.assert_allclose(proba[row], model.weights_ / model.weights_.sum(), rtol=1e-6)
    score = model.score_samples(X)
    assert score[5] == -np.inf and score[6] == -np.inf
    assert np.isfinite(np.delete(score, [5, 6])).all()
    labels = model.predict(X)
    assert labels[5] == labels[6] == np.argmax(model.weights_)
    # The other rows are untouched by their neighbours.
    others = np.delete(np.arange(20), [5, 6])
    np.testing.assert_array_equal(proba[others], model.predict_proba(X[others]))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_rows_with_missing_values_follow_the_same_rules(covariance_type):
    """``reduce_log_prob`` (rows with NaN) and the fused kernels agree on complete rows, far ones included."""
    model = fitted(covariance_type, np.float64)
    X = query_rows(np.float64)[:300]
    X[7] = INFINITELY_FAR[np.float64]
    log_prob = weighted_log_prob(X, model._params(), model._layout)
    for output, method in (("score", "score_samples"), ("labels", "predict"), ("proba", "predict_proba")):
        from_numpy = reduce_log_prob(log_prob, output, model.weights_, np.float64)
        np.testing.assert_allclose(from_numpy, getattr(model, method)(X), rtol=1e-12, atol=1e-15)
    # A row with NaN far away in its observed coordinate: the prior, no NaN.
    incomplete = X[:10].copy()
    incomplete[3, 1:] = np.nan
    incomplete[4] = np.nan
    incomplete[5, 0] = np.nan
    incomplete[5, 1] = INFINITELY_FAR[np.float64]
    proba = model.predict_proba(incomplete)
    assert not np.isnan(proba).any()
    np.testing.assert_allclose(proba[5], model.weights_, rtol=1e-12)
    np.testing.assert_allclose(proba[4], model.weights_, rtol=1e-12)  # nothing observed: the prior too
    assert model.score_samples(incomplete)[4] == 0.0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_inference_is_bit_identical_for_any_thread_count(covariance_type):
    model = fitted(covariance_type, np.float64)
    X = query_rows(np.float64)
    results = {}
    for n_jobs in (1, 2):
        model.set_params(n_jobs=n_jobs)
        results[n_jobs] = (model.predict_proba(X), model.score_samples(X), model.predict(X), model.score(X))
    for one, two in zip(results[1], results[2]):
        np.testing.assert_array_equal(one, two)


def test_float32_results_keep_the_float32_dtype():
    model = fitted("full", np.float32)
    X32 = query_rows(np.float32)[:100]
    assert model.score_samples(X32).dtype == np.float32
    assert model.predict_proba(X32).dtype == np.float32
    assert model.predict(X32).dtype == np.int64
    assert model.score(X32).dtype == np.float32 and model.score(X32) == model.score_samples(X32).mean()
    assert model.sample(5)[0].dtype == np.float32
    # float64 on either side gives float64, as in scikit-learn.
    assert model.score_samples(X32.astype(np.float64)).dtype == np.float64
    model64 = fitted("full", np.float64)
    assert model64.predict_proba(X32).dtype == np.float64
    # ... and is computed in float64: float32 rows widened first, as scikit-learn does.
    np.testing.assert_array_equal(model64.predict_proba(X32), model64.predict_proba(X32.astype(np.float64)))
    np.testing.assert_array_equal(model64.score_samples(X32), model64.score_samples(X32.astype(np.float64)))
    # Criteria sum the float32 scores in float64.
    expected_bic = -2 * model.score_samples(X32).astype(np.float64).sum() + model._n_parameters() * np.log(100)
    assert model.bic(X32) == pytest.approx(expected_bic, rel=1e-12)


@pytest.mark.parametrize("method", ["predict", "score_samples", "predict_proba"])
def test_inference_allocates_nothing_of_size_n_by_k_beyond_its_result(method):
    n_components = 16
    model = fitted("diag", np.float64, n_components=n_components, n_features=2)
    X = np.random.default_rng(3).normal(size=(40_000, 2))
    result = getattr(model, method)(X)  # compiled and warm
    n_by_k = X.shape[0] * n_components * 8
    tracemalloc.start()
    try:
        result = getattr(model, method)(X)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # tracemalloc sees NumPy's allocations, not Numba's: this holds the
    # Python side (no n x k log-probabilities, no argmax over them). The
    # kernels' own scratch (a few kB per chunk) is measured with the peak
    # resident memory by the benchmark (`inference_full_d8_k16`).
    assert peak - result.nbytes < n_by_k / 8, (peak, result.nbytes)
