"""GaussianHMM against hmmlearn's GaussianHMM (0.3.3) from identical starting parameters."""

from __future__ import annotations

import numpy as np
import pytest

from fastem import GaussianHMM
from hmm_data import HMM_COVARIANCE_TYPES, sequences, start_params, with_params

hmmlearn_hmm = pytest.importorskip("hmmlearn.hmm")

# hmmlearn runs in log space, fastem scaled: the same arithmetic up to rounding.
RTOL = 1e-9


def _per_type(model, covariance_type):
    """The fitted covariances in the per-type layout (hmmlearn keeps 'spherical' tiled to (k, d))."""
    covars = np.asarray(model._covars_)
    if covariance_type == "spherical" and covars.ndim == 2:
        assert np.all(covars == covars[:, :1])
        return covars[:, 0]
    return covars


def _pair(covariance_type, **kwargs):
    params = start_params(covariance_type)
    options = dict(n_components=3, covariance_type=covariance_type, init_params="", tol=0, n_iter=6)
    options.update(kwargs)
    ours = with_params(GaussianHMM(**options), params)
    theirs = with_params(hmmlearn_hmm.GaussianHMM(**options), params)
    return ours, theirs


def assert_same_model(ours, theirs, covariance_type):
    np.testing.assert_allclose(ours.startprob_, theirs.startprob_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(ours.transmat_, theirs.transmat_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(_per_type(ours, covariance_type), _per_type(theirs, covariance_type), rtol=RTOL, atol=1e-12)
    if covariance_type != "spherical":  # hmmlearn's covars_ property mis-shapes its own tiled spherical layout
        np.testing.assert_allclose(ours.covars_, theirs.covars_, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("covariance_type", HMM_COVARIANCE_TYPES)
def test_fit_matches_hmmlearn(covariance_type):
    X, lengths = sequences()
    ours, theirs = _pair(covariance_type)
    ours.fit(X, lengths)
    theirs.fit(X, lengths)
    assert ours.monitor_.iter == theirs.monitor_.iter == 6
    np.testing.assert_allclose(list(ours.monitor_.history), list(theirs.monitor_.history), rtol=RTOL)
    assert ours.monitor_.converged == theirs.monitor_.converged
    assert_same_model(ours, theirs, covariance_type)


@pytest.mark.parametrize("covariance_type", HMM_COVARIANCE_TYPES)
def test_inference_matches_hmmlearn(covariance_type):
    X, lengths = sequences(seed=3)
    ours, theirs = _pair(covariance_type)
    ours.fit(X, lengths)
    theirs.fit(X, lengths)
    assert ours.score(X, lengths) == pytest.approx(theirs.score(X, lengths), rel=RTOL)
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=RTOL)
    log_prob, posteriors = ours.score_samples(X, lengths)
    their_log_prob, their_posteriors = theirs.score_samples(X, lengths)
    assert log_prob == pytest.approx(their_log_prob, rel=RTOL)
    np.testing.assert_allclose(posteriors, their_posteriors, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), theirs.predict_proba(X, lengths), rtol=1e-7, atol=1e-10)
    for algorithm in ("viterbi", "map"):
        ours_lp, ours_path = ours.decode(X, lengths, algorithm=algorithm)
        theirs_lp, theirs_path = theirs.decode(X, lengths, algorithm=algorithm)
        assert ours_lp == pytest.approx(theirs_lp, rel=RTOL)
        np.testing.assert_array_equal(ours_path, theirs_path)
    np.testing.assert_array_equal(ours.predict(X, lengths), theirs.predict(X, lengths))


def test_priors_and_partial_params_match_hmmlearn():
    """Non-default priors, and only some parameters updated."""
    X, lengths = sequences(seed=5)
    options = dict(
        startprob_prior=2.0, transmat_prior=1.5, means_prior=0.5, means_weight=2.0, covars_prior=0.3, covars_weight=4.0,
    )
    for covariance_type in ("diag", "full"):
        ours, theirs = _pair(covariance_type, **options)
        ours.fit(X, lengths)
        theirs.fit(X, lengths)
        np.testing.assert_allclose(list(ours.monitor_.history), list(theirs.monitor_.history), rtol=RTOL)
        assert_same_model(ours, theirs, covariance_type)
    ours, theirs = _pair("tied", params="mc")
    ours.fit(X, lengths)
    theirs.fit(X, lengths)
    assert_same_model(ours, theirs, "tied")
    np.testing.assert_array_equal(ours.transmat_, start_params("tied")[1])


def test_scaling_implementation_and_tolerance_match_hmmlearn():
    X, lengths = sequences(seed=6)
    ours, theirs = _pair("diag", implementation="scaling", tol=1e-3, n_iter=200)
    ours.fit(X, lengths)
    theirs.fit(X, lengths)
    assert 2 < ours.monitor_.iter == theirs.monitor_.iter < 200
    assert ours.monitor_.converged and theirs.monitor_.converged
    assert_same_model(ours, theirs, "diag")


def test_sample_draws_as_hmmlearn():
    ours, theirs = _pair("full")
    for kwargs in ({"random_state": 7}, {"random_state": 7, "currstate": 2}):
        X, states = ours.sample(25, **kwargs)
        their_X, their_states = theirs.sample(25, **kwargs)
        np.testing.assert_allclose(X, their_X, rtol=1e-12)
        np.testing.assert_array_equal(states, their_states)


def test_initialisation_of_startprob_and_transmat_as_hmmlearn():
    """The same seed gives the same Dirichlet draws (means come from fastem's own k-means)."""
    X, lengths = sequences()
    ours = GaussianHMM(3, n_iter=1, random_state=4, params="").fit(X, lengths)
    theirs = hmmlearn_hmm.GaussianHMM(3, n_iter=1, random_state=4, params="").fit(X, lengths)
    np.testing.assert_allclose(ours.startprob_, theirs.startprob_, rtol=1e-12)
    np.testing.assert_allclose(ours.transmat_, theirs.transmat_, rtol=1e-12)
    np.testing.assert_allclose(ours._covars_, theirs._covars_, rtol=1e-12)
    np.testing.assert_allclose(np.sort(ours.means_, axis=0), np.sort(theirs.means_, axis=0), rtol=1e-6)
    assert ours.aic(X, lengths) == pytest.approx(theirs.aic(X, lengths), rel=1e-6)
    assert ours.bic(X, lengths) == pytest.approx(theirs.bic(X, lengths), rel=1e-6)


def test_matrix_covariance_prior_and_unvisited_diag_state():
    X, lengths = sequences(seed=16)
    prior = np.array([[0.3, 0.1], [0.1, 0.2]])
    ours, theirs = _pair("full", covars_prior=prior, covars_weight=4.0)
    ours.fit(X, lengths)
    theirs.fit(X, lengths)
    assert_same_model(ours, theirs, "full")
    # A diag state that can never be reached keeps its covariance (hmmlearn: prior / 1e-5, here 0).
    model = with_params(GaussianHMM(3, init_params="", covars_prior=0.0, n_iter=3), start_params("diag"))
    model.startprob_ = np.array([0.5, 0.5, 0.0])
    model.transmat_ = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    model.fit(X, lengths)
    np.testing.assert_array_equal(model._covars_[2], start_params("diag")[3][2])


def test_n_iter_zero_only_initialises_as_hmmlearn():
    X, lengths = sequences()
    ours = GaussianHMM(3, n_iter=0, random_state=4).fit(X, lengths)
    theirs = hmmlearn_hmm.GaussianHMM(3, n_iter=0, random_state=4).fit(X, lengths)
    assert list(ours.monitor_.history) == list(theirs.monitor_.history) == []
    np.testing.assert_allclose(ours.transmat_, theirs.transmat_, rtol=1e-12)
