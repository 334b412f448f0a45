"""``LatentDirichletAllocation``: variational EM for LDA, a drop-in for scikit-learn's.

The algorithm, the parameters, the attributes and the way the random state
is consumed are scikit-learn's (1.9), after Hoffman, Blei & Bach, "Online
Learning for Latent Dirichlet Allocation" (2010):

* ``components_`` (lambda) starts as ``gamma(100, 0.01, (K, V))`` drawn from
  ``random_state_``;
* every EM step (the whole corpus in batch mode, one mini-batch online) draws
  the documents' starting gamma as ``gamma(100, 0.01, (n_docs, K))`` from the
  same random state, runs the per-document fixed point, gathers the
  topic-word statistics and updates lambda: ``eta + stats`` (batch) or
  ``(1 - rho) lambda + rho (eta + D/|batch| stats)`` with
  ``rho = (learning_offset + n_batch_iter_) ** -learning_decay`` (online);
* digamma is scikit-learn's approximation (see ``_digamma``).

So from the same ``random_state`` the answers are scikit-learn's at
``n_jobs=1`` (to rounding), for any ``n_jobs`` here: the documents run in
parallel on Numba threads, and each document's arithmetic is the same on
any thread. scikit-learn's own ``n_jobs > 1`` gives each process a copy of
the random state, which changes its answer.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np
from scipy.special import gammaln

from fastem._core.estimator import EstimatorBase
from fastem._core.feature_names import check_feature_names, feature_names_of, record_feature_names
from fastem._core.threads import numba_threads, resolve_n_jobs
from fastem._core.validation import check_random_state, plain
from fastem.topics._digamma import dirichlet_log_expectation
from fastem.topics._document_kernels import document_bounds, document_topics, topic_word_statistics
from fastem.topics._topic_word_kernels import (
    fill_expectations,
    topic_expectations,
    update_concentrations,
    update_topics,
    word_expectations,
)
from fastem.topics.corpus import Corpus, check_counts

# scikit-learn's start for lambda and for each document's gamma: Gamma(shape 100, scale 0.01), mean 1.
_INIT_SHAPE = 100.0
_INIT_SCALE = 1.0 / _INIT_SHAPE


class InvalidParameterError(ValueError, TypeError):
    """An invalid constructor parameter; like scikit-learn's class of the same name, both a ValueError and a TypeError."""


def _invalid(name: str, requirement: str, value) -> ValueError:
    # scikit-learn's InvalidParameterError wording, which callers match.
    return InvalidParameterError(f"The {name!r} parameter of LatentDirichletAllocation must be {requirement}. Got {plain(value)!r} instead.")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


class LatentDirichletAllocation(EstimatorBase):
    """Latent Dirichlet Allocation fitted by variational EM (batch or online), parallel over documents.

    A drop-in for ``sklearn.decomposition.LatentDirichletAllocation``: the
    same parameters, defaults, attributes and methods, and from the same
    ``random_state`` the same answers as scikit-learn at ``n_jobs=1``, for
    any ``n_jobs``: equal to rounding (typically 1e-12 relative; at worst a
    few 1e-8 in the tests, where a document's updates stop one step sooner
    or later because its change crossed ``mean_change_tol`` by a rounding
    difference).

    Parameters
    ----------
    n_components : int, default=10
        Number of topics.
    doc_topic_prior : float in (0, 1] or None, default=None
        Prior of the documents' topic proportions (alpha); None means ``1 / n_components``.
        scikit-learn also accepts 0, and then returns NaN scores; fastem refuses it.
    topic_word_prior : float in (0, 1] or None, default=None
        Prior of the topics' word distributions (eta); None means ``1 / n_components``; 0 is refused too.
    learning_method : {'batch', 'online'}, default='batch'
        'batch' uses all documents in each EM step; 'online' updates from
        mini-batches of ``batch_size`` documents with step size
        ``(learning_offset + n_batch_iter_) ** -learning_decay``.
    learning_decay : float in [0, 1], default=0.7
        kappa of the online step size; in (0.5, 1] for asymptotic convergence.
    learning_offset : float >= 1, default=10.0
        tau_0 of the online step size: down-weights early mini-batches.
    max_iter : int >= 0, default=10
        Passes over the data in :meth:`fit`.
    batch_size : int > 0, default=128
        Documents per mini-batch (online learning and :meth:`partial_fit`).
    evaluate_every : int, default=-1
        Compute the perplexity every this many passes in :meth:`fit`, and stop
        once it changes by less than ``perp_tol``; 0 or negative: never.
    total_samples : float > 0, default=1e6
        Total number of documents, used by :meth:`partial_fit` to scale a
        mini-batch's statistics.
    perp_tol : float >= 0, default=0.1
        Perplexity tolerance (with ``evaluate_every > 0``).
    mean_change_tol : float >= 0, default=1e-3
        A document's fixed point stops when the mean absolute change of its
        topic concentrations falls below this.
    max_doc_update_iter : int >= 0, default=100
        Most fixed-point updates per document and E-step.
    n_jobs : int or None, default=None
        Threads for the per-document work; None or -1 means all available.
        Results do not depend on it.
    verbose : int, default=0
        Print one line per pass (with the perplexity when it is evaluated).
    random_state : int, RandomState or None, default=None
        Seeds the topic and document starting values, as in scikit-learn.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Variational parameters (lambda) of the topics' word distributions.
    exp_dirichlet_component_ : ndarray of shape (n_components, n_features)
        exp(E[log beta]) under ``components_``.
    n_batch_iter_ : int
        EM steps taken, plus one (scikit-learn's convention).
    n_iter_ : int
        Passes over the data.
    bound_ : float
        Perplexity of the training data at the end of :meth:`fit`.
    doc_topic_prior_, topic_word_prior_ : float
        The priors used.
    random_state_ : numpy.random.RandomState
    n_features_in_ : int
    """

    def __init__(
        self,
        n_components=10,
        *,
        doc_topic_prior=None,
        topic_word_prior=None,
        learning_method="batch",
        learning_decay=0.7,
        learning_offset=10.0,
        max_iter=10,
        batch_size=128,
        evaluate_every=-1,
        total_samples=1e6,
        perp_tol=1e-1,
        mean_change_tol=1e-3,
        max_doc_update_iter=100,
        n_jobs=None,
        verbose=0,
        random_state=None,
    ):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.learning_method = learning_method
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.evaluate_every = evaluate_every
        self.total_samples = total_samples
        self.perp_tol = perp_tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.random_state = random_state

    # ----------------------------------------------------------------- checks

    def _check_parameters(self) -> None:
        """Raise a ValueError naming the first invalid constructor parameter (scikit-learn's constraints)."""
        if not _is_int(self.n_components) or self.n_components <= 0:
            raise _invalid("n_components", "an int in the range (0, inf)", self.n_components)
        for name in ("doc_topic_prior", "topic_word_prior"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and 0.0 <= value <= 1.0):
                raise _invalid(name, "None or a float in the range [0, 1]", value)
            if value == 0.0:
                # scikit-learn accepts 0, then returns NaN for bound_, score and
                # perplexity: a Dirichlet prior of 0 is improper and the bound
                # undefined (log Gamma(0) is infinite). fastem refuses it.
                raise _invalid(name, "None or a float in the range (0, 1] (0 is an improper prior, with which the "
                               "variational bound, score and perplexity are undefined)", value)
        if self.learning_method not in ("batch", "online"):
            raise _invalid("learning_method", "a str among {'batch', 'online'}", self.learning_method)
        if not (_is_real(self.learning_decay) and 0.0 <= self.learning_decay <= 1.0):
            raise _invalid("learning_decay", "a float in the range [0, 1]", self.learning_decay)
        if not (_is_real(self.learning_offset) and 1.0 <= self.learning_offset):
            raise _invalid("learning_offset", "a float in the range [1.0, inf)", self.learning_offset)
        for name, lowest in (("max_iter", 0), ("max_doc_update_iter", 0), ("batch_size", 1)):
            value = getattr(self, name)
            if not _is_int(value) or value < lowest:
                bounds = "[0, inf)" if lowest == 0 else "(0, inf)"
                raise _invalid(name, f"an int in the range {bounds}", value)
        if not _is_int(self.evaluate_every):
            raise _invalid("evaluate_every", "an int", self.evaluate_every)
        if not (_is_real(self.total_samples) and 0.0 < self.total_samples):
            raise _invalid("total_samples", "a float in the range (0, inf)", self.total_samples)
        for name in ("perp_tol", "mean_change_tol"):
            value = getattr(self, name)
            if not (_is_real(value) and 0.0 <= value):  # inf allowed, as scikit-learn allows it
                raise _invalid(name, "a float in the range [0, inf)", value)
        if self.n_jobs is not None and not _is_int(self.n_jobs):
            raise _invalid("n_jobs", "an int or None", self.n_jobs)
        if not (isinstance(self.verbose, (bool, np.bool_)) or (_is_int(self.verbose) and self.verbose >= 0)):
            raise _invalid("verbose", "an int in the range [0, inf) or a bool", self.verbose)
        resolve_n_jobs(self.n_jobs)  # n_jobs=0 is an error

    def _check_fitted_tables(self) -> None:
        """Raise a ValueError unless ``components_`` and ``exp_dirichlet_component_`` are consistent 2-D tables.

        The kernels take the number of topics and words from these arrays
        (not from ``n_components``, which ``set_params`` may have changed since
        the fit, as in scikit-learn), and they do not check bounds: arrays a
        user set must agree before any kernel reads them.
        """
        for name in ("components_", "exp_dirichlet_component_"):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.ndim != 2 or value.dtype.kind != "f" or 0 in value.shape:
                raise ValueError(f"{name} must be a non-empty 2-D float array (topics x words); got "
                                 f"{type(value).__name__} {getattr(value, 'shape', '')}.")
        if self.exp_dirichlet_component_.shape != self.components_.shape:
            raise ValueError(
                f"exp_dirichlet_component_ has shape {self.exp_dirichlet_component_.shape} but components_ has "
                f"shape {self.components_.shape}; they must agree (topics x words)."
            )

    def _checked(self, X, whom: str) -> Corpus:
        """X as a Corpus in the fitted model's precision, with its vocabulary size checked."""
        self._check_is_fitted()
        self._check_fitted_tables()
        check_feature_names(self, X)
        return check_counts(X, whom=f"LatentDirichletAllocation.{whom}", dtype=self.components_.dtype,
                            n_words=self.components_.shape[1])

    # ------------------------------------------------------------ the model

    def _init_latent_vars(self, n_features: int, dtype) -> np.ndarray:
        """Draw lambda and set the priors and counters, as scikit-learn does; return the E-step's table."""
        self.random_state_ = check_random_state(self.random_state)
        self.n_batch_iter_ = 1
        self.n_iter_ = 0
        self.doc_topic_prior_ = 1.0 / self.n_components if self.doc_topic_prior is None else self.doc_topic_prior
        self.topic_word_prior_ = 1.0 / self.n_components if self.topic_word_prior is None else self.topic_word_prior
        draw = self.random_state_.gamma(_INIT_SHAPE, _INIT_SCALE, (self.n_components, n_features))
        self.components_ = draw.astype(dtype, copy=False)
        self.n_features_in_ = n_features
        exp_topics = np.empty((self.n_components, n_features))
        exp_log_words = np.empty((n_features, self.n_components))
        topic_expectations(np.array(self.components_, dtype=np.float64), exp_topics, exp_log_words)
        return self._store_exp_topics(exp_topics, exp_log_words)

    def _store_exp_topics(self, exp_topics: np.ndarray, exp_log_words: np.ndarray) -> np.ndarray:
        """Set ``exp_dirichlet_component_`` in the model's precision; return the word-major float64 table of it."""
        dtype = self.components_.dtype
        self.exp_dirichlet_component_ = exp_topics.astype(dtype, copy=False)
        if dtype != np.float64:
            # The E-step reads the values the attribute holds, as scikit-learn's does.
            return self._word_major_exp_topics()
        return exp_log_words

    def _word_major_exp_topics(self) -> np.ndarray:
        """exp(E[log beta]) as the attribute holds it (users may set it), word-major, float64."""
        return np.ascontiguousarray(np.asarray(self.exp_dirichlet_component_, dtype=np.float64).T)

    def _e_step(self, corpus: Corpus, exp_log_words: np.ndarray, *, want_statistics: bool, random_init: bool):
        """Each document's gamma (n_docs, K) float64, and the word-major statistics (V, K) if wanted.

        K is the fitted tables' (``exp_log_words`` is (V, K)), not ``n_components``.
        """
        n_topics = exp_log_words.shape[1]
        if random_init:
            start = self.random_state_.gamma(_INIT_SHAPE, _INIT_SCALE, (corpus.n_docs, n_topics))
            start = start.astype(corpus.dtype, copy=False).astype(np.float64, copy=False)
        else:
            start = np.ones((corpus.n_docs, n_topics))
        concentrations = np.empty((corpus.n_docs, n_topics))
        proportions = np.empty((corpus.n_docs, n_topics))
        ratios = np.empty(corpus.counts.shape[0] if want_statistics else 0)
        eps = float(np.finfo(corpus.dtype).eps)  # added to each word's normaliser, in the data's precision
        document_topics(corpus.indptr, corpus.indices, corpus.counts, exp_log_words, np.ascontiguousarray(start),
                        float(self.doc_topic_prior_), int(self.max_doc_update_iter), float(self.mean_change_tol),
                        eps, concentrations, proportions, ratios, want_statistics)
        if not want_statistics:
            return concentrations, None
        statistics = np.empty((corpus.n_words, n_topics))
        topic_word_statistics(*corpus.word_index(), ratios, proportions, statistics)
        return concentrations, statistics

    def _em_step(self, corpus: Corpus, exp_log_words: np.ndarray, total_samples: float,
                 batch_update: bool) -> np.ndarray:
        """One E-step and lambda update, batch (the whole corpus) or online (one mini-batch).

        ``exp_log_words`` is the word-major exp(E[log beta]) of the current
        parameters; returns that of the new ones.
        """
        _, statistics = self._e_step(corpus, exp_log_words, want_statistics=True, random_init=True)
        if batch_update:
            weight, scale = 1.0, 1.0
        else:
            weight = self._online_weight()
            scale = float(total_samples) / corpus.n_docs
        # float64 models are updated in place (as scikit-learn's online update
        # updates components_); others through float64 copies. The E-step is
        # done with exp_log_words, so the update overwrites it.
        dtype = self.components_.dtype
        concentrations = np.require(self.components_, np.float64, ["C", "W"])
        # A new exp(E[log beta]) table each step, as scikit-learn assigns one:
        # the previous array, which users may hold, is left as it was.
        exp_topics = np.array(self.exp_dirichlet_component_, dtype=np.float64, order="C")
        new_exp_log_words = exp_log_words
        update_topics(concentrations, statistics, exp_topics, weight, scale, float(self.topic_word_prior_),
                      new_exp_log_words)
        self.components_ = concentrations.astype(dtype, copy=False)
        self.n_batch_iter_ += 1
        return self._store_exp_topics(exp_topics, new_exp_log_words)

    def _online_weight(self) -> float:
        """The online step size rho = (learning_offset + n_batch_iter_) ** -learning_decay."""
        return float(np.power(self.learning_offset + self.n_batch_iter_, -self.learning_decay))

    def _online_pass(self, corpus: Corpus, exp_log_words: np.ndarray, total_samples: float) -> np.ndarray:
        """One online step per mini-batch of ``batch_size`` documents; returns the new word-major table.

        A float64 model (the attributes C-contiguous and writeable) takes the
        fast path: each step computes exp(E[log beta]) only at the words of
        the mini-batch that reads it next, and the whole table is computed
        once at the end. Every value is computed as the full update computes
        it, so the result is the same to the bit.
        """
        bounds = [(first, min(first + self.batch_size, corpus.n_docs))
                  for first in range(0, corpus.n_docs, self.batch_size)]
        native = all(array.dtype == np.float64 and array.flags.c_contiguous and array.flags.writeable
                     for array in (self.components_, self.exp_dirichlet_component_))
        if not native:
            for first, last in bounds:
                exp_log_words = self._em_step(corpus.documents(first, last), exp_log_words, total_samples,
                                              batch_update=False)
            return exp_log_words
        # A new exp(E[log beta]) table for the call (the previous array, which
        # users may hold, is left as it was); lambda is updated in place, as
        # scikit-learn's online update updates components_.
        concentrations = self.components_
        exp_topics = self.exp_dirichlet_component_ = self.exp_dirichlet_component_.copy()
        digamma_totals = None  # None: both tables hold every word's value for the current lambda
        try:
            for first, last in bounds:
                batch = corpus.documents(first, last)
                if digamma_totals is not None:
                    word_expectations(concentrations, digamma_totals, batch.present_words(), exp_topics,
                                      exp_log_words)
                _, statistics = self._e_step(batch, exp_log_words, want_statistics=True, random_init=True)
                digamma_totals = update_concentrations(concentrations, statistics, exp_topics, self._online_weight(),
                                                       float(total_samples) / batch.n_docs,
                                                       float(self.topic_word_prior_))
                self.n_batch_iter_ += 1
        finally:
            # Also when interrupted: the attribute then matches the steps taken.
            if digamma_totals is not None:
                fill_expectations(concentrations, digamma_totals, exp_topics, exp_log_words)
        return exp_log_words

    # ------------------------------------------------------------ fitting

    def fit(self, X, y=None):
        """Fit the topics to the document-word matrix X by variational EM ('batch' or 'online').

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Non-negative word counts, one document per row.
        y : ignored

        Returns
        -------
        self
        """
        self._check_parameters()
        names = feature_names_of(X)
        corpus = check_counts(X, whom="LatentDirichletAllocation.fit")
        exp_log_words = self._init_latent_vars(corpus.n_words, corpus.dtype)
        last_bound = None
        with numba_threads(self._n_threads(corpus)):
            for i in range(self.max_iter):
                if self.learning_method == "online":
                    exp_log_words = self._online_pass(corpus, exp_log_words, corpus.n_docs)
                else:
                    exp_log_words = self._em_step(corpus, exp_log_words, corpus.n_docs, batch_update=True)
                if self.evaluate_every > 0 and (i + 1) % self.evaluate_every == 0:
                    concentrations, _ = self._e_step(corpus, exp_log_words, want_statistics=False,
                                                     random_init=False)
                    bound = self._perplexity_of(corpus, concentrations, sub_sampling=False)
                    if self.verbose:
                        print(f"iteration: {i + 1} of max_iter: {self.max_iter}, perplexity: {bound:.4f}")
                    if last_bound and abs(last_bound - bound) < self.perp_tol:
                        break
                    last_bound = bound
                elif self.verbose:
                    print(f"iteration: {i + 1} of max_iter: {self.max_iter}")
                self.n_iter_ += 1
            concentrations, _ = self._e_step(corpus, exp_log_words, want_statistics=False, random_init=False)
            self.bound_ = self._perplexity_of(corpus, concentrations, sub_sampling=False)
        record_feature_names(self, names)
        sys.stdout.flush()
        return self

    def partial_fit(self, X, y=None):
        """Update the topics from one mini-batch of documents (online variational Bayes).

        The first call initialises the model. X is split into mini-batches of
        ``batch_size`` documents; each is one online step, its statistics
        scaled by ``total_samples / batch``.

        Raises
        ------
        ValueError
            If X's vocabulary size differs from the model's (the model is left unchanged).
        """
        self._check_parameters()
        first_time = not hasattr(self, "components_")
        if first_time:
            names = feature_names_of(X)
            corpus = check_counts(X, whom="LatentDirichletAllocation.partial_fit")
        else:
            self._check_fitted_tables()
            check_feature_names(self, X)
            corpus = check_counts(X, whom="LatentDirichletAllocation.partial_fit", dtype=self.components_.dtype,
                                  n_words=self.components_.shape[1])
        with numba_threads(self._n_threads(corpus)):
            if first_time:
                exp_log_words = self._init_latent_vars(corpus.n_words, corpus.dtype)
            else:
                exp_log_words = self._word_major_exp_topics()
            self._online_pass(corpus, exp_log_words, self.total_samples)
        if first_time:
            record_feature_names(self, names)
        return self

    # ------------------------------------------------------------ inference

    def _n_threads(self, corpus: Corpus) -> int:
        """Kernel threads for passes over ``corpus``: ``n_jobs``, or for the default, one when the work is small.

        The work count is nonzero counts x topics (``fastem._core.threads``);
        each document's loop repeats that several times, so the count is low.
        """
        return resolve_n_jobs(self.n_jobs, work=corpus.counts.size * self.n_components)

    def _unnormalized_transform(self, corpus: Corpus) -> np.ndarray:
        with numba_threads(self._n_threads(corpus)):
            concentrations, _ = self._e_step(corpus, self._word_major_exp_topics(), want_statistics=False,
                                             random_init=False)
        return concentrations

    def transform(self, X, *, normalize=True):
        """The topic distribution of each document of X under the fitted topics.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        normalize : bool, default=True
            Divide each row by its sum (proportions); otherwise return the
            variational concentrations (gamma).

        Returns
        -------
        doc_topic_distr : ndarray of shape (n_samples, n_components), in the model's precision
        """
        corpus = self._checked(X, "transform")
        distribution = self._unnormalized_transform(corpus).astype(self.components_.dtype, copy=False)
        if normalize:
            distribution /= distribution.sum(axis=1)[:, np.newaxis]
        return distribution

    def fit_transform(self, X, y=None, *, normalize=True):
        """``fit(X)`` then ``transform(X, normalize=normalize)``."""
        return self.fit(X, y).transform(X, normalize=normalize)

    def _approx_bound(self, corpus: Corpus, concentrations: np.ndarray, sub_sampling: bool) -> float:
        """The variational lower bound of the log-likelihood of the documents (scikit-learn's ``_approx_bound``)."""
        lam = np.ascontiguousarray(self.components_, dtype=np.float64)
        log_topics = np.empty_like(lam)
        with numba_threads(self._n_threads(corpus)):
            dirichlet_log_expectation(lam, log_topics)
            per_document = np.empty(corpus.n_docs)
            document_bounds(corpus.indptr, corpus.indices, corpus.counts,
                            np.ascontiguousarray(concentrations, dtype=np.float64),
                            np.ascontiguousarray(log_topics.T), float(self.doc_topic_prior_), per_document)
        score = float(per_document.sum())
        if sub_sampling:
            score *= float(self.total_samples) / corpus.n_docs
        eta = float(self.topic_word_prior_)
        score += float(np.sum((eta - lam) * log_topics))
        score += float(np.sum(gammaln(lam) - gammaln(eta)))
        score += float(np.sum(gammaln(eta * lam.shape[1]) - gammaln(np.sum(lam, axis=1))))
        return score

    def _perplexity_of(self, corpus: Corpus, concentrations: np.ndarray, sub_sampling: bool) -> float:
        bound = self._approx_bound(corpus, concentrations, sub_sampling)
        word_count = corpus.total_count
        if word_count == 0.0:
            # Documents without a single word: no per-word bound exists. fastem
            # says infinite perplexity; scikit-learn divides by zero with a
            # RuntimeWarning (inf, or NaN when the bound is 0 as after a batch
            # fit on documents without words, which would put NaN in bound_).
            return float("inf")
        if sub_sampling:
            word_count *= float(self.total_samples) / corpus.n_docs
        return float(np.exp(-bound / word_count))

    def score(self, X, y=None):
        """The approximate log-likelihood of X: the variational bound, summed over documents."""
        corpus = self._checked(X, "score")
        return self._approx_bound(corpus, self._unnormalized_transform(corpus), sub_sampling=False)

    def perplexity(self, X, sub_sampling=False):
        """Approximate perplexity of X, ``exp(-bound / number of words)``.

        With ``sub_sampling``, X is taken as a sample of ``total_samples``
        documents and the bound and word count are scaled to them. Documents
        without a single word have an infinite perplexity.
        """
        corpus = self._checked(X, "perplexity")
        return self._perplexity_of(corpus, self._unnormalized_transform(corpus), bool(sub_sampling))

    def _perplexity_precomp_distr(self, X, doc_topic_distr=None, sub_sampling=False):
        """Perplexity of X given its gamma (scikit-learn's private method, kept for code that calls it)."""
        corpus = self._checked(X, "perplexity")
        if doc_topic_distr is None:
            doc_topic_distr = self._unnormalized_transform(corpus)
        else:
            doc_topic_distr = np.asarray(doc_topic_distr)
            if doc_topic_distr.ndim != 2 or doc_topic_distr.shape[0] != corpus.n_docs:
                raise ValueError("Number of samples in X and doc_topic_distr do not match.")
            if doc_topic_distr.shape[1] != self.components_.shape[0]:
                raise ValueError("Number of topics does not match.")
        return self._perplexity_of(corpus, doc_topic_distr, bool(sub_sampling))

    # ------------------------------------------------------ scikit-learn glue

    @property
    def _n_features_out(self) -> int:
        return self.components_.shape[0]

    def get_feature_names_out(self, input_features=None):
        """Names of the transformed columns: ``latentdirichletallocation0``, ``...1``, ..."""
        self._check_is_fitted()
        return np.asarray([f"latentdirichletallocation{i}" for i in range(self._n_features_out)], dtype=object)

    def __sklearn_tags__(self):
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float32", "float64"]),
            input_tags=InputTags(positive_only=True, sparse=True),
        )
