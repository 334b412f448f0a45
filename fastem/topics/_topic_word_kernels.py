"""The M-step of LDA: the topic-word concentrations (lambda) and exp(E[log beta]) from them.

One kernel does the batch and the online update, since batch is the online
update with weight 1: ``lambda <- (1 - w) lambda + w (eta + scale * s)``,
where ``s = stats * exp(E[log beta])`` under the previous parameters (the
statistics the E-step gathered, completed as scikit-learn completes them).
With ``w = 1`` the old lambda is multiplied by exactly 0, so the batch
update is ``eta + s`` to the bit. The same kernel then recomputes
exp(E[log beta]) from the new lambda, in the topic-major layout of the
``exp_dirichlet_component_`` attribute and word-major for the next E-step.

Online learning updates lambda once per mini-batch over the whole (K, V)
table, but the next mini-batch reads exp(E[log beta]) of its own words
only: a float64 model's online steps compute just those
(:func:`word_expectations`), and the whole table once at the end of the
call. The full passes are laid out for speed: the work runs over blocks of words (the
word-major statistics and output of a block stay in L1 while every topic
passes over it, and no two threads write the same cache lines), and each
topic's total is the sum of its per-block totals in block order, so the
result does not depend on the thread count. Before, with topics in
parallel and word-major writes one topic apart, the update took 7 ms per
mini-batch at 50 x 10,000, 70% of an online step.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import allocating_helper, helper, kernel, ordered_helper
from fastem.topics._digamma import digamma, exp_expected_log

_BLOCK_WORDS = 64


@ordered_helper
def _row_sum(row, first, last):
    """sum(row[first:last]) in a fixed grouping: eight running sums (word i into sum i % 8), then added in order."""
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    w = first
    while w + 8 <= last:
        s0 += row[w]
        s1 += row[w + 1]
        s2 += row[w + 2]
        s3 += row[w + 3]
        s4 += row[w + 4]
        s5 += row[w + 5]
        s6 += row[w + 6]
        s7 += row[w + 7]
        w += 8
    for w in range(w, last):
        s0 += row[w]
    return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))


@helper
def _update_block(concentrations, word_statistics, exp_log_topics, weight, scale, prior, first, last, totals):
    """Update lambda on words ``first:last`` for every topic; totals[k] = the block's sum of the new lambda."""
    prefer_wide_vectors()
    for k in range(concentrations.shape[0]):
        for w in range(first, last):
            expected = word_statistics[w, k] * exp_log_topics[k, w]
            concentrations[k, w] = concentrations[k, w] * (1.0 - weight) + weight * (prior + scale * expected)
        totals[k] = _row_sum(concentrations[k], first, last)


@helper
def _expectations_block(concentrations, digamma_totals, first, last, scratch, exp_log_topics, exp_log_words):
    """exp(E[log beta]) on words ``first:last``: exp(digamma(lambda_kw) - digamma(sum_w lambda_kw)), both layouts.

    The values are computed into ``scratch`` (K, block), then copied to both
    layouts. Computed straight into the outputs, the loop ran scalar when it
    also stored word-major (27 ns an entry), and otherwise at a speed that
    varied 4x with the outputs' addresses (cache aliasing).
    """
    prefer_wide_vectors()
    n_topics = concentrations.shape[0]
    width = last - first
    for k in range(n_topics):
        digamma_total = digamma_totals[k]
        for i in range(width):
            scratch[k, i] = exp_expected_log(digamma(concentrations[k, first + i]), digamma_total)
    for k in range(n_topics):
        for i in range(width):
            exp_log_topics[k, first + i] = scratch[k, i]
    for i in range(width):
        for k in range(n_topics):
            exp_log_words[first + i, k] = scratch[k, i]


@allocating_helper
def _digamma_totals(block_totals, out):
    """out[k] = digamma(sum over blocks of block_totals[b, k]), the blocks added in order."""
    for k in range(out.shape[0]):
        total = 0.0
        for b in range(block_totals.shape[0]):
            total += block_totals[b, k]
        out[k] = digamma(total)


@kernel
def _fill_expectations(concentrations, digamma_totals, exp_log_topics, exp_log_words):
    """exp(E[log beta]) of every word, by blocks of words."""
    n_topics, n_words = concentrations.shape
    for b in prange((n_words + _BLOCK_WORDS - 1) // _BLOCK_WORDS):
        first = b * _BLOCK_WORDS
        scratch = np.empty((n_topics, _BLOCK_WORDS))
        _expectations_block(concentrations, digamma_totals, first, min(first + _BLOCK_WORDS, n_words), scratch,
                            exp_log_topics, exp_log_words)


@helper
def _expectations_in_place(values, width, digamma_total):
    """values[i] <- exp(digamma(values[i]) - digamma_total) for i < width."""
    prefer_wide_vectors()
    for i in range(width):
        values[i] = exp_expected_log(digamma(values[i]), digamma_total)


@kernel
def _fill_listed_words(concentrations, digamma_totals, words, exp_log_topics, exp_log_words):
    """exp(E[log beta]) of the words ``words`` only (increasing word ids), by blocks of the list."""
    n_topics = concentrations.shape[0]
    n_listed = words.shape[0]
    for b in prange((n_listed + _BLOCK_WORDS - 1) // _BLOCK_WORDS):
        first = b * _BLOCK_WORDS
        width = min(first + _BLOCK_WORDS, n_listed) - first
        scratch = np.empty((n_topics, _BLOCK_WORDS))
        for k in range(n_topics):
            # Gather first, then compute on contiguous values: the arithmetic
            # vectorises only without the indexed loads in its loop.
            for i in range(width):
                scratch[k, i] = concentrations[k, words[first + i]]
            _expectations_in_place(scratch[k], width, digamma_totals[k])
            for i in range(width):
                exp_log_topics[k, words[first + i]] = scratch[k, i]
        for i in range(width):
            word = words[first + i]
            for k in range(n_topics):
                exp_log_words[word, k] = scratch[k, i]


@kernel
def _update_by_blocks(concentrations, word_statistics, exp_log_topics, weight, scale, prior, block_totals):
    n_words = concentrations.shape[1]
    for b in prange(block_totals.shape[0]):
        first = b * _BLOCK_WORDS
        _update_block(concentrations, word_statistics, exp_log_topics, weight, scale, prior, first,
                      min(first + _BLOCK_WORDS, n_words), block_totals[b])


@kernel
def _block_sums(concentrations, block_totals):
    n_words = concentrations.shape[1]
    for b in prange(block_totals.shape[0]):
        first = b * _BLOCK_WORDS
        for k in range(concentrations.shape[0]):
            block_totals[b, k] = _row_sum(concentrations[k], first, min(first + _BLOCK_WORDS, n_words))


def _n_blocks(n_words: int) -> int:
    return (n_words + _BLOCK_WORDS - 1) // _BLOCK_WORDS


def update_concentrations(concentrations, word_statistics, exp_log_topics, weight, scale, prior) -> np.ndarray:
    """Update ``concentrations`` (K, V) in place; return digamma of each topic's new total.

    ``word_statistics`` (V, K) are the E-step's statistics, word-major, and
    ``exp_log_topics`` holds exp(E[log beta]) of the parameters that E-step
    used, at least at the words with statistics (elsewhere the statistics
    are 0, and any finite value gives the same result).
    """
    block_totals = np.empty((_n_blocks(concentrations.shape[1]), concentrations.shape[0]))
    _update_by_blocks(concentrations, word_statistics, exp_log_topics, float(weight), float(scale), float(prior),
                      block_totals)
    digamma_totals = np.empty(concentrations.shape[0])
    _digamma_totals(block_totals, digamma_totals)
    return digamma_totals


def update_topics(concentrations, word_statistics, exp_log_topics, weight, scale, prior, exp_log_words):
    """Update ``concentrations`` and ``exp_log_topics`` (K, V) in place and fill ``exp_log_words`` (V, K).

    The arguments are those of :func:`update_concentrations`; then exp(E[log
    beta]) of the new lambda, for every word, in both layouts.
    """
    digamma_totals = update_concentrations(concentrations, word_statistics, exp_log_topics, weight, scale, prior)
    _fill_expectations(concentrations, digamma_totals, exp_log_topics, exp_log_words)


def topic_digamma_totals(concentrations) -> np.ndarray:
    """digamma of each topic's total, summed by blocks as the update sums them."""
    block_totals = np.empty((_n_blocks(concentrations.shape[1]), concentrations.shape[0]))
    _block_sums(concentrations, block_totals)
    digamma_totals = np.empty(concentrations.shape[0])
    _digamma_totals(block_totals, digamma_totals)
    return digamma_totals


def topic_expectations(concentrations, exp_log_topics, exp_log_words):
    """exp(E[log beta]) of lambda (K, V), topic-major into ``exp_log_topics`` and word-major into ``exp_log_words``."""
    _fill_expectations(concentrations, topic_digamma_totals(concentrations), exp_log_topics, exp_log_words)


def fill_expectations(concentrations, digamma_totals, exp_log_topics, exp_log_words):
    """exp(E[log beta]) of every word, in both layouts, given digamma of each topic's total."""
    _fill_expectations(concentrations, digamma_totals, exp_log_topics, exp_log_words)


def word_expectations(concentrations, digamma_totals, words, exp_log_topics, exp_log_words):
    """exp(E[log beta]) at the words ``words`` only, in both layouts (the others are left as they are)."""
    _fill_listed_words(concentrations, digamma_totals, words, exp_log_topics, exp_log_words)
