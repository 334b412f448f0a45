"""GaussianMixtureIC: the grid, failed cells, determinism, delegation; the near-duplicate diagnostic."""

import warnings

import numpy as np
import pytest

from fastem import GaussianMixture, GaussianMixtureIC
from fastem.exceptions import ConvergenceWarning, NotFittedError
from fastem.mixture.diagnostics import near_duplicate_pairs


def _blobs(seed=0, n=150):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(0, 1, (n, 2)), rng.normal([6, 0], 1, (n, 2)), rng.normal([0, 7], 0.5, (n, 2))])


@pytest.fixture(scope="module")
def blobs_ic():
    X = _blobs()
    return X, GaussianMixtureIC(5, random_state=0).fit(X)


def test_the_sweep_finds_the_three_blobs(blobs_ic):
    X, ic = blobs_ic
    assert ic.n_components_ == 3
    table = ic.results_
    assert len(table["covariance_type"]) == 4 * 5
    assert set(table["covariance_type"]) == {"full", "tied", "diag", "spherical"}
    chosen = np.flatnonzero(
        (np.array(table["covariance_type"]) == ic.covariance_type_) & (table["n_components"] == ic.n_components_)
    )[0]
    assert table["bic"][chosen] == ic.criterion_ == np.nanmin(table["bic"])
    assert ic.best_estimator_.covariance_type == ic.covariance_type_
    # The table's numbers are the chosen model's own criteria.
    assert ic.best_estimator_.bic(X) == pytest.approx(ic.criterion_, rel=1e-10)
    assert ic.best_estimator_.icl(X) == pytest.approx(table["icl"][chosen], rel=1e-10)
    assert table["log_likelihood"][chosen] == pytest.approx(ic.best_estimator_.score(X) * X.shape[0], rel=1e-10)


def test_each_cell_is_at_least_as_good_as_a_single_default_fit(blobs_ic):
    """Several starts per cell: no cell falls below what one default GaussianMixture fit reaches.

    Up to the true k (3 blobs) to the last digit. Beyond it, within 1e-3 per row: the overfitted
    cells crawl between near-equal optima, where no screening can tell which start ends best, and
    the sweep stops on mclust's relative tolerance.
    """
    X, ic = blobs_ic
    table = ic.results_
    for model, k, value in zip(table["covariance_type"], table["n_components"], table["log_likelihood"]):
        single = GaussianMixture(int(k), covariance_type=model, random_state=0).fit(X).score(X) * X.shape[0]
        assert value >= single - 1e-3 * X.shape[0]
        if k <= 3:
            assert value >= single - 1e-9 * abs(value)


def test_delegates_to_the_best_model(blobs_ic):
    X, ic = blobs_ic
    best = ic.best_estimator_
    np.testing.assert_array_equal(ic.predict(X), best.predict(X))
    np.testing.assert_array_equal(ic.predict_proba(X), best.predict_proba(X))
    np.testing.assert_array_equal(ic.score_samples(X), best.score_samples(X))
    assert ic.score(X) == best.score(X)
    assert ic.sample(7)[0].shape == (7, 2)


@pytest.mark.parametrize("criterion", ["aic", "icl"])
def test_other_criteria_choose_their_minimum(criterion):
    X = _blobs(1, 60)
    ic = GaussianMixtureIC([1, 2, 3, 4], covariance_type=["full", "VEV", "EII"], criterion=criterion, random_state=0).fit(X)
    values = ic.results_[criterion]
    assert ic.criterion_ == np.nanmin(values)
    assert ic.results_["covariance_type"][int(np.nanargmin(values))] == ic.covariance_type_


def test_impossible_cells_are_recorded_not_chosen():
    X = _blobs(2, 2)  # 6 rows
    ic = GaussianMixtureIC(8, covariance_type=["spherical", "EEI"], random_state=0).fit(X)
    table = ic.results_
    assert len(table["error"]) == 16
    for k, error, bic in zip(table["n_components"], table["error"], table["bic"]):
        if k > 6:
            assert "exceeds the 6 rows" in error
            assert np.isnan(bic)
    assert ic.n_components_ <= 6
    assert table["error"][list(zip(table["covariance_type"], table["n_components"])).index(("spherical", 1))] is None


def test_singular_cells_are_failed_and_never_win():
    """Five copies of one point: a component collapses onto it, with a likelihood only reg_covar bounds."""
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (100, 2)), np.tile([[8.0, 8.0]], (5, 1))])
    ic = GaussianMixtureIC([1, 2, 3], covariance_type=["full", "diag"], random_state=0).fit(X)
    table = ic.results_
    singular = [i for i, error in enumerate(table["error"]) if error and "singular" in error]
    assert singular, table["error"]
    assert all(np.isnan(table["bic"][i]) for i in singular)
    # Unchecked, such a cell would have the best likelihood of all:
    collapsed = GaussianMixture(2, random_state=0).fit(X)
    assert collapsed.bic(X) < np.nanmin(table["bic"])
    assert table["error"][list(zip(table["covariance_type"], table["n_components"])).index((ic.covariance_type_, ic.n_components_))] is None
    # The chosen model has no component that reg_covar alone keeps from being singular.
    best = ic.best_estimator_
    full = np.stack([np.diag(c) for c in best.covariances_]) if best.covariances_.ndim == 2 else best.covariances_
    assert (np.linalg.eigvalsh(full)[:, 0] > 2 * best.reg_covar).all()
    assert best._silent_fit is False and best.n_jobs == ic.n_jobs and best.random_state == ic.random_state


def test_results_do_not_depend_on_n_jobs():
    X = _blobs(3, 80)
    one = GaussianMixtureIC(4, covariance_type=["full", "VVE", "EEI"], random_state=5, n_jobs=1).fit(X)
    two = GaussianMixtureIC(4, covariance_type=["full", "VVE", "EEI"], random_state=5, n_jobs=2).fit(X)
    for name, column in one.results_.items():
        np.testing.assert_array_equal(np.asarray(column), np.asarray(two.results_[name]))
    np.testing.assert_array_equal(one.best_estimator_.means_, two.best_estimator_.means_)


def test_works_in_a_pipeline():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = _blobs(4, 60)
    pipe = make_pipeline(StandardScaler(), GaussianMixtureIC(4, random_state=0)).fit(X)
    ic = pipe[-1]
    np.testing.assert_array_equal(pipe.predict(X), ic.best_estimator_.predict(StandardScaler().fit_transform(X)))
    np.testing.assert_array_equal(make_pipeline(StandardScaler(), GaussianMixtureIC(4, random_state=0)).fit_predict(X),
                                  pipe.predict(X))
    cloned = sklearn.base.clone(ic)
    assert cloned.get_params() == ic.get_params()


def test_sample_weight_counts_rows():
    X = _blobs(5, 50)
    weights = np.random.default_rng(0).integers(1, 4, size=X.shape[0]).astype(float)
    ic = GaussianMixtureIC([2, 3], covariance_type="full", random_state=0).fit(X, sample_weight=weights)
    best = ic.best_estimator_
    total = float(weights @ best.score_samples(X))
    chosen = list(ic.results_["n_components"]).index(ic.n_components_)
    assert ic.results_["log_likelihood"][chosen] == pytest.approx(total, rel=1e-12)
    assert ic.criterion_ == pytest.approx(-2 * total + best._n_parameters() * np.log(weights.sum()), rel=1e-12)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_components": 0}, "n_components"),
        ({"n_components": []}, "n_components is empty"),
        ({"n_components": "3"}, "n_components"),
        ({"covariance_type": "VXV"}, "covariance_type"),
        ({"covariance_type": []}, "covariance_type"),
        ({"criterion": "bic2"}, "criterion"),
        ({"n_init": 0}, "n_init"),
        ({"screen_iter": 0}, "screen_iter"),
    ],
)
def test_invalid_parameters_name_themselves(params, message):
    with pytest.raises((ValueError, TypeError), match=message):
        GaussianMixtureIC(**params).fit(_blobs(0, 10))


def test_unfitted_and_bad_input():
    with pytest.raises(NotFittedError):
        GaussianMixtureIC().predict(np.zeros((2, 2)))
    X = _blobs(0, 10)
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixtureIC(2).fit(X)
    original = _blobs(0, 10)
    copy = original.copy()
    GaussianMixtureIC(2, random_state=0).fit(original)
    np.testing.assert_array_equal(original, copy)


###############################################################################
# Near-duplicate components


def _two_normals():
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(20, 5, 4000), rng.normal(40, 5, 8000)])[:, None]


def test_a_saddle_point_warns_with_advice():
    """The issue's case: 'random' responsibilities stop after two iterations with both means near 33."""
    X = _two_normals()
    with pytest.warns(ConvergenceWarning, match="near-duplicate components \\(0 and 1\\).*saddle point.*init_params='random'") as record:
        gm = GaussianMixture(2, init_params="random", random_state=0).fit(X)
    assert gm.converged_ and gm.n_iter_ <= 3
    np.testing.assert_allclose(gm.means_.ravel(), 33.35, atol=0.2)
    assert record[0].filename == __file__


def test_a_good_fit_does_not_warn():
    X = _two_normals()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gm = GaussianMixture(2, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(gm.means_.ravel()), [20, 40], atol=0.5)


def test_near_duplicate_tolerance():
    covariances = np.stack([np.eye(2), np.eye(2) * 1.05, np.eye(2)])
    means = np.array([[0.0, 0.0], [0.05, 0.0], [0.5, 0.0]])
    assert near_duplicate_pairs(means, covariances) == [(0, 1)]
    assert near_duplicate_pairs(means, covariances, tolerance=0.01) == []


def test_lower_bounds_history():
    X = _two_normals()
    gm = GaussianMixture(2, random_state=0, tol=1e-8).fit(X)
    assert len(gm.lower_bounds_) == gm.n_iter_
    assert gm.lower_bounds_[-1] == gm.lower_bound_
    assert all(b >= a - 1e-12 for a, b in zip(gm.lower_bounds_, gm.lower_bounds_[1:]))


def test_short_runs_on_a_subsample_for_larger_data(monkeypatch):
    """Above SCREEN_ROWS rows the starts and short runs use a seeded subsample; all rows finish every cell."""
    import fastem.mixture.selection as selection

    X = _blobs(6, 200)
    full = GaussianMixtureIC(4, covariance_type=["full", "diag"], random_state=0).fit(X)
    monkeypatch.setattr(selection, "SCREEN_ROWS", 150)
    sub = GaussianMixtureIC(4, covariance_type=["full", "diag"], random_state=0).fit(X)
    again = GaussianMixtureIC(4, covariance_type=["full", "diag"], random_state=0, n_jobs=2).fit(X)
    np.testing.assert_array_equal(sub.results_["log_likelihood"], again.results_["log_likelihood"])
    # Axis-aligned blobs: diag wins.
    assert (sub.n_components_, sub.covariance_type_) == (full.n_components_, full.covariance_type_) == (3, "diag")
    # Up to the true k, every cell ends at the all-rows sweep's maximum; beyond it (k = 4 for three
    # blobs) the subsample's starts may end at another of the near-equal optima.
    upto_true = sub.results_["n_components"] <= 3
    np.testing.assert_allclose(sub.results_["log_likelihood"][upto_true], full.results_["log_likelihood"][upto_true],
                               rtol=1e-7)
    assert sub.results_["converged"].all()
    assert sub.best_estimator_.score(X) == pytest.approx(full.best_estimator_.score(X), abs=1e-6)
