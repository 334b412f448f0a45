"""Log-probabilities of a block into responsibilities (log-sum-exp), flushing negligible ones to 0.

A responsibility below 2**-52 of its row is set to exactly 0, so the
accumulation visits only the rows a component really owns. A row with a
single owner needs no exp, log or division: a block of such rows skips them
altogether, and a block with few close components beyond one per row runs
them on its shared rows alone.
"""

from __future__ import annotations

import numpy as np

from fastem._core.fast_math import RESP_LOG_FLOOR, exp_flushed, log_positive
from fastem._core.intrinsics import float_like, prefer_wide_vectors, trailing_zeros
from fastem._core.numba import helper


@helper
def normalise_block(log_prob, n_rows, weights, row_max, row_flag, soft_rows, soft_prob, totals):
    """Turn log-probabilities into responsibilities in place (log-sum-exp).

    Responsibilities below 2**-52 of their row become exactly 0 (see
    RESP_LOG_FLOOR). Adds ``sum_row w_row * log p(x_row)`` to ``totals[0]``
    and ``sum w_row`` to ``totals[1]``; rows of weight zero contribute
    nothing (not even a NaN from ``0 * -inf``). ``row_max``, ``row_flag``
    (n_rows), ``soft_rows`` (n_rows) and ``soft_prob`` (k, n_rows) are
    scratch; ``row_flag`` holds each row's close components beyond one, then
    ``_exp_normalise``'s reciprocal totals.
    """
    prefer_wide_vectors()
    n_components = log_prob.shape[0]
    floor = float_like(RESP_LOG_FLOOR, log_prob)  # in log_prob's dtype, as exp_flushed uses it
    one = float_like(1.0, log_prob)
    zero = float_like(0.0, log_prob)
    for row in range(n_rows):
        row_max[row] = log_prob[0, row]
    for j in range(1, n_components):
        for row in range(n_rows):
            row_max[row] = max(row_max[row], log_prob[j, row])
    # A *hard* row has exactly one component within RESP_LOG_FLOOR of its
    # maximum (the maximum itself), which is most rows once separated
    # clusters are found. The exp path would give it exactly 1 for that
    # component and exactly 0 for the others, and log 1 = 0, so the same
    # responsibilities are written without any exp, log or division (the
    # log-likelihood sums may round differently in the last bit). Every
    # other row is *soft*.
    # A row with a finite maximum has at least one close component, so with
    # every maximum finite, `excess` counts the close components beyond one
    # per row: 0 means every row is hard, and it bounds the number of soft
    # rows. A row whose maximum is -inf, +inf or NaN has no close component
    # and could hide a row with two; it sends the block down the exp path,
    # where its non-finite total is caught in Python.
    # row_flag[row] counts the row's close components beyond one (-1 for a
    # row with none), and their sum is the block's `excess`: one pass serves
    # both the decision below and the listing of soft rows.
    n_finite = 0
    for row in range(n_rows):
        n_finite += (row_max[row] - row_max[row]) == 0.0  # False for inf and NaN
        row_flag[row] = -one
    for j in range(n_components):
        for row in range(n_rows):
            row_flag[row] += one if (log_prob[j, row] - row_max[row]) >= floor else zero
    excess = 0.0  # float64: exact for any block
    for row in range(n_rows):
        excess += row_flag[row]
    log_likelihood = 0.0
    weight_total = 0.0
    if n_finite < n_rows or 2.0 * excess > n_rows:
        # Many close components beyond one per row (perhaps in a few rows
        # only), or a maximum that is not finite: the exp over the whole block.
        _exp_normalise(log_prob, n_rows, row_max, row_flag)
        for row in range(n_rows):
            w = weights[row]
            log_likelihood += w * row_max[row] if w != 0.0 else 0.0
            weight_total += w
    else:
        # At most n_rows / 2 soft rows (there are at most `excess`), or none.
        # The soft rows are copied out to contiguous columns so that the exp
        # runs on them alone, the whole block is written as if hard, and the
        # soft rows' responsibilities are copied back over it. (After six
        # iterations at eight features and sixteen components a tenth of the
        # rows are soft, spread over every block, so few blocks are entirely
        # hard.)
        n_soft = 0
        if excess > 0.0:
            n_soft = list_nonzero(row_flag, n_rows, soft_rows)  # rows with a flag != 0
            for j in range(n_components):
                for t in range(n_soft):
                    soft_prob[j, t] = log_prob[j, soft_rows[t]]
        for j in range(n_components):
            for row in range(n_rows):
                log_prob[j, row] = one if (log_prob[j, row] - row_max[row]) >= floor else zero
        for row in range(n_rows):
            w = weights[row]
            hard = row_flag[row] == 0.0
            log_likelihood += w * row_max[row] if (w != 0.0 and hard) else 0.0
            weight_total += w
        if n_soft > 0:
            for t in range(n_soft):  # in place: soft_rows is increasing, so soft_rows[t] >= t
                row_max[t] = row_max[soft_rows[t]]
            _exp_normalise(soft_prob, n_soft, row_max, row_flag)
            for j in range(n_components):
                for t in range(n_soft):
                    log_prob[j, soft_rows[t]] = soft_prob[j, t]
            for t in range(n_soft):
                w = weights[soft_rows[t]]
                log_likelihood += w * row_max[t] if w != 0.0 else 0.0
    totals[0] += log_likelihood
    totals[1] += weight_total


@helper
def _exp_normalise(values, n_cols, col_max, scratch):
    """Normalise columns of log-probabilities: ``values[j, t] <- exp(values[j, t] - col_max[t]) / total_t``.

    Values below RESP_LOG_FLOOR of the column maximum become exactly 0. On
    return ``col_max[t]`` holds the column's log-sum-exp, ``col_max[t] +
    log total_t``; ``scratch`` (n_cols) is overwritten.
    """
    prefer_wide_vectors()
    n_components = values.shape[0]
    for t in range(n_cols):
        value = exp_flushed(values[0, t] - col_max[t])
        values[0, t] = value
        scratch[t] = value
    for j in range(1, n_components):
        for t in range(n_cols):
            value = exp_flushed(values[j, t] - col_max[t])
            values[j, t] = value
            scratch[t] += value
    for t in range(n_cols):
        total = scratch[t]
        scratch[t] = float_like(1.0, scratch) / total  # one division per column, then multiplications
        # With a finite maximum, total >= 1 (the largest term is exp(0)), so
        # its log is safe. A maximum of -inf, +inf or NaN gives a total of 0 or
        # NaN and a non-finite log-sum-exp, which the caller's totals carry to
        # the check in Python.
        col_max[t] += log_positive(np.float64(total))
    for j in range(n_components):
        for t in range(n_cols):
            values[j, t] *= scratch[t]


@helper
def list_nonzero(values, n_rows, index):
    """Write the positions of the non-zero entries of ``values[:n_rows]`` into ``index``.

    Returns their number; the positions are in increasing order.
    """
    prefer_wide_vectors()
    # Which entries are non-zero is data-dependent: a branch per row would be
    # mispredicted for a large share of them (that once cost more than all the
    # arithmetic of the accumulation). Instead a vectorised loop packs 64 rows
    # into a bit mask, and the loop over its set bits runs once per kept row.
    count = 0
    for base in range(0, n_rows, 64):
        # A view indexed by the loop counter: an index such as `base + bit`
        # could be negative as far as Numba knows, and its wrap-around check
        # turns the loads into gathers.
        word = values[base:min(base + 64, n_rows)]
        mask = np.uint64(0)
        if word.shape[0] == 64:  # a constant trip count: LLVM vectorises the packing
            for bit in range(64):
                mask |= np.uint64(word[bit] != 0.0) << np.uint64(bit)
        else:
            for bit in range(word.shape[0]):
                mask |= np.uint64(word[bit] != 0.0) << np.uint64(bit)
        while mask != 0:
            index[count] = base + np.intp(trailing_zeros(mask))
            count += 1
            mask &= mask - np.uint64(1)
    return count
