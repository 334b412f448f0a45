"""The whole default fit, end to end, against scikit-learn's: initialisation included.

``default_fit_k4`` and ``default_fit_k8``: blobs of 2e6 x 10 with 4 and 8
clusters, each covariance type. Both sides run what a new user writes,
``GaussianMixture(k, covariance_type=t, random_state=seed).fit(X)``: k-means
initialisation, default tol 1e-3, one start. Reported per type:

* whole-fit seconds of each, the median of repeats that alternate the two;
* fastem's initialisation alone (``initial_stats`` and the first M-step, as
  ``fit`` runs them), timed separately, and its share of fastem's fit;
* the final lower bounds (mean log-likelihood per row) and their relative
  difference, positive when fastem's is higher.

Targets (issue 17): at least 20x scikit-learn's whole fit, the same final
log-likelihood within 1e-6 relative or better, initialisation at most 25% of
the fit.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from fastem.bench.cases import Settings
from fastem.bench.report import Report, _log, _times
from fastem.bench.timing import time_calls_alternating

_TYPES = ("full", "tied", "diag", "spherical")


@dataclass(frozen=True)
class DefaultFitCase:
    name: str
    n_samples: int
    n_features: int
    n_components: int
    target: float = 20.0
    kind: str = "default_fit"


DEFAULT_FIT_CASES = {
    case.name: case
    for case in [
        DefaultFitCase("default_fit_k4", 2_000_000, 10, 4),
        DefaultFitCase("default_fit_k8", 2_000_000, 10, 8),
    ]
}


def _fit(estimator_class, X, k: int, covariance_type: str, seed: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning would be reported in the table, not raised
        return estimator_class(k, covariance_type=covariance_type, random_state=seed).fit(X)


def _initialisation_seconds(X, k: int, covariance_type: str, seed: int) -> float:
    """What ``fit`` spends before its first E-step: the start's statistics and the first M-step."""
    from fastem.mixture.steps import initial_stats, mstep

    start = time.perf_counter()
    stats = initial_stats(X, None, k, "kmeans", covariance_type, np.random.RandomState(seed))
    mstep(stats, covariance_type, 1e-6, 10 * np.finfo(X.dtype).eps)
    return time.perf_counter() - start


def run_default_fit_case(case: DefaultFitCase, settings: Settings, report: Report) -> None:
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from fastem import GaussianMixture
    from fastem.datasets import make_blobs

    n_samples = case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)
    X, _ = make_blobs(n_samples, case.n_features, case.n_components, random_state=settings.seed)
    repeats = max(1, min(settings.repeats, 3))
    section = report.section(
        "The whole default fit, initialisation included",
        "What a new user runs on both sides: `GaussianMixture(k, covariance_type=t, random_state=seed).fit(X)` "
        "(k-means initialisation, tol 1e-3, one start) on blobs. Seconds for the whole fit, the median of "
        f"{repeats} repeats alternating the two. **init s**: fastem's initialisation alone (k-means on a seeded "
        "sample of the rows and the start's statistics, then the first M-step), timed apart, the median of as many "
        "repeats; **init share**: that over fastem's whole fit (target <= 25%). **final lower bound**: mean "
        "log-likelihood per row at the end of each fit; **rel. diff** = (fastem - scikit-learn) / |scikit-learn| "
        "(target >= -1e-6). Target speed-up >= 20x.",
        ["case", "type", "fastem s", "init s", "init share", "sklearn s", "speed-up", "fastem iters",
         "sklearn iters", "fastem lower bound", "sklearn lower bound", "rel. diff"],
    )
    for covariance_type in _TYPES:
        _log(f"{case.name} {covariance_type}: compiling (a small fit)")
        _fit(GaussianMixture, X[:5000], case.n_components, covariance_type, settings.seed)
        classes = {"fastem": GaussianMixture, "sklearn": SklearnGaussianMixture}
        seconds, models = time_calls_alternating(
            {label: (lambda cls=cls: _fit(cls, X, case.n_components, covariance_type, settings.seed))
             for label, cls in classes.items()},
            repeats, f"{case.name} {covariance_type} fit",
        )
        init_s = float(np.median([
            _initialisation_seconds(X, case.n_components, covariance_type, settings.seed) for _ in range(repeats)
        ]))
        ours, theirs = models["fastem"], models["sklearn"]
        fastem_s, sklearn_s = seconds["fastem"], seconds["sklearn"]
        relative = (ours.lower_bound_ - theirs.lower_bound_) / abs(theirs.lower_bound_)
        section.rows.append([
            f"{n_samples:,} x {case.n_features}, k={case.n_components}", covariance_type,
            f"{fastem_s:.3f}", f"{init_s:.3f}", f"{100 * init_s / fastem_s:.0f}%", f"{sklearn_s:.3g}",
            _times(sklearn_s / fastem_s), str(ours.n_iter_), str(theirs.n_iter_),
            f"{ours.lower_bound_:.8f}", f"{theirs.lower_bound_:.8f}", f"{relative:+.1e}",
        ])
