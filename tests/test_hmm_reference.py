"""GaussianHMM against the naive log-space Baum-Welch of fastem.reference, and EM invariants."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastem import ConvergenceWarning, GaussianHMM, GaussianMixture, reference
from hmm_data import HMM_COVARIANCE_TYPES, sequences, start_params, with_params

# Priors that make hmmlearn's M-step the plain maximum-likelihood one.
NO_PRIORS = dict(covars_prior=0.0, covars_weight=1.0, means_weight=0.0, startprob_prior=1.0, transmat_prior=1.0)


def _model(covariance_type, **kwargs):
    options = dict(n_components=3, covariance_type=covariance_type, init_params="", tol=-np.inf, n_iter=5, **NO_PRIORS)
    options.update(kwargs)
    return with_params(GaussianHMM(**options), start_params(covariance_type))


@pytest.mark.parametrize("covariance_type", HMM_COVARIANCE_TYPES)
def test_fit_matches_naive_baum_welch(covariance_type):
    X, lengths = sequences(seed=2)
    model = _model(covariance_type).fit(X, lengths)
    expected = reference.hmm_fit(X, lengths, *start_params(covariance_type), covariance_type=covariance_type, n_iter=5)
    np.testing.assert_allclose(list(model.monitor_.history), expected["history"], rtol=1e-10)
    np.testing.assert_allclose(model.startprob_, expected["startprob"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.transmat_, expected["transmat"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.means_, expected["means"], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model._covars_, expected["covars"], rtol=1e-8, atol=1e-10)


def test_posteriors_and_viterbi_match_naive_reference():
    X, lengths = sequences(seed=4)
    params = start_params("full")
    model = with_params(GaussianHMM(3, covariance_type="full"), params)
    log_prob, posteriors = model.score_samples(X, lengths)
    _, paths = model.decode(X, lengths)
    per_sequence = model.score(X, lengths, per_sequence=True)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    total = 0.0
    for s, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:])):
        sequence_ll, expected_post, _ = reference.hmm_forward_backward(X[start:stop], *params, "full")
        np.testing.assert_allclose(posteriors[start:stop], expected_post, rtol=1e-8, atol=1e-12)
        assert per_sequence[s] == pytest.approx(sequence_ll, rel=1e-11)
        _, expected_path = reference.hmm_viterbi(X[start:stop], *params, "full")
        np.testing.assert_array_equal(paths[start:stop], expected_path)
        total += sequence_ll
    assert log_prob == pytest.approx(total, rel=1e-11)
    assert per_sequence.shape == (len(lengths),)


def test_sequence_weights_equal_repeated_sequences():
    X, lengths = sequences(seed=8, lengths=(30, 12, 25))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    weights = np.array([2, 0, 1])
    repeated = np.concatenate([X[offsets[0]:offsets[1]]] * 2 + [X[offsets[2]:offsets[3]]])
    weighted = _model("diag").fit(X, lengths, sample_weight=weights)
    plain = _model("diag").fit(repeated, [30, 30, 25])
    np.testing.assert_allclose(list(weighted.monitor_.history), list(plain.monitor_.history), rtol=1e-10)
    for name in ("startprob_", "transmat_", "means_", "_covars_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(plain, name), rtol=1e-9, atol=1e-12)
    expected = reference.hmm_fit(
        X, lengths, *start_params("diag"), covariance_type="diag", n_iter=5, sequence_weights=weights
    )
    np.testing.assert_allclose(weighted.means_, expected["means"], rtol=1e-8)


def test_uniform_transitions_match_a_gaussian_mixture():
    """With every row of transmat equal to startprob, the states are a mixture with those weights."""
    X, lengths = sequences(seed=9)
    _, _, means, covars = start_params("full")
    weights = np.array([0.5, 0.3, 0.2])
    hmm = GaussianHMM(3, covariance_type="full", init_params="", params="mc", n_iter=1, tol=-np.inf, **NO_PRIORS)
    hmm.startprob_, hmm.transmat_, hmm.means_, hmm.covars_ = weights, np.tile(weights, (3, 1)), means, covars
    mixture = GaussianMixture(
        3, covariance_type="full", weights_init=weights, means_init=means,
        precisions_init=np.linalg.inv(covars), reg_covar=0.0,
    )
    np.testing.assert_allclose(hmm.predict_proba(X, lengths), _mixture_with(mixture, X).predict_proba(X), rtol=1e-8, atol=1e-12)
    assert hmm.score(X, lengths) == pytest.approx(_mixture_with(mixture, X).score(X) * len(X), rel=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # one iteration on purpose
        mixture.set_params(max_iter=1).fit(X)
    hmm.fit(X, lengths)
    np.testing.assert_allclose(hmm.means_, mixture.means_, rtol=1e-8)
    np.testing.assert_allclose(hmm.covars_, mixture.covariances_, rtol=1e-7)


def _mixture_with(mixture, X):
    """A GaussianMixture holding exactly its initial parameters (a zero-iteration fit)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clone_mixture(mixture).set_params(max_iter=0).fit(X)


def clone_mixture(mixture):
    return GaussianMixture(**mixture.get_params())


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_log_likelihood_never_decreases(covariance_type):
    X, lengths = sequences(seed=10, lengths=(80, 50, 70))
    model = GaussianHMM(4, covariance_type=covariance_type, n_iter=25, tol=-np.inf, random_state=0, **NO_PRIORS)
    model.fit(X, lengths)
    history = np.array(model.monitor_.history)
    assert len(history) == 25
    assert np.all(np.diff(history) >= -1e-9 * np.abs(history[1:]))


def test_results_do_not_depend_on_the_thread_count():
    """Bit-identical for 1 and 2 threads: many sequences (parallel chunks) and a long one (parallel rows)."""
    rng = np.random.RandomState(0)
    lengths = np.concatenate([[9000], rng.randint(20, 700, size=40)])
    X = rng.normal(size=(lengths.sum(), 3))
    X[::3] += 3.0
    results = []
    for n_jobs in (1, 2):
        model = GaussianHMM(4, covariance_type="full", n_iter=3, tol=-np.inf, random_state=1, n_jobs=n_jobs)
        model.fit(X, lengths)
        results.append((model.means_, model._covars_, model.transmat_, model.startprob_,
                        np.array(model.monitor_.history), model.score_samples(X, lengths)[1]))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)


@pytest.fixture
def long_sequences_from_100_rows(monkeypatch):
    """Sequences of 100 rows or more take the two-thread meet-in-the-middle path."""
    import fastem.hmm.sequences

    monkeypatch.setattr(fastem.hmm.sequences, "LONG_SEQUENCE_ROWS", 100)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_long_sequence_path_matches_the_naive_reference(long_sequences_from_100_rows, covariance_type):
    """Sequences of 300 and 250 rows meet in the middle; the short ones between them do not."""
    X, lengths = sequences(seed=14, lengths=(300, 7, 250, 1, 60))
    weights = np.array([1.0, 2.0, 0.5, 1.0, 3.0])
    model = _model(covariance_type).fit(X, lengths, sample_weight=weights)
    expected = reference.hmm_fit(X, lengths, *start_params(covariance_type), covariance_type=covariance_type,
                                 n_iter=5, sequence_weights=weights)
    np.testing.assert_allclose(list(model.monitor_.history), expected["history"], rtol=1e-10)
    for name in ("startprob", "transmat", "means"):
        np.testing.assert_allclose(getattr(model, name + "_"), expected[name], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model._covars_, expected["covars"], rtol=1e-8, atol=1e-10)
    _, posteriors = model.score_samples(X, lengths)
    _, expected_posteriors, _ = reference.hmm_forward_backward(X[:300], model.startprob_, model.transmat_,
                                                               model.means_, model._covars_, covariance_type)
    np.testing.assert_allclose(posteriors[:300], expected_posteriors, rtol=1e-8, atol=1e-12)


def test_long_sequence_path_does_not_depend_on_the_thread_count(long_sequences_from_100_rows):
    X, lengths = sequences(seed=15, lengths=(400, 350, 20))
    results = []
    for n_jobs in (1, 2):
        model = _model("full", n_jobs=n_jobs).fit(X, lengths)
        results.append((model.means_, model._covars_, model.transmat_, np.array(model.monitor_.history)))
    for ours, theirs in zip(*results):
        np.testing.assert_array_equal(ours, theirs)
