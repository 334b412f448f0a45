"""The default thread count on shared CPUs: fastem's defaults against ``n_jobs=1`` and scikit-learn, with a competitor.

A competitor is one busy-loop process, started and stopped here, that wants
a whole core, as another job does on a CI runner or in a container whose
CPU quota is below the host's core count. Each part is measured quiet and
beside the competitor:

* **iris**: k=3, full covariances, ``median_fits`` fits of each side
  alternating (fastem's defaults, fastem ``n_jobs=1``, scikit-learn);
* **the grid**: n_components 1 to 8 x the four covariance types on Old
  Faithful, iris, wine and digits (128 fits), each cell the median of the
  repeats of each side, alternating. Reported: the cells where fastem's
  defaults were slower than scikit-learn, and the ratio of fastem's
  defaults to ``n_jobs=1`` (median over the cells and the worst cell);
* **a large fit** (1e6 x 8, k=8, diagonal, 10 EM iterations from the same
  start): fastem's defaults against ``n_jobs=1``, so that the small-work rule
  is seen not to cost large fits their threads.

Targets: the defaults never more than
1.5x slower than ``n_jobs=1`` (median), faster than scikit-learn in every
cell of the grid, quiet and with the competitor, and the large fit's
two-thread speed-up kept. Every fit is warm: each cell is fitted once before
it is timed, so compilation (measured by the first-fit cases) is left out.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from fastem.bench.cases import Settings
from fastem.bench.report import Report, _log, _times

_TYPES = ("full", "tied", "diag", "spherical")
_SIDES = ("fastem defaults", "fastem n_jobs=1", "sklearn")


@dataclass(frozen=True)
class SharedCpusCase:
    name: str
    median_fits: int = 25
    large_rows: int = 1_000_000
    kind: str = "shared_cpus"


SHARED_CPUS_CASES = {case.name: case for case in [SharedCpusCase("shared_cpus")]}


@contextlib.contextmanager
def competitor(active: bool):
    """A busy-loop Python process for the duration of the block (nothing when ``active`` is False)."""
    if not active:
        yield
        return
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)  # let it reach the loop
    try:
        yield
    finally:
        process.kill()
        process.wait()


def _datasets() -> dict:
    from sklearn.datasets import load_digits, load_iris, load_wine

    from fastem.datasets import load_faithful

    return {
        "Old Faithful": load_faithful()[0],
        "iris": load_iris().data,
        "wine": load_wine().data,
        "digits": load_digits().data,
    }


def _fitters(X, k: int, covariance_type: str, seed: int, **options) -> dict:
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from fastem import GaussianMixture

    def fit(make):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning and near-duplicate warnings: both sides alike
            return make().fit(X)

    common = dict(covariance_type=covariance_type, random_state=seed, **options)
    return {
        "fastem defaults": lambda: fit(lambda: GaussianMixture(k, **common)),
        "fastem n_jobs=1": lambda: fit(lambda: GaussianMixture(k, n_jobs=1, **common)),
        "sklearn": lambda: fit(lambda: SklearnGaussianMixture(k, **common)),
    }


def _alternating_seconds(calls: dict, repeats: int) -> dict:
    """Each call's seconds over ``repeats`` rounds, the calls alternating within each round."""
    seconds = {label: [] for label in calls}
    for _ in range(repeats):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            seconds[label].append(time.perf_counter() - start)
    return seconds


def _grid(datasets: dict, repeats: int, seed: int) -> list:
    """One record per cell: (data set, type, k, median seconds of each side)."""
    cells = []
    for data_name, X in datasets.items():
        for covariance_type in _TYPES:
            for k in range(1, 9):
                calls = _fitters(X, k, covariance_type, seed)
                calls["fastem n_jobs=1"]()  # compile (or load) this cell's kernels
                seconds = _alternating_seconds(calls, repeats)
                cells.append((data_name, covariance_type, k, {label: float(np.median(v)) for label, v in seconds.items()}))
    return cells


def _large_fit_seconds(n_rows: int, repeats: int, seed: int) -> dict:
    from fastem import GaussianMixture
    from fastem.datasets import make_blobs

    X, _ = make_blobs(n_rows, 8, 8, random_state=seed)
    start = GaussianMixture(8, covariance_type="diag", max_iter=1, random_state=seed, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X[:20_000])
    init = dict(weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_)

    def fit(n_jobs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            GaussianMixture(8, covariance_type="diag", max_iter=10, tol=0, n_jobs=n_jobs, **init).fit(X)

    fit(1)
    seconds = _alternating_seconds({"defaults": lambda: fit(None), "n_jobs=1": lambda: fit(1)}, repeats)
    return {label: float(np.median(values)) for label, values in seconds.items()}


def run_shared_cpus_case(case: SharedCpusCase, settings: Settings, report: Report) -> None:
    from sklearn.datasets import load_iris

    from fastem._core.threads import cpu_budget, max_threads

    repeats = max(1, min(settings.repeats, 5))
    median_fits = case.median_fits if settings.n_samples is None else 5
    large_rows = case.large_rows if settings.n_samples is None else min(case.large_rows, 20 * settings.n_samples)
    datasets = _datasets()
    iris = load_iris().data
    iris_section = report.section(
        "Shared CPUs: iris, k=3, full",
        f"Milliseconds per whole fit (`random_state=0`, otherwise defaults), the median (and maximum) of "
        f"{median_fits} fits of each side, alternating; 'busy' has one busy-loop process beside it, started and "
        f"stopped by the benchmark. Numba threads {max_threads()}, CPU budget {cpu_budget()}.",
        ["condition", *(f"{side} ms (max)" for side in _SIDES), "defaults / n_jobs=1", "sklearn / defaults"],
    )
    grid_section = report.section(
        "Shared CPUs: the 128-fit grid",
        "n_components 1 to 8 x four covariance types x Old Faithful (272 x 2), iris (150 x 4), wine (178 x 13), "
        f"digits (1797 x 64); whole fits, `random_state=0`, each cell the median of {repeats} fits of each side, "
        "alternating. Targets: fastem's defaults faster than scikit-learn in every cell, and at most 1.5x "
        "`n_jobs=1` (median).",
        ["condition", "cells slower than sklearn", "slowest cell vs sklearn", "defaults / n_jobs=1 median",
         "defaults / n_jobs=1 worst", "sklearn / defaults median", "sklearn / defaults min"],
    )
    large_section = report.section(
        "Shared CPUs: a large fit keeps its threads",
        f"{large_rows:,} x 8, k=8, diagonal, 10 EM iterations from the same start; seconds, median of {repeats}, "
        "alternating. The default n_jobs must still use every CPU here.",
        ["condition", "defaults s", "n_jobs=1 s", "speed-up of the defaults"],
    )
    _log("shared_cpus: compiling the grid's kernels (one fit per cell)")
    for busy in (False, True):
        condition = "busy (one competitor)" if busy else "quiet"
        with competitor(busy):
            _log(f"shared_cpus: iris, {condition}")
            calls = _fitters(iris, 3, "full", 0)
            calls["fastem n_jobs=1"]()
            seconds = _alternating_seconds(calls, median_fits)
            medians = {label: float(np.median(values)) for label, values in seconds.items()}
            iris_section.rows.append([
                condition,
                *(f"{1e3 * medians[side]:.2f} ({1e3 * max(seconds[side]):.1f})" for side in _SIDES),
                _times(medians["fastem defaults"] / medians["fastem n_jobs=1"]),
                _times(medians["sklearn"] / medians["fastem defaults"]),
            ])
            _log(f"shared_cpus: the 128-fit grid, {condition}")
            cells = _grid(datasets, repeats, settings.seed)
            against_sklearn = [cell[3]["sklearn"] / cell[3]["fastem defaults"] for cell in cells]
            against_one = [cell[3]["fastem defaults"] / cell[3]["fastem n_jobs=1"] for cell in cells]
            slowest = cells[int(np.argmin(against_sklearn))]
            grid_section.rows.append([
                condition,
                f"{sum(ratio < 1 for ratio in against_sklearn)} of {len(cells)}",
                f"{slowest[0]} {slowest[1]} k={slowest[2]}",
                _times(float(np.median(against_one))), _times(max(against_one)),
                _times(float(np.median(against_sklearn))), _times(min(against_sklearn)),
            ])
            _log(f"shared_cpus: the large fit, {condition}")
            large = _large_fit_seconds(large_rows, repeats, settings.seed)
            large_section.rows.append([
                condition, f"{large['defaults']:.3f}", f"{large['n_jobs=1']:.3f}",
                _times(large["n_jobs=1"] / large["defaults"]),
            ])
