"""What the benchmark measures and how hard: the cases, the settings, the data and the common start.

The data builders and the initial parameters are shared with the asv suite
in ``asv_bench/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem.datasets import make_blobs


@dataclass(frozen=True)
class Case:
    """One benchmark case: a data shape, a covariance type and what to measure.

    ``kind`` is ``"em"`` (all implementations, main table), ``"dtype"``
    (fastem float32 against float64), ``"threads"`` (fastem on one thread
    against all), ``"first_fit"`` (latency in a fresh process) or
    ``"first_fit_targets"`` (the first-fit figures of issue 12 against their
    targets; the shape is that of its first case, the others are fixed in
    ``fastem.bench.first_fit.FIRST_FIT_TARGETS``).
    """

    name: str
    kind: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str


# The cases of the "Benchmarks" issue, in the order they are reported.
CASES = {
    case.name: case
    for case in [
        Case("full_d2_k3", "em", 1_000_000, 2, 3, "full"),
        Case("full_d8_k16", "em", 1_000_000, 8, 16, "full"),
        Case("full_d64_k32", "em", 200_000, 64, 32, "full"),
        Case("diag_d32_k64", "em", 1_000_000, 32, 64, "diag"),
        Case("spherical_d16_k16", "em", 1_000_000, 16, 16, "spherical"),
        Case("tied_d16_k16", "em", 1_000_000, 16, 16, "tied"),
        Case("float32", "dtype", 1_000_000, 8, 16, "full"),
        Case("threads", "threads", 1_000_000, 8, 16, "full"),
        Case("first_fit", "first_fit", 1_000_000, 8, 16, "full"),
        Case("first_fit_targets", "first_fit_targets", 100_000, 2, 3, "full"),
    ]
}


# Flops of one full/tied EM iteration, the conventional count: the E-step's
# triangular products (n k d^2) and the M-step's weighted scatter (2 n k d^2).
FLOPS_PER_ITERATION_FACTOR = 3


@dataclass(frozen=True)
class Settings:
    """How hard to measure.

    Parameters
    ----------
    n_samples : int or None
        Override the number of rows of every case (``--quick`` uses 2000).
    iterations : int
        ``m`` in ``(t(1+m) - t(1)) / m``.
    repeats : int
        Repeats per timing (fewer when one repeat would exceed ``budget``).
    budget : float
        Seconds one implementation may spend on one case; slow
        implementations get fewer repeats and iterations, never fewer than 1.
    naive_limit : float
        Skip the naive EM where one iteration is estimated (from a run on at
        most ``NAIVE_PILOT_ROWS`` rows) to take longer than this, in seconds.
    gemm_size : int
        Side of the square float64 matrices of the GEMM reference.
    memory : bool
        Measure peak memory in child processes.
    all_first_fit_targets : bool
        Measure every first-fit target; ``--quick`` measures only those
        that need no compilation beyond the first cold fit (each of the
        others compiles a specialisation of its own, or all of them).
    seed : int
        Seeds the data and the initial parameters.
    """

    n_samples: int | None = None
    iterations: int = 5
    repeats: int = 5
    budget: float = 30.0
    naive_limit: float = 60.0
    gemm_size: int = 2000
    memory: bool = True
    all_first_fit_targets: bool = True
    seed: int = 0


QUICK = Settings(n_samples=2000, iterations=2, repeats=3, budget=5.0, gemm_size=400, all_first_fit_targets=False)
NAIVE_PILOT_ROWS = 20_000


def make_data(
    n_samples: int,
    n_features: int,
    n_components: int,
    dtype=np.float64,
    random_state: int = 0,
    separation: float = 8.0,
) -> np.ndarray:
    """Seeded blobs (``fastem.datasets.make_blobs``) in random row order.

    ``make_blobs`` returns the rows grouped by component; real data is not
    sorted that way, and grouped rows would flatter branch prediction and
    the per-chunk work of the kernels.

    Parameters
    ----------
    n_samples, n_features, n_components : int
    dtype : float32 or float64
    random_state : int
    separation : float
        Passed to ``make_blobs``: 8 gives well-separated blobs, about 2 gives
        overlapping ones that EM needs tens of iterations to resolve.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), C-contiguous, of ``dtype``
    """
    X, _ = make_blobs(n_samples, n_features, n_components, separation=separation, random_state=random_state)
    order = np.random.default_rng(random_state).permutation(n_samples)
    return np.ascontiguousarray(X[order], dtype=dtype)


@dataclass
class InitialParameters:
    """One starting point, in the forms the three implementations take.

    ``precisions`` (for ``precisions_init``) and ``covariances`` (for the naive
    EM) are inverses of each other; shapes follow ``covariance_type`` as in
    scikit-learn.
    """

    weights: np.ndarray
    means: np.ndarray
    precisions: np.ndarray
    covariances: np.ndarray


def _kmeans_plusplus_rows(sample: np.ndarray, n_components: int, rng: np.random.Generator) -> np.ndarray:
    """``n_components`` rows of ``sample`` chosen by k-means++ (D^2) sampling, as float64 means."""
    centres = [sample[rng.integers(len(sample))]]
    closest = ((sample - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, n_components):
        total = closest.sum()
        index = rng.choice(len(sample), p=closest / total) if total > 0 else rng.integers(len(sample))
        centres.append(sample[index])
        closest = np.minimum(closest, ((sample - sample[index]) ** 2).sum(axis=1))
    return np.array(centres)


def initial_parameters(X, n_components: int, covariance_type: str, random_state: int = 0) -> InitialParameters:
    """A common EM start: equal weights, k-means++ rows as means, the data covariance everywhere.

    Means are seeded by k-means++ on the first 20 000 rows (the rows are in
    random order): plain random rows often put two means in one blob and
    leave a component with fewer rows than features, which scikit-learn
    cannot fit in float32 (non positive-definite covariance), and a failed
    fit measures nothing. The covariance is estimated from the first 100 000
    rows, so building a start stays cheap for large data.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    random_state : int

    Returns
    -------
    InitialParameters
    """
    rng = np.random.default_rng(random_state)
    means = _kmeans_plusplus_rows(np.asarray(X[:20_000], dtype=np.float64), n_components, rng)
    weights = np.full(n_components, 1.0 / n_components)
    data_covariance = np.atleast_2d(np.cov(np.asarray(X[:100_000], dtype=np.float64), rowvar=False))
    if covariance_type in ("full", "tied"):
        precision = np.linalg.inv(data_covariance)
        precision = (precision + precision.T) / 2  # scikit-learn and fastem check symmetry
        precisions = precision if covariance_type == "tied" else np.repeat(precision[None], n_components, axis=0)
        covariances = np.linalg.inv(precisions)
        covariances = (covariances + np.swapaxes(covariances, -1, -2)) / 2
    elif covariance_type == "diag":
        precisions = np.tile(1.0 / np.diag(data_covariance), (n_components, 1))
        covariances = 1.0 / precisions
    elif covariance_type == "spherical":
        precisions = np.full(n_components, 1.0 / np.diag(data_covariance).mean())
        covariances = 1.0 / precisions
    else:
        raise ValueError(f"unknown covariance_type {covariance_type!r}")
    return InitialParameters(weights, means, precisions, covariances)


def _n_samples_for(case: Case, settings: Settings) -> int:
    """The case's rows, or fewer when ``settings.n_samples`` says so (``--quick``, ``--n-samples``)."""
    return case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)
