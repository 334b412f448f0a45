"""One fit by fastem, scikit-learn or the naive EM from a given start, and how far two fits differ.

scikit-learn is imported inside :func:`fit`, so importing this module never
imports it. Shared with the asv suite in ``asv_bench/``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

import fastem
from fastem import reference
from fastem.bench.cases import InitialParameters
from fastem.exceptions import ConvergenceWarning


IMPLEMENTATIONS = ("fastem", "sklearn", "naive")


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
