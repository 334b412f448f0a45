"""Forward-backward and Viterbi over many sequences (parallel Numba kernels).

Sequences are grouped into fixed chunks of consecutive sequences (see
``sequences.make_sequences``: the grouping depends on the lengths only, never
on the thread count). ``prange`` runs over chunks; each chunk writes its own
partial transition and start statistics, which the caller adds in chunk order,
so results are bit-identical for any thread count.

Forward-backward is scaled, not in log space
--------------------------------------------
Each row's emission probabilities are taken relative to the row's largest
one, ``e_j = exp(log p(x_t | j) - M_t)``, so they never underflow all
together, however far out a row lies (a 1e4-sigma outlier has log-densities
near -5e7 under every state). The forward recursion then needs k^2
multiply-adds and k exps per row instead of k^2 exps and logs:

    c_j     = sum_i alpha_(t-1),i A_ij        (alpha_0 replaced by startprob)
    s_t     = sum_j c_j e_j,  alpha_t,j = c_j e_j / s_t
    log p(x_1..T) = sum_t (log s_t + M_t)

The row's ``e_j / s_t`` is stored in place of its log-densities for the
backward pass:

    beta_T = 1,  beta_t,i = sum_j A_ij (e_(t+1),j / s_(t+1)) beta_(t+1),j
    gamma_t = alpha_t beta_t (normalised),  xi_t,ij = alpha_t,i A_ij (e_(t+1),j / s_(t+1)) beta_(t+1),j

With this scaling ``sum_i alpha_t,i beta_t,i = 1``, so ``beta_t,i <= 1 /
alpha_t,i``: alphas below 1e-300 are flushed to zero, and the betas of states
with zero alpha (which no posterior can use) are set to zero, so no beta
overflows even on sequences of millions of rows.

When scaling is not exact, the sequence goes to log space
----------------------------------------------------------
Forward probabilities below 1e-300 are set to zero (a smaller value could
not be divided by a total that small without overflow, and subnormals are
slow). That is exact to working precision when every entry of ``transmat_``
is at least ``RESUPPLY_FLOOR`` (1e-50): one row later every state receives at
least that much mass from the others, which dwarfs what was dropped. With
smaller or zero entries (left-right models, blocks of an identity), a state
whose mass is dropped may be unreachable from the rest, and later rows could
make it likely again (a state at relative mass e^-1000 that thirty rows each
favour by e^50). So for such matrices any reachable state's probability
falling below 1e-300 stops the forward pass, as does a step total below
``_SCALE_FLOOR``: it returns NaN, and the caller redoes that sequence with
the textbook algorithm in log space (``_forward_backward_log``), as hmmlearn
runs every sequence. Left-right models with long sequences therefore often
take the slower log-space path; models whose transitions are all at least
1e-50 never lose a state this way.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from fastem._core.fast_math import exp_nonpositive
from fastem._core.numba import BLOCK_ROWS, helper, kernel

# A row whose step total s_t falls below this sends its sequence to log
# space (see the module docstring); above it, e_j / s_t <= 1e100 cannot overflow.
_SCALE_FLOOR = 1e-100
# The unnormalised forward probabilities are rescaled when their total falls
# below this, so a step total down to _SCALE_FLOOR still leaves them normal.
_RESCALE_BELOW = 1e-100
# Forward probabilities below this are flushed to zero (see the module docstring).
_ALPHA_FLOOR = 1e-300
# With every transition probability at least this, a state flushed to zero is
# resupplied by the others one row later with vastly more than it lost.
RESUPPLY_FLOOR = 1e-50


@helper
def _relative_emissions(log_prob, start, n_rows, row_max):
    """Rows start..start+n_rows-1 of ``log_prob`` become e_j = exp(log p - M_t), and M_t goes to ``row_max``."""
    n_components = log_prob.shape[1]
    for r in range(n_rows):
        m = log_prob[start + r, 0]
        for j in range(1, n_components):
            m = max(m, log_prob[start + r, j])
        row_max[r] = m
    for r in range(n_rows):
        m = row_max[r]
        for j in range(n_components):
            log_prob[start + r, j] = exp_nonpositive(log_prob[start + r, j] - m)


@helper
def forward_segment(e, start, stop, first_row, startprob, transposed, alpha, inverse_scale, row_max, predicted,
                    row_total, row_after, emissions_ready, scale_emissions, guard_losses):
    """Scaled forward pass over rows start..stop-1 of one sequence; returns sum_t (log s_t + M_t), or NaN.

    ``first_row``: row ``start`` opens the sequence (it uses startprob), else
    the pass continues from the normalised alpha[start - 1]. Unless
    ``emissions_ready``, each block's log-densities in ``e`` first become the
    relative emissions e_j (and M_t goes to ``row_max``). With
    ``scale_emissions`` they then become e_j / s_t, which the one-thread
    backward pass reads; otherwise they stay e_j. Writes the normalised
    alphas and 1 / s_t (``inverse_scale``). NaN means a step total
    underflowed, or (``guard_losses``) that a reachable state's forward
    probability fell below 1e-300 (see the module docstring).

    Rows go in blocks of ``BLOCK_ROWS``. Within a block the recursion keeps
    the forward probabilities unnormalised (their total tau_t is the product
    of the s_t since the block began), so no division sits on the
    row-to-row dependency chain; they are rescaled only when tau_t falls
    below ``_RESCALE_BELOW``. A second pass over the block, whose rows are
    independent, then normalises each alpha_t and records
    s_t = tau_t / tau_(t-1).
    """
    n_components = e.shape[1]
    log_likelihood = 0.0
    for block in range(start, stop, BLOCK_ROWS):
        n_rows = min(BLOCK_ROWS, stop - block)
        if not emissions_ready:
            _relative_emissions(e, block, n_rows, row_max[block:block + n_rows])
        previous_total = 1.0  # the block starts from normalised probabilities
        for r in range(n_rows):
            t = block + r
            if t == start and first_row:
                for j in range(n_components):
                    predicted[j] = startprob[j]
            else:
                # One register accumulator per state over the transposed
                # matrix: accumulating into predicted[] would put a store and
                # a reload on the dependency chain of every row.
                for j in range(n_components):
                    acc = 0.0
                    for i in range(n_components):
                        acc += alpha[t - 1, i] * transposed[j, i]
                    predicted[j] = acc
            total = 0.0
            for j in range(n_components):
                value = predicted[j] * e[t, j]
                value = value if value >= _ALPHA_FLOOR else 0.0  # no subnormals in the recursion
                alpha[t, j] = value
                total += value
            if not (total >= _SCALE_FLOOR * previous_total and total > 0.0):
                return np.nan
            if guard_losses:  # a reachable state dropped to zero (see the module docstring)
                for j in range(n_components):
                    if alpha[t, j] == 0.0 and predicted[j] > 0.0:
                        return np.nan
            row_total[r] = total
            if total < _RESCALE_BELOW:
                inverse = 1.0 / total
                for j in range(n_components):
                    alpha[t, j] *= inverse
                log_likelihood += math.log(total)
                total = 1.0
            row_after[r] = total
            previous_total = total
        log_likelihood += math.log(previous_total)
        previous_total = 1.0
        for r in range(n_rows):
            t = block + r
            log_likelihood += row_max[t]
            step_inverse = previous_total / row_total[r]  # 1 / s_t
            inverse_scale[t] = step_inverse
            previous_total = row_after[r]
            inverse = 1.0 / row_after[r]
            for j in range(n_components):
                value = alpha[t, j] * inverse
                alpha[t, j] = value if value >= _ALPHA_FLOOR else 0.0
            if scale_emissions:
                for j in range(n_components):
                    e[t, j] *= step_inverse
    return log_likelihood


@helper
def _backward(scaled, start, stop, transmat, alpha, weight, beta, beta_next, emitted, alpha_block, emitted_block,
              xi, start_stats, trans_stats):
    """Backward pass over rows start..stop-1: posteriors into ``scaled`` (which holds e / s on entry).

    Adds ``weight`` times the first row's posteriors into ``start_stats`` and
    the expected transitions into ``trans_stats``. Their sum over rows,
    ``A_ij * sum_t alpha_t,i g_(t+1),j`` with ``g = (e / s) * beta``, is formed
    a block at a time from transposed copies (``_add_outer_block``), which
    vectorises, rather than by k^2 read-modify-writes per row.
    """
    n_components = scaled.shape[1]
    for i in range(n_components):
        beta_next[i] = 1.0 if alpha[stop - 1, i] != 0.0 else 0.0
        for j in range(n_components):
            xi[i, j] = 0.0
    filled = 0
    for t in range(stop - 2, start - 1, -1):
        for j in range(n_components):
            emitted[j] = scaled[t + 1, j] * beta_next[j]
        # The posterior of row t + 1 is final once its scaled emissions are read.
        _posterior_row(alpha, t + 1, beta_next, scaled)
        for i in range(n_components):
            a = alpha[t, i]
            alpha_block[i, filled] = a
            emitted_block[i, filled] = emitted[i]
            total = 0.0
            for j in range(n_components):
                total += transmat[i, j] * emitted[j]
            beta[i] = total if a != 0.0 else 0.0
        for i in range(n_components):
            beta_next[i] = beta[i]
        filled += 1
        if filled == BLOCK_ROWS:
            _add_outer_block(alpha_block, emitted_block, filled, xi)
            filled = 0
    _add_outer_block(alpha_block, emitted_block, filled, xi)
    _posterior_row(alpha, start, beta_next, scaled)
    for j in range(n_components):
        start_stats[j] += weight * scaled[start, j]
    for i in range(n_components):
        for j in range(n_components):
            trans_stats[i, j] += weight * transmat[i, j] * xi[i, j]


@helper
def _add_outer_block(alpha_block, emitted_block, n_rows, xi):
    """xi[i, j] += sum over the block's rows of alpha_block[i, r] * emitted_block[j, r]."""
    n_components = xi.shape[0]
    for i in range(n_components):
        for j in range(n_components):
            total = 0.0
            for r in range(n_rows):
                total += alpha_block[i, r] * emitted_block[j, r]
            xi[i, j] += total


@helper
def _posterior_row(alpha, t, beta, out):
    """out[t] = alpha_t * beta / sum (left as alpha_t if that sum is zero)."""
    n_components = alpha.shape[1]
    total = 0.0
    for j in range(n_components):
        total += alpha[t, j] * beta[j]
    if total > 0.0:
        inverse = 1.0 / total
        for j in range(n_components):
            out[t, j] = alpha[t, j] * beta[j] * inverse
    else:
        for j in range(n_components):
            out[t, j] = alpha[t, j]


@kernel
def forward_backward(log_prob, offsets, sequence_ids, chunk_offsets, startprob, transmat, sequence_weights, alpha,
                     row_max, inverse_scale, log_likelihoods, part_start, part_trans, posteriors, guard_losses):
    """Forward(-backward) for every sequence, in parallel over chunks of sequences.

    log_prob : (n, k) float64, emission log-densities; overwritten: with the
        posteriors when ``posteriors`` is True, with scratch otherwise.
    offsets : (n_sequences + 1,) int64, row offsets of the sequences.
    sequence_ids : (m,) int64, the sequences to process.
    chunk_offsets : (n_chunks + 1,) int64, offsets into ``sequence_ids`` of the chunks.
    startprob (k,), transmat (k, k), sequence_weights (n_sequences,): float64.
    alpha : (n, k), row_max, inverse_scale : (n,), float64 scratch.
    log_likelihoods : (n_sequences,) float64, out.
    part_start (n_chunks, k), part_trans (n_chunks, k, k): float64, zeroed,
        out: each chunk's weighted start and transition statistics.
    posteriors : bool, whether to run the backward pass.
    guard_losses : bool, send a sequence to log space when a reachable state's
        forward probability is lost (``transmat`` has entries below ``RESUPPLY_FLOOR``).
    """
    n_components = log_prob.shape[1]
    n_chunks = chunk_offsets.shape[0] - 1
    for c in prange(n_chunks):
        predicted = np.empty(n_components)
        row_total = np.empty(BLOCK_ROWS)
        row_after = np.empty(BLOCK_ROWS)
        beta = np.empty(n_components)
        beta_next = np.empty(n_components)
        emitted = np.empty(n_components)
        alpha_block = np.empty((n_components, BLOCK_ROWS))
        emitted_block = np.empty((n_components, BLOCK_ROWS))
        xi = np.empty((n_components, n_components))
        transposed = np.empty((n_components, n_components))
        for i in range(n_components):
            for j in range(n_components):
                transposed[j, i] = transmat[i, j]
        chunk_start = part_start[c]
        chunk_trans = part_trans[c]
        for q in range(chunk_offsets[c], chunk_offsets[c + 1]):
            s = sequence_ids[q]
            start = offsets[s]
            stop = offsets[s + 1]
            log_likelihoods[s] = forward_segment(
                log_prob, start, stop, True, startprob, transposed, alpha, inverse_scale, row_max, predicted,
                row_total, row_after, False, posteriors, guard_losses,
            )
            if posteriors and log_likelihoods[s] == log_likelihoods[s]:
                _backward(
                    log_prob, start, stop, transmat, alpha, sequence_weights[s], beta, beta_next, emitted,
                    alpha_block, emitted_block, xi, chunk_start, chunk_trans,
                )


@kernel
def viterbi(log_prob, offsets, sequence_ids, chunk_offsets, log_startprob, log_transmat, path, log_probs):
    """Most likely state path of every sequence, in parallel over chunks of sequences.

    log_prob (n, k) float64 is overwritten with the Viterbi lattice. Ties go
    to the lowest state index, as in hmmlearn. path (n,) int64 and
    log_probs (n_sequences,) float64 are outputs.
    """
    n_components = log_prob.shape[1]
    n_chunks = chunk_offsets.shape[0] - 1
    for c in prange(n_chunks):
        for q in range(chunk_offsets[c], chunk_offsets[c + 1]):
            s = sequence_ids[q]
            start = offsets[s]
            stop = offsets[s + 1]
            for j in range(n_components):
                log_prob[start, j] += log_startprob[j]
            for t in range(start + 1, stop):
                for j in range(n_components):
                    best = log_prob[t - 1, 0] + log_transmat[0, j]
                    for i in range(1, n_components):
                        value = log_prob[t - 1, i] + log_transmat[i, j]
                        if value > best:
                            best = value
                    log_prob[t, j] += best
            state = 0
            best = log_prob[stop - 1, 0]
            for j in range(1, n_components):
                if log_prob[stop - 1, j] > best:
                    best = log_prob[stop - 1, j]
                    state = j
            log_probs[s] = best
            path[stop - 1] = state
            for t in range(stop - 2, start - 1, -1):
                following = path[t + 1]
                state = 0
                best = log_prob[t, 0] + log_transmat[0, following]
                for i in range(1, n_components):
                    value = log_prob[t, i] + log_transmat[i, following]
                    if value > best:
                        best = value
                        state = i
                path[t] = state
