"""The fast kernels agree with the naive references (fastem.reference, tests/naive.py)."""

from __future__ import annotations

import numpy as np
import pytest

from fastem import GaussianMixture, reference
from fastem._core.fast_math import RESP_LOG_FLOOR
from fastem.mixture import _estep_kernels, _log_prob_kernels
from fastem.mixture._unrolled_full import MAX_UNROLLED_FEATURES
from fastem.mixture.parameters import GaussianParams, covariances_from_precisions, precision_cholesky
from fastem.mixture.steps import estep, weighted_log_prob
from tests import naive
from tests.conftest import COVARIANCE_TYPES, DTYPES, random_init

RTOL = {np.float64: 1e-10, np.float32: 2e-4}


def params_from_init(covariance_type, n_components, n_features, seed):
    weights, means, precisions = random_init(covariance_type, n_components, n_features, seed)
    covariances = covariances_from_precisions(precisions, covariance_type)
    return GaussianParams(weights, means, covariances, precision_cholesky(covariances, covariance_type))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_estep_statistics_match_naive(blobs, covariance_type, dtype, weighted):
    X = blobs.astype(dtype)
    sample_weight = np.random.default_rng(0).uniform(0, 3, len(X)) if weighted else None
    params = params_from_init(covariance_type, 4, X.shape[1], seed=1)
    # The kernel computes in the data dtype: give the reference the same rounded parameters.
    params.means = params.means.astype(dtype).astype(np.float64)
    params.precisions_cholesky = params.precisions_cholesky.astype(dtype).astype(np.float64)
    covariances = covariances_from_precisions(
        {"full": lambda p: p @ np.swapaxes(p, 1, 2), "tied": lambda p: p @ p.T}.get(covariance_type, lambda p: p**2)(
            params.precisions_cholesky
        ),
        covariance_type,
    )
    stats = estep(X, sample_weight, params, covariance_type)
    expected = naive.estep_stats(X, sample_weight, params.weights, params.means, covariances, covariance_type)
    rtol = RTOL[dtype]
    for got, want in zip((stats.resp_sum, stats.first, stats.second), expected[:3]):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    np.testing.assert_allclose(stats.log_likelihood, expected[3], rtol=rtol)
    np.testing.assert_allclose(stats.weight_total, expected[4], rtol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_prob_matches_scipy(blobs, covariance_type, dtype):
    X = blobs.astype(dtype)
    params = params_from_init(covariance_type, 4, X.shape[1], seed=3)
    ours = weighted_log_prob(X, params, covariance_type)
    theirs = reference.weighted_log_prob(X, params.weights, params.means, params.covariances, covariance_type)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL[dtype])


@pytest.mark.parametrize("weighted", [False, True])
def test_label_statistics_match_loop(blobs, weighted):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, len(blobs)).astype(np.intp)
    sample_weight = rng.uniform(0, 2, len(blobs)) if weighted else None
    shift = rng.normal(size=(3, blobs.shape[1]))
    resp_sum, first, second = np.zeros(3), np.zeros((3, 3)), np.zeros((3, 3, 3))
    _estep_kernels.label_stats(blobs, np.empty(0) if sample_weight is None else sample_weight, labels, shift, (resp_sum, first, second))
    want = naive.label_stats(blobs, sample_weight, labels, shift)
    np.testing.assert_allclose(resp_sum, want[0], rtol=1e-12)
    np.testing.assert_allclose(first, want[1], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.triu(second[0]), np.triu(want[2][0]), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_matches_textbook_em(blobs, covariance_type, weighted):
    weights, means, precisions = random_init(covariance_type, 3, blobs.shape[1], seed=6)
    sample_weight = np.random.default_rng(2).uniform(0.2, 2, len(blobs)) if weighted else None
    model = GaussianMixture(
        3,
        covariance_type=covariance_type,
        weights_init=weights,
        means_init=means,
        precisions_init=precisions,
        max_iter=6,
        tol=0.0,
    )
    with pytest.warns(Warning, match="did not converge"):
        model.fit(blobs, sample_weight=sample_weight)
    covariances = covariances_from_precisions(precisions, covariance_type)
    want = reference.fit(blobs, weights, means, covariances, covariance_type, n_iter=6, sample_weight=sample_weight)
    np.testing.assert_allclose(model.weights_, want["weights"], rtol=1e-9)
    np.testing.assert_allclose(model.means_, want["means"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.covariances_, want["covariances"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.lower_bounds_, want["lower_bounds"], rtol=1e-10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_blas_path_matches_naive_and_loop_path(dtype):
    """Many features take the BLAS-backed helpers; both paths agree with the reference."""
    from fastem._core.threads import BLAS_MIN_FEATURES, numba_threads
    from fastem.mixture.steps import _kernel_model

    n_features = BLAS_MIN_FEATURES
    rng = np.random.default_rng(5)
    X = rng.normal(size=(700, n_features)).astype(dtype)  # > one block, a partial last block
    X[:300] += 3.0
    params = params_from_init("full", 3, n_features, seed=8)
    params.means = params.means.astype(dtype).astype(np.float64)
    params.precisions_cholesky = params.precisions_cholesky.astype(dtype).astype(np.float64)
    prec = params.precisions_cholesky @ np.swapaxes(params.precisions_cholesky, 1, 2)
    covariances = np.linalg.inv(prec)
    sample_weight = rng.uniform(0, 2, len(X))
    model = _kernel_model(params, "full", X.dtype)
    results = {}
    with numba_threads(2):
        for use_blas in (False, True):
            stats = (np.zeros(3), np.zeros((3, n_features)), np.zeros((3, n_features, n_features)), np.zeros(2))
            _estep_kernels.estep_full(X, sample_weight, model, stats, use_blas, 0)
            log_prob = np.empty((len(X), 3))
            outputs = (log_prob, np.empty(0, dtype), np.empty(0, np.int64), np.empty((0, 0), dtype))
            _log_prob_kernels.weighted_log_prob_full(X, model, outputs, params.weights, 0, use_blas, 0)
            results[use_blas] = (stats, log_prob)
    expected = naive.estep_stats(X, sample_weight, params.weights, params.means, covariances, "full")
    want_log_prob = reference.weighted_log_prob(X, params.weights, params.means, covariances, "full")
    rtol = RTOL[dtype] * 10  # d = 32 sums more terms per point
    for stats, log_prob in results.values():
        np.testing.assert_allclose(stats[0], expected[0], rtol=rtol, atol=rtol * expected[0].max())
        np.testing.assert_allclose(stats[1], expected[1], rtol=rtol, atol=rtol * np.abs(expected[1]).max())
        np.testing.assert_allclose(np.triu(stats[2]), np.triu(expected[2]), rtol=rtol, atol=rtol * np.abs(expected[2]).max())
        np.testing.assert_allclose(stats[3][0], expected[3], rtol=rtol)
        np.testing.assert_allclose(log_prob, want_log_prob, rtol=rtol, atol=rtol * np.abs(want_log_prob).max())


def _fitted_full_model(X, n_components, dtype):
    """A full-covariance fit of X, its parameters rounded to ``dtype`` (what the kernels see).

    Returns the parameters, the covariances they imply, and the reference
    responsibilities under them.
    """
    model = GaussianMixture(n_components, covariance_type="full", random_state=0).fit(X)
    params = GaussianParams(model.weights_, model.means_.astype(np.float64), model.covariances_, model.precisions_cholesky_)
    params.means = params.means.astype(dtype).astype(np.float64)
    params.precisions_cholesky = params.precisions_cholesky.astype(dtype).astype(np.float64)
    covariances = np.linalg.inv(params.precisions_cholesky @ np.swapaxes(params.precisions_cholesky, 1, 2))
    resp, _ = reference.e_step(X.astype(np.float64), params.weights, params.means, covariances, "full")
    return params, covariances, resp


def _assert_full_statistics_match_naive(X, sample_weight, params, covariances, dtype):
    stats = estep(X, sample_weight, params, "full")
    expected = naive.estep_stats(X, sample_weight, params.weights, params.means, covariances, "full")
    rtol = RTOL[dtype]
    for got, want in zip((stats.resp_sum, stats.first, stats.second), expected[:3]):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.abs(want).max())
    np.testing.assert_allclose(stats.log_likelihood, expected[3], rtol=rtol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_features, n_components", [(2, 8), (5, 3)])
def test_sparse_responsibility_paths_match_naive(dtype, n_features, n_components):
    """Separated blobs: each component owns a small share of every block.

    Such components go through the pair buffers of the full-covariance kernel
    (flushed at the end of each chunk, and mid-chunk when full: with (5, 3)
    one component gathers more pairs per chunk than a buffer holds), and the
    accumulation skips the rows it does not own. The statistics must still
    match the textbook computation.
    """
    from fastem._core.numba import BLOCK_ROWS, CHUNK_ROWS
    from fastem.datasets import make_blobs

    X, _ = make_blobs(2 * CHUNK_ROWS + 300, n_features, n_components, separation=12.0, random_state=4)
    X = np.random.default_rng(0).permutation(X).astype(dtype)  # rows of all components in every block
    sample_weight = np.random.default_rng(1).uniform(0, 2, len(X))
    params, covariances, resp = _fitted_full_model(X, n_components, dtype)
    owned = (resp > 1e-12).sum(axis=0) / len(X)
    assert owned.max() < 0.5  # no component is dense in a block: the sparse paths run
    # (5, 3): every row has one component within RESP_LOG_FLOOR of its maximum
    # (a hard row), so the normaliser writes every block without an exp.
    # (2, 8): most blocks have a few soft rows (several close components),
    # which the normaliser handles apart from the rest; a few blocks are
    # mostly soft and take the exp path whole.
    log_prob = reference.weighted_log_prob(X.astype(np.float64), params.weights, params.means, covariances, "full")
    soft = ((log_prob - log_prob.max(axis=1, keepdims=True)) >= RESP_LOG_FLOOR).sum(axis=1) != 1
    soft_per_block = np.array([
        soft[start:min(start + BLOCK_ROWS, chunk + CHUNK_ROWS)].mean()
        for chunk in range(0, len(X), CHUNK_ROWS)
        for start in range(chunk, min(chunk + CHUNK_ROWS, len(X)), BLOCK_ROWS)
    ])
    if n_components == 3:
        assert not soft.any()
    else:
        assert ((soft_per_block > 0) & (soft_per_block <= 0.5)).sum() >= 10
        assert (soft_per_block > 0.5).any()
    _assert_full_statistics_match_naive(X, sample_weight, params, covariances, dtype)


# Every feature count in float64; in float32 the generated code's first and
# last counts and the general loops. Each (feature count, dtype) compiles a
# kernel specialisation of its own (several seconds), and the generated
# helpers of every count are checked in both dtypes directly, at a fraction of
# the cost, in test_normaliser.py.
FEATURE_COUNT_CASES = [(np.float64, d) for d in range(1, MAX_UNROLLED_FEATURES + 2)] + [
    (np.float32, d) for d in (2, MAX_UNROLLED_FEATURES, MAX_UNROLLED_FEATURES + 1)
]


@pytest.mark.parametrize("dtype, n_features", FEATURE_COUNT_CASES)
def test_full_statistics_match_naive_for_every_feature_count(dtype, n_features):
    """Two to MAX_UNROLLED_FEATURES features have generated code for the
    log-densities and for the sparse accumulation (appending rows to the pair
    buffers, adding the buffers to the statistics), and two to
    MAX_DENSE_UNROLLED_FEATURES for the dense one (a component owning most of
    a block); other feature counts take the general loops. Separated blobs
    in random order, one of them repeated so that it owns most rows of every
    block and the others go through the pair buffers, flushed at the end of
    every chunk, with some rows shared between components. (A flush of a full buffer in mid-chunk is covered at five
    features by the test above.)
    """
    from fastem._core.numba import BLOCK_ROWS, CHUNK_ROWS
    from fastem.datasets import make_blobs

    n_components = 6
    X, labels = make_blobs(CHUNK_ROWS + 700, n_features, n_components, separation=6.0, random_state=n_features)
    first_blob = X[labels == 0]
    X = np.concatenate([X] + [first_blob] * (3 * len(X) // (2 * len(first_blob))))  # two thirds of the rows
    X = np.random.default_rng(0).permutation(X).astype(dtype)
    sample_weight = np.random.default_rng(1).uniform(0, 2, len(X))
    params, covariances, resp = _fitted_full_model(X, n_components, dtype)
    assert ((resp > 1e-12) & (resp < 0.5)).any()  # some rows shared between components
    n_blocks = len(X) // BLOCK_ROWS  # blocks never straddle a chunk (CHUNK_ROWS is a multiple)

    def rows_per_block(owned):
        return owned[: n_blocks * BLOCK_ROWS].reshape(n_blocks, BLOCK_ROWS, n_components).sum(axis=1)

    # The kernel keeps a responsibility of at least 2**-52 of its row's
    # largest, which is at least 1 / n_components: above 1e-12 counts no more
    # rows than it keeps, above 1e-18 no fewer.
    surely_kept, maybe_kept = rows_per_block(resp > 1e-12), rows_per_block(resp > 1e-18)
    assert (surely_kept > BLOCK_ROWS // 2).any(axis=1).mean() > 0.9  # one component's dense pass in most blocks
    limit = BLOCK_ROWS // 2 if n_features >= 4 else BLOCK_ROWS // 4  # see _select_rows
    assert ((maybe_kept > 0) & (maybe_kept <= limit)).sum() > 10  # rows that go through the pair buffers
    _assert_full_statistics_match_naive(X, sample_weight, params, covariances, dtype)
