"""The block normaliser's three paths, called directly on hand-made blocks.

``normalise_block`` writes a block of hard rows (one close component each)
without an exp, runs the exp on the soft rows alone when they are few, and on
the whole block otherwise. The paths must give the same responsibilities and
totals, so the tests of whole fits cannot tell which one ran; here the scratch
arrays show it: only the few-soft-rows path lists rows in ``soft_rows`` and
writes ``soft_prob`` (and overwrites the first ``n_soft`` entries of
``row_flag`` with the soft rows' reciprocal totals); ``row_flag`` otherwise
ends as each row's count of close components beyond one (whole numbers)
unless an exp over the whole block overwrote it with the rows' reciprocal
totals, which lie in (0, 1]: 1 for a hard row, and below 1 for the shared
rows of these tests, whose close components are within a few units of each
other.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastem._core.fast_math import RESP_LOG_FLOOR
from fastem.mixture import _unrolled_full as unrolled
from fastem.mixture._normaliser import normalise_block
from tests.conftest import DTYPES

N_ROWS = 128
N_COMPONENTS = 4
UNTOUCHED = -7  # sentinel in soft_rows


def _hard_block(rng):
    """Log-probabilities where one component per row leads the others by more than the floor."""
    log_prob = rng.uniform(-60.0, -50.0, size=(N_COMPONENTS, N_ROWS))
    owners = rng.integers(0, N_COMPONENTS, N_ROWS)
    log_prob[owners, np.arange(N_ROWS)] = rng.uniform(-5.0, 0.0, N_ROWS)
    return log_prob


def _normalise(log_prob, weights):
    """Run the kernel helper in log_prob's dtype; return responsibilities, totals and the scratch arrays."""
    dtype = log_prob.dtype
    resp = log_prob.copy()
    row_flag = np.full(N_ROWS, np.nan, dtype)
    soft_rows = np.full(N_ROWS, UNTOUCHED, np.intp)
    soft_prob = np.full((N_COMPONENTS, N_ROWS), np.nan, dtype)
    totals = np.zeros(2)
    normalise_block(resp, N_ROWS, weights, np.empty(N_ROWS, dtype), row_flag, soft_rows, soft_prob, totals)
    return resp, totals, soft_rows, soft_prob, row_flag


def _expected(log_prob, weights):
    """Textbook log-sum-exp in float64, with responsibilities below 2**-52 of the row flushed to 0."""
    log_prob = log_prob.astype(np.float64)
    row_max = log_prob.max(axis=0)
    shifted = log_prob - row_max
    terms = np.where(shifted >= RESP_LOG_FLOOR, np.exp(shifted), 0.0)
    total = terms.sum(axis=0)
    log_p = row_max + np.log(total)
    log_likelihood = np.sum(np.where(weights != 0.0, weights * log_p, 0.0))
    return terms / total, log_likelihood, weights.sum()


# float32 blocks: a soft row's differences from its maximum (at most 3 in
# these tests) are rounded to float32, up to 1.2e-7 absolutely, which moves
# a responsibility by as much relatively; the exp (1.6e-7), the row's total
# and its reciprocal add a few 1e-7 more. The log-likelihood gathers each
# row's float32 log-sum-exp (rounded to 6e-8 relatively) in float64.
TOLERANCES = {np.float64: (1e-14, 1e-13), np.float32: (1e-6, 2e-7)}


def _check(log_prob, weights, resp, totals):
    resp_rtol, totals_rtol = TOLERANCES[log_prob.dtype.type]
    want_resp, want_log_likelihood, want_weight = _expected(log_prob, weights)
    np.testing.assert_allclose(resp, want_resp, rtol=resp_rtol, atol=1e-300)
    assert (resp[want_resp == 0.0] == 0.0).all() and (resp[want_resp != 0.0] != 0.0).all()
    np.testing.assert_allclose(totals, [want_log_likelihood, want_weight], rtol=totals_rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_hard_block_is_written_without_an_exp(dtype):
    rng = np.random.default_rng(0)
    log_prob = _hard_block(rng).astype(dtype)
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    resp, totals, soft_rows, soft_prob, row_flag = _normalise(log_prob, weights)
    _check(log_prob, weights, resp, totals)
    assert (row_flag == 0.0).all()  # counts of zero: no exp over the block (it would write 1.0)
    assert (soft_rows == UNTOUCHED).all() and np.isnan(soft_prob).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_few_soft_rows_run_the_exp_alone(dtype):
    rng = np.random.default_rng(1)
    log_prob = _hard_block(rng)
    soft = np.array([3, 17, 64, 65, 127])  # both 64-row words, and the block's last row
    log_prob[:, soft] = rng.uniform(-3.0, 0.0, size=(N_COMPONENTS, len(soft)))  # several close components
    log_prob[2, 17] = -40.0  # one component of a soft row far enough to be flushed
    log_prob = log_prob.astype(dtype)
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    weights[64] = 0.0  # the soft rows' weights are looked up through the list of rows
    resp, totals, soft_rows, soft_prob, row_flag = _normalise(log_prob, weights)
    _check(log_prob, weights, resp, totals)
    assert soft_rows[:len(soft)].tolist() == soft.tolist()  # the few-soft-rows path listed them
    assert (soft_rows[len(soft):] == UNTOUCHED).all()
    assert np.isfinite(soft_prob[:, :len(soft)]).all() and np.isnan(soft_prob[:, len(soft):]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_mostly_soft_block_runs_the_exp_on_every_row(dtype):
    rng = np.random.default_rng(2)
    log_prob = rng.uniform(-3.0, 0.0, size=(N_COMPONENTS, N_ROWS)).astype(dtype)
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    resp, totals, soft_rows, soft_prob, row_flag = _normalise(log_prob, weights)
    _check(log_prob, weights, resp, totals)
    assert (soft_rows == UNTOUCHED).all() and np.isnan(soft_prob).all()  # no copies: the whole block
    assert ((row_flag > 0.0) & (row_flag < 1.0)).all()  # reciprocal totals: the exp ran on every row


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bad", [-np.inf, np.inf, np.nan])
def test_a_row_without_a_finite_maximum_does_not_hide_a_shared_row(bad, dtype):
    # Such a row has no close component, and a row with two close components
    # makes up for it in the block's count (excess 0): written as hard, the
    # shared row would get two responsibilities of 1. The block must take the
    # exp path, which also makes the total non-finite for the check in Python.
    rng = np.random.default_rng(3)
    log_prob = _hard_block(rng)
    log_prob[:, 40] = bad
    log_prob[:, 41] = -60.0
    log_prob[0, 41], log_prob[1, 41] = -1.0, -1.5  # two close components
    log_prob = log_prob.astype(dtype)
    weights = np.ones(N_ROWS)
    resp, totals, soft_rows, _, row_flag = _normalise(log_prob, weights)
    assert not np.isfinite(totals[0])
    want, _, _ = _expected(log_prob[:, 41:42], weights[41:42])
    np.testing.assert_allclose(resp[:, 41], want[:, 0], rtol=TOLERANCES[dtype][0])
    assert 0.0 < row_flag[41] < 1.0 and (soft_rows == UNTOUCHED).all()  # the exp on the whole block (a count would be 1)


def _assert_second_component_statistics(resp_sum, first, second, diff, w):
    """Statistics of two components where only the second got rows: ``diff`` (d, rows) with weights ``w``."""
    n_features = diff.shape[0]
    np.testing.assert_allclose(resp_sum, [0.0, w.sum()], rtol=1e-14)
    np.testing.assert_allclose(first[1], diff @ w, rtol=1e-13)
    upper = np.triu(np.ones((n_features, n_features), bool))
    np.testing.assert_allclose(second[1][upper], ((diff * w) @ diff.T)[upper], rtol=1e-13)
    assert not first[0].any() and not second[0].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_generated_helpers_cover_two_to_max_features(dtype):
    # The general loops give the same results up to rounding, so a table
    # entry that pointed at the wrong feature count would go unnoticed by the
    # tests of whole fits; here each generated helper is called directly. In
    # float32 the differences are float32 values, but every sum must be
    # float64: the statistics are compared with float64 sums of the same
    # differences as tightly as in float64. (Which helper a kernel compiles
    # is tested in test_layout_and_compilation.py.)
    rng = np.random.default_rng(4)
    k, n_rows, capacity, count = 2, 16, 16, 5
    covered = range(2, unrolled.MAX_UNROLLED_FEATURES + 1)
    assert sorted(unrolled.LOG_PROB_FULL) == sorted(unrolled.APPEND_PAIRS) == sorted(unrolled.FLUSH_PAIRS) == list(covered)
    assert sorted(unrolled.ACCUMULATE_DENSE) == list(range(2, unrolled.MAX_DENSE_UNROLLED_FEATURES + 1))
    for n_features in covered:
        xt = rng.normal(size=(n_features, n_rows)).astype(dtype)
        means = rng.normal(size=(k, n_features)).astype(dtype)
        prec_chol = np.triu(rng.normal(size=(k, n_features, n_features))).astype(dtype)
        log_const = rng.normal(size=k)
        log_prob = np.full((k, n_rows), np.nan, dtype)  # X's dtype, as in the E-step
        maha = np.empty(n_rows, dtype)
        unrolled.LOG_PROB_FULL[n_features](xt, n_rows, means, prec_chol, log_const, maha, log_prob)
        x64, m64, p64 = (a.astype(np.float64) for a in (xt, means, prec_chol))
        projected = np.einsum("rf,jfc->jrc", x64.T, p64) - np.einsum("jf,jfc->jc", m64, p64)[:, None]
        want = log_const[:, None] - 0.5 * (projected**2).sum(axis=2)
        np.testing.assert_allclose(log_prob, want, rtol=1e-12 if dtype == np.float64 else 1e-5)

        weights = rng.uniform(0.5, 1.5, n_rows)
        resp = rng.uniform(0.1, 1.0, (k, n_rows))
        rows = np.array([0, 3, 4, 9, 15])
        pair_diff = np.zeros((k, n_features, capacity), dtype)
        pair_weight = np.zeros((k, capacity))
        unrolled.APPEND_PAIRS[n_features](1, xt, weights, resp, means, rows, count, pair_diff, pair_weight, 2)
        resp_sum, first, second = np.zeros(k), np.zeros((k, n_features)), np.zeros((k, n_features, n_features))
        unrolled.FLUSH_PAIRS[n_features](1, pair_diff, pair_weight, 2 + count, resp_sum, first, second)
        diff = (xt[:, rows] - means[1][:, None]).astype(np.float64)  # formed in X's dtype, as the kernel does
        w = weights[rows] * resp[1, rows]
        np.testing.assert_allclose(pair_diff[1, :, 2:2 + count], diff, rtol=1e-15)
        np.testing.assert_allclose(pair_weight[1, 2:2 + count], w, rtol=1e-15)
        _assert_second_component_statistics(resp_sum, first, second, diff, w)

        if n_features in unrolled.ACCUMULATE_DENSE:
            resp_sum, first, second = np.zeros(k), np.zeros((k, n_features)), np.zeros((k, n_features, n_features))
            unrolled.ACCUMULATE_DENSE[n_features](1, xt, n_rows, weights, resp, means, resp_sum, first, second)
            diff = (xt - means[1][:, None]).astype(np.float64)
            _assert_second_component_statistics(resp_sum, first, second, diff, weights * resp[1])
