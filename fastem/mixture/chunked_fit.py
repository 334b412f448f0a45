"""Fitting a Gaussian mixture from data read block by block: memmaps, iterables of row blocks, Dask arrays.

The EM iterations are the in-memory ones: each E-step is one pass over the
blocks (``fastem._core.sources``), adding every block's statistics under the
current parameters (:class:`~fastem.mixture.steps.StatsAccumulator`), and the
M-step is unchanged. Locally the blocks are added in order into one set of
sums, so when every block but the last holds a multiple of ``CHUNK_ROWS``
rows (memmaps are read so) the fit equals the in-memory fit to the bit; with
other block sizes, and with Dask's tree of partial sums, it equals it up to
rounding (1e-12 relative, measured in the tests).

Initialisation needs rows in memory (k-means, k-means++ and the random
methods all look at individual rows). It runs on a sample:

* data of at most :func:`init_sample_size` rows are gathered whole, so the
  initialisation, and hence the whole fit, is the in-memory one;
* larger data give a seeded sample: ``init_sample_size`` row numbers drawn
  uniformly with replacement from ``random_state`` (duplicates dropped,
  order kept), read in one pass. The chosen method then runs on those rows
  with their weights, with the same ``random_state``. Deterministic for a
  seed, whatever the block sizes, the scheduler or ``n_jobs``.
"""

from __future__ import annotations

import numpy as np

from fastem._core.threads import numba_threads
from fastem.mixture.parameters import GaussianParams, GaussianStats
from fastem.mixture.steps import StatsAccumulator

# Bounds of the initialisation sample: rows, and bytes of float64 rows.
INIT_SAMPLE_MAX_ROWS = 2**18
INIT_SAMPLE_MAX_BYTES = 128 * 2**20
INIT_SAMPLE_MIN_ROWS = 4096


def init_sample_size(n_features: int) -> int:
    """Rows kept for the initialisation: 2**18, fewer when that exceeds 128 MiB of float64, at least 4096."""
    by_memory = INIT_SAMPLE_MAX_BYTES // (8 * max(n_features, 1))
    return int(max(INIT_SAMPLE_MIN_ROWS, min(INIT_SAMPLE_MAX_ROWS, by_memory)))


def check_survey(survey, model, name: str) -> None:
    """The in-memory fit's checks of row counts, on what a validating pass over the blocks found."""
    if survey.n_samples < 2:
        raise ValueError(
            f"Found array with {survey.n_samples} sample(s) while a minimum of 2 is required for {name}."
        )
    model._check_row_counts(survey.n_samples, survey.n_positive if survey.weighted else None)


def initial_sample(source, survey, n_components: int, random_state) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows (and weights) the initialisation runs on; see the module docstring."""
    n_samples = survey.n_samples
    size = init_sample_size(source.n_features)
    if n_samples <= size:
        indices = np.arange(n_samples)
    else:
        indices = np.unique(random_state.randint(0, n_samples, size=size))
    X, weights = source.rows(indices)
    positive = X.shape[0] if weights is None else int(np.count_nonzero(weights))
    if positive < n_components:
        raise ValueError(
            f"The initialisation sample of {X.shape[0]} rows has {positive} rows of positive weight, fewer than "
            f"n_components = {n_components}. Give weights to more rows, or initialise with means_init, "
            "weights_init and precisions_init."
        )
    return X, weights


def block_statistics(X, sample_weight, context, into):
    """A source's per-block function: add the block's statistics under ``context``'s parameters.

    ``context = (params, covariance_type, n_threads)``: ``n_threads`` is None
    where the caller set the kernels' threads (local passes), and 1 in Dask
    tasks, whose parallelism is one task per block and per worker thread.
    """
    params, covariance_type, n_threads = context
    if into is None:
        into = StatsAccumulator(params, covariance_type, X.dtype)
    if n_threads is None:
        return into.add(X, sample_weight)
    with numba_threads(n_threads):
        return into.add(X, sample_weight)


def merge_statistics(first: StatsAccumulator, second: StatsAccumulator) -> StatsAccumulator:
    """Two blocks' accumulated sums added, into a new accumulator (Dask may keep its inputs)."""
    merged = StatsAccumulator.__new__(StatsAccumulator)
    merged.__dict__.update(first.__dict__)
    merged.raw = [a + b for a, b in zip(first.raw, second.raw)]
    return merged


def source_estep(source, params: GaussianParams, covariance_type: str) -> GaussianStats | None:
    """One E-step pass over a source's blocks under ``params``; None when the source gave no block."""
    n_threads = 1 if getattr(source, "remote", False) else None
    state = source.reduce(block_statistics, (params, covariance_type, n_threads), merge_statistics)
    return None if state is None else state.result()


def fit_from_source(model, source) -> None:
    """``model.fit`` on a source: checks, then EM with each E-step one pass over the blocks.

    ``model`` is a GaussianMixture; its fitted attributes are set only when
    the whole fit succeeds (by ``model._run_em``).
    """
    model._check_parameters()
    survey = source.survey()
    n_features, dtype = source.n_features, source.dtype
    check_survey(survey, model, source.name)
    inits = model._checked_init_arrays(n_features, dtype)
    warm = model._continues_previous_fit(n_features)
    layout = model._layout
    float32 = dtype == np.float32
    resp_eps = 10 * np.finfo(dtype).eps
    reg_covar = float(model.reg_covar)

    def initialize(random_state):
        if all(value is not None for value in inits):
            X_init, w_init = None, None  # nothing to estimate: no pass over the data
        else:
            X_init, w_init = initial_sample(source, survey, model.n_components, random_state)
        return model._initial_params(X_init, w_init, random_state, inits, reg_covar, resp_eps, float32)

    def estep_hook(params):
        return source_estep(source, params, layout)

    compiling = f"compiling kernels for {layout} covariance, {dtype}, {n_features} features; cached for later runs"
    model._run_em(initialize, estep_hook, dtype, n_features, survey.n_samples, warm, compiling, survey.weight_total)
