"""The block normaliser's three paths, called directly on hand-made blocks.

``_normalise_block`` writes a block of hard rows (one close component each)
without an exp, runs the exp on the soft rows alone when they are few, and on
the whole block otherwise. The paths must give the same responsibilities and
totals, so the tests of whole fits cannot tell which one ran; here the scratch
arrays show it: only the few-soft-rows path lists rows in ``soft_rows``, and
only a path with an exp writes ``soft_prob`` or reaches ``_exp_normalise``.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastem import _gaussian_kernels as kernels
from fastem import _unrolled_full as unrolled

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
    """Run the kernel helper; return responsibilities, totals and the scratch arrays."""
    resp = log_prob.copy()
    soft_rows = np.full(N_ROWS, UNTOUCHED, np.intp)
    soft_prob = np.full((N_COMPONENTS, N_ROWS), np.nan)
    totals = np.zeros(2)
    kernels._normalise_block(
        resp, N_ROWS, weights, np.empty(N_ROWS), np.empty(N_ROWS), soft_rows, soft_prob, totals,
    )
    return resp, totals, soft_rows, soft_prob


def _expected(log_prob, weights):
    """Textbook log-sum-exp, with responsibilities below 2**-52 of the row flushed to 0."""
    row_max = log_prob.max(axis=0)
    shifted = log_prob - row_max
    terms = np.where(shifted >= kernels.RESP_LOG_FLOOR, np.exp(shifted), 0.0)
    total = terms.sum(axis=0)
    log_p = row_max + np.log(total)
    log_likelihood = np.sum(np.where(weights != 0.0, weights * log_p, 0.0))
    return terms / total, log_likelihood, weights.sum()


def _check(log_prob, weights, resp, totals):
    want_resp, want_log_likelihood, want_weight = _expected(log_prob, weights)
    np.testing.assert_allclose(resp, want_resp, rtol=1e-14, atol=1e-300)
    assert (resp[want_resp == 0.0] == 0.0).all()
    np.testing.assert_allclose(totals, [want_log_likelihood, want_weight], rtol=1e-13)


def test_a_hard_block_is_written_without_an_exp():
    rng = np.random.default_rng(0)
    log_prob = _hard_block(rng)
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    resp, totals, soft_rows, soft_prob = _normalise(log_prob, weights)
    _check(log_prob, weights, resp, totals)
    assert set(np.unique(resp)) == {0.0, 1.0}
    assert (soft_rows == UNTOUCHED).all() and np.isnan(soft_prob).all()


def test_a_few_soft_rows_run_the_exp_alone():
    rng = np.random.default_rng(1)
    log_prob = _hard_block(rng)
    soft = np.array([3, 17, 64, 65, 127])  # both 64-row words, and the block's last row
    log_prob[:, soft] = rng.uniform(-3.0, 0.0, size=(N_COMPONENTS, len(soft)))  # several close components
    log_prob[2, 17] = -40.0  # one component of a soft row far enough to be flushed
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    weights[64] = 0.0  # a soft row of weight zero adds nothing
    resp, totals, soft_rows, soft_prob = _normalise(log_prob, weights)
    _check(log_prob, weights, resp, totals)
    assert soft_rows[:len(soft)].tolist() == soft.tolist()  # the few-soft-rows path listed them
    assert (soft_rows[len(soft):] == UNTOUCHED).all()
    assert np.isfinite(soft_prob[:, :len(soft)]).all() and np.isnan(soft_prob[:, len(soft):]).all()
    hard = np.setdiff1d(np.arange(N_ROWS), soft)
    assert set(np.unique(resp[:, hard])) == {0.0, 1.0}


def test_a_mostly_soft_block_runs_the_exp_on_every_row():
    rng = np.random.default_rng(2)
    log_prob = rng.uniform(-3.0, 0.0, size=(N_COMPONENTS, N_ROWS))
    weights = rng.uniform(0.0, 2.0, N_ROWS)
    resp, totals, soft_rows, soft_prob = _normalise(log_prob, weights)
    _check(log_prob, weights, resp, totals)
    assert (soft_rows == UNTOUCHED).all() and np.isnan(soft_prob).all()  # no copies: the whole block


@pytest.mark.parametrize("bad", [-np.inf, np.inf, np.nan])
def test_a_row_without_a_finite_maximum_makes_the_total_non_finite(bad):
    # Such a row has no close component; in a block of hard rows it must not
    # be mistaken for one, or its overflow would be hidden.
    rng = np.random.default_rng(3)
    log_prob = _hard_block(rng)
    log_prob[:, 40] = bad
    weights = np.ones(N_ROWS)
    _, totals, _, _ = _normalise(log_prob, weights)
    assert not np.isfinite(totals[0])


def test_unrolled_dispatchers_cover_two_to_max_features():
    # The general loops give the same results up to rounding, so a dispatcher
    # that stopped dispatching would go unnoticed by the other tests.
    k, n_rows, capacity = 2, 16, 16
    for n_features in range(1, unrolled.MAX_UNROLLED_FEATURES + 2):
        covered = 2 <= n_features <= unrolled.MAX_UNROLLED_FEATURES
        xt = np.ones((n_features, n_rows))
        log_prob = np.zeros((k, n_rows))
        assert unrolled.log_prob_full_unrolled(
            xt, n_rows, np.zeros((k, n_features)), np.zeros((k, n_features, n_features)), np.zeros(k), log_prob,
        ) == covered
        pair_diff = np.zeros((k, n_features, capacity))
        pair_weight = np.zeros((k, capacity))
        assert unrolled.append_pairs_unrolled(
            1, xt, np.ones(n_rows), np.ones((k, n_rows)), np.zeros((k, n_features)), np.arange(4), 4,
            pair_diff, pair_weight, 0,
        ) == covered
        resp_sum = np.zeros(k)
        assert unrolled.flush_pairs_unrolled(
            1, pair_diff, pair_weight, 4, resp_sum, np.zeros((k, n_features)), np.zeros((k, n_features, n_features)),
        ) == covered
        assert resp_sum.tolist() == ([0.0, 4.0] if covered else [0.0, 0.0])
