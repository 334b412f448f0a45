"""M-steps of mclust's constrained covariance models (see ``covariance_models``).

Each function maximises the expected complete-data log-likelihood over the
covariances of one model,

    maximise  -1/2 sum_k [ n_k log|Sigma_k| + tr(W_k Sigma_k^-1) ],

given the component weights ``n_k`` and the within-component scatter
matrices ``W_k = n_k S_k``, where ``S_k`` are the unconstrained (VVV or VVI)
covariances, ``reg_covar`` included. The means and mixing weights are those
of every model. The inputs are k matrices of d x d, no data.

Closed forms (Celeux & Govaert 1995) here: EII, EEI, EVI, EEV, EVV (VII,
VVI, EEE and VVV are scikit-learn's four, in ``steps``). Iterative: VEI, VEE
and VEV alternate the volumes and the shared part, each step a closed form
(Celeux & Govaert); EVE and VVE alternate the diagonals and one shared
orientation, updated by sweeps of plane rotations (Flury-type, compiled in
``_orientation_kernel``). Every step increases the objective; the iterations
stop when it changes by less than ``TOLERANCE`` (relative; mclust's inner
tolerance, sqrt(machine epsilon), stopped 1e-8 to 4e-7 short of the optimum
in our tests), or after ``MAX_ITERATIONS``.
"""

from __future__ import annotations

import numpy as np

from fastem.mixture._orientation_kernel import orientation_sweeps
from fastem.mixture.covariance_models import mclust_name

TOLERANCE = 1e-12
MAX_ITERATIONS = 1000


def constrained_covariances(covariance_type: str, resp_sum: np.ndarray, covariances: np.ndarray) -> np.ndarray:
    """The constrained model's covariances, in its kernel layout's shape.

    Parameters
    ----------
    covariance_type : str
        A constrained model (``covariance_models.is_constrained``).
    resp_sum : ndarray of shape (n_components,)
        The components' weights ``n_k`` (positive).
    covariances : ndarray
        The unconstrained covariances ``S_k`` in the model's layout:
        (n_components,) for EII, (n_components, n_features) for the diagonal
        models, (n_components, n_features, n_features) for the others.
    """
    name = mclust_name(covariance_type)
    weights = np.asarray(resp_sum, dtype=np.float64)
    if name == "EII":
        return np.full_like(covariances, weights @ covariances / weights.sum())
    if name[2] == "I":
        return _DIAGONAL[name](weights, weights[:, None] * covariances)
    return _ELLIPSOIDAL[name](weights, weights[:, None, None] * covariances)


###############################################################################
# Helpers


def _log_geometric_mean(values: np.ndarray) -> np.ndarray:
    """log of the geometric mean along the last axis (log |B|^(1/d) for a diagonal B)."""
    return np.log(values).mean(axis=-1)


def _converged(previous: float, current: float) -> bool:
    return abs(current - previous) <= TOLERANCE * (1.0 + abs(current))


def _descending_eigen(scatter: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (k, d) in decreasing order and the matching eigenvectors (k, d, d) as columns."""
    values, vectors = np.linalg.eigh(scatter)
    return values[..., ::-1], vectors[..., ::-1]


def _from_eigen(values: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """V diag(values) V^T per component, made exactly symmetric."""
    matrices = (vectors * values[..., None, :]) @ np.swapaxes(vectors, -1, -2)
    return 0.5 * (matrices + np.swapaxes(matrices, -1, -2))


###############################################################################
# Diagonal models: B_k = diag(W_k), (k, d)


def _eei(weights, scatter):
    return np.broadcast_to(scatter.sum(axis=0) / weights.sum(), scatter.shape).copy()


def _evi(weights, scatter):
    # A_k = B_k / |B_k|^(1/d), lambda = sum_k |B_k|^(1/d) / n.
    log_volume = _log_geometric_mean(scatter)
    volume = np.exp(log_volume).sum() / weights.sum()
    return volume * scatter / np.exp(log_volume)[:, None]


def _vei(weights, scatter):
    # Alternate A = (sum_k B_k / lambda_k) / |.|^(1/d) and lambda_k = tr(B_k A^-1) / (d n_k).
    n_features = scatter.shape[1]
    volumes = scatter.sum(axis=1) / (n_features * weights)
    objective = np.inf
    for _ in range(MAX_ITERATIONS):
        pooled = (scatter / volumes[:, None]).sum(axis=0)
        shape = pooled / np.exp(_log_geometric_mean(pooled))
        volumes = (scatter / shape).sum(axis=1) / (n_features * weights)
        previous, objective = objective, float(n_features * weights @ np.log(volumes))
        if _converged(previous, objective):
            break
    return volumes[:, None] * shape


_DIAGONAL = {"EEI": _eei, "EVI": _evi, "VEI": _vei}

###############################################################################
# Ellipsoidal models: W_k, (k, d, d)


def _eev(weights, scatter):
    # D_k from W_k's eigenvectors, A lambda = (sum_k Omega_k) / n with Omega_k W_k's eigenvalues.
    values, vectors = _descending_eigen(scatter)
    return _from_eigen(np.broadcast_to(values.sum(axis=0) / weights.sum(), values.shape), vectors)


def _evv(weights, scatter):
    # C_k = W_k / |W_k|^(1/d), lambda = sum_k |W_k|^(1/d) / n.
    log_volume = _log_geometric_mean(np.linalg.eigvalsh(scatter))
    volume = np.exp(log_volume).sum() / weights.sum()
    return volume * scatter / np.exp(log_volume)[:, None, None]


def _vev(weights, scatter):
    # D_k from W_k's eigenvectors; alternate the shared shape and the volumes on the eigenvalues.
    values, vectors = _descending_eigen(scatter)
    return _from_eigen(_vei(weights, values), vectors)


def _vee(weights, scatter):
    # Alternate C = (sum_k W_k / lambda_k) / |.|^(1/d) and lambda_k = tr(W_k C^-1) / (d n_k).
    n_features = scatter.shape[1]
    volumes = np.trace(scatter, axis1=1, axis2=2) / (n_features * weights)
    objective = np.inf
    for _ in range(MAX_ITERATIONS):
        pooled = (scatter / volumes[:, None, None]).sum(axis=0)
        shared = pooled / np.exp(_log_geometric_mean(np.linalg.eigvalsh(pooled)))
        inverse = np.linalg.inv(shared)
        volumes = np.einsum("kij,ji->k", scatter, inverse) / (n_features * weights)
        previous, objective = objective, float(n_features * weights @ np.log(volumes))
        if _converged(previous, objective):
            break
    return volumes[:, None, None] * shared


def _common_orientation(weights, scatter, equal_volume: bool):
    """EVE (``equal_volume``) and VVE: one orientation D, a diagonal Lambda_k per component.

    For fixed D, Lambda_k has a closed form from B_k = diag(D^T W_k D): B_k / n_k
    (VVE), or lambda A_k with A_k = B_k / |B_k|^(1/d) and lambda = sum_k
    |B_k|^(1/d) / n (EVE). For fixed Lambda_k, D minimises
    sum_k tr(Lambda_k^-1 D^T W_k D) over orthogonal matrices by sweeps of plane
    rotations (Flury & Gautschi's approach to common principal components):
    rotating columns i and j by an angle t changes that sum by
    A cos 2t + B sin 2t + constant, whose minimum has a closed form. Each step
    lowers the objective. The objective can have several local minima in D, so
    D starts from the eigenvectors of sum_k W_k and from those of each W_k, and
    the best end is kept.
    (The majorise-minimise update of Browne & McNicholas (2014) also lowers
    it, but it took hundreds of slow steps where a sweep takes a few.)
    """
    starts = _descending_eigen(np.concatenate([scatter.sum(axis=0)[None], scatter]))[1]
    best = None
    for start in starts:
        objective, diagonal, orientation = _orientation_from(start.copy(), weights, scatter, equal_volume)
        if best is None or objective < best[0]:
            best = (objective, diagonal, orientation)
    _, diagonal, orientation = best
    return _from_eigen(diagonal, np.broadcast_to(orientation, scatter.shape))


def _orientation_from(orientation, weights, scatter, equal_volume: bool) -> tuple:
    """Alternate the diagonals and rotation sweeps from ``orientation``: (objective, Lambda_k, D)."""
    rotated = np.ascontiguousarray(orientation.T @ scatter @ orientation)  # D^T W_k D
    orientation = np.ascontiguousarray(orientation)
    diagonal = np.empty(scatter.shape[:2])
    objective = orientation_sweeps(orientation, rotated, np.ascontiguousarray(weights, dtype=np.float64),
                                   bool(equal_volume), TOLERANCE, MAX_ITERATIONS, diagonal)
    return float(objective), diagonal, orientation


def _eve(weights, scatter):
    return _common_orientation(weights, scatter, equal_volume=True)


def _vve(weights, scatter):
    return _common_orientation(weights, scatter, equal_volume=False)


_ELLIPSOIDAL = {"VEE": _vee, "EVE": _eve, "VVE": _vve, "EEV": _eev, "VEV": _vev, "EVV": _evv}
