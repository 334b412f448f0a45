"""The Gaussian HMM cases: fastem's GaussianHMM against hmmlearn, threads, and the first fit.

Both implementations start from the same parameters (``init_params=''``)
and run a fixed number of Baum-Welch iterations (``tol=-inf``); ms/iter is
``(t(n_iter=1+m) - t(n_iter=1)) / m`` with the two implementations
alternating within every repeat, as for the mixtures. hmmlearn is imported
inside functions (it is a ``bench`` extra).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

import fastem
from fastem.bench.cases import Settings
from fastem.bench.child_process import cold_then_warm
from fastem.bench.report import Report, _log, _ms, _ratio, _times
from fastem.bench.timing import compute_bound_speedup


@dataclass(frozen=True)
class HMMCase:
    """One HMM benchmark case; ``kind`` is ``"hmm"``, ``"hmm_threads"`` or ``"hmm_first_fit"``."""

    name: str
    kind: str
    n_sequences: int
    length: int
    n_features: int
    n_components: int
    covariance_type: str
    target: float | None = None  # the speed-up target (hmmlearn's ms/iter ÷ fastem's)


HMM_CASES = {
    case.name: case
    for case in [
        HMMCase("hmm_diag_100x10000_d4_k8", "hmm", 100, 10_000, 4, 8, "diag", 20.0),
        HMMCase("hmm_full_100x10000_d4_k8", "hmm", 100, 10_000, 4, 8, "full", 20.0),
        HMMCase("hmm_full_1x1000000_d2_k4", "hmm", 1, 1_000_000, 2, 4, "full", 20.0),
        HMMCase("hmm_threads", "hmm_threads", 100, 10_000, 4, 8, "diag", 1.8),
        HMMCase("hmm_first_fit", "hmm_first_fit", 1, 100_000, 2, 4, "diag"),
    ]
}

# Timed iterations per fit: hmmlearn takes seconds per iteration on these
# cases; fastem needs more iterations for the difference t(1+m) - t(1) to
# stand well above the noise of a single fit's fixed costs.
_HMMLEARN_ITERATIONS = 2
_FASTEM_ITERATIONS = 10


def _shape(case: HMMCase, settings: Settings) -> tuple[int, int]:
    """(n_sequences, length), scaled down to ``settings.n_samples`` rows when that is set."""
    if settings.n_samples is None or settings.n_samples >= case.n_sequences * case.length:
        return case.n_sequences, case.length
    n_sequences = max(1, min(case.n_sequences, settings.n_samples // 100))
    return n_sequences, max(10, settings.n_samples // n_sequences)


def hmm_data(case: HMMCase, settings: Settings):
    """(X, lengths, start): rows from a sticky HMM with separated states, and a start near it.

    ``start`` is (startprob, transmat, means, covars) in hmmlearn's per-type shapes.
    """
    n_sequences, length = _shape(case, settings)
    rng = np.random.default_rng(settings.seed)
    k, d = case.n_components, case.n_features
    centres = rng.normal(scale=3.0, size=(k, d))
    n_rows = n_sequences * length
    # States held for geometric run lengths (mean 20 rows), as a sticky chain would.
    runs = rng.geometric(1 / 20, size=n_rows // 5 + 1)
    states = np.repeat(rng.integers(k, size=runs.size), runs)[:n_rows]
    X = centres[states] + rng.normal(size=(n_rows, d))
    transmat = np.full((k, k), 0.05 / (k - 1))
    np.fill_diagonal(transmat, 0.95)
    covars = {"diag": np.ones((k, d)), "spherical": np.ones(k), "full": np.tile(np.eye(d), (k, 1, 1)), "tied": np.eye(d)}
    start = (np.full(k, 1.0 / k), transmat, centres + rng.normal(scale=0.5, size=(k, d)), covars[case.covariance_type])
    return np.ascontiguousarray(X), np.full(n_sequences, length), start


def _runner(model_class, case: HMMCase, X, lengths, start, **options):
    """``run(n_iter) -> model``: a fit of exactly ``n_iter`` iterations from ``start``."""

    def run(n_iter):
        model = model_class(case.n_components, covariance_type=case.covariance_type, init_params="", tol=-np.inf,
                            n_iter=n_iter, **options)
        model.startprob_, model.transmat_, model.means_, model.covars_ = (np.array(p, copy=True) for p in start)
        return model.fit(X, lengths)

    return run


def time_pairs(runs: dict, repeats: int) -> dict:
    """Median seconds per iteration of each ``label -> (run, m)``, alternating the runs within every repeat.

    Each sample is ``(t(run(1 + m)) - t(run(1))) / m``; the order of the
    runs is reversed every other repeat. Unlike ``timing.time_alternating``,
    every run has its own ``m``, so a fast implementation can time many
    iterations while a slow one times few. Returns ``label -> (median,
    samples, model of the last long run)``.
    """
    for run, _ in runs.values():
        run(1)  # compilation, imports, first-touch page faults
    samples = {label: [] for label in runs}
    models = {}
    order = list(runs)
    for repeat in range(repeats):
        for label in order if repeat % 2 == 0 else order[::-1]:
            run, iterations = runs[label]
            start = time.perf_counter()
            run(1)
            one = time.perf_counter() - start
            start = time.perf_counter()
            models[label] = run(1 + iterations)
            many = time.perf_counter() - start
            samples[label].append((many - one) / iterations)
    return {label: (float(np.median(samples[label])), samples[label], models[label]) for label in runs}


def _max_relative_difference(ours, theirs) -> float:
    """Largest absolute difference of startprob, transmat, means and per-type covars, relative to hmmlearn's."""
    pairs = [(ours.startprob_, theirs.startprob_), (ours.transmat_, theirs.transmat_), (ours.means_, theirs.means_),
             (ours.covars_, theirs.covars_)]
    return max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in pairs)


HMM_COLUMNS = ["case", "fastem ms/iter", "hmmlearn ms/iter", "speed-up", "target", "met", "max rel. diff vs hmmlearn"]
HMM_THREAD_COLUMNS = ["case", "n_jobs=1 ms/iter", "all threads ms/iter", "threads", "speed-up", "target", "met",
                      "compute-bound speed-up (range)"]
HMM_FIRST_FIT_COLUMNS = ["case", "first fit s (cold cache)", "first fit s (warm cache)", "same fit again s",
                         "predict after the first fit s (cold)"]


def _label(case: HMMCase, settings: Settings) -> str:
    n_sequences, length = _shape(case, settings)
    return (f"{case.covariance_type}, {n_sequences} x {length:,} rows, d={case.n_features}, k={case.n_components}")


def run_hmm_case(case: HMMCase, settings: Settings, report: Report) -> None:
    """fastem against hmmlearn from the same start, alternating; the speed-up and the parameter difference."""
    from hmmlearn import hmm as hmmlearn_hmm

    X, lengths, start = hmm_data(case, settings)
    runs = {
        "fastem": (_runner(fastem.GaussianHMM, case, X, lengths, start), _FASTEM_ITERATIONS),
        "hmmlearn": (_runner(hmmlearn_hmm.GaussianHMM, case, X, lengths, start), _HMMLEARN_ITERATIONS),
    }
    _log(f"{case.name}: fastem and hmmlearn, alternating")
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # its "not converging" notes on sub-ulp dips
    timings = time_pairs(runs, settings.repeats)
    ours, theirs = timings["fastem"], timings["hmmlearn"]
    speedup = _ratio(theirs[0], ours[0])
    section = report.section("Gaussian HMM: one Baum-Welch iteration against hmmlearn",
                       "fastem's `GaussianHMM` and hmmlearn's (`implementation='log'`, its default) from the same "
                       "parameters, a fixed number of iterations. The data: sequences from a sticky HMM (runs of about "
                       "20 rows per state); the start: uniform startprob, transmat 0.95 on the diagonal, means near the "
                       "states' centres, unit covariances. **ms/iter**: `(t(n_iter=1+m) - t(n_iter=1)) / m` with "
                       f"m = {_FASTEM_ITERATIONS} for fastem and {_HMMLEARN_ITERATIONS} for hmmlearn, the median of "
                       f"{settings.repeats} repeats in which the two alternate. **max rel. diff**: largest absolute "
                       "difference of startprob, transmat, means and covariances after the same iterations, relative "
                       "to hmmlearn's largest entry (hmmlearn's log-space sums lose about 1e-8 on a million rows; "
                       "fastem's scaled ones agree with hmmlearn's `implementation='scaling'` to about 1e-13).",
                       HMM_COLUMNS)
    section.rows.append([
        _label(case, settings), _ms(ours[0]), _ms(theirs[0]), _times(speedup),
        f">= {case.target:g}x", "yes" if speedup is not None and speedup >= case.target else "no",
        f"{_same_iterations_difference(case, X, lengths, start, hmmlearn_hmm):.1e}",
    ])


def _same_iterations_difference(case, X, lengths, start, hmmlearn_hmm) -> float:
    """The parameter difference after the same (two) iterations from the same start."""
    ours = _runner(fastem.GaussianHMM, case, X, lengths, start)(1 + _HMMLEARN_ITERATIONS)
    theirs = _runner(hmmlearn_hmm.GaussianHMM, case, X, lengths, start)(1 + _HMMLEARN_ITERATIONS)
    return _max_relative_difference(ours, theirs)


def run_hmm_threads_case(case: HMMCase, settings: Settings, report: Report) -> None:
    """fastem on one thread against all, alternating."""
    from fastem._core.threads import max_threads

    X, lengths, start = hmm_data(case, settings)
    runs = {"1": (_runner(fastem.GaussianHMM, case, X, lengths, start, n_jobs=1), _FASTEM_ITERATIONS),
            "all": (_runner(fastem.GaussianHMM, case, X, lengths, start, n_jobs=None), _FASTEM_ITERATIONS)}
    _log(f"{case.name}: n_jobs=1 and all threads, alternating")
    before, _ = compute_bound_speedup(max_threads())
    repeats = max(settings.repeats, 7)
    timings = time_pairs(runs, repeats)
    after, _ = compute_bound_speedup(max_threads())
    speedup = _ratio(timings["1"][0], timings["all"][0])
    bound = sorted(before + after)
    bound_text = f"{np.median(bound):.2f}x ({bound[0]:.2f}-{bound[-1]:.2f})"
    section = report.section("Gaussian HMM: threads (fastem `n_jobs`)",
                       "The first case on one thread against all, alternating within every repeat (median of "
                       f"{repeats}, m = {_FASTEM_ITERATIONS}). **compute-bound speed-up**: as in the mixture threads "
                       "table, measured just before and just after.", HMM_THREAD_COLUMNS)
    section.rows.append([
        _label(case, settings), _ms(timings["1"][0]), _ms(timings["all"][0]),
        str(max_threads()), _times(speedup), f">= {case.target:g}x",
        "yes" if speedup is not None and speedup >= case.target else "no", bound_text,
    ])


# Runs in a fresh interpreter: a GaussianHMM fit as a user writes it (default
# n_iter, tol and initialisation), then predict, then the same fit again.
_HMM_FIRST_FIT_CODE = """
import json, sys, time
import numpy as np
spec = json.loads(sys.stdin.read())
import fastem
rng = np.random.default_rng(0)
X = rng.normal(size=(spec["n_samples"], spec["n_features"]))
X[::7] += 4.0
def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value
fit = lambda: fastem.GaussianHMM(spec["n_components"], covariance_type=spec["covariance_type"], random_state=0).fit(X)
result = {}
result["first"], model = timed(fit)
result["predict"], _ = timed(lambda: model.predict(X))
result["again"], _ = timed(fit)
print(json.dumps(result))
"""


def run_hmm_first_fit_case(case: HMMCase, settings: Settings, report: Report) -> None:
    """The first GaussianHMM fit in fresh processes, with an empty and then a warm Numba cache."""
    n_sequences, length = _shape(case, settings)
    spec = dict(n_samples=n_sequences * length, n_features=case.n_features, n_components=case.n_components,
                covariance_type=case.covariance_type)
    _log(f"{case.name}: fresh processes, cold then warm Numba cache")
    cold, warm = cold_then_warm(_HMM_FIRST_FIT_CODE, spec)
    section = report.section("Gaussian HMM: first fit in a fresh process",
                       "`GaussianHMM(k, covariance_type=...).fit(X)` as a user writes it (default n_iter and tol, "
                       "k-means initialisation) in a new Python process, with an empty `NUMBA_CACHE_DIR` (everything "
                       "compiled) and then the same directory (warm); `import fastem` and building X are not timed.",
                       HMM_FIRST_FIT_COLUMNS)
    section.rows.append([
        f"{case.covariance_type}, one sequence of {spec['n_samples']:,} rows, d={case.n_features}, k={case.n_components}",
        f"{cold['first']:.2f}", f"{warm['first']:.2f}", f"{warm['again']:.3f}", f"{cold['predict']:.2f}",
    ])
