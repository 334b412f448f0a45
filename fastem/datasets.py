"""Seeded synthetic data sets with known mixture parameters (demo, tests, benchmarks), and Old Faithful."""

from __future__ import annotations

import pathlib

import numpy as np


def load_faithful() -> tuple[np.ndarray, list]:
    """Old Faithful: 272 eruptions of the geyser, eruption time and waiting time in minutes.

    The classic two-cluster data set (Azzalini and Bowman, 1990; R's
    ``faithful``), shipped with fastem for examples and benchmarks.

    Returns
    -------
    X : ndarray of shape (272, 2)
    feature_names : list of str
        ``['eruptions', 'waiting']``.
    """
    path = pathlib.Path(__file__).parent / "data" / "faithful.csv"
    with open(path, encoding="utf-8") as handle:
        names = handle.readline().strip().split(",")
        X = np.loadtxt(handle, delimiter=",", ndmin=2)
    return X, names


def make_mixture(n_samples: int, weights, means, covariances, *, random_state=0, dtype=np.float64):
    """Draw ``n_samples`` rows from a Gaussian mixture with full covariances.

    Parameters
    ----------
    n_samples : int
    weights : array-like of shape (n_components,)
    means : array-like of shape (n_components, n_features)
    covariances : array-like of shape (n_components, n_features, n_features)
    random_state : int
    dtype : float32 or float64

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
        The component each row was drawn from (rows are grouped by component).
    """
    rng = np.random.default_rng(random_state)
    weights = np.asarray(weights, dtype=np.float64)
    counts = rng.multinomial(n_samples, weights / weights.sum())
    parts = [rng.multivariate_normal(m, c, size=int(n)) for m, c, n in zip(np.asarray(means, float), covariances, counts)]
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.vstack(parts).astype(dtype), labels


DEMO_WEIGHTS = np.array([0.5, 0.3, 0.2])
DEMO_MEANS = np.array([[0.0, 0.0], [6.0, 3.0], [-4.0, 5.0]])
DEMO_COVARIANCES = np.array([[[2.0, 0.8], [0.8, 1.0]], [[1.0, -0.6], [-0.6, 1.5]], [[0.5, 0.0], [0.0, 0.5]]])


def demo_data(n_samples: int = 100_000, random_state: int = 0):
    """The built-in demo: three well-separated, correlated 2-D Gaussians.

    The true parameters are ``DEMO_WEIGHTS``, ``DEMO_MEANS`` and ``DEMO_COVARIANCES``.
    """
    return make_mixture(n_samples, DEMO_WEIGHTS, DEMO_MEANS, DEMO_COVARIANCES, random_state=random_state)


def make_blobs(n_samples: int, n_features: int, n_components: int, *, separation: float = 8.0, random_state=0, dtype=np.float64):
    """Random well-separated mixture in any dimension (benchmarks and tests).

    Means are drawn in a box of side ``separation * n_components ** (1 / n_features)``;
    covariances are random with eigenvalues between 0.5 and 2.
    """
    rng = np.random.default_rng(random_state)
    side = separation * n_components ** (1.0 / n_features)
    means = rng.uniform(-side, side, size=(n_components, n_features))
    covariances = []
    for _ in range(n_components):
        q, _ = np.linalg.qr(rng.normal(size=(n_features, n_features)))
        covariances.append((q * rng.uniform(0.5, 2.0, size=n_features)) @ q.T)
    weights = rng.uniform(1.0, 2.0, size=n_components)
    return make_mixture(n_samples, weights / weights.sum(), means, np.array(covariances), random_state=random_state, dtype=dtype)


def make_lda_corpus(n_docs: int, n_words: int, n_topics: int, *, doc_length: float = 150.0,
                    doc_topic_prior: float = 0.1, topic_word_prior: float = 0.01, random_state=0):
    """Draw a document-word count matrix from the LDA generative model, with its topics.

    Each topic is a distribution over the vocabulary drawn from
    Dirichlet(``topic_word_prior``); each document draws its topic
    proportions from Dirichlet(``doc_topic_prior``) and a length from
    Poisson(``doc_length``), then each word: a topic from its proportions and
    a word from that topic.

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (n_docs, n_words), float64 counts
    topics : ndarray of shape (n_topics, n_words)
        The topics' word distributions (rows sum to 1).
    proportions : ndarray of shape (n_docs, n_topics)
        The documents' topic proportions.
    """
    import scipy.sparse

    rng = np.random.default_rng(random_state)
    topics = rng.dirichlet(np.full(n_words, topic_word_prior), size=n_topics)
    proportions = rng.dirichlet(np.full(n_topics, doc_topic_prior), size=n_docs)
    lengths = rng.poisson(doc_length, size=n_docs)
    docs = np.repeat(np.arange(n_docs), lengths)
    # Inverse-CDF draws for all tokens at once: each row's cumulative
    # distribution is offset by its row number, so one sorted array serves every row.
    topic_cdf = np.cumsum(proportions, axis=1)
    topic_cdf[:, -1] = 1.0
    topic_of_token = np.searchsorted((topic_cdf + np.arange(n_docs)[:, None]).ravel(),
                                     docs + rng.random(docs.size), side="right") - docs * n_topics
    topic_of_token = np.minimum(topic_of_token, n_topics - 1)
    word_cdf = np.cumsum(topics, axis=1)
    word_cdf[:, -1] = 1.0
    word_of_token = np.searchsorted((word_cdf + np.arange(n_topics)[:, None]).ravel(),
                                    topic_of_token + rng.random(docs.size), side="right") - topic_of_token * n_words
    word_of_token = np.minimum(word_of_token, n_words - 1)
    X = scipy.sparse.csr_matrix((np.ones(docs.size), (docs, word_of_token)), shape=(n_docs, n_words))
    X.sum_duplicates()
    return X, topics, proportions
