"""Per-document kernels of LDA: the variational E-step, the topic-word statistics and the bound.

A corpus arrives as CSR arrays (``indptr``, ``indices``, ``counts``; int64,
int64, float64, whatever the caller's dtypes, so each kernel compiles once).
Word-topic tables are held word-major, shape (n_words, n_topics), so the
topics of one word are contiguous.

Parallel layout, and why results do not depend on the thread count: the
E-step runs ``prange`` over documents, and each document writes only its own
rows of the outputs, with the same operations whichever thread runs it. The
topic-word statistics ``sum_d exp_theta[d] * counts[d, w] / norm[d, w]`` are
then gathered word by word from a word-major (CSC) index of the corpus: each
word's row is written by one task that adds its documents in increasing
order. So there are no per-chunk partial tables to reduce (a table is
n_words x n_topics, 4 MB at 10,000 x 50) and no order that threads could
change.
"""

from __future__ import annotations

import math

import numpy as np

from numba import prange

from fastem._core.fast_math import exp_nonpositive, log_positive
from fastem._core.intrinsics import data_address, prefer_wide_vectors
from fastem._core.numba import allocating_helper, helper, kernel
from fastem.topics._digamma import digamma, expected_proportions, expected_proportions_of_updated


# Rows of a document's topic table start on a 64-byte boundary: with AVX-512
# every load of a misaligned row straddles two cache lines, and the fixed
# point ran 1.6x slower (1.7 against 1.04 us per update, 50 topics x 133 words).
_ALIGN_BYTES = 64
_ALIGN_FLOATS = _ALIGN_BYTES // 8


@helper
def _aligned_row_stride(n_columns):
    """Row length in float64s, rounded up so that every row of an aligned table starts aligned."""
    return (n_columns + _ALIGN_FLOATS - 1) // _ALIGN_FLOATS * _ALIGN_FLOATS


@helper
def _aligned_offset(buffer):
    """Elements to skip so that ``buffer[offset:]`` starts on a 64-byte boundary."""
    return ((_ALIGN_BYTES - data_address(buffer) % _ALIGN_BYTES) % _ALIGN_BYTES) // 8


@helper
def _gather_topics(word_topic, indices, start, n_words_in_doc, out, largest):
    """out[:, j] = word_topic[indices[start + j], :]: the document's words, topic-major, contiguous.

    ``largest[k]`` receives the largest of topic k's values over the document's words.
    """
    n_topics = word_topic.shape[1]
    for k in range(n_topics):
        largest[k] = 0.0
    for j in range(n_words_in_doc):
        word = indices[start + j]
        for k in range(n_topics):
            value = word_topic[word, k]
            out[k, j] = value
            largest[k] = max(largest[k], value)


# A topic whose terms in the words' normalisers add up, at most, to less than
# this fraction of a normaliser leaves it unchanged to 1/128 of an ulp.
_BELOW_ROUNDING = 2.0 ** -60
# Topics are candidates for leaving out when their bound is this far below the largest topic's.
_CANDIDATE = 2.0 ** -70


@helper
def _word_ratios(topics_of_words, counts, start, n_words_in_doc, proportions, eps, largest, active, skipped, out):
    """out[j] = counts[j] / (sum_k proportions[k] * topics_of_words[k, j] + eps), the words' normalised counts.

    Four topics per pass over the words: one load and store of ``out`` per
    four multiply-adds instead of per one (1.3x, measured).

    Once a document's proportions concentrate on a few topics, the others'
    ``proportions[k] * largest[k]`` fall to about 1e-24 of the largest.
    Those topics (below 2**-70 of it) are summed only into the normalisers
    of the words where, together, they could reach 2**-60 of the
    normaliser; elsewhere they change it by less than 1/128 of an ulp (a
    rounding difference of the size that summing in another order makes),
    and are left out. ``active`` and ``skipped`` are scratch for n_topics
    indices each.
    """
    prefer_wide_vectors()
    n_topics = topics_of_words.shape[0]
    strongest = 0.0
    for k in range(n_topics):
        strongest = max(strongest, proportions[k] * largest[k])
    cut = strongest * _CANDIDATE
    n_active = 0
    n_skipped = 0
    skipped_bound = 0.0
    for k in range(n_topics):
        bound = proportions[k] * largest[k]
        if bound < cut:
            skipped[n_skipped] = k
            n_skipped += 1
            skipped_bound += bound
        else:
            active[n_active] = k
            n_active += 1
    for j in range(n_words_in_doc):
        out[j] = 0.0
    i = 0
    while i + 4 <= n_active:
        k0, k1, k2, k3 = active[i], active[i + 1], active[i + 2], active[i + 3]
        w0, w1, w2, w3 = proportions[k0], proportions[k1], proportions[k2], proportions[k3]
        for j in range(n_words_in_doc):
            out[j] += (w0 * topics_of_words[k0, j] + w1 * topics_of_words[k1, j]) + (
                w2 * topics_of_words[k2, j] + w3 * topics_of_words[k3, j])
        i += 4
    for i in range(i, n_active):
        k = active[i]
        weight = proportions[k]
        for j in range(n_words_in_doc):
            out[j] += weight * topics_of_words[k, j]
    if n_skipped:
        needs_all = skipped_bound / _BELOW_ROUNDING
        for j in range(n_words_in_doc):
            if not out[j] > needs_all:
                for i in range(n_skipped):
                    k = skipped[i]
                    out[j] += proportions[k] * topics_of_words[k, j]
    for j in range(n_words_in_doc):
        out[j] = counts[start + j] / (out[j] + eps)


# A topic whose term proportions[k] * sum_j ratios[j] * topics_of_words[k, j]
# is below this fraction of the prior cannot change ``prior + term``: it is
# under half an ulp of the prior (2**-54 of it), with a factor 2 to spare
# for the rounding of the bound itself.
_NEGLIGIBLE = 2.0 ** -55


@helper
def _update_concentrations(topics_of_words, ratios, n_words_in_doc, proportions, prior, largest, active, out):
    """One fixed-point update: out[k] = prior + proportions[k] * sum_j ratios[j] * topics_of_words[k, j].

    Four topics per pass over the words, sharing each load of ``ratios``
    (``active`` is scratch for at least n_topics + 3 indices). Topics whose term is provably below half an ulp of ``prior`` get
    ``prior`` without the pass over the words: the exact result of the sum,
    bit for bit (all terms are non-negative, so ``proportions[k] *
    sum(ratios) * largest[k]`` bounds it). Once a document's proportions
    concentrate on a few topics, most topics are such (their proportions
    fall to about 1e-24 of the largest), and this halves the document's remaining work.
    Returns the number of topics computed, listed first in ``active``; every
    other topic's value is exactly ``prior``.
    """
    prefer_wide_vectors()
    n_topics = topics_of_words.shape[0]
    ratio_sum = 0.0
    for j in range(n_words_in_doc):
        ratio_sum += ratios[j]
    threshold = prior * _NEGLIGIBLE
    n_active = 0
    for k in range(n_topics):
        if proportions[k] * ratio_sum * largest[k] < threshold:
            out[k] = prior
        else:
            active[n_active] = k
            n_active += 1
    n_computed = n_active
    # Pad the list to a multiple of four with its last topic (computed again,
    # to the same value), so that every topic's sum takes the same code path
    # and rounds the same way whichever topics were skipped.
    while n_active % 4 != 0:
        active[n_active] = active[n_active - 1]
        n_active += 1
    i = 0
    while i + 4 <= n_active:
        k0, k1, k2, k3 = active[i], active[i + 1], active[i + 2], active[i + 3]
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(n_words_in_doc):
            ratio = ratios[j]
            s0 += ratio * topics_of_words[k0, j]
            s1 += ratio * topics_of_words[k1, j]
            s2 += ratio * topics_of_words[k2, j]
            s3 += ratio * topics_of_words[k3, j]
        out[k0] = proportions[k0] * s0 + prior
        out[k1] = proportions[k1] * s1 + prior
        out[k2] = proportions[k2] * s2 + prior
        out[k3] = proportions[k3] * s3 + prior
        i += 4
    return n_computed


@kernel
def document_topics(indptr, indices, counts, exp_word_topic, start_concentrations, prior, max_updates, tol, eps,
                    concentrations, proportions, ratios, want_ratios):
    """The variational E-step of each document, as scikit-learn's ``_update_doc_distribution``.

    For document d, starting from ``start_concentrations[d]`` (gamma), repeat
    up to ``max_updates`` times: gamma <- prior + exp(E[log theta]) * (W^T
    (counts / (W exp(E[log theta]) + eps))), where W holds exp(E[log beta])
    of the document's words; stop once the mean absolute change of gamma is
    below ``tol``. Writes gamma to ``concentrations[d]``, exp(E[log theta])
    to ``proportions[d]`` and, when ``want_ratios``, the final normalised
    counts of the document's words to ``ratios[indptr[d]:indptr[d+1]]``.
    """
    n_docs = indptr.shape[0] - 1
    n_topics = exp_word_topic.shape[1]
    digamma_prior = digamma(prior)
    for d in prange(n_docs):
        start = indptr[d]
        n_words_in_doc = indptr[d + 1] - start
        stride = _aligned_row_stride(n_words_in_doc)
        table = np.empty(n_topics * stride + _ALIGN_FLOATS)
        offset = _aligned_offset(table)
        topics_of_words = table[offset:offset + n_topics * stride].reshape((n_topics, stride))
        ratio_buffer = np.empty(stride + _ALIGN_FLOATS)
        offset = _aligned_offset(ratio_buffer)
        doc_ratios = ratio_buffer[offset:offset + stride]
        gamma = np.empty(n_topics)
        updated = np.empty(n_topics)
        weights = np.empty(n_topics)
        largest = np.empty(n_topics)
        active = np.empty(n_topics + 3, dtype=np.int64)
        skipped = np.empty(n_topics, dtype=np.int64)
        scratch = np.empty(n_topics)
        _gather_topics(exp_word_topic, indices, start, n_words_in_doc, topics_of_words, largest)
        for k in range(n_topics):
            gamma[k] = start_concentrations[d, k]
        expected_proportions(gamma, weights)
        for _ in range(max_updates):
            _word_ratios(topics_of_words, counts, start, n_words_in_doc, weights, eps, largest, active, skipped,
                         doc_ratios)
            n_computed = _update_concentrations(topics_of_words, doc_ratios, n_words_in_doc, weights, prior,
                                                largest, active, updated)
            expected_proportions_of_updated(updated, prior, digamma_prior, active, n_computed, scratch, weights)
            change = 0.0
            for k in range(n_topics):
                change += abs(gamma[k] - updated[k])
                gamma[k] = updated[k]
            if change / n_topics < tol:
                break
        for k in range(n_topics):
            concentrations[d, k] = gamma[k]
            proportions[d, k] = weights[k]
        if want_ratios:
            _word_ratios(topics_of_words, counts, start, n_words_in_doc, weights, eps, largest, active, skipped,
                         doc_ratios)
            for j in range(n_words_in_doc):
                ratios[start + j] = doc_ratios[j]


@kernel
def topic_word_statistics(word_starts, word_docs, word_positions, ratios, proportions, out):
    """out[w, k] = sum over the documents d holding word w of ratios[d, w] * proportions[d, k].

    ``word_starts``/``word_docs``/``word_positions`` are the corpus's
    word-major index: the entries of word w are ``word_starts[w]`` to
    ``word_starts[w + 1]``, in increasing document order, each giving its
    document and its position in the CSR arrays (where ``ratios`` are).
    """
    n_topics = out.shape[1]
    for w in prange(out.shape[0]):
        for k in range(n_topics):
            out[w, k] = 0.0
        for p in range(word_starts[w], word_starts[w + 1]):
            d = word_docs[p]
            ratio = ratios[word_positions[p]]
            for k in range(n_topics):
                out[w, k] += ratio * proportions[d, k]


@allocating_helper
def word_major_index(indptr, indices, n_words, word_starts, word_docs, word_positions):
    """The corpus's entries grouped by word, each word's in increasing document order (a counting sort).

    Fills ``word_starts`` (n_words + 1): the entries of word w are
    ``word_starts[w]`` to ``word_starts[w + 1]``; ``word_docs`` and
    ``word_positions`` (nnz each) give each entry's document and its
    position in the CSR arrays. Serial: one pass to count, one to place;
    a stable argsort of the indices took 0.7 ms per mini-batch of 128
    documents, this 0.05.
    """
    for w in range(n_words + 1):
        word_starts[w] = 0
    for p in range(indices.shape[0]):
        word_starts[indices[p] + 1] += 1
    for w in range(n_words):
        word_starts[w + 1] += word_starts[w]
    next_slot = word_starts[:n_words].copy()
    for d in range(indptr.shape[0] - 1):
        for p in range(indptr[d], indptr[d + 1]):
            slot = next_slot[indices[p]]
            next_slot[indices[p]] = slot + 1
            word_docs[slot] = d
            word_positions[slot] = p


@helper
def _log_sum_exp_of_sum(a, b):
    """log(sum_k exp(a[k] + b[k])), shifted by the largest term."""
    largest = a[0] + b[0]
    for k in range(1, a.shape[0]):
        largest = max(largest, a[k] + b[k])
    total = 0.0
    for k in range(a.shape[0]):
        total += exp_nonpositive(a[k] + b[k] - largest)
    return largest + log_positive(total)


@kernel
def document_bounds(indptr, indices, counts, concentrations, log_word_topic, prior, out):
    """Each document's terms of the variational bound (scikit-learn's ``_approx_bound``, per document).

    out[d] = sum_w counts[d, w] log sum_k exp(E[log theta_dk] + E[log beta_kw])
    + sum_k (prior - gamma_dk) E[log theta_dk] + lgamma(gamma_dk) - lgamma(prior)
    + lgamma(K prior) - lgamma(sum_k gamma_dk); ``log_word_topic`` is E[log beta], word-major.
    """
    n_docs = indptr.shape[0] - 1
    n_topics = concentrations.shape[1]
    for d in prange(n_docs):
        log_theta = np.empty(n_topics)
        total = 0.0
        for k in range(n_topics):
            total += concentrations[d, k]
        digamma_total = digamma(total)
        for k in range(n_topics):
            log_theta[k] = digamma(concentrations[d, k]) - digamma_total
        score = 0.0
        for p in range(indptr[d], indptr[d + 1]):
            score += counts[p] * _log_sum_exp_of_sum(log_theta, log_word_topic[indices[p]])
        dirichlet = 0.0
        for k in range(n_topics):
            gamma = concentrations[d, k]
            dirichlet += (prior - gamma) * log_theta[k] + (math.lgamma(gamma) - math.lgamma(prior))
        out[d] = score + dirichlet + (math.lgamma(prior * n_topics) - math.lgamma(total))
