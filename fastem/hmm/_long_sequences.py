"""Forward-backward of long sequences on two threads at once: forward and backward meet in the middle.

Within one sequence the forward pass is serial, and so is the backward pass,
but they depend on each other only through what they store. A sequence of
``rows`` is split at ``mid``, and its work runs in two phases of two tasks:

    phase 1:  forward over [start, mid)         ||  backward over [mid, end)
    phase 2:  forward over [mid, end), and the  ||  backward over [start, mid), and
              posteriors and transitions of         the posteriors and transitions of
              [mid, end) as it goes                 [start, mid) as it goes

In phase 2 each pass finds the other's results for its half already stored,
so the posteriors and expected transitions are formed while the rows are in
cache, as the one-thread pass does. The scaling differs from
``_forward_backward``: the backward probabilities are scaled on their own
(divided by their largest value when it falls below 1e-100), so the
posteriors of a row are normalised by their own sum, and the transitions of
rows t, t + 1 by ``s_(t+1) * sum_j alpha_(t+1),j beta_(t+1),j`` (the same
quantity as ``sum_ij alpha_t,i A_ij e_(t+1),j beta_(t+1),j``). A row whose
posterior total is too small against its largest beta to be trusted flags the
sequence; such a sequence, like one whose forward pass underflows, is redone
in log space by the caller.

Which sequences go this way depends on their length only
(``sequences.LONG_SEQUENCE_ROWS``), never on the thread count, so results stay
bit-identical for any number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from fastem._core.numba import BLOCK_ROWS, helper, kernel
from fastem.hmm._forward_backward import (
    _ALPHA_FLOOR,
    _RESCALE_BELOW,
    _add_outer_block,
    _relative_emissions,
    forward_segment,
)

# A row's posterior total below this fraction of its largest beta is not
# trusted (see the module docstring).
_GAMMA_FLOOR = 1e-250


@helper
def _scaled_backward_row(transmat, emitted, beta_row):
    """beta_row = A emitted, divided by its largest entry when that falls below 1e-100; tiny values flushed."""
    n_components = transmat.shape[0]
    top = 0.0
    for i in range(n_components):
        acc = 0.0
        for j in range(n_components):
            acc += transmat[i, j] * emitted[j]
        beta_row[i] = acc
        top = max(top, acc)
    if top < _RESCALE_BELOW and top > 0.0:
        inverse = 1.0 / top
        for i in range(n_components):
            value = beta_row[i] * inverse
            beta_row[i] = value if value >= _ALPHA_FLOOR else 0.0


@helper
def _posterior_total(alpha_row, beta_row):
    """sum_j alpha_j beta_j of one row, or 0 when it is too small against the largest beta to be trusted."""
    total = 0.0
    top = 0.0
    for j in range(alpha_row.shape[0]):
        total += alpha_row[j] * beta_row[j]
        top = max(top, beta_row[j])
    return total if total >= _GAMMA_FLOOR * top and total > 0.0 else 0.0


@helper
def _backward_second_half(e, mid, end, transmat, beta, row_max, emitted):
    """Phase 1, backward task: relative emissions and scaled betas of rows mid..end-1, from the end."""
    n_components = e.shape[1]
    last_block = mid + ((end - 1 - mid) // BLOCK_ROWS) * BLOCK_ROWS
    for block in range(last_block, mid - 1, -BLOCK_ROWS):
        n_rows = min(BLOCK_ROWS, end - block)
        _relative_emissions(e, block, n_rows, row_max[block:block + n_rows])
        for t in range(block + n_rows - 1, block - 1, -1):
            if t == end - 1:
                for i in range(n_components):
                    beta[t, i] = 1.0
                continue
            for j in range(n_components):
                emitted[j] = e[t + 1, j] * beta[t + 1, j]
            _scaled_backward_row(transmat, emitted, beta[t])


@helper
def _combine_forward(e, alpha, beta, inverse_scale, first, last, end, weight, alpha_block, z_block, filled, xi):
    """Posteriors of rows first..last-1 into e, their transitions into the block buffers; returns ``filled``, or -1.

    Row t's transitions need row t + 1's normalised alpha, so the caller
    passes only rows whose successor is final. -1 means a posterior total
    could not be trusted (the sequence goes to log space).
    """
    n_components = e.shape[1]
    total = _posterior_total(alpha[first], beta[first]) if first < last else 1.0
    for t in range(first, last):
        if total == 0.0:
            return -1
        following = 1.0
        if t + 1 < end:
            following = _posterior_total(alpha[t + 1], beta[t + 1])
            if following == 0.0:
                return -1
            factor = weight * inverse_scale[t + 1] / following
            for j in range(n_components):
                z_block[j, filled] = e[t + 1, j] * beta[t + 1, j] * factor
                alpha_block[j, filled] = alpha[t, j]
            filled += 1
            if filled == BLOCK_ROWS:
                _add_outer_block(alpha_block, z_block, filled, xi)
                filled = 0
        inverse = 1.0 / total
        for j in range(n_components):
            e[t, j] = alpha[t, j] * beta[t, j] * inverse
        total = following
    return filled


@helper
def _forward_second_half(e, mid, end, startprob, transposed, alpha, beta, inverse_scale, row_max, weight, predicted,
                         row_total, row_after, alpha_block, z_block, xi, guard_losses):
    """Phase 2, forward task: alphas of rows mid..end-1, then their posteriors and transitions, block by block.

    Returns the rows' sum of log s_t + M_t, or NaN (underflow, or a
    posterior total that cannot be trusted).
    """
    log_likelihood = 0.0
    done = mid
    filled = 0
    for block in range(mid, end, BLOCK_ROWS):
        stop = min(block + BLOCK_ROWS, end)
        part = forward_segment(e, block, stop, False, startprob, transposed, alpha, inverse_scale, row_max,
                               predicted, row_total, row_after, True, False, guard_losses)
        if part != part:
            return np.nan
        log_likelihood += part
        ready = stop - 1 if stop < end else end  # the block's last row waits for its successor's alpha
        filled = _combine_forward(e, alpha, beta, inverse_scale, done, ready, end, weight, alpha_block, z_block,
                                  filled, xi)
        if filled < 0:
            return np.nan
        done = ready
    _add_outer_block(alpha_block, z_block, filled, xi)
    return log_likelihood


@helper
def _backward_first_half(e, start, mid, transmat, transposed, alpha, beta, inverse_scale, boundary, weight,
                         beta_next, beta_row, emitted, alpha_block, z_block, xi, start_stats):
    """Phase 2, backward task: betas of rows start..mid-1 from beta[mid], with their posteriors and transitions.

    ``boundary`` holds row mid's relative emissions (the forward task of
    phase 2 overwrites that row with its posteriors). Returns False when a
    posterior total cannot be trusted.
    """
    n_components = e.shape[1]
    for j in range(n_components):
        beta_next[j] = beta[mid, j]
        emitted[j] = boundary[j] * beta_next[j]
    # Transitions mid-1 -> mid: normalised directly (alpha[mid] belongs to the other task).
    norm = 0.0
    for j in range(n_components):
        acc = 0.0
        for i in range(n_components):
            acc += alpha[mid - 1, i] * transposed[j, i]
        norm += acc * emitted[j]
    if not norm > 0.0:
        return False
    factor = weight / norm
    filled = 0
    total_next = 0.0
    for t in range(mid - 1, start - 1, -1):
        if t < mid - 1:
            for j in range(n_components):
                emitted[j] = e[t + 1, j] * beta_next[j]
            factor = weight * inverse_scale[t + 1] / total_next
            # Row t + 1's emissions are used: its posteriors can take their place.
            inverse = 1.0 / total_next
            for j in range(n_components):
                e[t + 1, j] = alpha[t + 1, j] * beta_next[j] * inverse
        for j in range(n_components):
            z_block[j, filled] = emitted[j] * factor
            alpha_block[j, filled] = alpha[t, j]
        filled += 1
        if filled == BLOCK_ROWS:
            _add_outer_block(alpha_block, z_block, filled, xi)
            filled = 0
        _scaled_backward_row(transmat, emitted, beta_row)
        total_next = _posterior_total(alpha[t], beta_row)
        if total_next == 0.0:
            return False
        for j in range(n_components):
            beta_next[j] = beta_row[j]
    inverse = 1.0 / total_next
    for j in range(n_components):
        e[start, j] = alpha[start, j] * beta_next[j] * inverse
        start_stats[j] += weight * e[start, j]
    _add_outer_block(alpha_block, z_block, filled, xi)
    return True


@kernel
def meet_in_the_middle(phase, log_prob, offsets, long_ids, mids, startprob, transmat, sequence_weights, alpha, beta,
                       row_max, inverse_scale, boundary, partial_ll, part_start, part_xi, guard_losses):
    """One phase (1 or 2) of the split forward-backward of the sequences ``long_ids``, two tasks per sequence.

    log_prob (n, k): log-densities; after phase 2, the long sequences' rows
    hold their posteriors. alpha, beta (n, k), row_max, inverse_scale (n,):
    scratch shared by the phases. boundary (m, k): row mid's relative
    emissions, saved in phase 1. partial_ll (m, 3), zeroed: each half's
    log-likelihood, and a third entry the backward task of phase 2 sets;
    NaN anywhere means the sequence must go to log space. part_start
    (2m, k), part_xi (2m, k, k): zeroed; each task's weighted start
    posteriors and sum_t alpha_t,i z_j (times A_ij, they are the expected
    transitions).
    """
    n_components = log_prob.shape[1]
    for task in prange(2 * long_ids.shape[0]):
        q = np.int64(task) // 2
        s = long_ids[q]
        start = offsets[s]
        end = offsets[s + 1]
        mid = mids[q]
        weight = sequence_weights[s]
        predicted = np.empty(n_components)
        row_total = np.empty(BLOCK_ROWS)
        row_after = np.empty(BLOCK_ROWS)
        emitted = np.empty(n_components)
        beta_next = np.empty(n_components)
        beta_row = np.empty(n_components)
        alpha_block = np.empty((n_components, BLOCK_ROWS))
        z_block = np.empty((n_components, BLOCK_ROWS))
        transposed = np.empty((n_components, n_components))
        for i in range(n_components):
            for j in range(n_components):
                transposed[j, i] = transmat[i, j]
        forward_task = task % 2 == 0
        if phase == 1 and forward_task:
            partial_ll[q, 0] = forward_segment(log_prob, start, mid, True, startprob, transposed, alpha,
                                               inverse_scale, row_max, predicted, row_total, row_after, False, False,
                                               guard_losses)
        elif phase == 1:
            _backward_second_half(log_prob, mid, end, transmat, beta, row_max, emitted)
            for j in range(n_components):
                boundary[q, j] = log_prob[mid, j]
        elif partial_ll[q, 0] != partial_ll[q, 0]:
            pass  # the first half underflowed: the sequence goes to log space
        elif forward_task:
            partial_ll[q, 1] = _forward_second_half(
                log_prob, mid, end, startprob, transposed, alpha, beta, inverse_scale, row_max, weight, predicted,
                row_total, row_after, alpha_block, z_block, part_xi[task], guard_losses,
            )
        elif not _backward_first_half(log_prob, start, mid, transmat, transposed, alpha, beta, inverse_scale,
                                      boundary[q], weight, beta_next, beta_row, emitted, alpha_block, z_block,
                                      part_xi[task], part_start[task]):
            partial_ll[q, 2] = np.nan
