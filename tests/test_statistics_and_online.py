"""The public SufficientStatistics (compute, merge, M-step) and online EM (partial_fit)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import COVARIANCE_TYPES, init_kwargs
from fastem import ConvergenceWarning, GaussianMixture, SufficientStatistics, reference
from fastem.datasets import make_mixture
from fastem.mixture.streaming import ONLINE_DECAY

ARRAYS = ("resp_sum", "first", "second", "shift")


def fitted(X, covariance_type, k=3):
    return GaussianMixture(k, covariance_type=covariance_type, random_state=0).fit(X)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_two_halves_merged_equal_the_whole(big_blobs, covariance_type):
    X = big_blobs
    model = fitted(X, covariance_type, 5)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    whole = model.compute_statistics(X, sample_weight=weights)
    halves = [model.compute_statistics(X[s], sample_weight=weights[s]) for s in (slice(0, 1777), slice(1777, None))]
    copies = [{name: getattr(h, name).copy() for name in ARRAYS} for h in halves]
    merged = halves[0].merge(halves[1])
    for name in ARRAYS:
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-12, atol=1e-12 * np.abs(getattr(whole, name)).max())
        for half, copy in zip(halves, copies):
            np.testing.assert_array_equal(getattr(half, name), copy[name])  # inputs unchanged
    assert merged.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    assert merged.weight_total == pytest.approx(weights.sum(), rel=1e-12)
    assert merged is not halves[0] and merged is not halves[1]
    assert (halves[0] + halves[1]).weight_total == merged.weight_total


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_statistics_match_the_reference_sums(blobs, covariance_type):
    model = fitted(blobs, covariance_type)
    stats = model.compute_statistics(blobs)
    resp, log_norm = reference.e_step(blobs, model.weights_, model.means_, model.covariances_, covariance_type)
    shift = model.means_
    np.testing.assert_allclose(stats.resp_sum, resp.sum(axis=0), rtol=1e-10)
    np.testing.assert_allclose(stats.first, resp.T @ blobs - resp.sum(axis=0)[:, None] * shift, atol=1e-9)
    scatter = np.stack([((blobs - shift[j]).T * resp[:, j]) @ (blobs - shift[j]) for j in range(3)])
    expected = {"full": scatter, "tied": scatter.sum(axis=0)}.get(
        covariance_type, np.diagonal(scatter, axis1=1, axis2=2))
    np.testing.assert_allclose(stats.second, expected, rtol=1e-10, atol=1e-9)
    assert stats.log_likelihood == pytest.approx(log_norm.sum(), rel=1e-10)
    assert stats.weight_total == blobs.shape[0]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_statistics_under_other_parameters_merge_exactly(blobs, covariance_type):
    # Parts computed under different means (shifts) are moved to one shift first.
    a = fitted(blobs, covariance_type)
    b = GaussianMixture(3, covariance_type=covariance_type, random_state=5, max_iter=0).fit(blobs)
    b.__dict__.update({name: getattr(a, name) for name in ("weights_", "covariances_", "precisions_cholesky_")})
    b.means_ = a.means_ + 0.75  # other centres, same component count
    first, second = a.compute_statistics(blobs[:250]), b.compute_statistics(blobs[250:])
    merged = first.merge(second)
    moved = second.shifted_to(first.shift)
    np.testing.assert_allclose(moved.shifted_to(second.shift).second, second.second, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(merged.shift, first.shift)
    np.testing.assert_allclose(merged.second, first.second + moved.second, rtol=1e-14)
    # Shifting changes the centre, not the statistics: the M-step gives the same model.
    one = GaussianMixture(3, covariance_type=covariance_type).update_from_statistics(second)
    two = GaussianMixture(3, covariance_type=covariance_type).update_from_statistics(moved)
    np.testing.assert_allclose(one.means_, two.means_, rtol=1e-12)
    np.testing.assert_allclose(one.covariances_, two.covariances_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_update_from_statistics_is_one_em_iteration(blobs, covariance_type):
    model = fitted(blobs, covariance_type)
    model.set_params(warm_start=True, max_iter=1)
    stepped = GaussianMixture(**model.get_params())
    stepped.__dict__.update({k: v for k, v in vars(model).items() if k.endswith("_")})
    with warnings.catch_warnings():  # one iteration may not converge
        warnings.simplefilter("ignore", ConvergenceWarning)
        stepped.fit(blobs)
    updated = GaussianMixture(3, covariance_type=covariance_type).update_from_statistics(model.compute_statistics(blobs))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(updated, name), getattr(stepped, name), rtol=1e-12, atol=1e-14, err_msg=name)
    assert updated.n_features_in_ == 3 and updated.n_iter_ == 1 and updated.converged_ is False
    assert updated.lower_bound_ == pytest.approx(model.score(blobs), rel=1e-12)
    np.testing.assert_array_equal(updated.predict(blobs), stepped.predict(blobs))


def test_statistics_errors(blobs):
    model = fitted(blobs, "full")
    stats = model.compute_statistics(blobs)
    with pytest.raises(ValueError, match="stats are for 3 components with covariance_type='full'"):
        GaussianMixture(3, covariance_type="diag").update_from_statistics(stats)
    with pytest.raises(ValueError, match="this model has n_components=4"):
        GaussianMixture(4).update_from_statistics(stats)
    with pytest.raises(TypeError, match="must be a SufficientStatistics"):
        GaussianMixture(3).update_from_statistics({"resp_sum": 1})
    with pytest.raises(ValueError, match="stats have 3 features, but GaussianMixture is expecting 2"):
        fitted(blobs[:, :2], "full").update_from_statistics(stats)
    diag_stats = fitted(blobs, "diag").compute_statistics(blobs)
    with pytest.raises(ValueError, match="Cannot merge statistics of different models"):
        stats.merge(diag_stats)
    with pytest.raises(TypeError, match="merge expects a SufficientStatistics"):
        stats.merge(3)
    with pytest.raises(ValueError, match=r"second must have shape \(3, 3, 3\)"):
        SufficientStatistics("full", stats.resp_sum, stats.first, stats.second[0], stats.shift, 0.0, 1.0)
    with pytest.raises(ValueError, match="first holds NaN"):
        SufficientStatistics("full", stats.resp_sum, stats.first * np.nan, stats.second, stats.shift, 0.0, 1.0)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        SufficientStatistics("banana", stats.resp_sum, stats.first, stats.second, stats.shift, 0.0, 1.0)
    with pytest.raises(ValueError, match="total weight of 0"):
        GaussianMixture(3).update_from_statistics(stats.scaled(0.0))
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.compute_statistics(blobs[:, :2])
    with pytest.raises(Exception, match="not fitted"):
        GaussianMixture(3).compute_statistics(blobs)
    with pytest.raises(ValueError, match="read-only"):
        stats.first[0, 0] = 1.0


# -- online EM -------------------------------------------------------------------

MIXTURE = dict(
    weights=[0.5, 0.3, 0.2],
    means=[[0.0, 0.0], [4.0, 1.0], [-1.0, 5.0]],
    covariances=[np.eye(2), [[1.0, 0.4], [0.4, 0.6]], np.diag([0.4, 1.5])],
)


def test_partial_fit_follows_the_reference_stepwise_em():
    batches = [make_mixture(200, **MIXTURE, random_state=s)[0] for s in range(6)]
    kwargs = init_kwargs("full", 3, 2, seed=1)
    model = GaussianMixture(**kwargs)
    for batch in batches:
        model.partial_fit(batch)
    # The first call initialises from weights_init/means_init/precisions_init.
    start = GaussianMixture(**kwargs, max_iter=0).fit(batches[0])
    expected = reference.stepwise_fit(batches, start.weights_, start.means_, start.covariances_, "full", ONLINE_DECAY)
    np.testing.assert_allclose(model.weights_, expected[0], rtol=1e-10)
    np.testing.assert_allclose(model.means_, expected[1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.covariances_, expected[2], rtol=1e-10, atol=1e-12)
    assert model.n_iter_ == 6 and len(model.lower_bounds_) == 6 and model.converged_ is False


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_partial_fit_on_a_stream_converges_to_the_batch_fit(covariance_type):
    X, _ = make_mixture(20000, **MIXTURE, random_state=0)
    batch_fit = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    rng = np.random.default_rng(0)
    errors = []
    for step in range(400):
        model.partial_fit(X[rng.integers(0, X.shape[0], 250)])
        if step in (20, 399):
            order = np.argsort(model.means_[:, 0])
            errors.append(np.abs(model.means_[order] - batch_fit.means_[np.argsort(batch_fit.means_[:, 0])]).max())
    assert errors[1] < 0.05
    assert errors[1] < errors[0]
    assert model.score(X) == pytest.approx(batch_fit.score(X), abs=2e-3)


def test_partial_fit_weights_continuation_and_errors(blobs):
    weights = np.random.default_rng(0).uniform(0.5, 2.0, blobs.shape[0])
    weighted = GaussianMixture(3, random_state=0).partial_fit(blobs, sample_weight=weights)
    repeated = GaussianMixture(3, random_state=0).partial_fit(blobs, sample_weight=2 * weights)
    np.testing.assert_allclose(weighted.means_, repeated.means_, rtol=1e-12)  # per unit of weight
    model = GaussianMixture(3, random_state=0).fit(blobs)
    means = model.means_.copy()
    model.partial_fit(blobs[:100])  # continues from the fitted parameters
    assert model.n_iter_ == 1 and not np.array_equal(model.means_, means)
    np.testing.assert_allclose(model.means_, means, atol=0.25)  # 100 rows after 600: step 6, rho = 8 ** -0.6 = 0.29
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.partial_fit(blobs[:10, :2])
    with pytest.raises(ValueError, match="needs n_samples >= n_components"):
        GaussianMixture(3).partial_fit(blobs[:2])
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(3).partial_fit(np.where(blobs == blobs[0, 0], np.nan, blobs))
    with pytest.raises(ValueError, match="sample_weight sums to zero"):
        model.partial_fit(blobs[:10], sample_weight=np.zeros(10))
    before = blobs.copy()
    GaussianMixture(3, random_state=0).partial_fit(blobs)
    np.testing.assert_array_equal(blobs, before)
    # A batch fit starts online EM over.
    model.fit(blobs)
    model.partial_fit(blobs[:100])
    assert model.n_iter_ == 1
    # A changed configuration initialises again, from the batch.
    model.set_params(n_components=2)
    model.partial_fit(blobs)
    assert model.means_.shape == (2, 3)


def test_partial_fit_after_fit_moves_the_model_by_the_batch_share():
    X, _ = make_mixture(20000, **MIXTURE, random_state=0)
    model = GaussianMixture(3, random_state=0).fit(X)
    score, weights = model.score(X), model.weights_.copy()
    model.partial_fit(X[:5])  # 5 rows against the 20,000 of the fit: step t = 4000
    assert model.score(X) == pytest.approx(score, abs=2e-3)
    np.testing.assert_allclose(model.weights_, weights, atol=0.01)
    # The statistics a fitted model's parameters imply give those parameters back.
    from fastem.mixture.statistics import SufficientStatistics as Stats

    for covariance_type in COVARIANCE_TYPES:
        fitted = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X[:3000])
        implied = Stats._implied_by(fitted._params(), covariance_type, fitted.reg_covar)
        again = GaussianMixture(3, covariance_type=covariance_type).update_from_statistics(implied)
        for name in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(again, name), getattr(fitted, name), rtol=1e-10, atol=1e-13)


def test_a_changed_covariance_type_reinitialises_even_when_shapes_agree():
    # n_components == n_features: 'tied' (d, d) and 'diag' (k, d) arrays have the same shape.
    X, _ = make_mixture(2000, [0.5, 0.5], [[0.0, 0.0], [5.0, 5.0]], [np.eye(2), np.eye(2)], random_state=0)
    model = GaussianMixture(2, covariance_type="tied", random_state=0).fit(X)
    model.set_params(covariance_type="diag")
    with pytest.raises(ValueError, match="fitted for n_components=2, covariance_type='tied'"):
        model.compute_statistics(X)
    model.partial_fit(X)  # initialises again, as a diag model
    assert model.covariances_.shape == (2, 2) and model.n_iter_ == 1
    reference = GaussianMixture(2, covariance_type="diag", random_state=0).partial_fit(X)
    np.testing.assert_allclose(model.covariances_, reference.covariances_, rtol=1e-12)


def test_update_from_statistics_restarts_online_em(blobs):
    model = GaussianMixture(3, random_state=0)
    for start in range(0, 600, 100):
        model.partial_fit(blobs[start:start + 100])
    stats = fitted(blobs, "full").compute_statistics(blobs)
    model.update_from_statistics(stats)
    expected = GaussianMixture(3).update_from_statistics(stats)
    np.testing.assert_allclose(model.means_, expected.means_, rtol=1e-12)
    model.partial_fit(blobs[:10])  # blends into the statistics just given, not the old running ones
    assert model.n_iter_ == 1
    np.testing.assert_allclose(model.means_, expected.means_, atol=0.1)


def test_empty_parts_have_statistics_of_weight_zero(blobs):
    model = fitted(blobs, "diag")
    whole = model.compute_statistics(blobs)
    for empty in (model.compute_statistics(blobs[:0]), model.compute_statistics(lambda: []),
                  model.compute_statistics(blobs[:5], sample_weight=np.zeros(5))):
        assert empty.weight_total == 0 and not empty.resp_sum.any()
        merged = whole.merge(empty)
        np.testing.assert_array_equal(merged.second, whole.second)


def test_pickled_statistics_stay_validated_and_read_only(blobs):
    import pickle

    stats = fitted(blobs, "tied").compute_statistics(blobs)
    copy = pickle.loads(pickle.dumps(stats))
    np.testing.assert_array_equal(copy.second, stats.second)
    assert copy.covariance_type == "tied" and copy.weight_total == stats.weight_total
    with pytest.raises(ValueError, match="read-only"):
        copy.second[0, 0] = 0.0
