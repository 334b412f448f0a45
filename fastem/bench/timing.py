"""Timing: seconds per EM iteration (alone or alternating), the machine's compute-bound speed-up and GEMM rate.

threadpoolctl is imported inside functions, so importing this module never
imports it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
from numba import prange

from fastem._core.intrinsics import prefer_wide_vectors
from fastem._core.numba import helper, kernel
from fastem.bench.cases import NAIVE_PILOT_ROWS, Settings
from fastem.bench.fits import FitResult, fit
from fastem.bench.report import _log


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


def time_calls_alternating(calls: dict, repeats: int, describe: str) -> tuple[dict, dict]:
    """Whole-call seconds of each ``label -> call()``, alternating them (reversed every other repeat).

    For comparisons of whole calls (a fit, a sweep, an inference) rather than
    of iterations; see :func:`time_alternating` for why the sides alternate.
    ``describe`` prefixes the progress lines. Returns ``(label -> median
    seconds, label -> the last call's result)``.
    """
    times = {label: [] for label in calls}
    results = {}
    order = list(calls)
    for repeat in range(repeats):
        for label in order if repeat % 2 == 0 else order[::-1]:
            _log(f"{describe}: {label}, repeat {repeat + 1} of {repeats}")
            start = time.perf_counter()
            results[label] = calls[label]()
            times[label].append(time.perf_counter() - start)
    return {label: float(np.median(values)) for label, values in times.items()}, results


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
    from fastem._core.threads import numba_threads

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
