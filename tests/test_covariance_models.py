"""mclust's fourteen covariance models: M-steps against a numerical optimum, parameter counts, EM invariants."""

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from fastem import GaussianMixture, reference
from fastem.mixture.covariance_models import (
    COVARIANCE_MODELS,
    MCLUST_MODELS,
    SKLEARN_TYPES,
    kernel_layout,
    n_covariance_parameters,
)
from fastem.mixture.parameters import GaussianStats, second_moment_shape
from fastem.mixture.steps import mstep

DATA = Path(__file__).parent / "data"


def _scatter_problem(seed, n_components=3, n_features=3):
    """Responsibility-weighted statistics of random correlated data: (GaussianStats per layout, n_k, full S_k)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(120, n_features)) @ rng.normal(size=(n_features, n_features))
    resp = rng.dirichlet(np.full(n_components, 0.7), size=X.shape[0])
    resp_sum = resp.sum(axis=0)
    means = resp.T @ X / resp_sum[:, None]
    scatter = np.stack([((X - m).T * r) @ (X - m) for m, r in zip(means, resp.T)])
    return resp_sum, means, scatter


def _stats(layout, resp_sum, means, scatter):
    n_components, n_features = means.shape
    if layout == "full":
        second = scatter.copy()
    elif layout == "tied":
        second = scatter.sum(axis=0)
    else:
        second = np.diagonal(scatter, axis1=1, axis2=2).copy()
    assert second.shape == second_moment_shape(layout, n_components, n_features)
    return GaussianStats(resp_sum.copy(), np.zeros_like(means), second, means.copy(), 0.0, float(resp_sum.sum()))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_mstep_reaches_the_numerical_optimum(model, seed):
    """The M-step's covariances maximise the expected complete-data log-likelihood, as BFGS finds it."""
    resp_sum, means, scatter = _scatter_problem(seed)
    k, d = means.shape
    layout = kernel_layout(model)
    params = mstep(_stats(layout, resp_sum, means, scatter), model, reg_covar=0.0, resp_eps=0.0)
    ours = reference.full_covariances(params.covariances, layout, k, d)
    expected, _ = reference.constrained_mstep(model, resp_sum, scatter / resp_sum[:, None, None])
    ours_value = reference.constrained_objective(ours, resp_sum, scatter)
    expected_value = reference.constrained_objective(expected, resp_sum, scatter)
    assert ours_value <= expected_value + 1e-9 * abs(expected_value)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(params.means, means)


@pytest.mark.parametrize("model", ["EVE", "VVE"])
def test_common_orientation_escapes_a_poor_start(model):
    """Seed 1 puts the pooled eigenvectors near a local optimum 10 units worse; the other starts find the best."""
    resp_sum, means, scatter = _scatter_problem(1)
    k, d = means.shape
    params = mstep(_stats("full", resp_sum, means, scatter), model, reg_covar=0.0, resp_eps=0.0)
    expected, _ = reference.constrained_mstep(model, resp_sum, scatter / resp_sum[:, None, None], n_random_starts=8)
    assert reference.constrained_objective(params.covariances, resp_sum, scatter) <= (
        reference.constrained_objective(expected, resp_sum, scatter) + 1e-7
    )


def test_sklearn_names_are_mclust_models():
    """spherical = VII, diag = VVI, tied = EEE, full = VVV: the same fit, to the bit."""
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(80, 3)) + 4 * j for j in range(3)])
    for name, letters in SKLEARN_TYPES.items():
        a = GaussianMixture(3, covariance_type=name, random_state=0).fit(X)
        b = GaussianMixture(3, covariance_type=letters, random_state=0).fit(X)
        np.testing.assert_array_equal(a.covariances_, b.covariances_)
        assert a.bic(X) == b.bic(X)


def _mclust_counts():
    with open(DATA / "mclust_nparams.csv", newline="") as handle:
        return [(row["model"], int(row["d"]), int(row["G"]), int(row["df"])) for row in csv.DictReader(handle)]


@pytest.mark.parametrize("model", MCLUST_MODELS)
def test_parameter_counts_are_mclusts(model):
    """Our count (means + weights + covariances) equals mclust's nMclustParams, and the free parameters of the reference."""
    rows = [row for row in _mclust_counts() if row[0] == model]
    assert len(rows) >= 9
    for _, d, k, df in rows:
        assert n_covariance_parameters(model, k, d) + k * d + k - 1 == df
    resp_sum, means, scatter = _scatter_problem(0, n_components=2, n_features=4)
    _, n_free = reference.constrained_mstep(model, resp_sum, scatter / resp_sum[:, None, None], n_random_starts=0)
    assert n_free == n_covariance_parameters(model, 2, 4)


def test_fitted_n_parameters_uses_the_model():
    X = np.random.default_rng(0).normal(size=(60, 4))
    gm = GaussianMixture(3, covariance_type="VEV", random_state=0).fit(X)
    assert gm._n_parameters() == 3 + (4 - 1) + 3 * 6 + 3 * 4 + 2
    assert gm.bic(X) == pytest.approx(-2 * gm.score(X) * 60 + gm._n_parameters() * np.log(60))


def _clusters(seed=0, n=100):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=(n, 3)) @ rng.normal(size=(3, 3)) + 3 * j for j in range(3)]
    return np.vstack(parts)


@pytest.mark.parametrize("model", COVARIANCE_MODELS)
def test_log_likelihood_never_decreases(model):
    X = _clusters()
    gm = GaussianMixture(3, covariance_type=model, init_params="random", tol=0, max_iter=40, random_state=1)
    with pytest.warns(Warning):  # tol = 0 never converges
        gm.fit(X)
    bounds = np.array(gm.lower_bounds_)
    assert len(bounds) == 40
    assert (np.diff(bounds) >= -1e-10 * np.abs(bounds[1:])).all()
    assert np.isfinite(gm.covariances_).all()
    assert gm.covariances_.shape == {
        "full": (3, 3, 3), "tied": (3, 3), "diag": (3, 3), "spherical": (3,)
    }[kernel_layout(model)]


@pytest.mark.parametrize("model", [m for m in MCLUST_MODELS if m not in SKLEARN_TYPES.values()])
def test_constrained_models_keep_every_feature(model, tmp_path):
    """Weights, float32, missing values, model files and statistics work for the new models as for the old."""
    X = _clusters(1, 60)
    weights = np.random.default_rng(0).uniform(0.5, 2, size=X.shape[0])
    gm = GaussianMixture(3, covariance_type=model, random_state=0).fit(X, sample_weight=weights)
    path = tmp_path / "model.npz"
    gm.save(path)
    loaded = GaussianMixture.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), gm.predict_proba(X))
    assert loaded._n_parameters() == gm._n_parameters()
    gm32 = GaussianMixture(3, covariance_type=model, random_state=0).fit(X.astype(np.float32))
    assert gm32.covariances_.dtype == np.float32
    X_missing = X.copy()
    X_missing[::7, 1] = np.nan
    gm_missing = GaussianMixture(3, covariance_type=model, random_state=0).fit(X_missing)
    assert np.isfinite(gm_missing.covariances_).all()
    stats = gm.compute_statistics(X, sample_weight=weights)
    assert stats.covariance_type == model
    again = GaussianMixture(3, covariance_type=model).update_from_statistics(stats)
    assert again.score(X) == pytest.approx(gm.score(X), rel=1e-3)


def test_unknown_model_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="covariance_type.*VEV"):
        GaussianMixture(2, covariance_type="VXV").fit(_clusters())
