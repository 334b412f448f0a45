"""The model-selection case: a whole BIC sweep against the same sweep written as a loop of scikit-learn fits.

``selection_100000_d8``: blobs of 1e5 x 8 (five clusters), n_components 1..9
x scikit-learn's four covariance types (36 cells). fastem runs one
``GaussianMixtureIC(9, random_state=seed).fit(X)`` (five starts per cell,
short runs on a 20,000-row subsample, the best continued to mclust's relative tol 1e-5); scikit-learn runs what a user
writes: ``GaussianMixture(k, covariance_type=t, random_state=seed).fit(X)``
and ``bic(X)`` for every cell (one k-means start, tol 1e-3). Whole-sweep
seconds, the median of repeats that alternate the two; then each cell's
log-likelihood, fastem's minus scikit-learn's, and the models each sweep
chooses. The target: at least 10x faster with equal or better
log-likelihoods cell by cell.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

import fastem
from fastem.bench.cases import Settings
from fastem.bench.report import Report, _log, _times
from fastem.bench.timing import time_calls_alternating


@dataclass(frozen=True)
class SelectionCase:
    name: str
    n_samples: int
    n_features: int
    n_clusters: int
    max_components: int
    target: float = 10.0
    kind: str = "selection"


SELECTION_CASES = {
    case.name: case for case in [SelectionCase("selection_100000_d8", 100_000, 8, 5, 9)]
}

_TYPES = ("full", "tied", "diag", "spherical")


def _fastem_sweep(case: SelectionCase, X, seed: int) -> dict:
    ic = fastem.GaussianMixtureIC(case.max_components, covariance_type="all", random_state=seed).fit(X)
    table = ic.results_
    cells = {(t, int(k)): ll for t, k, ll in zip(table["covariance_type"], table["n_components"], table["log_likelihood"])}
    return {"cells": cells, "chosen": (ic.covariance_type_, ic.n_components_)}


def _sklearn_sweep(case: SelectionCase, X, seed: int) -> dict:
    from sklearn.mixture import GaussianMixture

    cells, best = {}, None
    for covariance_type in _TYPES:
        for k in range(1, case.max_components + 1):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = GaussianMixture(k, covariance_type=covariance_type, random_state=seed).fit(X)
            cells[(covariance_type, k)] = float(model.score(X) * X.shape[0])
            bic = model.bic(X)
            if best is None or bic < best[0]:
                best = (bic, (covariance_type, k))
    return {"cells": cells, "chosen": best[1]}


def run_selection_case(case: SelectionCase, settings: Settings, report: Report) -> None:
    """Whole-sweep seconds of both, alternating, and the cell-by-cell log-likelihoods."""
    from fastem.datasets import make_blobs

    n_samples = case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)
    X, _ = make_blobs(n_samples, case.n_features, case.n_clusters, random_state=settings.seed)
    repeats = max(1, min(settings.repeats, 3))
    _log(f"{case.name}: compiling (one small sweep)")
    _fastem_sweep(case, X[:2000], settings.seed)
    runs = {"fastem": _fastem_sweep, "sklearn": _sklearn_sweep}
    seconds, results = time_calls_alternating(
        {label: (lambda run=run: run(case, X, settings.seed)) for label, run in runs.items()}, repeats,
        f"{case.name} sweep",
    )
    ours, theirs = results["fastem"]["cells"], results["sklearn"]["cells"]
    differences = np.array([ours[cell] - theirs[cell] for cell in theirs if np.isfinite(ours[cell])])
    failed = sum(not np.isfinite(ours[cell]) for cell in theirs)
    tolerance = 1e-6 * np.abs(np.array(list(theirs.values()))).max()
    fastem_s, sklearn_s = seconds["fastem"], seconds["sklearn"]
    section = report.section(
        "Model selection: a whole BIC sweep",
        "The sweep n_components 1..9 x scikit-learn's four covariance types (36 cells) on blobs. **fastem**: one "
        "`GaussianMixtureIC(9, random_state=seed).fit(X)` (five starts per cell shared across the covariance types: a "
        "Ward tree, k-means runs and k-means++ seedings on a 20,000-row subsample; ten EM iterations from each "
        "there, the best continued to convergence there and then on all rows, to mclust's relative tol 1e-5). **scikit-learn**: the loop a user writes, `GaussianMixture(k, covariance_type"
        "=t, random_state=seed).fit(X)` then `bic(X)` per cell (one k-means start, tol 1e-3). Seconds for the whole "
        f"sweep, the median of {repeats} repeats alternating the two. **cells >=**: cells where fastem's total "
        "log-likelihood is at least scikit-learn's (to 1e-6 of the largest magnitude); **worst / best diff**: the "
        "smallest and largest (fastem - scikit-learn) total log-likelihood; failed cells are singular fits "
        "fastem refuses to rank (NaN in its table).",
        ["case", "fastem s", "sklearn s", "speed-up", "target", "cells >=", "worst diff", "best diff",
         "fastem failed cells", "fastem chooses", "sklearn chooses"],
    )
    speed_up = sklearn_s / fastem_s
    section.rows.append([
        f"{n_samples:,} x {case.n_features}, {case.n_clusters} blobs, k 1..{case.max_components} x 4 types",
        f"{fastem_s:.2f}", f"{sklearn_s:.2f}", _times(speed_up), f">= {case.target:g}x",
        f"{int((differences >= -tolerance).sum())} of {len(theirs)}",
        f"{differences.min():.3g}", f"{differences.max():.3g}", str(failed),
        "{} k={}".format(*results["fastem"]["chosen"]), "{} k={}".format(*results["sklearn"]["chosen"]),
    ])
