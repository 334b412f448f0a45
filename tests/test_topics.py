"""LatentDirichletAllocation: kernels against the naive reference, parity with scikit-learn, checks of input.

scikit-learn's own test file runs against fastem's class in
``test_sklearn_online_lda.py``; these tests add the tight comparisons.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from scipy.special import psi

import fastem
from fastem import LatentDirichletAllocation, reference
from fastem.datasets import make_lda_corpus
from fastem.exceptions import NotFittedError
from fastem.topics._digamma import digamma_values
from fastem._core.threads import max_threads
from fastem.topics.corpus import check_counts

sklearn_decomposition = pytest.importorskip("sklearn.decomposition")
SklearnLDA = sklearn_decomposition.LatentDirichletAllocation

N_TOPICS = 4


@pytest.fixture(scope="module")
def corpus():
    """A small corpus from the LDA model: 120 documents, 80 words, 4 topics (CSR float64)."""
    X, topics, _ = make_lda_corpus(120, 80, N_TOPICS, doc_length=40, random_state=1)
    return X


def _tight(ours, theirs, rtol=1e-7):
    """Equal to ``rtol`` of the largest value.

    Not to 1e-15: a document's fixed point stops at the first update that
    changes gamma by less than ``mean_change_tol`` on average, so sums
    rounded in another order (1e-16) can stop a document one update earlier
    or later, a jump of up to about the tolerance times the contraction; and
    EM iterations carry it on. Measured here: 5e-10 after one E-step, a few
    1e-8 after several online steps.
    """
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    scale = np.abs(theirs).max()
    assert np.abs(ours - theirs).max() <= rtol * scale, np.abs(ours - theirs).max() / scale


# ----------------------------------------------------------------- digamma


def test_digamma_is_scikit_learns_approximation():
    x = np.logspace(-8, 8, 20001)
    ours = digamma_values(x)
    np.testing.assert_allclose(ours, reference.lda_digamma(x), rtol=1e-14, atol=1e-14)
    # An approximation of the exact function, good to a few 1e-9 above 1e-6,
    # where it switches to -EULER - 1/x (error about 1.6 x) ...
    above = x > 1e-6
    assert np.abs(ours - psi(x))[above].max() < 5e-9
    assert np.abs(ours / psi(x) - 1)[~above].max() < 1e-11
    # ... whose error is the one scikit-learn's Cython has (psi(x) - psi(x + c) through its 2-D helper).
    from sklearn.decomposition._online_lda_fast import _dirichlet_expectation_2d

    rows = np.stack([x, np.full_like(x, 1e9)], axis=1)
    theirs = _dirichlet_expectation_2d(rows)[:, 0]
    total = digamma_values(rows.sum(axis=1))
    np.testing.assert_allclose(ours - total, theirs, rtol=1e-13, atol=1e-9 * 1e-5)


def test_sparse_expected_proportions_equal_the_full_computation():
    # After an update that left most topics exactly at the prior, only the
    # others go through digamma and exp; the values must not change at all.
    from fastem.topics._digamma import expected_proportions, expected_proportions_of_updated

    rng = np.random.default_rng(0)
    for n_computed in (0, 1, 7, 50):
        concentrations = np.full(50, 0.02)
        computed = np.sort(rng.choice(50, n_computed, replace=False)).astype(np.int64)
        concentrations[computed] = rng.gamma(1.0, 1.0, n_computed)
        full, sparse, scratch = np.empty(50), np.empty(50), np.empty(50)
        expected_proportions(concentrations, full)
        digamma_prior = float(digamma_values(np.array([0.02]))[0])
        expected_proportions_of_updated(concentrations, 0.02, digamma_prior, computed, n_computed, scratch, sparse)
        np.testing.assert_array_equal(sparse, full)


# ----------------------------------------------------- against the reference


def _start_draws(seed, n_docs, n_words, n_iterations):
    """The draws an estimator with random_state=seed makes: lambda, then one gamma start per iteration."""
    rng = np.random.RandomState(seed)
    topics = rng.gamma(100.0, 0.01, (N_TOPICS, n_words))
    return topics, [rng.gamma(100.0, 0.01, (n_docs, N_TOPICS)) for _ in range(n_iterations)]


def test_batch_fit_matches_the_naive_reference(corpus):
    topics, starts = _start_draws(3, *corpus.shape, 3)
    expected = reference.lda_batch_fit(corpus.toarray(), topics, 0.25, 0.25, starts)
    model = LatentDirichletAllocation(N_TOPICS, max_iter=3, random_state=3).fit(corpus)
    _tight(model.components_, expected, rtol=1e-7)


def test_e_step_and_bound_match_the_naive_reference(corpus):
    model = LatentDirichletAllocation(N_TOPICS, max_iter=2, random_state=0).fit(corpus)
    dense = corpus.toarray()
    ones = np.ones((dense.shape[0], N_TOPICS))
    gamma, _ = reference.lda_e_step(dense, model.components_, 0.25, ones)
    _tight(model.transform(corpus, normalize=False), gamma, rtol=1e-7)
    expected = reference.lda_bound(dense, model.components_, gamma, 0.25, 0.25)
    assert model.score(corpus) == pytest.approx(expected, rel=1e-9)
    assert model.perplexity(corpus) == pytest.approx(np.exp(-expected / dense.sum()), rel=1e-9)


def test_statistics_match_the_naive_reference(corpus):
    model = LatentDirichletAllocation(N_TOPICS, random_state=0)
    checked = check_counts(corpus, whom="test")
    exp_log_words = model._init_latent_vars(checked.n_words, checked.dtype)
    start = np.random.RandomState(5).gamma(100.0, 0.01, (checked.n_docs, N_TOPICS))
    model.random_state_ = np.random.RandomState(5)
    gamma, statistics = model._e_step(checked, exp_log_words, want_statistics=True, random_init=True)
    expected_gamma, expected_statistics = reference.lda_e_step(corpus.toarray(), model.components_, 0.25, start)
    _tight(gamma, expected_gamma, rtol=1e-7)
    _tight(statistics.T * model.exp_dirichlet_component_, expected_statistics, rtol=1e-7)


# ------------------------------------------------------ parity with sklearn


@pytest.mark.parametrize("learning_method", ["batch", "online"])
@pytest.mark.parametrize("container", ["dense", "csr", "csc"])
def test_same_answers_as_scikit_learn(corpus, learning_method, container):
    X = {"dense": corpus.toarray(), "csr": corpus.tocsr(), "csc": corpus.tocsc()}[container]
    options = dict(n_components=N_TOPICS, learning_method=learning_method, batch_size=32, max_iter=4,
                   evaluate_every=2, random_state=7)
    theirs = SklearnLDA(**options).fit(X)
    ours = LatentDirichletAllocation(**options).fit(X)
    _tight(ours.components_, theirs.components_)
    _tight(ours.exp_dirichlet_component_, theirs.exp_dirichlet_component_)
    _tight(ours.transform(X), theirs.transform(X))
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-9)
    assert ours.perplexity(X) == pytest.approx(theirs.perplexity(X), rel=1e-9)
    assert ours.perplexity(X, sub_sampling=True) == pytest.approx(theirs.perplexity(X, sub_sampling=True), rel=1e-9)
    assert ours.bound_ == pytest.approx(theirs.bound_, rel=1e-9)
    assert (ours.n_iter_, ours.n_batch_iter_) == (theirs.n_iter_, theirs.n_batch_iter_)


def test_partial_fit_same_answers_as_scikit_learn(corpus):
    # batch_size 16: each call is several mini-batches, so the lazy exp(E[log beta]) runs in partial_fit too.
    options = dict(n_components=N_TOPICS, batch_size=16, total_samples=500, learning_offset=5.0, random_state=2)
    theirs, ours = SklearnLDA(**options), LatentDirichletAllocation(**options)
    for start in range(0, 120, 40):
        theirs.partial_fit(corpus[start:start + 40])
        ours.partial_fit(corpus[start:start + 40])
    _tight(ours.components_, theirs.components_)
    assert ours.n_batch_iter_ == theirs.n_batch_iter_


def test_perplexity_stops_fit_early_as_scikit_learn(corpus):
    options = dict(n_components=N_TOPICS, max_iter=50, evaluate_every=1, perp_tol=5.0, random_state=0)
    theirs = SklearnLDA(**options).fit(corpus)
    ours = LatentDirichletAllocation(**options).fit(corpus)
    assert ours.n_iter_ == theirs.n_iter_ < 50
    _tight(ours.components_, theirs.components_)


def test_float32_keeps_its_dtype_and_stays_close(corpus):
    X32 = corpus.astype(np.float32)
    ours = LatentDirichletAllocation(N_TOPICS, max_iter=3, random_state=0).fit(X32)
    theirs = SklearnLDA(N_TOPICS, max_iter=3, random_state=0).fit(X32)
    assert ours.components_.dtype == ours.exp_dirichlet_component_.dtype == np.float32
    assert ours.transform(X32).dtype == np.float32
    # fastem computes in float64 and stores float32; scikit-learn computes in
    # float32: they agree to float32 rounding, amplified by the iterations.
    _tight(ours.components_, theirs.components_, rtol=1e-4)
    ours64 = LatentDirichletAllocation(N_TOPICS, max_iter=3, random_state=0).fit(corpus)
    _tight(ours.components_, ours64.components_, rtol=1e-5)


def test_integer_counts_give_float64(corpus):
    counts = corpus.toarray().astype(np.int64)
    model = LatentDirichletAllocation(N_TOPICS, max_iter=2, random_state=0).fit(counts)
    assert model.components_.dtype == np.float64
    reference_model = LatentDirichletAllocation(N_TOPICS, max_iter=2, random_state=0).fit(corpus)
    np.testing.assert_array_equal(model.components_, reference_model.components_)


def test_online_fast_path_is_the_full_update_to_the_bit(corpus):
    # fit and partial_fit of a float64 model compute exp(E[log beta]) only at
    # the next mini-batch's words; a step by step loop computes every word.
    options = dict(n_components=N_TOPICS, learning_method="online", batch_size=16, max_iter=2, random_state=0)
    fast = LatentDirichletAllocation(**options).fit(corpus)
    stepwise = LatentDirichletAllocation(**options)
    checked = check_counts(corpus, whom="test")
    exp_log_words = stepwise._init_latent_vars(checked.n_words, checked.dtype)
    for _ in range(2):
        for first in range(0, checked.n_docs, 16):
            batch = checked.documents(first, min(first + 16, checked.n_docs))
            exp_log_words = stepwise._em_step(batch, exp_log_words, checked.n_docs, batch_update=False)
    np.testing.assert_array_equal(fast.components_, stepwise.components_)
    np.testing.assert_array_equal(fast.exp_dirichlet_component_, stepwise.exp_dirichlet_component_)
    assert fast.n_batch_iter_ == stepwise.n_batch_iter_


def test_partial_fit_fast_path_is_the_full_update_to_the_bit(corpus):
    # Two partial_fit calls on a model (the second starts from the fitted
    # attributes), each of several mini-batches, against the step by step loop.
    fast = LatentDirichletAllocation(N_TOPICS, batch_size=16, total_samples=400, random_state=0)
    fast.partial_fit(corpus[:60])
    held = fast.exp_dirichlet_component_
    held_copy = held.copy()
    fast.partial_fit(corpus[60:])
    np.testing.assert_array_equal(held, held_copy)  # the array users held is not written to
    stepwise = LatentDirichletAllocation(N_TOPICS, batch_size=16, total_samples=400, random_state=0)
    exp_log_words = None
    for part in (corpus[:60], corpus[60:]):
        checked = check_counts(part, whom="test")
        if exp_log_words is None:
            exp_log_words = stepwise._init_latent_vars(checked.n_words, checked.dtype)
        for first in range(0, checked.n_docs, 16):
            batch = checked.documents(first, min(first + 16, checked.n_docs))
            exp_log_words = stepwise._em_step(batch, exp_log_words, 400, batch_update=False)
    np.testing.assert_array_equal(fast.components_, stepwise.components_)
    np.testing.assert_array_equal(fast.exp_dirichlet_component_, stepwise.exp_dirichlet_component_)


@pytest.fixture(scope="module")
def many_topics():
    """30 topics; with doc_topic_prior=0.01 documents concentrate, and the kernels skip negligible topics."""
    X, _, _ = make_lda_corpus(90, 150, 30, doc_length=60, doc_topic_prior=0.05, random_state=3)
    return X


@pytest.mark.parametrize("learning_method", ["batch", "online"])
def test_same_answers_as_scikit_learn_when_topics_are_skipped(many_topics, learning_method):
    options = dict(n_components=30, learning_method=learning_method, batch_size=30, max_iter=3,
                   doc_topic_prior=0.01, random_state=0)
    theirs = SklearnLDA(**options).fit(many_topics)
    ours = LatentDirichletAllocation(**options).fit(many_topics)
    _tight(ours.components_, theirs.components_)
    _tight(ours.transform(many_topics), theirs.transform(many_topics))
    assert ours.score(many_topics) == pytest.approx(theirs.score(many_topics), rel=1e-9)
    # The documents reached the regime of the shortcuts: topics exactly at
    # the prior, with proportions below 1e-20 of their document's largest.
    gamma = ours.transform(many_topics, normalize=False)
    assert (gamma == ours.doc_topic_prior_).sum() > gamma.size // 10
    log_theta = reference._lda_log_expectation(gamma)
    assert (log_theta - log_theta.max(axis=1, keepdims=True) < np.log(1e-20)).any()


def test_e_step_matches_the_naive_reference_when_topics_are_skipped(many_topics):
    model = LatentDirichletAllocation(30, max_iter=3, doc_topic_prior=0.01, random_state=0).fit(many_topics)
    dense = many_topics.toarray()
    gamma, _ = reference.lda_e_step(dense, model.components_, model.doc_topic_prior_, np.ones((dense.shape[0], 30)))
    _tight(model.transform(many_topics, normalize=False), gamma)


@pytest.mark.parametrize("options", [dict(max_iter=0), dict(max_doc_update_iter=0),
                                     dict(learning_method="online", max_doc_update_iter=1)])
def test_edge_settings_same_answers_as_scikit_learn(corpus, options):
    options = {**dict(n_components=N_TOPICS, batch_size=40, max_iter=2, random_state=0), **options}
    theirs = SklearnLDA(**options).fit(corpus)
    ours = LatentDirichletAllocation(**options).fit(corpus)
    _tight(ours.components_, theirs.components_)
    assert ours.bound_ == pytest.approx(theirs.bound_, rel=1e-9)


def test_float32_partial_fit_stays_close_to_scikit_learn(corpus):
    X32 = corpus.astype(np.float32)
    options = dict(n_components=N_TOPICS, batch_size=16, total_samples=300, random_state=0)
    theirs, ours = SklearnLDA(**options), LatentDirichletAllocation(**options)
    for part in (X32[:60], X32[60:]):
        theirs.partial_fit(part)
        ours.partial_fit(part)
    assert ours.components_.dtype == np.float32
    _tight(ours.components_, theirs.components_, rtol=1e-4)


def test_topics_come_from_the_fitted_model_not_n_components(corpus):
    model = LatentDirichletAllocation(N_TOPICS, max_iter=2, random_state=0).fit(corpus)
    before = model.transform(corpus)
    model.set_params(n_components=2)  # scikit-learn keeps using the fitted topics too
    np.testing.assert_array_equal(model.transform(corpus), before)
    assert np.isfinite(model.score(corpus))


def test_inconsistent_fitted_tables_are_an_error(corpus):
    model = LatentDirichletAllocation(N_TOPICS, max_iter=1, random_state=0).fit(corpus)
    model.exp_dirichlet_component_ = model.exp_dirichlet_component_[:, :40]
    for method in ("transform", "partial_fit"):
        with pytest.raises(ValueError, match="exp_dirichlet_component_ has shape"):
            getattr(model, method)(corpus)


def test_malformed_sparse_indices_are_an_error():
    X = scipy.sparse.csr_matrix((np.array([1.0]), np.array([5]), np.array([0, 1])), shape=(1, 3))
    with pytest.raises(ValueError, match="column index lies outside"):
        LatentDirichletAllocation(2).fit(X)


# ---------------------------------------------------------------- threads


@pytest.mark.parametrize("learning_method", ["batch", "online"])
@pytest.mark.skipif(max_threads() < 2, reason="needs two Numba threads to compare with one")
def test_bit_identical_for_any_thread_count(corpus, learning_method):
    models = [LatentDirichletAllocation(N_TOPICS, learning_method=learning_method, batch_size=40, max_iter=3,
                                        random_state=0, n_jobs=n_jobs).fit(corpus) for n_jobs in (1, 2)]
    np.testing.assert_array_equal(models[0].components_, models[1].components_)
    np.testing.assert_array_equal(models[0].transform(corpus), models[1].transform(corpus))
    assert models[0].score(corpus) == models[1].score(corpus)


# ----------------------------------------------------------- topic recovery


def test_recovers_the_topics_of_a_synthetic_corpus():
    X, topics, _ = make_lda_corpus(600, 60, 3, doc_length=80, doc_topic_prior=0.2, topic_word_prior=0.05,
                                   random_state=4)
    model = LatentDirichletAllocation(3, max_iter=30, random_state=0).fit(X)
    found = model.components_ / model.components_.sum(axis=1, keepdims=True)
    # Each true topic has a fitted topic within 0.1 in total variation, and they are distinct.
    distance = 0.5 * np.abs(topics[:, None, :] - found[None, :, :]).sum(axis=2)
    best = distance.argmin(axis=1)
    assert sorted(best) == [0, 1, 2]
    assert distance.min(axis=1).max() < 0.1


# ------------------------------------------------------------- bad input


def test_input_is_never_modified_and_duplicates_count_as_their_sum():
    # Unsorted indices with a repeated entry (row 0, word 2 twice).
    data = np.array([1.0, 2.0, 3.0, 1.0, 4.0, 2.0])
    indices = np.array([2, 0, 2, 1, 3, 0])
    indptr = np.array([0, 3, 6])
    X = scipy.sparse.csr_matrix((data, indices, indptr), shape=(2, 4))
    copies = X.data.copy(), X.indices.copy(), X.indptr.copy()
    model = LatentDirichletAllocation(2, max_iter=3, random_state=0).fit(X)
    model.transform(X)
    model.score(X)
    for before, after in zip(copies, (X.data, X.indices, X.indptr)):
        np.testing.assert_array_equal(before, after)
    summed = np.array([[2.0, 0.0, 4.0, 0.0], [2.0, 1.0, 0.0, 4.0]])
    expected = LatentDirichletAllocation(2, max_iter=3, random_state=0).fit(summed)
    np.testing.assert_allclose(model.components_, expected.components_, rtol=1e-13)
    dense = summed.copy()
    LatentDirichletAllocation(2, max_iter=1, random_state=0).fit(dense)
    np.testing.assert_array_equal(dense, summed)


@pytest.mark.parametrize("bad, message", [
    (-np.ones((3, 4)), "Negative values in data passed to LatentDirichletAllocation.fit"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "contains NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "contains infinity"),
    (np.zeros((0, 4)), "0 sample"),
    (np.zeros((3, 0)), "0 feature"),
    (np.ones(4), "Expected 2D array"),
    (np.array([["a", "b"]]), "strings"),
])
def test_bad_data_is_a_clear_error(bad, message):
    with pytest.raises(ValueError, match=message):
        LatentDirichletAllocation(2).fit(bad)


def test_negative_sparse_counts_are_an_error():
    X = scipy.sparse.csr_matrix(np.array([[1.0, -1.0], [0.0, 2.0]]))
    with pytest.raises(ValueError, match="Negative values in data passed to LatentDirichletAllocation.partial_fit"):
        LatentDirichletAllocation(2).partial_fit(X)


@pytest.mark.parametrize("method", ["transform", "score", "perplexity", "partial_fit"])
def test_wrong_vocabulary_size_raises_and_leaves_the_model_unchanged(corpus, method):
    model = LatentDirichletAllocation(N_TOPICS, max_iter=2, random_state=0).fit(corpus)
    state = {name: np.copy(value) for name, value in vars(model).items()
             if name.endswith("_") and name != "random_state_"}
    random_state = model.random_state_.get_state()
    with pytest.raises(ValueError, match="X has 79 features, but LatentDirichletAllocation is expecting 80"):
        getattr(model, method)(corpus[:, :79])
    for name, value in state.items():
        np.testing.assert_array_equal(getattr(model, name), value, err_msg=name)
    for before, after in zip(random_state, model.random_state_.get_state()):
        np.testing.assert_array_equal(before, after)  # no draw was made


@pytest.mark.parametrize("method", ["transform", "score", "perplexity", "get_feature_names_out"])
def test_unfitted_model_raises(corpus, method):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(LatentDirichletAllocation(), method)(*([corpus] if method != "get_feature_names_out" else []))


@pytest.mark.parametrize("name, value", [
    ("n_components", 0), ("n_components", 2.5), ("doc_topic_prior", 1.5), ("topic_word_prior", -0.1),
    ("doc_topic_prior", 0.0), ("topic_word_prior", 0),
    ("learning_method", "stochastic"), ("learning_decay", 2.0), ("learning_offset", 0.5), ("max_iter", -1),
    ("batch_size", 0), ("evaluate_every", 1.5), ("total_samples", 0), ("perp_tol", -1.0),
    ("mean_change_tol", np.nan), ("max_doc_update_iter", -1), ("n_jobs", 0), ("n_jobs", "two"),
    ("verbose", "yes"),
])
def test_invalid_parameters_name_themselves(corpus, name, value):
    expected = "n_jobs must be a non-zero integer" if value == 0 and name == "n_jobs" else \
        f"The '{name}' parameter of LatentDirichletAllocation must be"
    with pytest.raises(ValueError, match=expected) as raised:
        LatentDirichletAllocation(**{name: value}).fit(corpus)
    if expected.startswith("The"):
        assert isinstance(raised.value, TypeError)  # as scikit-learn's InvalidParameterError


def test_precomputed_distribution_shapes_are_checked(corpus):
    model = LatentDirichletAllocation(N_TOPICS, max_iter=1, random_state=0).fit(corpus)
    with pytest.raises(ValueError, match="Number of samples"):
        model._perplexity_precomp_distr(corpus, np.ones((3, N_TOPICS)))
    with pytest.raises(ValueError, match="Number of topics"):
        model._perplexity_precomp_distr(corpus, np.ones((corpus.shape[0], N_TOPICS + 1)))


# ---------------------------------------------------------------- other


def test_empty_documents_get_the_prior():
    X = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 0.0]])
    model = LatentDirichletAllocation(2, max_iter=2, random_state=0).fit(X)
    gamma = model.transform(X, normalize=False)
    np.testing.assert_array_equal(gamma[0], [0.5, 0.5])
    all_empty = LatentDirichletAllocation(2, max_iter=1, random_state=0).fit(np.zeros((2, 3)))
    assert all_empty.bound_ == np.inf
    assert np.isfinite(all_empty.components_).all()


def test_works_with_scikit_learn_tools(corpus):
    from sklearn.base import clone
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    pipeline = make_pipeline(LatentDirichletAllocation(N_TOPICS, max_iter=2, random_state=0), Normalizer())
    out = pipeline.fit_transform(corpus)
    assert out.shape == (corpus.shape[0], N_TOPICS)
    copy = clone(LatentDirichletAllocation(N_TOPICS, learning_method="online"))
    assert copy.get_params()["learning_method"] == "online"
    assert fastem.LatentDirichletAllocation is LatentDirichletAllocation


def test_word_index_lists_each_words_documents_in_order(corpus):
    checked = check_counts(corpus, whom="test")
    starts, docs, positions = checked.word_index()
    by_word = corpus.tocsc()
    np.testing.assert_array_equal(starts, by_word.indptr)
    np.testing.assert_array_equal(docs, by_word.indices)
    np.testing.assert_array_equal(checked.counts[positions], by_word.data)


def test_verbose_prints_one_line_per_pass(corpus, capsys):
    LatentDirichletAllocation(N_TOPICS, max_iter=3, evaluate_every=2, verbose=1, random_state=0).fit(corpus)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "iteration: 1 of max_iter: 3"
    assert lines[1].startswith("iteration: 2 of max_iter: 3, perplexity: ")
    assert len(lines) == 3


_FINGERPRINT = """
import sys
import numpy as np
from fastem import LatentDirichletAllocation
from fastem.datasets import make_lda_corpus
X, _, _ = make_lda_corpus(200, 300, 30, doc_length=60, random_state=0)
arrays = []
for method in ("batch", "online"):
    model = LatentDirichletAllocation(30, learning_method=method, batch_size=64, max_iter=2, doc_topic_prior=0.01,
                                      random_state=0).fit(X)
    arrays += [model.components_, model.exp_dirichlet_component_, model.transform(X)]
np.savez(sys.argv[1], *arrays)
"""


@pytest.mark.slow
def test_a_process_that_compiles_and_one_that_loads_the_cache_agree_to_the_bit(tmp_path):
    # The M-step's topic totals once differed by 1e-14 between the two
    # (LLVM grouped a vectorised sum differently); they are now summed in a fixed grouping.
    import os
    import subprocess
    import sys

    environment = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    results = []
    for run in ("compiles", "loads"):
        path = tmp_path / f"{run}.npz"
        subprocess.run([sys.executable, "-c", _FINGERPRINT, str(path)], env=environment, check=True)
        results.append(np.load(path))
    for name in results[0].files:
        np.testing.assert_array_equal(results[0][name], results[1][name], err_msg=name)
