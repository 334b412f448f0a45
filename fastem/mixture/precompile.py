"""The kernel specialisations a Gaussian mixture fit needs, for compiling them ahead of time.

A fit compiles its kernels for its dtype and covariance type and, for full
covariances, for its feature-count variant (see ``steps.full_variant``):
the generated loops of 2 to 8 features each have their own specialisation,
every other count below ``BLAS_MIN_FEATURES`` shares the general loops, and
from ``BLAS_MIN_FEATURES`` up (with threadpoolctl) the BLAS path is another.
The other covariance types compile once per dtype, whatever the feature count.
The kernels for data with missing values serve every covariance type and
feature count: they compile once per dtype.
``python -m fastem compile`` runs one tiny fit per specialisation, which
stores every kernel that fit and its inference methods need in Numba's cache.
"""

from __future__ import annotations

import warnings

import numpy as np

from fastem.exceptions import ConvergenceWarning
from fastem.mixture.parameters import COVARIANCE_TYPES
from fastem.mixture.steps import full_variant
from fastem.mixture._unrolled_full import MAX_UNROLLED_FEATURES

DTYPES = ("float64", "float32")
# The feature counts compiled by default: every generated variant and the
# general loops (1, and 9 up to BLAS_MIN_FEATURES - 1). The BLAS variant is
# compiled when a count of BLAS_MIN_FEATURES or more is asked for.
DEFAULT_FEATURES = tuple(range(1, MAX_UNROLLED_FEATURES + 2))


def variant_label(covariance_type: str, n_features: int) -> str:
    """The feature counts that share the specialisation compiled for ``n_features``."""
    if covariance_type != "full":
        return "any number of features"
    use_blas, unrolled = full_variant(n_features)
    if use_blas:
        return f"{n_features} or more features (BLAS)"
    if unrolled:
        return f"{unrolled} features"
    return f"1 or {MAX_UNROLLED_FEATURES + 1}+ features (general loops)"


def specialisations(dtypes=DTYPES, covariance_types=COVARIANCE_TYPES, features=DEFAULT_FEATURES) -> list:
    """``(dtype, covariance_type, n_features)`` for each distinct specialisation, in a stable order."""
    chosen = []
    seen = set()
    for dtype in dtypes:
        for covariance_type in covariance_types:
            for n_features in sorted(features):
                key = (dtype, covariance_type, full_variant(n_features) if covariance_type == "full" else None)
                if key not in seen:
                    seen.add(key)
                    chosen.append((dtype, covariance_type, n_features))
    return chosen


def _tiny_fit(dtype: str, covariance_type: str, n_features: int) -> None:
    """Fit and query a small model: runs every kernel that this specialisation's fits use."""
    from fastem.mixture.estimator import GaussianMixture

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, n_features)).astype(dtype)
    X[::2] += 3.0  # two groups, so k-means and EM have something to separate
    model = GaussianMixture(2, covariance_type=covariance_type, max_iter=2, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # two iterations are enough to compile
        model.fit(X, sample_weight=np.ones(len(X)))
    model.predict_proba(X)
    model.score_samples(X)
    model.predict(X)
    model.icl(X)  # the log-probability matrix: icl, GaussianMixtureIC, the HMM's emissions


def _tiny_fit_with_missing_values(dtype: str) -> None:
    """Fit, query and impute a small model on data with NaN: the missing-value kernels of ``dtype``."""
    from fastem.mixture.estimator import GaussianMixture

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3)).astype(dtype)
    X[::2] += 3.0
    X[rng.random(X.shape) < 0.2] = np.nan
    X[0] = 0.0  # every column observed somewhere
    model = GaussianMixture(2, covariance_type="diag", max_iter=2, tol=0.0, init_params="random", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    model.predict_proba(X)
    model.impute(X)
    model.impute(X, method="sample", random_state=0)


def compile_tasks(dtypes=DTYPES, covariance_types=COVARIANCE_TYPES, features=DEFAULT_FEATURES) -> list:
    """``(label, function)`` per specialisation, for ``fastem._core.compilation.compile_ahead``."""
    tasks = []
    for dtype, covariance_type, n_features in specialisations(dtypes, covariance_types, features):
        label = f"GaussianMixture {covariance_type}, {dtype}, {variant_label(covariance_type, n_features)}"
        tasks.append((label, lambda d=dtype, c=covariance_type, f=n_features: _tiny_fit(d, c, f)))
    if "full" in covariance_types:
        # mclust's EVE and VVE run on the full kernels plus one M-step helper of their own.
        tasks.append(("mclust's EVE and VVE M-step (any dtype and number of features)", _tiny_common_orientation))
    return tasks


def _tiny_common_orientation() -> None:
    from fastem.mixture.constrained_mstep import constrained_covariances

    rng = np.random.default_rng(0)
    factors = rng.normal(size=(2, 3, 3))
    constrained_covariances("EVE", np.array([10.0, 20.0]), factors @ factors.transpose(0, 2, 1) + np.eye(3))


def missing_value_compile_tasks(dtypes=DTYPES) -> list:
    """``(label, function)`` per dtype for the kernels of data with missing values (every covariance type)."""
    return [(f"GaussianMixture with missing values (NaN), {dtype}, any covariance type and number of features",
             lambda d=dtype: _tiny_fit_with_missing_values(d)) for dtype in dtypes]
