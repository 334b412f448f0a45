"""GaussianHMM on hostile data: outliers, long sequences, unvisited states, left-right models."""

from __future__ import annotations

import numpy as np
import pytest

from fastem import GaussianHMM, reference
from hmm_data import sequences, start_params, with_params


def _finite_model(model):
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        assert np.isfinite(getattr(model, name)).all(), name


def test_far_outlier_gives_finite_results_equal_to_the_log_space_reference():
    X, lengths = sequences(seed=11)
    X = X.copy()
    X[20] = 1e4 * np.sqrt(2.0) * np.array([1.0, -1.0])  # about 1e4 sigma from every state
    params = start_params("diag")
    model = with_params(GaussianHMM(3, covariance_type="diag"), params)
    log_prob, posteriors = model.score_samples(X, lengths)
    assert np.isfinite(log_prob) and np.isfinite(posteriors).all()
    np.testing.assert_allclose(posteriors.sum(axis=1), 1.0, rtol=1e-12)
    expected_ll, expected_post, _ = reference.hmm_forward_backward(X[:60], *params, "diag")
    assert log_prob < -1e7
    np.testing.assert_allclose(posteriors[:60], expected_post, rtol=1e-7, atol=1e-10)
    assert model.score(X[:60]) == pytest.approx(expected_ll, rel=1e-12)
    model.set_params(init_params="", n_iter=5).fit(X, lengths)
    _finite_model(model)
    assert np.isfinite(list(model.monitor_.history)).all()


def test_a_million_row_sequence_has_a_finite_log_likelihood():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(1_000_000, 1))
    X[::2] += 4.0
    model = GaussianHMM(2, covariance_type="spherical", init_params="", n_iter=2, tol=-np.inf)
    model.startprob_ = np.array([0.5, 0.5])
    model.transmat_ = np.array([[0.1, 0.9], [0.9, 0.1]])
    model.means_ = np.array([[0.0], [4.0]])
    model.covars_ = np.array([1.0, 1.0])
    model.fit(X)
    history = np.array(model.monitor_.history)
    assert np.isfinite(history).all() and history[-1] > -2.0e6
    assert history[1] >= history[0]
    _finite_model(model)
    assert model.transmat_[0, 1] > 0.95


def test_left_right_zeros_stay_exactly_zero_and_match_the_reference():
    """Forbidden transitions stay 0; rows whose scaled totals underflow are redone in log space."""
    rng = np.random.RandomState(1)
    X = np.concatenate([rng.normal(0, 1, (40, 2)), rng.normal(6, 1, (40, 2)), rng.normal(12, 1, (40, 2))])
    X[10] = [40.0, 40.0]  # best explained by the last state, which cannot be reached yet
    startprob = np.array([1.0, 0.0, 0.0])
    transmat = np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]])
    means = np.array([[0.0, 0.0], [6.0, 6.0], [12.0, 12.0]])
    covars = np.full((3, 2), 0.05)  # narrow: the outlier's density ratios exceed float64's range
    params = (startprob, transmat, means, covars)
    # Priors above 1 would make forbidden entries positive without the M-step's guard.
    model = with_params(
        GaussianHMM(3, covariance_type="diag", init_params="", n_iter=5, startprob_prior=1.5, transmat_prior=1.5), params
    )
    log_prob, posteriors = model.score_samples(X)
    expected_ll, expected_post, _ = reference.hmm_forward_backward(X, *params, "diag")
    assert log_prob == pytest.approx(expected_ll, rel=1e-12)
    np.testing.assert_allclose(posteriors, expected_post, rtol=1e-7, atol=1e-12)
    model.fit(X)
    _finite_model(model)
    assert model.startprob_[1] == 0.0 and model.startprob_[2] == 0.0
    assert np.all(model.transmat_[transmat == 0.0] == 0.0)
    np.testing.assert_array_equal(np.diff(model.predict(X)) >= 0, True)


def test_a_state_never_visited_keeps_finite_parameters():
    """hmmlearn turns such a state's mean into NaN (its issue #169); fastem keeps the previous one."""
    X, lengths = sequences(seed=12)
    startprob, transmat, means, covars = start_params("full")
    means = means.copy()
    means[2] = [1e3, 1e3]
    startprob = np.array([0.5, 0.5, 0.0])
    transmat = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]])
    for covariance_type in ("full", "diag"):
        cov = covars if covariance_type == "full" else np.ones((3, 2))
        model = with_params(GaussianHMM(3, covariance_type=covariance_type, init_params="", n_iter=3),
                            (startprob, transmat, means, cov))
        model.fit(X, lengths)
        _finite_model(model)
        np.testing.assert_array_equal(model.means_[2], [1e3, 1e3])
        np.testing.assert_array_equal(model.transmat_[2], transmat[2])


def test_impossible_sequence_is_a_clear_error():
    X = np.array([[0.0], [1.0], [2.0]])
    model = GaussianHMM(2, covariance_type="diag", init_params="")
    model.startprob_ = np.array([1.0, 0.0])
    model.transmat_ = np.array([[1.0, 0.0], [0.0, 1.0]])
    model.means_ = np.array([[0.0], [2.0]])
    model.covars_ = np.array([[1.0], [1.0]])
    assert np.isfinite(model.score(X))  # state 0 can still emit every row
    model.means_ = np.array([[1e200], [2.0]])
    with pytest.raises(ValueError, match="zero probability"):
        model.fit(X)


@pytest.mark.parametrize("outlier_row", [10, 70])
def test_long_sequence_path_sends_unrepresentable_sequences_to_log_space(monkeypatch, outlier_row):
    """The left-right case above on the meet-in-the-middle path, the outlier in either half."""
    import fastem.hmm.sequences

    monkeypatch.setattr(fastem.hmm.sequences, "LONG_SEQUENCE_ROWS", 100)
    rng = np.random.RandomState(1)
    X = np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(6, 1, (40, 2)), rng.normal(12, 1, (40, 2))])
    X[outlier_row] = [40.0, 40.0]
    params = (np.array([1.0, 0.0, 0.0]), np.array([[0.9, 0.1, 0.0], [0.0, 0.9, 0.1], [0.0, 0.0, 1.0]]),
              np.array([[0.0, 0.0], [6.0, 6.0], [12.0, 12.0]]), np.full((3, 2), 0.05))
    model = with_params(GaussianHMM(3, covariance_type="diag", init_params="", n_iter=3), params)
    log_prob, posteriors = model.score_samples(X)
    expected_ll, expected_post, _ = reference.hmm_forward_backward(X, *params, "diag")
    assert log_prob == pytest.approx(expected_ll, rel=1e-12)
    np.testing.assert_allclose(posteriors, expected_post, rtol=1e-7, atol=1e-12)
    model.fit(X)
    _finite_model(model)


@pytest.mark.parametrize("transmat", [np.eye(2), np.array([[1.0, 0.0], [0.5, 0.5]])])
@pytest.mark.parametrize("long_path", [False, True])
def test_a_state_flushed_to_zero_can_be_revived_by_later_rows(monkeypatch, transmat, long_path):
    """15 rows at 0 push state 1 (mean 10) to e^-750; 30 rows at 10 then make it the only likely state.

    No single row is 1e100 times worse under the surviving state, so only the
    lost-state guard for transition matrices with zeros sends the sequence to
    log space (found in review: the scaled pass gave -1542 instead of -792).
    """
    import fastem.hmm.sequences

    if long_path:
        monkeypatch.setattr(fastem.hmm.sequences, "LONG_SEQUENCE_ROWS", 20)
    X = np.concatenate([np.zeros((15, 1)), np.full((30, 1), 10.0)])
    params = (np.array([0.5, 0.5]), transmat, np.array([[0.0], [10.0]]), np.array([[1.0], [1.0]]))
    model = with_params(GaussianHMM(2, covariance_type="diag", init_params="", n_iter=1), params)
    expected_ll, expected_post, _ = reference.hmm_forward_backward(X, *params, "diag")
    assert model.score(X) == pytest.approx(expected_ll, rel=1e-12)
    log_prob, posteriors = model.score_samples(X)
    assert log_prob == pytest.approx(expected_ll, rel=1e-12)
    np.testing.assert_allclose(posteriors, expected_post, rtol=1e-7, atol=1e-12)
