"""The missing-value cases: an EM iteration on data with NaN against the same data complete, imputation, first fit.

No other library fits a mixture on incomplete data with scikit-learn's API,
so the anchor is fastem itself: the same rows, the same start, once complete
and once with a fraction of the entries NaN (completely at random). The two
alternate within every repeat; ms/iter is ``(t(max_iter=1+m) - t(max_iter=1)) / m``,
which leaves out the one-off grouping of the rows by pattern (reported on
its own).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

import fastem
from fastem.bench.cases import Settings
from fastem.bench.child_process import cold_then_warm
from fastem.bench.hmm import time_pairs
from fastem.bench.report import Report, _log, _ms, _ratio, _times


@dataclass(frozen=True)
class MissingCase:
    """One missing-value case; ``kind`` is ``"missing"``, ``"missing_impute"`` or ``"missing_first_fit"``."""

    name: str
    kind: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    missing_fraction: float
    target: float | None = None  # the bound on (ms/iter with NaN) / (ms/iter complete)


MISSING_CASES = {
    case.name: case
    for case in [
        MissingCase("missing_full_100000_d8_k8", "missing", 100_000, 8, 8, "full", 0.2, 3.0),
        MissingCase("missing_diag_100000_d8_k8", "missing", 100_000, 8, 8, "diag", 0.2),
        MissingCase("missing_full_100000_d16_k4", "missing", 100_000, 16, 4, "full", 0.2),
        # Almost every row has a pattern of its own: the factors cost once per row.
        MissingCase("missing_full_20000_d32_k4", "missing", 20_000, 32, 4, "full", 0.2),
        MissingCase("missing_impute", "missing_impute", 100_000, 8, 8, "full", 0.2),
        MissingCase("missing_first_fit", "missing_first_fit", 100_000, 8, 4, "full", 0.2),
    ]
}

_ITERATIONS = 10


def _n_samples(case: MissingCase, settings: Settings) -> int:
    return case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)


def missing_data(case: MissingCase, settings: Settings):
    """(complete X, X with NaN, start): blobs, the same with entries hidden at random, and a start near them."""
    from fastem.datasets import make_blobs

    X, _ = make_blobs(_n_samples(case, settings), case.n_features, case.n_components, random_state=settings.seed)
    rng = np.random.default_rng(settings.seed + 1)
    incomplete = X.copy()
    incomplete[rng.random(X.shape) < case.missing_fraction] = np.nan
    start = fastem.GaussianMixture(case.n_components, covariance_type=case.covariance_type, max_iter=3,
                                   random_state=settings.seed, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # three iterations do not converge
        start.fit(X)
    return X, incomplete, start


def _runner(case: MissingCase, X, start):
    """``run(n_iter) -> model``: exactly ``n_iter`` EM iterations on X from ``start``'s parameters."""

    def run(n_iter):
        model = fastem.GaussianMixture(
            case.n_components, covariance_type=case.covariance_type, weights_init=start.weights_,
            means_init=start.means_, precisions_init=start.precisions_, max_iter=n_iter, tol=0.0,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X)

    return run


MISSING_COLUMNS = ["case", "complete ms/iter", "with NaN ms/iter", "ratio", "target", "met", "patterns",
                   "grouping rows by pattern ms (once per fit)"]
MISSING_IMPUTE_COLUMNS = ["case", "impute mean µs/row", "impute sample µs/row", "score_samples with NaN µs/row",
                  "score_samples complete µs/row"]
MISSING_FIRST_FIT_COLUMNS = ["case", "first fit s (cold cache)", "first fit s (warm cache)", "same fit again s",
                     "impute after the first fit s (cold)"]


def _label(case: MissingCase, settings: Settings) -> str:
    return (f"{case.covariance_type}, {_n_samples(case, settings):,} x {case.n_features}, k={case.n_components}, "
            f"{case.missing_fraction:.0%} missing")


def run_missing_case(case: MissingCase, settings: Settings, report: Report) -> None:
    """An EM iteration with NaN against the same iteration on the complete data, alternating."""
    from fastem.mixture.missing import MissingData

    X, incomplete, start = missing_data(case, settings)
    runs = {"complete": (_runner(case, X, start), _ITERATIONS),
            "missing": (_runner(case, incomplete, start), _ITERATIONS)}
    _log(f"{case.name}: complete and with NaN, alternating")
    timings = time_pairs(runs, max(settings.repeats, 5))
    ratio = _ratio(timings["missing"][0], timings["complete"][0])
    grouping = []
    for _ in range(5):
        begin = time.perf_counter()
        data = MissingData(incomplete, None)
        grouping.append(time.perf_counter() - begin)
    section = report.section(
        "Missing values: an EM iteration on data with NaN",
        "`GaussianMixture.fit` on blobs with a fraction of the entries set to NaN completely at random, against the "
        "same rows complete, from the same start (the parameters after three iterations on the complete data). "
        "**ms/iter**: `(t(max_iter=1+m) - t(max_iter=1)) / m`, m = "
        f"{_ITERATIONS}, the median of {max(settings.repeats, 5)} repeats in which the two alternate. **ratio**: "
        "with NaN / complete (the bound is 3 for the full case). **grouping**: sorting the rows by "
        "missingness pattern and copying them in that order, done once per fit (median of 5).", MISSING_COLUMNS)
    met = "" if case.target is None else ("yes" if ratio is not None and ratio <= case.target else "no")
    section.rows.append([
        _label(case, settings), _ms(timings["complete"][0]), _ms(timings["missing"][0]),
        _times(ratio), "" if case.target is None else f"<= {case.target:g}x", met,
        f"{data.layout.n_patterns:,}", _ms(float(np.median(grouping))),
    ])


def _per_row_microseconds(function, n_rows: int, repeats: int) -> float:
    function()  # compilation
    samples = []
    for _ in range(repeats):
        begin = time.perf_counter()
        function()
        samples.append(time.perf_counter() - begin)
    return float(np.median(samples)) / n_rows * 1e6


def run_missing_impute_case(case: MissingCase, settings: Settings, report: Report) -> None:
    """impute (mean and sample) and score_samples per row, on a fitted model."""
    X, incomplete, start = missing_data(case, settings)
    model = _runner(case, incomplete, start)(5)
    n_rows = incomplete.shape[0]
    repeats = max(settings.repeats, 5)
    _log(f"{case.name}: impute and score_samples")
    figures = [
        _per_row_microseconds(lambda: model.impute(incomplete), n_rows, repeats),
        _per_row_microseconds(lambda: model.impute(incomplete, method="sample", random_state=0), n_rows, repeats),
        _per_row_microseconds(lambda: model.score_samples(incomplete), n_rows, repeats),
        _per_row_microseconds(lambda: model.score_samples(X), n_rows, repeats),
    ]
    section = report.section(
        "Missing values: imputation and scoring per row",
        "A model fitted on the data with NaN; each call on all its rows (median of "
        f"{repeats}), divided by the number of rows. `impute` fills every NaN with its conditional expectation "
        "('mean') or a draw ('sample'); `score_samples` with NaN is the marginal over the observed values; the "
        "last column is the same call on the complete rows (the complete-data kernels).", MISSING_IMPUTE_COLUMNS)
    section.rows.append([_label(case, settings), *(f"{value:.3f}" for value in figures)])


# Runs in a fresh interpreter: a fit on data with NaN as a user writes it, impute, the same fit again.
_FIRST_FIT_CODE = """
import json, sys, time
import numpy as np
spec = json.loads(sys.stdin.read())
import fastem
rng = np.random.default_rng(0)
X = rng.normal(size=(spec["n_samples"], spec["n_features"]))
X[::3] += 4.0
X[rng.random(X.shape) < spec["missing_fraction"]] = np.nan
def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value
fit = lambda: fastem.GaussianMixture(spec["n_components"], covariance_type=spec["covariance_type"],
                                     random_state=0).fit(X)
result = {}
result["first"], model = timed(fit)
result["impute"], _ = timed(lambda: model.impute(X))
result["again"], _ = timed(fit)
print(json.dumps(result))
"""


def run_missing_first_fit_case(case: MissingCase, settings: Settings, report: Report) -> None:
    """The first fit on data with NaN in fresh processes, with an empty and then a warm Numba cache."""
    spec = dict(n_samples=_n_samples(case, settings), n_features=case.n_features, n_components=case.n_components,
                covariance_type=case.covariance_type, missing_fraction=case.missing_fraction)
    _log(f"{case.name}: fresh processes, cold then warm Numba cache")
    cold, warm = cold_then_warm(_FIRST_FIT_CODE, spec)
    section = report.section(
        "Missing values: first fit in a fresh process",
        "`GaussianMixture(k).fit(X)` on data with NaN as a user writes it (defaults, k-means initialisation on the "
        "column-mean-filled data) in a new Python process, with an empty `NUMBA_CACHE_DIR` (everything compiled) "
        "and then the same directory (warm); `import fastem` and building X are not timed.", MISSING_FIRST_FIT_COLUMNS)
    section.rows.append([
        _label(case, settings), f"{cold['first']:.2f}", f"{warm['first']:.2f}", f"{warm['again']:.3f}",
        f"{cold['impute']:.2f}",
    ])
