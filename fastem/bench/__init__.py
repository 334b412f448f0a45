"""Compare fastem with scikit-learn and the naive EM: ``python -m fastem.bench``.

Every implementation starts from the *same* initial parameters (weights,
means and precisions; the naive EM gets the equivalent covariances) and runs a
fixed number of EM iterations (``tol=0``), so each does the same work and the
answers can be compared as well as the speed.

What is measured, per case:

* milliseconds per EM iteration: ``(t(max_iter=1+m) - t(max_iter=1)) / m``,
  the median over repeats. The difference cancels everything a fit does once
  (validation, copies, scikit-learn's initial M-step and final E-step, Numba
  dispatch), leaving the cost of one E-step plus one M-step;
* scikit-learn with its BLAS limited to 1 thread and with all threads
  (threadpoolctl); the speed-up is taken against its faster setting;
* fastem's effective GFLOP/s, counting ``3 n k d^2`` flops per iteration
  (full/tied), next to the machine's float64 GEMM rate;
* peak memory of a fit, as the increase of the peak resident set size (RSS)
  of a child process during the fit (Numba allocations are invisible to
  tracemalloc, so only the OS view is honest);
* the largest relative parameter difference between fastem and scikit-learn:
  a speed-up only counts if the answers agree.

Plus float32 against float64, 1 thread against all, and the latency of the
first fit in a fresh process with a cold and a warm Numba cache.

scikit-learn, threadpoolctl and psutil (the ``bench`` extra) are imported
inside functions, so ``import fastem`` never imports them. The data builders
and the ``fit`` helper are shared with the asv suite in ``asv_bench/``.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
from numba import prange

import fastem
from fastem import reference
from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import helper, kernel
from fastem.datasets import make_blobs
from fastem.exceptions import ConvergenceWarning

IMPLEMENTATIONS = ("fastem", "sklearn", "naive")
MIB = 2**20


###############################################################################
# Cases


@dataclass(frozen=True)
class Case:
    """One benchmark case: a data shape, a covariance type and what to measure.

    ``kind`` is ``"em"`` (all implementations, main table), ``"dtype"``
    (fastem float32 against float64), ``"threads"`` (fastem on one thread
    against all) or ``"first_fit"`` (latency in a fresh process).
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
    seed: int = 0


QUICK = Settings(n_samples=2000, iterations=2, repeats=3, budget=5.0, gemm_size=400)
NAIVE_PILOT_ROWS = 20_000


###############################################################################
# Data, initial parameters, fits (shared with asv_bench)


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


@dataclass
class FitResult:
    """Parameters after a fit, as float64, and its final lower bound.

    ``lower_bound`` is the mean log-likelihood before the last M-step (the
    convention of scikit-learn's ``lower_bound_`` and of
    ``fastem.reference.fit``'s ``lower_bounds``).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    lower_bound: float
    n_iter: int


def fit(
    implementation: str,
    X: np.ndarray,
    init: InitialParameters,
    covariance_type: str,
    max_iter: int,
    *,
    tol: float = 0.0,
    n_jobs=None,
) -> FitResult:
    """Fit a mixture with one implementation from ``init``.

    With ``tol=0`` every implementation runs exactly ``max_iter`` iterations;
    the ConvergenceWarning that this provokes is silenced. The naive EM has no
    convergence test and always runs ``max_iter`` iterations, in float64.

    Parameters
    ----------
    implementation : {'fastem', 'sklearn', 'naive'}
    X : ndarray of shape (n_samples, n_features)
    init : InitialParameters
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    max_iter : int
    tol : float
    n_jobs : int or None
        fastem's threads (ignored by the others).

    Returns
    -------
    FitResult
    """
    n_components = init.means.shape[0]
    if implementation == "naive":
        result = reference.fit(X, init.weights, init.means, init.covariances, covariance_type, n_iter=max_iter)
        return FitResult(
            np.asarray(result["weights"], dtype=np.float64),
            np.asarray(result["means"], dtype=np.float64),
            np.asarray(result["covariances"], dtype=np.float64),
            float(result["lower_bounds"][-1]),
            max_iter,
        )
    kwargs = dict(
        n_components=n_components,
        covariance_type=covariance_type,
        max_iter=max_iter,
        tol=tol,
        weights_init=init.weights,
        means_init=init.means,
        precisions_init=init.precisions,
        # scikit-learn runs its init method even when all three *_init are
        # given (k-means by default); 'random_from_data' is its cheapest.
        # fastem skips initialisation altogether in that case.
        init_params="random_from_data",
        random_state=0,
    )
    if implementation == "fastem":
        model_class = fastem.GaussianMixture
        kwargs["n_jobs"] = n_jobs
        warning_class = ConvergenceWarning
    elif implementation == "sklearn":
        from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
        from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

        model_class = SklearnGaussianMixture
        warning_class = SklearnConvergenceWarning
    else:
        raise ValueError(f"unknown implementation {implementation!r}; expected one of {IMPLEMENTATIONS}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", warning_class)
        model = model_class(**kwargs).fit(X)
    return FitResult(
        np.asarray(model.weights_, dtype=np.float64),
        np.asarray(model.means_, dtype=np.float64),
        np.asarray(model.covariances_, dtype=np.float64),
        float(model.lower_bound_),
        int(model.n_iter_),
    )


def max_relative_difference(ours: FitResult, theirs: FitResult) -> float:
    """Largest ``|ours - theirs|`` over weights, means and covariances, each relative to ``max |theirs|``.

    Scaling by the largest entry of each array (not entry by entry) keeps
    near-zero entries, such as off-diagonal covariances, from inflating it.
    """
    worst = 0.0
    for name in ("weights", "means", "covariances"):
        a, b = getattr(ours, name), getattr(theirs, name)
        scale = max(float(np.max(np.abs(b))), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.max(np.abs(a - b))) / scale)
    return worst


###############################################################################
# Timing


@dataclass
class Timing:
    """Seconds per EM iteration and how they were obtained."""

    per_iteration: float | None
    iterations: int = 0
    repeats: int = 0
    result: FitResult | None = None
    estimate: float | None = None  # seconds per iteration, from a pilot run
    skipped: str = ""


def _timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def _plan(estimate: float, settings: Settings) -> tuple[int, int]:
    """(iterations m, repeats) that fit ``settings.budget``, at least (1, 1)."""
    iterations = settings.iterations
    if (2 + iterations) * estimate > settings.budget:
        iterations = max(1, int(settings.budget / max(estimate, 1e-9)) - 2)
    per_repeat = (2 + iterations) * estimate
    repeats = int(min(settings.repeats, max(1, settings.budget // max(per_repeat, 1e-9))))
    return iterations, repeats


def time_per_iteration(run, settings: Settings, estimate: float | None = None) -> Timing:
    """Median over repeats of ``(t(run(1 + m)) - t(run(1))) / m``.

    Parameters
    ----------
    run : callable
        ``run(max_iter) -> FitResult``.
    settings : Settings
    estimate : float, optional
        Seconds per iteration if already known; otherwise ``run(1)`` is called
        twice, a warm-up (compilation, imports, page faults) and a timed pilot.
    """
    if estimate is None:
        run(1)
        estimate, _ = _timed(lambda: run(1))
    iterations, repeats = _plan(estimate, settings)
    samples = []
    result = None
    for _ in range(repeats):
        sample, result = _one_repeat(run, iterations)
        samples.append(sample)
    return Timing(float(np.median(samples)), iterations, repeats, result, estimate)


def _one_repeat(run, iterations: int) -> tuple:
    """``((t(run(1 + iterations)) - t(run(1))) / iterations, result of the longer run)``."""
    one, _ = _timed(lambda: run(1))
    many, result = _timed(lambda: run(1 + iterations))
    return (many - one) / iterations, result


def time_alternating(runs: dict, settings: Settings) -> dict:
    """:func:`time_per_iteration` for several variants of one fit, alternating them within every repeat.

    Timing all repeats of one variant and then all of the other lets a slow
    change of the machine (another tenant, a clock change) fall on one
    variant only; on this project's shared machines that moved the ratio of
    two such blocks by more than 10% between runs. Alternating (in reversed
    order every other repeat) spreads the change over both, which is what a
    ratio between them needs.

    Parameters
    ----------
    runs : dict
        ``label -> run``, each ``run(max_iter) -> FitResult``.
    settings : Settings
        The budget applies to each variant, as in :func:`time_per_iteration`.

    Returns
    -------
    dict
        ``label -> Timing``, every variant with the same iterations and repeats.
    """
    estimates = {}
    for label, run in runs.items():
        run(1)
        estimates[label], _ = _timed(lambda: run(1))
    iterations, repeats = _plan(max(estimates.values()), settings)
    samples = {label: [] for label in runs}
    results = {}
    order = list(runs)
    for repeat in range(repeats):
        # Reversed every other repeat, so that going first (or a drift within
        # a repeat) does not always favour the same variant.
        for label in order if repeat % 2 == 0 else order[::-1]:
            sample, results[label] = _one_repeat(runs[label], iterations)
            samples[label].append(sample)
    return {
        label: Timing(float(np.median(samples[label])), iterations, repeats, results[label], estimates[label])
        for label in runs
    }


@helper
def _busy_task(values, repeats):
    """Evaluate a cubic at every value ``repeats`` times: independent multiply-adds, no memory traffic."""
    prefer_wide_vectors()
    total = 0.0
    for repeat in range(repeats):
        c = 1e-9 * repeat
        for i in range(values.shape[0]):
            v = values[i]
            total += ((v * v + c) * v + c) * v + c
    return total


@kernel
def busy_tasks(values, repeats):
    """:func:`_busy_task` on 64 equal slices of ``values`` in parallel; returns the sum of the results."""
    n_tasks = 64
    size = values.shape[0] // n_tasks
    results = np.zeros(n_tasks)
    for task in prange(n_tasks):
        results[task] = _busy_task(values[task * size:(task + 1) * size], repeats)
    return results.sum()


def compute_bound_speedup(n_threads: int, pairs: int = 5) -> tuple:
    """How much faster ``n_threads`` threads run compute-bound work that needs nothing from each other than 1 thread.

    A Numba kernel of the same build as fastem's (``prange`` over 64 equal
    tasks, 512-bit vectors) evaluates a polynomial over arrays that stay in
    each core's L1 cache: no shared data, no memory traffic, no serial part.
    On a machine whose cores are really free it scales with the thread count;
    on a virtual machine whose cores are shared with other tenants it
    indicates how well compute-bound work scaled around the time it was
    measured. It is not an upper bound for fastem (on the benchmark machine
    fastem has measured above it), and it says nothing about memory
    bandwidth, which the E-step shares between threads.

    Returns ``(ratios, seconds)``: the ``pairs`` ratios (1-thread time /
    n-thread time), each from back-to-back runs, and the median 1-thread
    time of one run.
    """
    from fastem._core.numba import numba_threads

    values = np.linspace(0.5, 1.0, 64 * 2048)
    busy_tasks(values, 1)  # compile (or load from the cache)
    ratios, single = [], []
    for _ in range(pairs):
        seconds = {}
        for threads in (1, n_threads):
            with numba_threads(threads):
                seconds[threads], _ = _timed(lambda: busy_tasks(values, 2000))
        ratios.append(seconds[1] / seconds[n_threads])
        single.append(seconds[1])
    return ratios, float(np.median(single))


def _naive_estimate(X, init, covariance_type) -> float:
    """Seconds per naive iteration on all of X, scaled linearly from at most NAIVE_PILOT_ROWS rows."""
    rows = min(X.shape[0], NAIVE_PILOT_ROWS)
    seconds, _ = _timed(lambda: fit("naive", X[:rows], init, covariance_type, 1))
    return seconds * X.shape[0] / rows


def time_naive(X, init, covariance_type, settings: Settings) -> Timing:
    """Time the naive EM, or skip it when one iteration would exceed ``settings.naive_limit``."""
    estimate = _naive_estimate(X, init, covariance_type)
    if estimate > settings.naive_limit:
        return Timing(None, estimate=estimate, skipped=f"estimated {estimate:.0f} s per iteration")
    return time_per_iteration(
        lambda max_iter: fit("naive", X, init, covariance_type, max_iter), settings, estimate=estimate
    )


def _blas_threads(n_threads):
    """Context manager limiting the BLAS libraries (numpy's and scipy's) to ``n_threads``."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n_threads, user_api="blas")


def gemm_gflops(size: int, repeats: int = 5) -> float:
    """float64 GEMM rate of this machine: best of ``repeats`` numpy ``(size, size) @ (size, size)``, all threads."""
    rng = np.random.default_rng(0)
    a, b = rng.random((size, size)), rng.random((size, size))
    with _blas_threads(os.cpu_count()):
        a @ b  # warm-up: BLAS threads start, pages are touched
        best = min(_timed(lambda: a @ b)[0] for _ in range(repeats))
    return 2.0 * size**3 / best / 1e9


###############################################################################
# Child processes: peak memory and first-fit latency


def _child_environment(extra=None) -> dict:
    """The environment for a child process that can import this copy of fastem."""
    environment = dict(os.environ)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastem.__file__)))
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, environment.get("PYTHONPATH")]))
    environment.update(extra or {})
    return environment


def _run_child(code: str, spec: dict, extra_environment=None) -> dict:
    """Run ``code`` in a fresh interpreter with ``spec`` as JSON on stdin; it prints one JSON line last."""
    completed = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        env=_child_environment(extra_environment),
    )
    if completed.returncode != 0:
        raise RuntimeError(f"benchmark child process failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _rss_status_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _measure_peak_increase(function) -> tuple[float | None, str]:
    """Run ``function()``; return (peak RSS increase over the RSS before it, in bytes; the method used).

    On Linux the kernel's high-water mark is reset first (``/proc/self/clear_refs``),
    so it is exact and sees every allocation, Numba's included. Elsewhere
    psutil samples the RSS every millisecond from a thread, which can miss
    short peaks.
    """
    gc.collect()
    try:
        before = _rss_status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    else:
        function()
        return (_rss_status_kib("VmHWM") - before) * 1024.0, "Linux VmHWM, reset just before the fit"

    try:
        import psutil
    except ImportError:
        function()
        return None, "not measured: needs Linux's /proc or psutil"

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            done.wait(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        function()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    return float(peak[0] - before), "psutil RSS sampled every millisecond"


def _peak_memory_child() -> None:
    """Entry point of the peak-memory child (spec as JSON on stdin, result as JSON on stdout)."""
    spec = json.loads(sys.stdin.read())
    dtype = np.dtype(spec["dtype"])
    X = make_data(spec["n_samples"], spec["n_features"], spec["n_components"], dtype, spec["seed"])
    init = initial_parameters(X, spec["n_components"], spec["covariance_type"], spec["seed"])
    # A small fit first, so that compiling (or loading) the kernels and
    # importing scikit-learn are not counted as the fit's memory. It may fail
    # (too few rows for many components in many dimensions) after the work
    # that matters here is done; a fit on all rows would leave freed scratch
    # in the heap that the measured fit would then reuse unseen.
    try:
        fit(spec["implementation"], X[:2000], init, spec["covariance_type"], 1)
    except ValueError:
        pass
    increase, method = _measure_peak_increase(
        lambda: fit(spec["implementation"], X, init, spec["covariance_type"], spec["max_iter"])
    )
    print(json.dumps({"peak_increase_bytes": increase, "method": method}))


_PEAK_MEMORY_CODE = "from fastem.bench import _peak_memory_child; _peak_memory_child()"

# Runs in a fresh interpreter. numpy is imported before the clock starts (a
# user's process has it already); then ``import fastem`` and the first fit are
# timed, then the same fit again, now compiled.
_FIRST_FIT_CODE = """
import json, sys, time, warnings
import numpy as np
spec = json.loads(sys.stdin.read())
start = time.perf_counter()
import fastem
import_seconds = time.perf_counter() - start
from fastem.bench import make_data
X = make_data(spec["n_samples"], spec["n_features"], spec["n_components"], np.float64, spec["seed"])
def one_fit():
    model = fastem.GaussianMixture(
        spec["n_components"],
        covariance_type=spec["covariance_type"],
        max_iter=spec["max_iter"],
        tol=0.0,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        model.fit(X)
    return time.perf_counter() - start
first = one_fit()
again = one_fit()
print(json.dumps({"import_seconds": import_seconds, "first_fit_seconds": first, "again_seconds": again}))
"""


def peak_memory(
    implementation: str, case: Case, n_samples: int, settings: Settings, dtype=np.float64
) -> tuple[float | None, str]:
    """Peak RSS increase (bytes) of one ``max_iter=2`` fit, measured in a fresh child process."""
    spec = dict(
        implementation=implementation,
        n_samples=n_samples,
        n_features=case.n_features,
        n_components=case.n_components,
        covariance_type=case.covariance_type,
        dtype=np.dtype(dtype).name,
        seed=settings.seed,
        max_iter=2,
    )
    result = _run_child(_PEAK_MEMORY_CODE, spec)
    return result["peak_increase_bytes"], result["method"]


def first_fit_latency(case: Case, n_samples: int, settings: Settings) -> dict:
    """First fit in a fresh process with a cold Numba cache, then with a warm one.

    The cold run gets an empty temporary ``NUMBA_CACHE_DIR``, so every kernel
    it needs (k-means initialisation included: the fit uses the default
    ``init_params``) is compiled; the warm run reuses that directory, now
    filled. Each child also times the same fit a second time: the
    in-process, compiled cost.
    """
    spec = dict(
        n_samples=n_samples,
        n_features=case.n_features,
        n_components=case.n_components,
        covariance_type=case.covariance_type,
        seed=settings.seed,
        max_iter=1 + settings.iterations,
    )
    with tempfile.TemporaryDirectory(prefix="fastem-bench-numba-") as cache_dir:
        environment = {"NUMBA_CACHE_DIR": cache_dir}
        cold = _run_child(_FIRST_FIT_CODE, spec, environment)
        warm = _run_child(_FIRST_FIT_CODE, spec, environment)
    return {"cold": cold, "warm": warm}


###############################################################################
# The cases


@dataclass
class Report:
    """Everything measured, ready to print."""

    settings: Settings
    command: str
    gemm: float
    em_rows: list = field(default_factory=list)
    dtype_rows: list = field(default_factory=list)
    thread_rows: list = field(default_factory=list)
    first_fit_rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    memory_method: str = ""


EM_COLUMNS = [
    "case",
    "fastem ms/iter",
    "sklearn ms/iter (BLAS 1 thread)",
    "sklearn ms/iter (BLAS all threads)",
    "naive ms/iter",
    "speed-up vs sklearn",
    "speed-up vs naive",
    "fastem GFLOP/s",
    "GEMM GFLOP/s",
    "fastem peak MiB",
    "sklearn peak MiB",
    "max rel. diff vs sklearn",
]
DTYPE_COLUMNS = [
    "case",
    "float64 ms/iter",
    "float32 ms/iter",
    "float32 speed-up",
    "rel. log-likelihood diff",
    "max rel. param diff",
]
THREAD_COLUMNS = ["case", "n_jobs=1 ms/iter", "all threads ms/iter", "threads", "speed-up", "compute-bound speed-up (range)"]
FIRST_FIT_COLUMNS = [
    "case",
    "import fastem s",
    "first fit s (cold cache)",
    "first fit s (warm cache)",
    "same fit again s",
    "cold / again",
    "warm / again",
]


def _n_samples_for(case: Case, settings: Settings) -> int:
    """The case's rows, or fewer when ``settings.n_samples`` says so (``--quick``, ``--n-samples``)."""
    return case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)


def _log(message: str) -> None:
    print(f"[fastem.bench] {message}", file=sys.stderr, flush=True)


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or numerator <= 0 or denominator <= 0:
        return None
    return numerator / denominator


def run_em_case(case: Case, settings: Settings, report: Report) -> None:
    """Main table: one EM iteration of fastem, scikit-learn (BLAS 1 thread and all) and the naive EM."""
    n_samples = _n_samples_for(case, settings)
    covariance_type = case.covariance_type
    X = make_data(n_samples, case.n_features, case.n_components, np.float64, settings.seed)
    init = initial_parameters(X, case.n_components, covariance_type, settings.seed)

    def runner(implementation):
        return lambda max_iter: fit(implementation, X, init, covariance_type, max_iter)

    _log(f"{case.name}: fastem")
    ours = time_per_iteration(runner("fastem"), settings)
    _log(f"{case.name}: scikit-learn, BLAS on 1 thread")
    with _blas_threads(1):
        sklearn_one = time_per_iteration(runner("sklearn"), settings)
    _log(f"{case.name}: scikit-learn, BLAS on all threads")
    with _blas_threads(os.cpu_count()):
        sklearn_all = time_per_iteration(runner("sklearn"), settings)
    _log(f"{case.name}: naive")
    naive = time_naive(X, init, covariance_type, settings)
    if naive.skipped:
        report.notes.append(f"{case.name}: naive EM skipped ({naive.skipped}, limit {settings.naive_limit:.0f} s).")

    sklearn_best = min(
        (timing for timing in (sklearn_one, sklearn_all) if timing.per_iteration and timing.per_iteration > 0),
        key=lambda timing: timing.per_iteration,
        default=None,
    )
    gflops = None
    if covariance_type in ("full", "tied") and ours.per_iteration and ours.per_iteration > 0:
        flops = FLOPS_PER_ITERATION_FACTOR * n_samples * case.n_components * case.n_features**2
        gflops = flops / ours.per_iteration / 1e9
    memory = {"fastem": None, "sklearn": None}
    if settings.memory:
        for implementation in memory:
            _log(f"{case.name}: peak memory of {implementation} (child process)")
            memory[implementation], report.memory_method = peak_memory(implementation, case, n_samples, settings)
    # Compare fits of the same length. The budget may have given scikit-learn
    # fewer iterations than fastem; re-running fastem to match is cheap.
    ours_result = ours.result
    if ours.iterations != sklearn_one.iterations:
        ours_result = fit("fastem", X, init, covariance_type, 1 + sklearn_one.iterations)
    difference = max_relative_difference(ours_result, sklearn_one.result)
    report.em_rows.append(
        [
            _data_label(case, n_samples, np.float64),
            _ms(ours.per_iteration),
            _ms(sklearn_one.per_iteration),
            _ms(sklearn_all.per_iteration),
            _ms(naive.per_iteration),
            _times(_ratio(sklearn_best.per_iteration if sklearn_best else None, ours.per_iteration)),
            _times(_ratio(naive.per_iteration, ours.per_iteration)),
            _number(gflops),
            _number(report.gemm),
            _mib(memory["fastem"]),
            _mib(memory["sklearn"]),
            f"{difference:.1e}",
        ]
    )


def run_dtype_case(case: Case, settings: Settings, report: Report) -> None:
    """fastem on the same data in float64 and float32: speed, and how far the float32 answers move."""
    n_samples = _n_samples_for(case, settings)
    X64 = make_data(n_samples, case.n_features, case.n_components, np.float64, settings.seed)
    X32 = X64.astype(np.float32)
    init = initial_parameters(X64, case.n_components, case.covariance_type, settings.seed)
    _log(f"{case.name}: fastem float64 and float32, alternating")
    timings = time_alternating(
        {X.dtype.name: (lambda max_iter, X=X: fit("fastem", X, init, case.covariance_type, max_iter)) for X in (X64, X32)},
        settings,
    )
    single, double = timings["float32"], timings["float64"]
    reference_bound = double.result.lower_bound
    log_likelihood_difference = abs(single.result.lower_bound - reference_bound) / abs(reference_bound)
    report.dtype_rows.append(
        [
            _data_label(case, n_samples, None),
            _ms(double.per_iteration),
            _ms(single.per_iteration),
            _times(_ratio(double.per_iteration, single.per_iteration)),
            f"{log_likelihood_difference:.1e}",
            f"{max_relative_difference(single.result, double.result):.1e}",
        ]
    )


def run_threads_case(case: Case, settings: Settings, report: Report) -> None:
    """fastem with ``n_jobs=1`` against all of Numba's threads."""
    from fastem._core.numba import max_threads

    n_samples = _n_samples_for(case, settings)
    X = make_data(n_samples, case.n_features, case.n_components, np.float64, settings.seed)
    init = initial_parameters(X, case.n_components, case.covariance_type, settings.seed)
    threads = max_threads()
    _log(f"{case.name}: the machine's compute-bound speed-up")
    reference, run_seconds = compute_bound_speedup(threads)
    _log(f"{case.name}: fastem n_jobs=1 and n_jobs={threads}, alternating")
    timings = time_alternating(
        {
            n_jobs: (lambda max_iter, n_jobs=n_jobs: fit("fastem", X, init, case.covariance_type, max_iter, n_jobs=n_jobs))
            for n_jobs in (1, threads)
        },
        settings,
    )
    _log(f"{case.name}: the machine's compute-bound speed-up, again")
    after, _ = compute_bound_speedup(threads)
    reference += after
    one, every = timings[1], timings[threads]
    report.thread_rows.append(
        [
            _data_label(case, n_samples, np.float64),
            _ms(one.per_iteration),
            _ms(every.per_iteration),
            str(threads),
            _times(_ratio(one.per_iteration, every.per_iteration)),
            f"{_times(float(np.median(reference)))} ({_times(min(reference))} to {_times(max(reference))}; "
            f"{len(reference)} pairs, 1-thread runs of about {run_seconds * 1e3:.0f} ms)",
        ]
    )


def run_first_fit_case(case: Case, settings: Settings, report: Report) -> None:
    """Import and first fit in fresh processes (cold, then warm Numba cache) against the compiled fit."""
    n_samples = _n_samples_for(case, settings)
    _log(f"{case.name}: fresh processes, cold then warm Numba cache")
    latency = first_fit_latency(case, n_samples, settings)
    cold, warm = latency["cold"], latency["warm"]
    again = warm["again_seconds"]
    report.first_fit_rows.append(
        [
            _data_label(case, n_samples, np.float64) + f", {1 + settings.iterations} iterations, k-means init",
            f"{cold['import_seconds']:.2f} (cold) / {warm['import_seconds']:.2f} (warm)",
            f"{cold['first_fit_seconds']:.2f}",
            f"{warm['first_fit_seconds']:.2f}",
            f"{again:.3f}",
            _times(_ratio(cold["first_fit_seconds"], again)),
            _times(_ratio(warm["first_fit_seconds"], again)),
        ]
    )


RUNNERS = {"em": run_em_case, "dtype": run_dtype_case, "threads": run_threads_case, "first_fit": run_first_fit_case}


###############################################################################
# Formatting


def _count(n: int) -> str:
    """1000000 -> '1e6', 200000 -> '2e5', 2000 -> '2000'."""
    exponent = len(str(n)) - 1
    if n >= 100_000 and n % 10**exponent == 0:
        return f"{n // 10**exponent}e{exponent}"
    return str(n)


def _data_label(case: Case, n_samples: int, dtype) -> str:
    label = f"{case.covariance_type}, n={_count(n_samples)} d={case.n_features} k={case.n_components}"
    if dtype is not None:
        megabytes = n_samples * case.n_features * np.dtype(dtype).itemsize / MIB
        label += f" (X: {megabytes:.3g} MiB)"
    return label


def _ms(seconds) -> str:
    """Milliseconds: 3 significant digits, whole numbers with thousands separators from 1000 on.

    A per-iteration time at or below zero means the noise of the machine
    exceeded the cost of the iterations (tiny data, a busy machine, one
    repeat); it is shown as such rather than as a number.
    """
    if seconds is None:
        return "—"
    if seconds <= 0:
        return "≤0 (noise)"
    milliseconds = seconds * 1e3
    return f"{milliseconds:,.0f}" if milliseconds >= 1000 else f"{milliseconds:.3g}"


def _times(ratio) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}×" if ratio >= 1000 else f"{ratio:.3g}×"


def _number(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def _mib(value) -> str:
    # The RSS can shrink by a few pages between reading it and resetting the
    # high-water mark; a "negative peak" is zero.
    return "—" if value is None else f"{max(value, 0.0) / MIB:.0f}"


def markdown_table(columns: list, rows: list) -> str:
    """A markdown table with header ``columns`` and ``rows`` of already formatted cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> str:
    import numba
    import scipy

    versions = [
        f"Python {platform.python_version()}",
        f"fastem {fastem.__version__}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"numba {numba.__version__}",
    ]
    try:
        import sklearn

        versions.append(f"scikit-learn {sklearn.__version__}")
    except ImportError:
        pass
    try:
        import threadpoolctl

        versions.append(f"threadpoolctl {threadpoolctl.__version__}")
    except ImportError:
        pass
    return ", ".join(versions)


def _blas_description() -> str:
    from threadpoolctl import threadpool_info

    seen = []
    for library in threadpool_info():
        if library.get("user_api") != "blas":
            continue
        text = f"{library.get('internal_api')} {library.get('version')}"
        if library.get("architecture"):
            text += f" ({library['architecture']})"
        text += f", {library.get('num_threads')} threads by default"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) or "unknown"


def _physical_cores() -> str:
    try:
        import psutil

        return str(psutil.cpu_count(logical=False))
    except ImportError:
        return "unknown"


def _threading_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        return "not started"


def render(report: Report) -> str:
    """The report as BENCHMARKS.md-ready markdown."""
    from fastem._core.numba import max_threads

    settings = report.settings
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# fastem benchmarks",
        "",
        f"Generated {date} by:",
        "",
        "```bash",
        report.command,
        "```",
        "",
        "## Machine",
        "",
        f"- CPU: {_cpu_model()}; {os.cpu_count()} logical cores ({_physical_cores()} physical); "
        f"Numba threads: {max_threads()} (threading layer: {_threading_layer()})",
        f"- float64 GEMM: {report.gemm:.3g} GFLOP/s (numpy matmul of two {settings.gemm_size}x{settings.gemm_size} "
        "matrices, all threads, best of 5)",
        f"- BLAS: {_blas_description()}",
        f"- {_versions()}",
        "",
        "## Method",
        "",
        "Every implementation starts from the same parameters (equal weights, k-means++ rows as means, the "
        "data covariance for every component; the naive EM gets the covariances equivalent to the precisions the "
        "others get) and runs a fixed number of iterations (`tol=0`). "
        f"**ms/iter** is `(t(max_iter=1+m) - t(max_iter=1)) / m`, the median of up to {settings.repeats} repeats "
        f"with m = {settings.iterations} (fewer where one implementation would exceed {settings.budget:.0f} s on a "
        "case), so one-off work (validation, compilation, scikit-learn's initial M-step and final E-step) is "
        "excluded. The two fits compared in the float32 and threads tables alternate within every repeat, so that "
        "a slow change of the machine falls on both. The data are seeded blobs (`fastem.datasets.make_blobs`) in "
        "random row order, float64 unless stated.",
    ]
    if report.em_rows:
        memory = f"measured with {report.memory_method}" if settings.memory else "not measured (`--no-memory`)"
        parts += [
            "",
            "- **speed-up** = the other's ms/iter ÷ fastem's ms/iter (above 1: fastem is faster); against "
            "scikit-learn it uses the faster of its two BLAS settings.",
            "- **fastem GFLOP/s** counts `3 n k d^2` flops per iteration (full and tied only; for tied this "
            "conventional count exceeds the work fastem does, which is O(n (d^2 + k^2))).",
            "- **peak MiB**: increase of the peak resident set size of a fresh child process during one "
            "2-iteration fit, after a small warm-up fit (compilation and imports are not counted); it includes "
            f"the fit's copies and scratch but not X itself; {memory}.",
            "- **max rel. diff vs sklearn**: the largest absolute difference of weights, means and covariances "
            "after the same iterations, each relative to the largest entry of scikit-learn's array.",
            f"- The naive EM (`fastem.reference`) is skipped (—) where one iteration is estimated, from a run on "
            f"at most {NAIVE_PILOT_ROWS} rows, to take longer than {settings.naive_limit:.0f} s.",
            "",
            "## One EM iteration",
            "",
            markdown_table(EM_COLUMNS, report.em_rows),
        ]
    if report.dtype_rows:
        parts += [
            "",
            "## float32 against float64 (fastem)",
            "",
            "The same data and start; the log-likelihood and parameter differences are relative to the float64 fit.",
            "",
            markdown_table(DTYPE_COLUMNS, report.dtype_rows),
        ]
    if report.thread_rows:
        parts += [
            "",
            "## Threads (fastem `n_jobs`)",
            "",
            "**compute-bound speed-up**: the speed-up of a kernel built like fastem's whose tasks share nothing "
            "and stay in each core's L1 cache (`fastem.bench.compute_bound_speedup`), as the median (and range) of "
            "back-to-back pairs of 1-thread and all-thread runs, half just before and half just after the fits. "
            "It indicates how well compute-bound work scaled on this machine around the time the case ran; it is "
            "not an upper bound for fastem.",
            "",
            markdown_table(THREAD_COLUMNS, report.thread_rows),
        ]
    if report.first_fit_rows:
        parts += [
            "",
            "## First fit in a fresh process",
            "",
            "`import fastem` (numpy already imported) and the first `GaussianMixture(k).fit(X)` in a new Python "
            "process: with a cold Numba cache (an empty `NUMBA_CACHE_DIR`: everything is compiled) and a warm one "
            "(the same directory, now filled), against the same fit run again in that process.",
            "",
            markdown_table(FIRST_FIT_COLUMNS, report.first_fit_rows),
        ]
    if report.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(parts) + "\n"


###############################################################################
# Command line


def _parse_cases(text: str) -> list:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown case(s) {unknown}; choose from {', '.join(CASES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastem.bench",
        description="Time fastem against scikit-learn and the naive EM from the same start; print markdown.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke test)")
    parser.add_argument(
        "--cases", type=_parse_cases, default=list(CASES), help=f"comma-separated subset of: {', '.join(CASES)}"
    )
    parser.add_argument("--output", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument("--n-samples", type=int, help="rows of every case (overrides the case sizes)")
    parser.add_argument("--iterations", type=int, help="m: iterations timed beyond the first (default 5, quick 2)")
    parser.add_argument("--repeats", type=int, help="repeats per timing (default 5, quick 3)")
    parser.add_argument("--budget", type=float, help="seconds per implementation per case (default 30, quick 5)")
    parser.add_argument("--naive-limit", type=float, help="skip the naive EM above this many s/iteration (default 60)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--seed", type=int, help="seed of the data and initial parameters (default 0)")
    return parser


def _settings_from(args) -> Settings:
    settings = QUICK if args.quick else Settings()
    overrides = {
        "n_samples": args.n_samples,
        "iterations": args.iterations,
        "repeats": args.repeats,
        "budget": args.budget,
        "naive_limit": args.naive_limit,
        "seed": args.seed,
    }
    settings = replace(settings, **{key: value for key, value in overrides.items() if value is not None})
    if args.no_memory:
        settings = replace(settings, memory=False)
    return settings


def main(argv=None) -> int:
    """Run the cases, print the markdown report, optionally write it to ``--output``.

    Returns
    -------
    status : int
        0 on success.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        import sklearn  # noqa: F401
        import threadpoolctl  # noqa: F401
    except ImportError as error:
        print(f"fastem.bench needs the 'bench' extra: python -m pip install -e '.[bench]' ({error})", file=sys.stderr)
        return 2
    settings = _settings_from(args)
    command = " ".join(["python -m fastem.bench", *map(shlex.quote, argv)])
    _log(f"float64 GEMM reference ({settings.gemm_size}x{settings.gemm_size})")
    report = Report(settings=settings, command=command, gemm=gemm_gflops(settings.gemm_size))
    for name in args.cases:
        case = CASES[name]
        RUNNERS[case.kind](case, settings, report)
        gc.collect()
    text = render(report)
    print(text, end="")
    if args.output:
        write_report(args.output, text)
    return 0


# Everything from this line on in an existing report is hand-written (what was
# tried and what it bought) and survives regeneration.
HAND_WRITTEN_MARKER = "<!-- hand-written below: kept when the report is regenerated -->"


def write_report(path: str, text: str) -> None:
    """Write ``text`` to ``path``, keeping the hand-written tail of an existing report."""
    tail = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as existing:
            previous = existing.read()
        if HAND_WRITTEN_MARKER in previous:
            tail = "\n" + previous[previous.index(HAND_WRITTEN_MARKER):]
    with open(path, "w", encoding="utf-8") as output:
        output.write(text + tail)


if __name__ == "__main__":
    sys.exit(main())
