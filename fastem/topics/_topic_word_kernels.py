"""The M-step of LDA: the topic-word concentrations (lambda) and exp(E[log beta]) from them.

One kernel does the batch and the online update, since batch is the online
update with weight 1: ``lambda <- (1 - w) lambda + w (eta + scale * s)``,
where ``s = stats * exp(E[log beta])`` under the previous parameters (the
statistics the E-step gathered, completed as scikit-learn completes them).
With ``w = 1`` the old lambda is multiplied by exactly 0, so the batch
update is ``eta + s`` to the bit. The same pass then recomputes
exp(E[log beta]) from the new lambda, in the topic-major layout of the
``exp_dirichlet_component_`` attribute and word-major for the next E-step.
Topics run in parallel; each writes only its own row (and its own column of
the word-major copy).
"""

from __future__ import annotations

from numba import prange

from fastem._core.fast_math import exp_nonpositive
from fastem._core.numba import helper, kernel
from fastem.topics._digamma import digamma


@kernel
def update_topics(concentrations, word_statistics, exp_log_topics, weight, scale, prior, exp_log_words):
    """Update ``concentrations`` (K, V) and ``exp_log_topics`` (K, V) in place; fill ``exp_log_words`` (V, K).

    ``word_statistics`` (V, K) are the E-step's statistics, word-major, and
    ``exp_log_topics`` holds exp(E[log beta]) of the parameters that E-step used.
    """
    n_topics, n_words = concentrations.shape
    for k in prange(n_topics):
        total = 0.0
        for w in range(n_words):
            expected = word_statistics[w, k] * exp_log_topics[k, w]
            value = concentrations[k, w] * (1.0 - weight) + weight * (prior + scale * expected)
            concentrations[k, w] = value
            total += value
        _topic_expectations(concentrations, k, total, exp_log_topics, exp_log_words)


@helper
def _topic_expectations(concentrations, k, total, exp_log_topics, exp_log_words):
    """Row k of exp(E[log beta]) from row k of lambda, whose sum is ``total``, in both layouts."""
    digamma_total = digamma(total)
    for w in range(concentrations.shape[1]):
        value = exp_nonpositive(min(digamma(concentrations[k, w]) - digamma_total, 0.0))
        exp_log_topics[k, w] = value
        exp_log_words[w, k] = value


@kernel
def topic_expectations(concentrations, exp_log_topics, exp_log_words):
    """exp(E[log beta]) of lambda (K, V), topic-major into ``exp_log_topics`` and word-major into ``exp_log_words``."""
    for k in prange(concentrations.shape[0]):
        total = 0.0
        for w in range(concentrations.shape[1]):
            total += concentrations[k, w]
        _topic_expectations(concentrations, k, total, exp_log_topics, exp_log_words)
