"""The comparison cases: fastem against scikit-learn and the naive EM, float32 against float64, 1 thread against all.

Each runner measures one :class:`~fastem.bench.cases.Case` and appends its
formatted row to the :class:`~fastem.bench.report.Report`.
"""

from __future__ import annotations

import os

import numpy as np

from fastem.bench.cases import FLOPS_PER_ITERATION_FACTOR, Case, Settings, _n_samples_for, initial_parameters, make_data
from fastem.bench.fits import fit, max_relative_difference
from fastem.bench.memory import peak_memory
from fastem.bench.report import Report, _data_label, _log, _mib, _ms, _number, _ratio, _times
from fastem.bench.timing import _blas_threads, compute_bound_speedup, time_alternating, time_naive, time_per_iteration


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
    from fastem._core.threads import max_threads

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
