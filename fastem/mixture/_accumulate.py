"""Weighted accumulation of N_j, S1_j, S2_j from a block of responsibilities (serial helpers).

Statistics are centred at a shift per component (the current means), which
keeps second moments accurate when the data sit far from the origin. Each
component visits only the rows it owns: densely when it owns many, through a
list of rows, or, for full covariances, through per-component buffers of
(row, component) pairs flushed in one pass.

For two to eight features the pair-buffer loops, and for two to four the
dense loop, are generated code (``_unrolled_full``), chosen at compile time.
"""

from __future__ import annotations

import numpy as np

from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import BLOCK_ROWS, allocating_helper, helper, literal_value, specialise
from fastem.mixture._normaliser import list_nonzero
from fastem.mixture._unrolled_full import ACCUMULATE_DENSE, APPEND_PAIRS, FLUSH_PAIRS


# Per-task buffers of sparse (row, component) pairs waiting to be accumulated
# (see accumulate_full_block): about 256 KiB, which stays in L2, unless
# n_components * (n_features + 1) exceeds 512 (see pair_buffer_rows).
_PAIR_BUFFER_FLOATS = (256 * 2**10) // 8


@helper
def _select_rows(resp, j, n_rows, n_features, index):
    """Choose the rows a component's accumulation visits.

    Returns 0 when every responsibility is zero (nothing to add), ``n_rows``
    for a dense pass over the block, or ``count < n_rows`` after writing the
    rows with a non-zero responsibility into ``index``. Listed rows cost
    indirect loads (and, for full covariances, a copy into the pair buffers),
    so the list is used only when it skips enough work: at most half the rows
    remain, or a quarter below four features, where the dense loops are cheap
    per row (measured at two features, with the general dense loops: 6.0
    ns/row with a quarter against 7.9 with a third; re-checked with the
    generated dense loops at two features and three components, where
    listing each component's third of the rows made the E-step 1.65x slower).
    """
    prefer_wide_vectors()
    count = 0
    for row in range(n_rows):  # vectorises: a count, no stores
        count += resp[j, row] != 0.0
    if count == 0:
        return 0
    limit = n_rows // 2 if n_features >= 4 else n_rows // 4
    if count > limit:
        return n_rows
    return list_nonzero(resp[j], n_rows, index)


@helper
def pair_buffer_rows(n_components, n_features):
    """Capacity of each component's buffer of (row, component) pairs; see ``accumulate_full_block``.

    At least half a block (a sparse selection never exceeds that), at most
    four blocks, and about ``_PAIR_BUFFER_FLOATS`` floats over all components
    where that allows half a block: with many components and features the
    floor wins, and the buffers take k * (d + 1) * 64 floats per task (16 MiB
    at k = 1000, d = 31).
    """
    rows = _PAIR_BUFFER_FLOATS // max(n_components * (n_features + 1), 1)
    return max(BLOCK_ROWS // 2, min(rows, 4 * BLOCK_ROWS))


@helper
def _flush_pairs(j, pair_diff, pair_weight, pair_count, weighted_row, resp_sum, first, second, unrolled):
    """Add component j's buffered pairs to N_j, S1_j, S2_j (upper triangle) and empty its buffer."""
    count = pair_count[j]
    if count == 0:
        return
    pair_count[j] = 0
    _add_pairs(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second, unrolled)


def _add_pairs(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second, unrolled):
    """Add component j's first ``count`` buffered pairs to N_j, S1_j, S2_j (upper triangle).

    ``unrolled`` (compile-time) picks the generated ``FLUSH_PAIRS`` helper of
    that feature count, or the general loops for 0.
    """
    raise TypeError("_add_pairs is only callable from Numba-compiled code")


@specialise(_add_pairs)
def _add_pairs_for(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second, unrolled):
    generated = FLUSH_PAIRS.get(literal_value(unrolled, "unrolled"))
    if generated is None:
        def general(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second, unrolled):
            _add_pairs_loops(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second)
        return general

    def specialised(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second, unrolled):
        generated(j, pair_diff, pair_weight, count, resp_sum, first, second)
    return specialised


@helper
def _add_pairs_loops(j, pair_diff, pair_weight, count, weighted_row, resp_sum, first, second):
    """``_add_pairs`` for any feature count: one pass over the pairs per sum."""
    prefer_wide_vectors()
    n_features = pair_diff.shape[1]
    weight = pair_weight[j]
    diff = pair_diff[j]
    n_j = 0.0
    for t in range(count):
        n_j += weight[t]
    resp_sum[j] += n_j
    for a in range(n_features):
        s = 0.0
        for t in range(count):
            weighted_row[t] = weight[t] * diff[a, t]
            s += weighted_row[t]
        first[j, a] += s
        for b in range(a, n_features):
            s = 0.0
            for t in range(count):
                s += weighted_row[t] * diff[b, t]
            second[j, a, b] += s


@helper
def flush_all_pairs(pair_diff, pair_weight, pair_count, weighted_row, resp_sum, first, second, unrolled):
    for j in range(pair_count.shape[0]):
        _flush_pairs(j, pair_diff, pair_weight, pair_count, weighted_row, resp_sum, first, second, unrolled)


@helper
def accumulate_full_block(
    xt, n_rows, weights, shift, resp, index, weighted_resp, diff, weighted_diff,
    pair_diff, pair_weight, pair_count, resp_sum, first, second, unrolled,
):
    """Add this block's N_j, S1_j, S2_j (centred at shift_j); S2 upper triangle only.

    Only rows with a non-zero responsibility are visited: with separated
    components most rows belong to one or two of them, which turns the
    O(k d^2) accumulation per row into O(d^2). A component that owns most of
    the block is added directly. Otherwise its few rows (about n_rows / k)
    would make loops too short to vectorise, so their centred values and
    weights are appended to the component's pair buffer, which
    ``_flush_pairs`` adds in long loops when it fills and at the end of the
    chunk. The caller must flush every buffer after the chunk's last block.

    ``unrolled`` (compile-time) picks the generated appending, flushing and
    dense helpers of that feature count where they exist (see
    ``_unrolled_full``), the general loops for 0.
    """
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    capacity = pair_weight.shape[1]
    for j in range(n_components):
        count = _select_rows(resp, j, n_rows, n_features, index)
        if count == 0:
            continue
        if count < n_rows:
            if pair_count[j] + count > capacity:
                _flush_pairs(j, pair_diff, pair_weight, pair_count, weighted_resp, resp_sum, first, second, unrolled)
            fill = pair_count[j]
            pair_count[j] = fill + count
            _append_pairs(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill, unrolled)
            continue
        _accumulate_dense(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second, unrolled)


def _append_pairs(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill, unrolled):
    """Append rows ``index[:count]`` to component j's pair buffer at position ``fill``.

    Writes their weights ``weights[row] * resp[j, row]`` and differences
    ``xt[:, row] - shift[j]``. ``unrolled`` (compile-time) picks the generated
    ``APPEND_PAIRS`` helper of that feature count, or the general loop for 0.
    """
    raise TypeError("_append_pairs is only callable from Numba-compiled code")


@specialise(_append_pairs)
def _append_pairs_for(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill, unrolled):
    generated = APPEND_PAIRS.get(literal_value(unrolled, "unrolled"))
    if generated is None:
        def general(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill, unrolled):
            _append_pairs_loops(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill)
        return general

    def specialised(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill, unrolled):
        generated(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill)
    return specialised


@helper
def _append_pairs_loops(j, xt, weights, resp, shift, index, count, pair_diff, pair_weight, fill):
    """``_append_pairs`` for any feature count."""
    prefer_wide_vectors()
    n_features = xt.shape[0]
    # Rows outer: a loop over `count` (about n_rows / k) rows per feature
    # would be too short to pay for its own overhead.
    for t in range(count):
        row = index[t]
        pair_weight[j, fill + t] = weights[row] * resp[j, row]
        for feature in range(n_features):
            pair_diff[j, feature, fill + t] = xt[feature, row] - shift[j, feature]


def _accumulate_dense(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second, unrolled):
    """Add component j's N_j, S1_j, S2_j (upper triangle, centred at shift_j) over every row of a block.

    ``unrolled`` (compile-time) picks the generated ``ACCUMULATE_DENSE``
    helper of that feature count (one pass with every sum in a local), or
    the general loops (one pass per sum) where there is none.
    """
    raise TypeError("_accumulate_dense is only callable from Numba-compiled code")


@specialise(_accumulate_dense)
def _accumulate_dense_for(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second, unrolled):
    generated = ACCUMULATE_DENSE.get(literal_value(unrolled, "unrolled"))
    if generated is None:
        def general(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second, unrolled):
            _accumulate_dense_loops(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second)
        return general

    def specialised(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second, unrolled):
        generated(j, xt, n_rows, weights, resp, shift, resp_sum, first, second)
    return specialised


@helper
def _accumulate_dense_loops(j, xt, n_rows, weights, resp, shift, weighted_resp, diff, weighted_diff, resp_sum, first, second):
    """``_accumulate_dense`` for any feature count."""
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_j = 0.0
    for t in range(n_rows):
        weighted_resp[t] = weights[t] * resp[j, t]
        n_j += weighted_resp[t]
    resp_sum[j] += n_j
    for feature in range(n_features):
        c = shift[j, feature]
        s = 0.0
        for t in range(n_rows):
            dv = xt[feature, t] - c
            diff[feature, t] = dv
            weighted_diff[feature, t] = weighted_resp[t] * dv
            s += weighted_diff[feature, t]
        first[j, feature] += s
    for a in range(n_features):
        for b in range(a, n_features):
            s = 0.0
            for t in range(n_rows):
                s += weighted_diff[a, t] * diff[b, t]
            second[j, a, b] += s


def accumulate_full_rows(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second, use_blas):
    """BLAS version of ``accumulate_full_block`` for many features.

    ``use_blas`` is a compile-time constant: kernels compiled without BLAS
    get an empty function here (they never take the branch that calls it).
    """
    raise TypeError("accumulate_full_rows is only callable from Numba-compiled code")


@specialise(accumulate_full_rows)
def _accumulate_full_rows_for(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second, use_blas):
    if not literal_value(use_blas, "use_blas"):
        def without_blas(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second, use_blas):
            pass
        return without_blas

    def with_blas(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second, use_blas):
        _accumulate_full_blas(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second)
    return with_blas


@allocating_helper
def _accumulate_full_blas(X, start, n_rows, weights, shift, resp, index, diff_rows, weighted_rows, outer, resp_sum, first, second):
    """The work of ``accumulate_full_rows``.

    The selected rows' centred values are gathered in float64 (also for
    float32 data: sums stay float64) and S2_j grows by one (d, count) x
    (count, d) product.
    """
    prefer_wide_vectors()
    n_features = X.shape[1]
    n_components = shift.shape[0]
    for j in range(n_components):
        count = _select_rows(resp, j, n_rows, n_features, index)
        if count == 0:
            continue
        n_j = 0.0
        for t in range(count):
            row = t if count == n_rows else index[t]
            w = weights[row] * resp[j, row]
            n_j += w
            for feature in range(n_features):
                dv = np.float64(X[start + row, feature]) - shift[j, feature]
                diff_rows[t, feature] = dv
                weighted_rows[t, feature] = w * dv
        resp_sum[j] += n_j
        for t in range(count):
            for feature in range(n_features):
                first[j, feature] += weighted_rows[t, feature]
        np.dot(weighted_rows[:count].T, diff_rows[:count], outer)
        for a in range(n_features):
            for b in range(a, n_features):
                second[j, a, b] += outer[a, b]


@helper
def accumulate_tied_block(xt, n_rows, weights, shift, centre, resp, deviation, weighted_dev, resp_sum, first, within, spread):
    """Add N_j, S1_j and the pooled scatter's two parts (see module docstring).

    within += w (x~ - a~)(x~ - a~)^T with x~ = x - centre, a~ = sum_j r_j (shift_j - centre)
    spread += w (diag(r) - r r^T)    (upper triangle)
    """
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    for feature in range(n_features):
        c = centre[feature]
        for row in range(n_rows):
            deviation[feature, row] = xt[feature, row] - c
    for j in range(n_components):
        n_j = 0.0
        for row in range(n_rows):
            n_j += weights[row] * resp[j, row]
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s = 0.0
            for row in range(n_rows):
                s += weights[row] * resp[j, row] * (xt[feature, row] - c)
            first[j, feature] += s
        for l in range(j, n_components):
            s = 0.0
            for row in range(n_rows):
                s += weights[row] * resp[j, row] * resp[l, row]
            spread[j, l] -= s
        spread[j, j] += n_j
        for feature in range(n_features):
            c = shift[j, feature] - centre[feature]
            for row in range(n_rows):
                deviation[feature, row] -= resp[j, row] * c
    for feature in range(n_features):
        for row in range(n_rows):
            weighted_dev[feature, row] = weights[row] * deviation[feature, row]
    for a in range(n_features):
        for b in range(a, n_features):
            s = 0.0
            for row in range(n_rows):
                s += weighted_dev[a, row] * deviation[b, row]
            within[a, b] += s


@helper
def accumulate_diag_block(xt, n_rows, weights, shift, resp, index, weighted_resp, resp_sum, first, second):
    """Add N_j, S1_j and the diagonal of S2_j (centred at shift_j), visiting non-zero responsibilities only."""
    prefer_wide_vectors()
    n_features = xt.shape[0]
    n_components = shift.shape[0]
    for j in range(n_components):
        count = _select_rows(resp, j, n_rows, n_features, index)
        if count == 0:
            continue
        n_j = 0.0
        if count == n_rows:
            for t in range(count):
                weighted_resp[t] = weights[t] * resp[j, t]
                n_j += weighted_resp[t]
        else:
            for t in range(count):
                row = index[t]
                weighted_resp[t] = weights[row] * resp[j, row]
                n_j += weighted_resp[t]
        resp_sum[j] += n_j
        for feature in range(n_features):
            c = shift[j, feature]
            s1 = 0.0
            s2 = 0.0
            if count == n_rows:
                for t in range(count):
                    dv = xt[feature, t] - c
                    wd = weighted_resp[t] * dv
                    s1 += wd
                    s2 += wd * dv
            else:
                for t in range(count):
                    dv = xt[feature, index[t]] - c
                    wd = weighted_resp[t] * dv
                    s1 += wd
                    s2 += wd * dv
            first[j, feature] += s1
            second[j, feature] += s2
