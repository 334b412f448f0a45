"""Gaussian mixtures on data with missing values (NaN): exact EM, marginal scores, imputation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from fastem import GaussianMixture, reference
from fastem.datasets import make_mixture
from fastem.mixture import missing
from fastem.mixture.parameters import covariances_from_precisions
from tests.conftest import COVARIANCE_TYPES, random_init
from tests.naive import monotone_normal_mle, normal_em_missing, read_data_csv


def _with_missing(X, fraction, seed, all_missing_rows=()):
    """A copy of X with about ``fraction`` of its entries NaN (completely at random)."""
    X = np.array(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < fraction] = np.nan
    for row in all_missing_rows:
        X[row] = np.nan
    # Keep every column observed somewhere.
    X[0] = np.where(np.isnan(X[0]), 0.5, X[0])
    return X


@pytest.fixture(scope="module")
def incomplete(blobs):
    """The 600 x 3 blobs with 25% of entries missing, two rows entirely missing."""
    return _with_missing(blobs, 0.25, seed=5, all_missing_rows=(7, 300))


def _fit_from(X, covariance_type, n_iter, sample_weight=None, n_components=3, dtype=np.float64):
    weights, means, precisions = random_init(covariance_type, n_components, X.shape[1])
    model = GaussianMixture(
        n_components, covariance_type=covariance_type, weights_init=weights, means_init=means,
        precisions_init=precisions, max_iter=n_iter, tol=0.0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tol=0 never converges
        model.fit(X.astype(dtype), sample_weight=sample_weight)
    start = (weights, means, covariances_from_precisions(precisions, covariance_type))
    return model, start


def _assert_params_close(model, expected, rtol):
    np.testing.assert_allclose(model.weights_, expected["weights"], rtol=rtol)
    np.testing.assert_allclose(model.means_, expected["means"], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(model.covariances_, expected["covariances"], rtol=rtol, atol=rtol)


# ---------------------------------------------------------------------------
# The fast path equals the naive per-row EM


@pytest.mark.parametrize("n_iter", [1, 4])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_em_matches_the_naive_reference(incomplete, covariance_type, n_iter):
    sample_weight = np.random.default_rng(2).uniform(0.2, 3.0, incomplete.shape[0])
    model, start = _fit_from(incomplete, covariance_type, n_iter, sample_weight)
    expected = reference.missing_fit(incomplete, *start, covariance_type, n_iter=n_iter, sample_weight=sample_weight)
    _assert_params_close(model, expected, rtol=1e-10)
    np.testing.assert_allclose(model.lower_bounds_, expected["lower_bounds"], rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_float32_data_fit_in_float32_close_to_float64(incomplete, covariance_type):
    model32, _ = _fit_from(incomplete, covariance_type, 3, dtype=np.float32)
    model64, _ = _fit_from(incomplete, covariance_type, 3)
    assert model32.means_.dtype == np.float32 and model32.covariances_.dtype == np.float32
    np.testing.assert_allclose(model32.means_, model64.means_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model32.covariances_, model64.covariances_, rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def many_chunks():
    """5000 x 4 rows, 30% missing: patterns span several chunks of the kernels."""
    X, _ = make_mixture(
        5000, [0.5, 0.5], [[0.0, 0.0, 0.0, 0.0], [3.0, 1.0, -2.0, 0.5]],
        [np.eye(4), np.diag([1.0, 2.0, 0.5, 1.0])], random_state=4,
    )
    return _with_missing(X, 0.3, seed=6)


def test_several_chunks_match_the_reference(many_chunks):
    model, start = _fit_from(many_chunks, "full", 2, n_components=2)
    expected = reference.missing_fit(many_chunks, *start, "full", n_iter=2)
    _assert_params_close(model, expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_results_are_bit_identical_for_any_thread_count(many_chunks, covariance_type):
    fits = [
        GaussianMixture(2, covariance_type=covariance_type, random_state=0, n_jobs=n_jobs).fit(many_chunks)
        for n_jobs in (1, 2)
    ]
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))
    np.testing.assert_array_equal(fits[0].impute(many_chunks), fits[1].impute(many_chunks))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_observed_data_log_likelihood_never_decreases(incomplete, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=1, tol=1e-7, max_iter=1000).fit(incomplete)
    bounds = np.array(model.lower_bounds_)
    assert len(bounds) > 5
    assert np.all(np.diff(bounds) >= -1e-12 * np.abs(bounds[1:]))
    # The lower bound is the mean score of the data, all-NaN rows included (log 1 = 0).
    refit = model.score(incomplete)
    assert refit >= bounds[-1] - 1e-9


def test_integer_sample_weights_equal_repeated_rows(incomplete):
    counts = np.random.default_rng(3).integers(0, 3, incomplete.shape[0])
    counts[0] = 1
    weighted, start = _fit_from(incomplete, "full", 3, sample_weight=counts.astype(float))
    repeated, _ = _fit_from(np.repeat(incomplete, counts, axis=0), "full", 3)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-10)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, rtol=1e-10)


# ---------------------------------------------------------------------------
# One normal (k = 1): the classic data sets with published estimates

# Little & Rubin (2002), section 7.4, as printed to three decimals (the cement
# data); sigma_35 is -47.556 (printed copies of -47.566 disagree with the exact MLE).
LITTLE_RUBIN_CEMENT_MEAN = [6.655, 49.965, 11.769, 27.047, 95.423]
LITTLE_RUBIN_CEMENT_COV = [
    [21.826, 20.864, -24.900, -11.473, 46.953],
    [20.864, 238.012, -15.817, -252.072, 195.604],
    [-24.900, -15.817, 37.870, -9.599, -47.556],
    [-11.473, -252.072, -9.599, 294.183, -190.599],
    [46.953, 195.604, -47.556, -190.599, 208.905],
]
# R's mvnmle::mlest (a quasi-Newton optimiser, so accurate to about 1e-5
# relative): mlest(apple) and mlest(missvals, iterlim = 400).
MLEST_APPLE_MEAN = [14.722265587140136, 49.333248446740669]
MLEST_APPLE_COV = [[89.534149681512773, -90.696532296720122], [-90.696532296720122, 114.69470032845283]]
MLEST_CEMENT_MEAN = [6.6551660306808111, 49.965258011630283, 11.769230501209805, 27.047090472686431, 95.423076760497381]


def _normal_fit(X):
    return GaussianMixture(1, reg_covar=0.0, tol=1e-15, max_iter=2000).fit(X)


@pytest.mark.parametrize("name", ["mvnmle_apple.csv", "mvnmle_missvals.csv"])
def test_one_component_reproduces_the_closed_form_mle(name):
    X = read_data_csv(name)
    mean, cov = monotone_normal_mle(X)
    model = _normal_fit(X)
    assert model.converged_
    np.testing.assert_allclose(model.means_[0], mean, rtol=1e-6)
    np.testing.assert_allclose(model.covariances_[0], cov, rtol=1e-6, atol=1e-6 * np.abs(cov).max())
    # The textbook EM, written naively, reaches the same point.
    textbook_mean, textbook_cov = normal_em_missing(X, 1000)
    np.testing.assert_allclose(textbook_mean, mean, rtol=1e-9)
    np.testing.assert_allclose(textbook_cov, cov, rtol=1e-9, atol=1e-9 * np.abs(cov).max())


def test_published_estimates():
    apple = _normal_fit(read_data_csv("mvnmle_apple.csv"))
    np.testing.assert_allclose(apple.means_[0], MLEST_APPLE_MEAN, rtol=1e-5)
    np.testing.assert_allclose(apple.covariances_[0], MLEST_APPLE_COV, rtol=1e-5)
    np.testing.assert_allclose(apple.means_[0], [14.722, 49.333], atol=5e-4)
    cement = _normal_fit(read_data_csv("mvnmle_missvals.csv"))
    np.testing.assert_allclose(cement.means_[0], MLEST_CEMENT_MEAN, rtol=1e-5)
    np.testing.assert_allclose(cement.means_[0], LITTLE_RUBIN_CEMENT_MEAN, atol=5e-4)
    np.testing.assert_allclose(cement.covariances_[0], LITTLE_RUBIN_CEMENT_COV, atol=5e-4)


# ---------------------------------------------------------------------------
# Scores, labels and probabilities of rows with NaN


@pytest.fixture(scope="module")
def fitted(incomplete):
    return {
        covariance_type: GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(incomplete)
        for covariance_type in COVARIANCE_TYPES
    }


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_score_samples_is_the_marginal_density_of_the_observed_values(fitted, incomplete, covariance_type):
    model = fitted[covariance_type]
    full = reference.full_covariances(model.covariances_, covariance_type, 3, 3)
    rows = incomplete[:40]
    expected = []
    for x in rows:
        o = ~np.isnan(x)
        if not o.any():
            expected.append(0.0)
            continue
        density = sum(
            w * multivariate_normal(mean=m[o], cov=c[np.ix_(o, o)]).pdf(x[o])
            for w, m, c in zip(model.weights_, model.means_, full)
        )
        expected.append(np.log(density))
    np.testing.assert_allclose(model.score_samples(rows), expected, rtol=1e-10)
    assert model.score(rows) == pytest.approx(np.mean(expected), rel=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_predictions_are_the_posteriors_given_the_observed_values(fitted, incomplete, covariance_type):
    model = fitted[covariance_type]
    resp, log_norm, _, _ = reference.missing_e_step(
        incomplete, model.weights_, model.means_, model.covariances_, covariance_type
    )
    np.testing.assert_allclose(model.predict_proba(incomplete), resp, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(incomplete), np.argmax(resp, axis=1))
    np.testing.assert_allclose(model.score_samples(incomplete), log_norm, rtol=1e-10, atol=1e-12)


def test_a_row_with_every_value_missing(fitted, incomplete):
    model = fitted["full"]
    X = incomplete[5:10].copy()
    X[2] = np.nan
    assert model.score_samples(X)[2] == 0.0
    np.testing.assert_allclose(model.predict_proba(X)[2], model.weights_, rtol=1e-12)
    imputed = model.impute(X)
    np.testing.assert_allclose(imputed[2], model.weights_ @ model.means_, rtol=1e-12)


def test_fit_predict_equals_fit_then_predict(incomplete):
    labels = GaussianMixture(3, random_state=0).fit_predict(incomplete)
    model = GaussianMixture(3, random_state=0).fit(incomplete)
    np.testing.assert_array_equal(labels, model.predict(incomplete))


# ---------------------------------------------------------------------------
# Imputation


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_impute_is_the_conditional_expectation(fitted, incomplete, covariance_type):
    model = fitted[covariance_type]
    before = incomplete.copy()
    imputed = model.impute(incomplete)
    np.testing.assert_array_equal(incomplete, before)  # the input is not modified
    expected = reference.missing_impute(incomplete, model.weights_, model.means_, model.covariances_, covariance_type)
    np.testing.assert_allclose(imputed, expected, rtol=1e-10, atol=1e-12)
    observed = ~np.isnan(incomplete)
    np.testing.assert_array_equal(imputed[observed], incomplete[observed])
    assert not np.isnan(imputed).any()


def test_impute_sample_is_seeded_and_keeps_observed_values(fitted, incomplete):
    model = fitted["full"]
    first = model.impute(incomplete, method="sample", random_state=3)
    again = model.impute(incomplete, method="sample", random_state=np.random.RandomState(3))
    other = model.impute(incomplete, method="sample", random_state=4)
    np.testing.assert_array_equal(first, again)
    missing_entries = np.isnan(incomplete)
    assert not np.isnan(first).any()
    assert np.all(first[missing_entries] != other[missing_entries])
    np.testing.assert_array_equal(first[~missing_entries], incomplete[~missing_entries])


def test_impute_sample_draws_from_the_conditional_distribution():
    # One component: x2 given x1 = 1 is N(mu2 + s12 / s11 (1 - mu1), s22 - s12^2 / s11).
    cov = np.array([[2.0, 1.2], [1.2, 1.5]])
    mean = np.array([0.5, -1.0])
    model = GaussianMixture(1, weights_init=[1.0], means_init=[mean], precisions_init=[np.linalg.inv(cov)], max_iter=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.random.default_rng(0).normal(size=(10, 2)))
    X = np.tile([1.0, np.nan], (20000, 1))
    draws = model.impute(X, method="sample", random_state=0)[:, 1]
    expected_mean = mean[1] + cov[0, 1] / cov[0, 0] * (1.0 - mean[0])
    expected_var = cov[1, 1] - cov[0, 1] ** 2 / cov[0, 0]
    standard_error = np.sqrt(expected_var / draws.size)
    assert abs(draws.mean() - expected_mean) < 5 * standard_error
    assert draws.var() == pytest.approx(expected_var, rel=0.05)
    np.testing.assert_allclose(model.impute(X[:3])[:, 1], expected_mean, rtol=1e-12)


def test_impute_sample_picks_components_by_their_posterior():
    # Two far-apart components; a row whose observed value sits on one gets draws from that one only.
    model = GaussianMixture(
        2, covariance_type="diag", weights_init=[0.5, 0.5], means_init=[[0.0, 0.0], [100.0, 100.0]],
        precisions_init=[[1.0, 1.0], [1.0, 1.0]], max_iter=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(np.zeros((4, 2)) + [[0, 0], [1, 1], [100, 100], [101, 101]])
    X = np.array([[np.nan, np.nan]] * 4000 + [[100.0, np.nan]] * 100)
    draws = model.impute(X, method="sample", random_state=1)
    share_high = np.mean(draws[:4000, 0] > 50)
    assert 0.45 < share_high < 0.55  # no observed value: the weights
    assert np.all(draws[4000:, 1] > 90)


# ---------------------------------------------------------------------------
# On synthetic mixtures, 20% missing completely at random


@pytest.fixture(scope="module")
def synthetic():
    means = [[0.0, 0.0, 0.0, 0.0], [4.0, 4.0, 0.0, 2.0], [-3.0, 4.0, 3.0, -2.0]]
    covariances = [
        [[1.0, 0.8, 0.2, 0.0], [0.8, 1.0, 0.1, 0.0], [0.2, 0.1, 1.0, 0.5], [0.0, 0.0, 0.5, 1.0]],
        [[1.0, -0.6, 0.0, 0.3], [-0.6, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0], [0.3, 0.0, 0.0, 1.0]],
        np.eye(4) * 0.7,
    ]
    X, _ = make_mixture(3000, [0.4, 0.35, 0.25], means, covariances, random_state=11)
    return X, _with_missing(X, 0.2, seed=12)


def test_parameters_are_recovered_close_to_the_complete_data_fit(synthetic):
    complete, incomplete = synthetic
    full_fit = GaussianMixture(3, random_state=0).fit(complete)
    order_full = np.argsort(full_fit.means_[:, 0])
    partial = GaussianMixture(3, random_state=0).fit(incomplete)
    order = np.argsort(partial.means_[:, 0])
    np.testing.assert_allclose(partial.weights_[order], full_fit.weights_[order_full], atol=0.02)
    np.testing.assert_allclose(partial.means_[order], full_fit.means_[order_full], atol=0.1)
    np.testing.assert_allclose(partial.covariances_[order], full_fit.covariances_[order_full], atol=0.15)


def test_imputation_beats_column_means_and_iterative_imputer(synthetic):
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    complete, incomplete = synthetic
    hidden = np.isnan(incomplete)

    def rmse(filled):
        return np.sqrt(np.mean((filled[hidden] - complete[hidden]) ** 2))

    ours = rmse(GaussianMixture(3, random_state=0).fit(incomplete).impute(incomplete))
    column_means = rmse(np.where(hidden, np.nanmean(incomplete, axis=0), incomplete))
    iterative = rmse(IterativeImputer(random_state=0, max_iter=20).fit_transform(incomplete))
    assert ours < column_means
    assert ours < iterative


# ---------------------------------------------------------------------------
# Every initialisation, warm start, restarts


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_init_method_fits_data_with_nan(incomplete, init_params):
    model = GaussianMixture(3, init_params=init_params, random_state=0, n_init=2).fit(incomplete)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert np.isfinite(getattr(model, name)).all()
    assert np.all(np.diff(model.lower_bounds_) >= -1e-12 * np.abs(model.lower_bounds_[1:]))


def test_warm_start_continues_on_data_with_nan(incomplete):
    model = GaussianMixture(3, random_state=0, warm_start=True, max_iter=2, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(incomplete)
        first = model.lower_bound_
        model.fit(incomplete)
    assert model.lower_bounds_[0] >= first - 1e-12


def test_initialisation_runs_on_column_mean_filled_data(incomplete):
    data = missing.MissingData(incomplete, None)
    filled = data.filled()
    observed = ~np.isnan(incomplete)
    np.testing.assert_array_equal(filled[observed], incomplete[observed])
    column_means = np.nanmean(incomplete, axis=0)
    rows, columns = np.nonzero(~observed)
    np.testing.assert_allclose(filled[rows, columns], column_means[columns], rtol=1e-12)


# Not 'random': uniform random responsibilities on two symmetric clusters lead
# EM to the saddle point between them, with or without the all-NaN rows.
@pytest.mark.parametrize("init_params", ["kmeans", "random_from_data", "k-means++"])
def test_rows_with_no_observed_value_change_nothing(init_params):
    # Two clusters and many all-NaN rows: those rows must not reach the
    # initialisation (as column-mean points they would pull the start to the
    # middle, or be drawn as starting points) nor the fit.
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(100, 2)) + [8.0, 0.0], rng.normal(size=(100, 2)) - [8.0, 0.0]])
    X[rng.random(X.shape) < 0.1] = np.nan
    X[0] = [8.0, 0.0]
    padded = np.vstack([X, np.full((800, 2), np.nan)])
    weights = np.r_[np.ones(200), np.zeros(800)]
    # The same rows with weight 0 for the all-NaN ones: the same random draws,
    # the same fixed point (the lower bounds differ in scale: a row of weight
    # 0 does not count in the mean, an unweighted all-NaN row counts log 1).
    options = dict(init_params=init_params, random_state=0, tol=1e-12, max_iter=1000)
    expected = GaussianMixture(2, **options).fit(padded, sample_weight=weights)
    model = GaussianMixture(2, **options).fit(padded)
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-5, atol=1e-6)
    assert np.sort(np.abs(model.means_[:, 0])).min() > 7.0


def test_data_without_nan_never_use_the_missing_value_path(blobs, monkeypatch):
    expected = GaussianMixture(3, random_state=0).fit(blobs)

    def refuse(*args, **kwargs):
        raise AssertionError("the missing-value path was used for complete data")

    monkeypatch.setattr(missing, "MissingData", refuse)
    monkeypatch.setattr(missing, "weighted_log_prob", refuse)
    model = GaussianMixture(3, random_state=0).fit(blobs)
    model.predict_proba(blobs)
    np.testing.assert_array_equal(model.means_, expected.means_)


# ---------------------------------------------------------------------------
# Bad input


def test_a_column_with_no_observed_value_is_named(incomplete):
    X = incomplete.copy()
    X[:, 1] = np.nan
    with pytest.raises(ValueError, match="Column 1 of X has no observed value"):
        GaussianMixture(2).fit(X)


def test_infinity_is_still_rejected(incomplete, fitted):
    X = incomplete.copy()
    X[3, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2).fit(X)
    for method in ("predict", "predict_proba", "score_samples", "impute"):
        with pytest.raises(ValueError, match="infinity"):
            getattr(fitted["full"], method)(X)


def test_a_column_observed_only_in_rows_of_weight_zero_is_named(incomplete):
    X = incomplete.copy()
    X[5:, 2] = np.nan
    X[:5, 2] = 1.0
    weights = np.r_[np.zeros(5), np.ones(len(X) - 5)]
    with pytest.raises(ValueError, match="Column 2 of X has no observed value in the rows of positive sample_weight"):
        GaussianMixture(2).fit(X, sample_weight=weights)


def test_too_few_rows_with_observed_values():
    X = np.full((6, 2), np.nan)
    X[0] = [1.0, 2.0]
    X[1] = [3.0, np.nan]
    with pytest.raises(ValueError, match="2 rows with an observed value.*n_components = 3"):
        GaussianMixture(3).fit(X)


def test_impute_rejects_bad_arguments(fitted, incomplete):
    model = fitted["full"]
    with pytest.raises(ValueError, match="method must be one of"):
        model.impute(incomplete, method="median")
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.impute(incomplete[:, :2])
    with pytest.raises(Exception, match="not fitted"):
        GaussianMixture(2).impute(incomplete)


def test_inputs_are_never_modified_and_attributes_hold_no_nan(incomplete):
    before = incomplete.copy()
    weights = np.ones(incomplete.shape[0])
    model = GaussianMixture(3, random_state=0).fit(incomplete, sample_weight=weights)
    model.predict_proba(incomplete)
    model.impute(incomplete, method="sample", random_state=0)
    np.testing.assert_array_equal(incomplete, before)
    np.testing.assert_array_equal(weights, 1.0)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "lower_bounds_"):
        assert np.isfinite(np.asarray(getattr(model, name))).all()


def test_data_without_nan_impute_to_a_copy(fitted, blobs):
    imputed = fitted["full"].impute(blobs)
    np.testing.assert_array_equal(imputed, blobs)
    assert not np.shares_memory(imputed, blobs)


def test_impute_reports_rows_with_zero_density(fitted):
    model = fitted["full"]
    X = np.array([[0.0, np.nan, 1.0], [1e200, np.nan, 0.0]])
    with pytest.raises(ValueError, match="Row 1 of X has zero density under every component"):
        model.impute(X)
    with pytest.raises(ValueError, match="Row 1 of X has zero density"):
        model.impute(X, method="sample", random_state=0)
