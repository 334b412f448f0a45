"""Checks of a fitted mixture that EM itself cannot see: duplicated components, singular components.

EM stops where the likelihood is flat, and that is not always a maximum. A
symmetric start (``init_params='random'`` gives every component nearly the
same responsibilities) can stop at a saddle point where two or more
components are copies of each other; the fit then "converges" with fewer
distinct components than asked for. A component that collapses onto a point
or a line has an unbounded likelihood that only ``reg_covar`` keeps finite;
model selection must not reward it.
"""

from __future__ import annotations

import numpy as np

from fastem.exceptions import ConvergenceWarning, compatible, warn_at_caller

#: Two components are near-duplicates when their means are closer than this
#: many standard deviations (Mahalanobis distance under the pair's average
#: covariance) and their covariances differ by less than this fraction (of
#: their largest entry). Components that close describe the same data.
DUPLICATE_TOLERANCE = 0.1

#: A component is singular when its smallest covariance eigenvalue, less
#: reg_covar, is at most this fraction of its largest one, or at most
#: reg_covar itself (then reg_covar, not the data, holds it up: a component
#: on a line with a trickle of responsibility from other rows passed the
#: relative test alone).
SINGULAR_RCOND = 1e-8


def full_covariance_matrices(covariances, layout: str, n_components: int, n_features: int) -> np.ndarray:
    """Covariances of any kernel layout as (n_components, n_features, n_features) float64 matrices."""
    covariances = np.asarray(covariances, dtype=np.float64)
    if layout == "full":
        return covariances
    if layout == "tied":
        return np.broadcast_to(covariances, (n_components, n_features, n_features))
    diagonals = covariances if layout == "diag" else np.repeat(covariances[:, None], n_features, axis=1)
    return diagonals[:, :, None] * np.eye(n_features)


def near_duplicate_pairs(means, covariances, tolerance: float = DUPLICATE_TOLERANCE) -> list:
    """Pairs (i, j), i < j, of components whose means and covariances agree within ``tolerance``.

    ``covariances`` are full matrices (k, d, d). The means are compared in the
    metric of the pair's average covariance (a Mahalanobis distance), so the
    test does not depend on the data's units.
    """
    means = np.asarray(means, dtype=np.float64)
    pairs = []
    # Largest entries rather than Frobenius norms, whose squares overflow for data near 1e150;
    # anything not finite is simply not a duplicate.
    with np.errstate(all="ignore"):
        for i in range(len(means)):
            for j in range(i + 1, len(means)):
                pooled = 0.5 * (covariances[i] + covariances[j])
                difference = means[i] - means[j]
                try:
                    distance = float(np.sqrt(difference @ np.linalg.solve(pooled, difference)))
                except np.linalg.LinAlgError:
                    continue
                scale = max(np.abs(covariances[i]).max(), np.abs(covariances[j]).max())
                spread = float(np.abs(covariances[i] - covariances[j]).max() / scale) if scale > 0 else 0.0
                if distance < tolerance and spread < tolerance:
                    pairs.append((i, j))
    return pairs


def warn_if_near_duplicates(model, layout: str) -> None:
    """Warn (ConvergenceWarning) when a converged fit has near-duplicate components, with advice."""
    k, d = model.means_.shape
    if k < 2 or not model.converged_:
        return
    full = full_covariance_matrices(model.covariances_, layout, k, d)
    pairs = near_duplicate_pairs(model.means_, full)
    if not pairs:
        return
    listed = ", ".join(f"{i} and {j}" for i, j in pairs[:5]) + (" ..." if len(pairs) > 5 else "")
    warn_at_caller(
        f"EM converged with near-duplicate components ({listed}): their means agree within "
        f"{DUPLICATE_TOLERANCE:g} standard deviations and their covariances within {DUPLICATE_TOLERANCE:.0%}, "
        "so they are two copies of one component. Either EM stopped at a saddle point, which a symmetric start "
        f"such as init_params='random' often reaches (this fit used init_params={model.init_params!r}), or the "
        "data hold fewer clusters than n_components. Try init_params='kmeans' or 'k-means++', a larger n_init, "
        "or fewer components; fastem.GaussianMixtureIC compares several starts and component counts.",
        compatible(ConvergenceWarning),
    )


def singular_components(covariances, layout: str, n_components: int, n_features: int, reg_covar: float) -> np.ndarray:
    """Indices of components whose covariance, without reg_covar, is singular (see ``SINGULAR_RCOND``)."""
    full = full_covariance_matrices(covariances, layout, n_components, n_features)
    eigenvalues = np.linalg.eigvalsh(full)
    largest = eigenvalues[:, -1]
    floor = np.maximum(SINGULAR_RCOND * largest, reg_covar)
    return np.flatnonzero(~(eigenvalues[:, 0] - reg_covar > floor))
