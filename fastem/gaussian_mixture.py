"""Gaussian mixture model fitted by EM on additive sufficient statistics.

The module is pure functions in labelled sections, then a thin estimator:

1. containers for parameters and statistics
2. checks of user-supplied initial parameters
3. precision Cholesky factors and log-determinants
4. the E-step (dispatch to the Numba kernels) and log-probabilities
5. the M-step: statistics -> parameters, no data involved
6. initialisation
7. the ``GaussianMixture`` estimator

Conventions follow scikit-learn: ``precisions_cholesky_`` are upper-triangular
``P`` with ``P P^T = precision``, so ``log N(x | mu, Sigma) = -d/2 log 2pi +
log det P - |(x - mu) P|^2 / 2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from fastem import _gaussian_kernels as kernels
from fastem._base import EstimatorBase
from fastem._em import run_em
from fastem._kmeans import kmeans, kmeans_plusplus
from fastem._model_io import load_model, save_model
from fastem._numba import BLAS_MIN_FEATURES, blas_pinning_available, numba_threads, resolve_n_jobs
from fastem._validation import (
    check_choice,
    check_data,
    check_init_array,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
)

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")
_LOG_2PI = math.log(2.0 * math.pi)

# Rows per NumPy batch when building random initial responsibilities: bounds
# the memory of that batch to INIT_BATCH_ROWS * n_components floats.
_INIT_BATCH_ROWS = 65536

###############################################################################
# 1. Containers


@dataclass
class GaussianParams:
    """Mixture parameters; shapes of ``covariances``/``precisions_cholesky`` depend on the type.

    full: (k, d, d); tied: (d, d); diag: (k, d); spherical: (k,)
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray


@dataclass
class GaussianStats:
    """Weighted sufficient statistics of a set of rows, centred per component at ``shift``.

    resp_sum[j] = sum_i w_i r_ij
    first[j]    = sum_i w_i r_ij (x_i - shift_j)
    second      = full: (k, d, d) sum_i w_i r_ij (x_i - shift_j)(x_i - shift_j)^T;
                  tied: (d, d), that sum over j; diag/spherical: (k, d), its diagonal
    log_likelihood = sum_i w_i log p(x_i);  weight_total = sum_i w_i
    """

    resp_sum: np.ndarray
    first: np.ndarray
    second: np.ndarray
    shift: np.ndarray
    log_likelihood: float
    weight_total: float

    @property
    def mean_log_likelihood(self) -> float:
        return self.log_likelihood / self.weight_total


###############################################################################
# 2. Checks of user-supplied initial parameters


def check_weights_init(weights, n_components: int) -> np.ndarray:
    """Validated float64 copy of ``weights_init``: shape (n_components,), in [0, 1], summing to 1."""
    weights = check_init_array(weights, "weights_init", (n_components,))
    if (weights < 0).any() or (weights > 1).any():
        raise ValueError(
            f"The parameter 'weights_init' should be in the range [0, 1], but got min value "
            f"{weights.min():.5f}, max value {weights.max():.5f}."
        )
    if not abs(1.0 - weights.sum()) <= 1e-6:
        raise ValueError(f"The parameter 'weights_init' should be normalized, but got sum(weights) = {weights.sum():.8f}.")
    return weights


def check_means_init(means, n_components: int, n_features: int, dtype=np.float64) -> np.ndarray:
    """Validated float64 copy of ``means_init``; with float32 data the means must fit in float32."""
    means = check_init_array(means, "means_init", (n_components, n_features))
    if np.dtype(dtype) == np.float32 and (np.abs(means) > _FLOAT32.max).any():
        component = int(np.flatnonzero((np.abs(means) > _FLOAT32.max).any(axis=1))[0])
        raise ValueError(
            f"means_init (component {component}) has values beyond the float32 range (|x| <= {_FLOAT32.max:.3g}) "
            "and the data are float32. Pass float64 data or rescale."
        )
    return means


def precisions_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def check_precisions_init(
    precisions, covariance_type: str, n_components: int, n_features: int, dtype=np.float64
) -> np.ndarray:
    """Validated float64 copy of ``precisions_init``.

    Checks the shape, finiteness, symmetry and positive-definiteness (a
    Cholesky factorisation must succeed; the error names the component), and,
    for float32 data, that the precisions, their Cholesky factors and the
    covariances they imply fit in float32 (the kernels compute in the data
    dtype, so anything else would silently become inf or 0 there).
    """
    shape = precisions_shape(covariance_type, n_components, n_features)
    precisions = check_init_array(precisions, "precisions_init", shape)
    if covariance_type in ("diag", "spherical"):
        bad = np.flatnonzero(~(precisions > 0).reshape(n_components, -1).all(axis=1))
        if bad.size:
            raise ValueError(
                f"precisions_init for covariance_type={covariance_type!r} must be positive, but component "
                f"{int(bad[0])} has a value <= 0."
            )
    else:
        matrices = precisions if covariance_type == "full" else precisions[None]
        for j, matrix in enumerate(matrices):
            where = f" (component {j})" if covariance_type == "full" else ""
            # atol relative to the matrix's scale, so that tiny precisions are
            # not declared symmetric merely for being small.
            if not np.allclose(matrix, matrix.T, rtol=1e-5, atol=1e-8 * np.abs(matrix).max()):
                raise ValueError(f"precisions_init{where} must be symmetric.")
            try:
                # The factorisation precision_cholesky_from_precisions will do.
                np.linalg.cholesky(matrix[::-1, ::-1])
            except np.linalg.LinAlgError:
                smallest = np.linalg.eigvalsh(matrix).min()
                raise ValueError(
                    f"precisions_init{where} must be positive-definite, but its smallest eigenvalue is {smallest:.6g}."
                ) from None
    if np.dtype(dtype) == np.float32:
        prec_chol = precision_cholesky_from_precisions(precisions, covariance_type)
        covariances = covariances_from_precisions(precisions, covariance_type)
        component = first_component_outside_float32(covariances, prec_chol, covariance_type)
        if component is not None:
            where = f" (component {component})" if covariance_type != "tied" else ""
            raise ValueError(
                f"precisions_init{where} is outside the range float32 data can use: its entries, Cholesky "
                f"factor and inverse must lie within {_FLOAT32.tiny:.3g} .. {_FLOAT32.max:.3g} in magnitude. "
                "Pass float64 data or rescale."
            )
    return precisions


###############################################################################
# 3. Precision Cholesky factors and log-determinants

_FLOAT32 = np.finfo(np.float32)


def _ill_defined_message(component, covariance_type: str, float32: bool) -> str:
    which = (
        "the shared (tied) empirical covariance is ill-defined"
        if covariance_type == "tied"
        else f"component {component} has an ill-defined empirical covariance"
    )
    message = (
        f"Fitting the mixture model failed because {which} "
        "(not positive-definite, for instance caused by singleton or collapsed samples). Try to "
        "increase reg_covar, decrease the number of components, or scale the input data."
    )
    if float32:
        message += " The numerical accuracy can also be improved by passing float64 data instead of float32."
    return message


def _overflow_message(component, covariance_type: str) -> str:
    which = "the shared (tied) covariance" if covariance_type == "tied" else f"the covariance of component {component}"
    return (
        f"Fitting the mixture model failed because {which} is not finite: the squared deviations of the "
        "data overflow float64. Scale the input data."
    )


def _per_component(array: np.ndarray, covariance_type: str) -> np.ndarray:
    """Rows of entries, one row per component (one row in all for 'tied')."""
    if covariance_type == "tied":
        return array.reshape(1, -1)
    return array.reshape(array.shape[0], -1)


def _diagonals(array: np.ndarray, covariance_type: str) -> np.ndarray:
    """Diagonal entries of each component's matrix, one row per component."""
    if covariance_type == "full":
        return np.diagonal(array, axis1=1, axis2=2)
    if covariance_type == "tied":
        return np.diag(array)[None]
    if covariance_type == "diag":
        return array
    return array[:, None]


def first_component_outside_float32(covariances, prec_chol, covariance_type: str):
    """Index of the first component whose parameters float32 cannot hold, or None.

    float32 data keep float32 parameters, and the kernels compute in float32: a
    covariance, precision or Cholesky factor entry beyond float32's largest
    value would become inf there (and inf * 0 = NaN), and a diagonal entry
    below its smallest normal value would become 0 or lose all precision.
    For 'tied' the index is 0.
    """
    precisions = precisions_from_cholesky(prec_chol, covariance_type)
    bad = np.zeros(_per_component(covariances, covariance_type).shape[0], dtype=bool)
    for array in (covariances, prec_chol, precisions):
        bad |= (np.abs(_per_component(array, covariance_type)) > _FLOAT32.max).any(axis=1)
        bad |= (_diagonals(array, covariance_type) < _FLOAT32.tiny).any(axis=1)
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def _first_not_positive_definite(matrices: np.ndarray) -> int:
    """Index of the first matrix whose Cholesky factorisation fails or has a non-positive diagonal."""
    for j, matrix in enumerate(matrices):
        try:
            lower = np.linalg.cholesky(matrix)
        except np.linalg.LinAlgError:
            return j
        if not (np.isfinite(lower).all() and (np.diag(lower) > 0).all()):
            return j
    return 0


def precision_cholesky(covariances: np.ndarray, covariance_type: str, float32: bool = False) -> np.ndarray:
    """Upper-triangular P with P P^T = inverse(covariance), per component.

    Raises a ValueError naming the component when a covariance is not finite
    and positive-definite, or (``float32``) when float32 cannot hold its
    parameters.
    """
    if covariance_type in ("diag", "spherical"):
        per_component = covariances.reshape(covariances.shape[0], -1)
        infinite = np.flatnonzero(~np.isfinite(per_component).all(axis=1))
        if infinite.size:
            raise ValueError(_overflow_message(int(infinite[0]), covariance_type))
        bad = np.flatnonzero(~(per_component > 0).all(axis=1))
        if bad.size:
            raise ValueError(_ill_defined_message(int(bad[0]), covariance_type, float32))
        factors = 1.0 / np.sqrt(covariances)
    else:
        matrices = covariances if covariance_type == "full" else covariances[None]
        finite = np.isfinite(matrices).reshape(matrices.shape[0], -1).all(axis=1)
        if not finite.all():
            raise ValueError(_overflow_message(int(np.flatnonzero(~finite)[0]), covariance_type))
        # One batched LAPACK call for all components: per-matrix calls through
        # scipy.linalg cost more than the whole E-step for small problems.
        try:
            lower = np.linalg.cholesky(matrices)
        except np.linalg.LinAlgError:
            lower = None
        diagonals = None if lower is None else np.diagonal(lower, axis1=1, axis2=2)
        if lower is None or not (np.isfinite(lower).all() and (diagonals > 0).all()):
            raise ValueError(_ill_defined_message(_first_not_positive_definite(matrices), covariance_type, float32))
        identity = np.broadcast_to(np.eye(matrices.shape[-1]), matrices.shape)
        # inverse(L)^T is upper triangular; the solver's rounding may leave tiny
        # values below the diagonal, which triu removes.
        factors = np.triu(np.swapaxes(np.linalg.solve(lower, identity), 1, 2))
        factors = factors if covariance_type == "full" else factors[0]
    if float32:
        component = first_component_outside_float32(covariances, factors, covariance_type)
        if component is not None:
            which = "the tied covariance" if covariance_type == "tied" else f"the covariance of component {component}"
            raise ValueError(
                f"Fitting the mixture model failed because {which} is outside the range float32 can hold "
                f"(variances and precisions must lie within {_FLOAT32.tiny:.3g} .. {_FLOAT32.max:.3g}). "
                "Pass float64 data, scale the input data, or increase reg_covar."
            )
    return factors


def precision_cholesky_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular P with P P^T = precision (a Cholesky factor of the flipped matrix, flipped back).

    ``precisions`` must be positive-definite (as :func:`check_precisions_init` ensures).
    """
    if covariance_type in ("diag", "spherical"):
        return np.sqrt(precisions)
    matrices = precisions if covariance_type == "full" else precisions[None]
    factors = np.stack([np.linalg.cholesky(m[::-1, ::-1])[::-1, ::-1] for m in matrices])
    return factors if covariance_type == "full" else factors[0]


def precisions_from_cholesky(prec_chol: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type == "full":
        return prec_chol @ np.swapaxes(prec_chol, 1, 2)
    if covariance_type == "tied":
        return prec_chol @ prec_chol.T
    return prec_chol**2


def covariances_from_precisions(precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("diag", "spherical"):
        return 1.0 / precisions
    return np.linalg.inv(precisions)


def log_det_cholesky(prec_chol: np.ndarray, covariance_type: str, n_features: int) -> np.ndarray:
    """log det P per component (= -1/2 log det Sigma)."""
    if covariance_type == "full":
        return np.log(np.diagonal(prec_chol, axis1=1, axis2=2)).sum(axis=1)
    if covariance_type == "tied":
        return np.log(np.diag(prec_chol)).sum()
    if covariance_type == "diag":
        return np.log(prec_chol).sum(axis=1)
    return n_features * np.log(prec_chol)


###############################################################################
# 4. E-step and log-probabilities (Numba kernels)


def _kernel_model(params: GaussianParams, covariance_type: str, dtype) -> tuple:
    """The tuple of arrays a kernel takes for ``params``, per-point arrays in ``dtype``."""
    means = np.ascontiguousarray(params.means, dtype=dtype)
    prec_chol = np.ascontiguousarray(params.precisions_cholesky, dtype=dtype)
    n_features = means.shape[1]
    with np.errstate(divide="ignore"):  # a zero weight is a component that can never win
        log_weights = np.log(params.weights.astype(np.float64))
    log_const = log_weights + log_det_cholesky(prec_chol.astype(np.float64), covariance_type, n_features)
    log_const = np.ascontiguousarray(log_const - 0.5 * n_features * _LOG_2PI, dtype=np.float64)
    if log_const.ndim == 0:
        log_const = np.full(means.shape[0], float(log_const))
    if covariance_type == "full":
        return (means, prec_chol, log_const)
    if covariance_type == "tied":
        # Centring at the mean of the means keeps x P and mean P small, so
        # their difference stays accurate for data far from the origin.
        centre = means.astype(np.float64).mean(axis=0).astype(dtype)
        means_proj = (means.astype(np.float64) - centre.astype(np.float64)) @ prec_chol.astype(np.float64)
        return (means, centre, np.ascontiguousarray(means_proj, dtype=dtype), prec_chol, log_const)
    if covariance_type == "spherical":
        prec_chol = np.ascontiguousarray(np.repeat(prec_chol[:, None], n_features, axis=1))
    return (means, prec_chol, log_const)


def _use_blas(n_features: int) -> bool:
    """Whether the full-covariance kernels take their BLAS path (see fastem._numba)."""
    return n_features >= BLAS_MIN_FEATURES and blas_pinning_available()


def _symmetrise(upper: np.ndarray) -> np.ndarray:
    """Fill the strict lower triangle(s) from the upper one(s)."""
    return upper + np.triu(upper, 1).swapaxes(-1, -2)


def estep(X: np.ndarray, sample_weight, params: GaussianParams, covariance_type: str) -> GaussianStats:
    """One pass over X: sufficient statistics under ``params``, centred at the current means.

    Parameters
    ----------
    X : ndarray (n_samples, n_features), float32 or float64, C-contiguous
    sample_weight : ndarray (n_samples,) float64, or None for unit weights
    params : GaussianParams
    covariance_type : str
    """
    n_features = X.shape[1]
    n_components = params.means.shape[0]
    weights = np.empty(0) if sample_weight is None else sample_weight
    model = _kernel_model(params, covariance_type, X.dtype)
    resp_sum = np.zeros(n_components)
    first = np.zeros((n_components, n_features))
    totals = np.zeros(2)
    shift = model[0].astype(np.float64)
    if covariance_type == "full":
        second = np.zeros((n_components, n_features, n_features))
        kernels.estep_full(X, weights, model, (resp_sum, first, second, totals), _use_blas(n_features))
        second = _symmetrise(second)
    elif covariance_type == "tied":
        within = np.zeros((n_features, n_features))
        spread = np.zeros((n_components, n_components))
        kernels.estep_tied(X, weights, model, (resp_sum, first, within, spread, totals))
        centred_shift = shift - model[1].astype(np.float64)
        second = _symmetrise(within) + centred_shift.T @ _symmetrise(spread) @ centred_shift
    else:
        second = np.zeros((n_components, n_features))
        kernels.estep_diag(X, weights, model, (resp_sum, first, second, totals))
    log_likelihood, weight_total = float(totals[0]), float(totals[1])
    if not np.isfinite(log_likelihood):
        raise ValueError(
            "The log-likelihood of the data is not finite: some rows have zero density under every "
            "component (extreme precisions, or data far outside the model). Scale the data, or "
            "increase reg_covar."
        )
    return GaussianStats(resp_sum, first, second, shift, log_likelihood, weight_total)


def weighted_log_prob(X: np.ndarray, params: GaussianParams, covariance_type: str) -> np.ndarray:
    """log w_j + log N(x_i | mean_j, Sigma_j) for every row and component, (n_samples, n_components)."""
    model = _kernel_model(params, covariance_type, X.dtype)
    out = np.empty((X.shape[0], params.means.shape[0]))
    if covariance_type == "full":
        kernels.weighted_log_prob_full(X, model, out, _use_blas(X.shape[1]))
    elif covariance_type == "tied":
        kernels.weighted_log_prob_tied(X, model, out)
    else:
        kernels.weighted_log_prob_diag(X, model, out)
    return out


###############################################################################
# 5. M-step: statistics -> parameters


def mstep(stats: GaussianStats, covariance_type: str, reg_covar: float, resp_eps: float, float32: bool = False) -> GaussianParams:
    """Maximise the expected complete-data log-likelihood given ``stats``.

    ``resp_eps`` (10 machine epsilons of the data dtype, as scikit-learn) is
    added to every ``resp_sum`` so a component with no responsibility keeps
    finite parameters: its mean stays at ``stats.shift`` (the previous mean),
    its covariance becomes ``reg_covar`` times the identity and its weight
    about ``resp_eps / weight_total``. This is the documented policy for empty
    components (see :class:`GaussianMixture`). A covariance that is not
    positive-definite, or statistics that overflowed, raise a ValueError
    naming the component.
    """
    resp_sum = stats.resp_sum + resp_eps
    # Overflow (data near 1e300) is detected right after, with an error that
    # names the component; numpy's warnings would only precede that error.
    with np.errstate(over="ignore", invalid="ignore"):
        delta = stats.first / resp_sum[:, None]  # mean - shift
        means = stats.shift + delta
        covariances = _covariances_from_stats(stats, resp_sum, delta, covariance_type, reg_covar)
    not_finite = np.flatnonzero(~np.isfinite(means).all(axis=1))
    if not_finite.size:
        raise ValueError(
            f"Fitting the mixture model failed because the mean of component {int(not_finite[0])} is not "
            "finite: its weighted sums overflowed. Scale the input data or the sample weights."
        )
    weights = resp_sum / resp_sum.sum()
    prec_chol = precision_cholesky(covariances, covariance_type, float32)
    return GaussianParams(weights, means, covariances, prec_chol)


def _covariances_from_stats(stats: GaussianStats, resp_sum, delta, covariance_type: str, reg_covar: float) -> np.ndarray:
    """Covariances about the new means: centred second moments minus delta delta^T, plus reg_covar."""
    n_features = delta.shape[1]
    if covariance_type == "full":
        covariances = stats.second / resp_sum[:, None, None] - delta[:, :, None] * delta[:, None, :]
        covariances[:, np.arange(n_features), np.arange(n_features)] += reg_covar
    elif covariance_type == "tied":
        between = (stats.first.T / resp_sum) @ stats.first
        covariances = (stats.second - between) / resp_sum.sum()
        covariances[np.arange(n_features), np.arange(n_features)] += reg_covar
    else:
        covariances = stats.second / resp_sum[:, None] - delta**2 + reg_covar
        if covariance_type == "spherical":
            covariances = covariances.mean(axis=1)
    return covariances


def _reduce_second(second_full: np.ndarray, covariance_type: str) -> np.ndarray:
    """Per-component full scatter matrices (k, d, d) -> the layout ``covariance_type`` keeps."""
    if covariance_type == "full":
        return second_full
    if covariance_type == "tied":
        return second_full.sum(axis=0)
    return np.diagonal(second_full, axis1=1, axis2=2).copy()


###############################################################################
# 6. Initialisation


def _stats_from_labels(X, sample_weight, labels, centres, covariance_type) -> GaussianStats:
    n_components, n_features = centres.shape
    resp_sum = np.zeros(n_components)
    first = np.zeros((n_components, n_features))
    second = np.zeros((n_components, n_features, n_features))
    weights = np.empty(0) if sample_weight is None else sample_weight
    shift = np.ascontiguousarray(centres, dtype=np.float64)
    kernels.label_stats(X, weights, labels, shift, (resp_sum, first, second))
    second = _reduce_second(_symmetrise(second), covariance_type)
    return GaussianStats(resp_sum, first, second, shift, 0.0, float(resp_sum.sum()))


def _stats_from_random_resp(X, sample_weight, n_components, covariance_type, random_state) -> GaussianStats:
    """Statistics of uniform random responsibilities, drawn in row batches.

    The batches consume the RandomState stream exactly as one
    ``uniform(size=(n_samples, n_components))`` call would (scikit-learn's
    ``init_params='random'``), without holding an n x k matrix.
    """
    n_samples, n_features = X.shape
    weights = np.ones(n_samples) if sample_weight is None else sample_weight
    shift_row = (weights @ X) / weights.sum()  # centre at the data mean
    resp_sum = np.zeros(n_components)
    first = np.zeros((n_components, n_features))
    second = np.zeros((n_components, n_features, n_features))
    for start in range(0, n_samples, _INIT_BATCH_ROWS):
        stop = min(start + _INIT_BATCH_ROWS, n_samples)
        resp = random_state.uniform(size=(stop - start, n_components))
        resp /= resp.sum(axis=1, keepdims=True)
        resp *= weights[start:stop, None]
        diff = X[start:stop].astype(np.float64) - shift_row
        resp_sum += resp.sum(axis=0)
        # Squares of data near 1e300 overflow; the M-step then reports the
        # component with a non-finite covariance, so numpy's warning is moot.
        with np.errstate(over="ignore", invalid="ignore"):
            first += resp.T @ diff
            for j in range(n_components):
                second[j] += (diff * resp[:, j, None]).T @ diff
    shift = np.repeat(shift_row[None], n_components, axis=0)
    second = _reduce_second(second, covariance_type)
    return GaussianStats(resp_sum, first, second, shift, 0.0, float(resp_sum.sum()))


def _stats_from_points(X, sample_weight, indices, covariance_type) -> GaussianStats:
    """Each component owns one data row entirely (random_from_data, k-means++)."""
    n_components = len(indices)
    n_features = X.shape[1]
    point_weights = np.ones(n_components) if sample_weight is None else sample_weight[indices]
    shift = X[indices].astype(np.float64)
    first = np.zeros((n_components, n_features))
    second = _reduce_second(np.zeros((n_components, n_features, n_features)), covariance_type)
    return GaussianStats(point_weights.copy(), first, second, shift, 0.0, float(point_weights.sum()))


def initial_stats(X, sample_weight, n_components, init_params, covariance_type, random_state) -> GaussianStats:
    """Responsibility statistics from the chosen initialisation method."""
    weights = np.empty(0) if sample_weight is None else sample_weight
    if init_params == "kmeans":
        centres, labels = kmeans(X, weights, n_components, random_state)
        return _stats_from_labels(X, sample_weight, labels, centres, covariance_type)
    if init_params == "random":
        return _stats_from_random_resp(X, sample_weight, n_components, covariance_type, random_state)
    if init_params == "random_from_data":
        n_samples = X.shape[0]
        if sample_weight is None:
            indices = random_state.choice(n_samples, size=n_components, replace=False)
        else:
            indices = random_state.choice(n_samples, size=n_components, replace=False, p=weights / weights.sum())
        return _stats_from_points(X, sample_weight, indices, covariance_type)
    _, indices = kmeans_plusplus(X, weights, n_components, random_state)
    return _stats_from_points(X, sample_weight, indices, covariance_type)


###############################################################################
# 7. The estimator


class GaussianMixture(EstimatorBase):
    """Gaussian mixture model fitted by EM with fused, parallel Numba kernels.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the
    same parameters, defaults, fitted attributes and methods, the same answers
    from the same starting point. In addition ``fit`` accepts
    ``sample_weight``, ``n_jobs`` sets the kernel threads (results are
    bit-identical for any value), and float32 data is fitted in float32 (with
    float64 accumulation), giving float32 attributes.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component has its own covariance matrix; 'tied': all
        share one; 'diag': each has a diagonal covariance; 'spherical': each
        has a single variance.
    tol : float, default=1e-3
        EM stops when the mean log-likelihood changes by less than ``tol``.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance, keeping them positive-definite.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Initialisations; the one with the largest final lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How initial responsibilities are chosen: k-means labels, k-means++
        seeds, uniform random responsibilities, or random data points.
    weights_init : array-like of shape (n_components,), default=None
    means_init : array-like of shape (n_components, n_features), default=None
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances); shape (n_components,) for
        'spherical', (n_features, n_features) for 'tied', (n_components,
        n_features) for 'diag', (n_components, n_features, n_features) for 'full'.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    warm_start : bool, default=False
        If True, each ``fit`` continues from the previous solution (``n_init``
        is then ignored).
    verbose : int, default=0
        1 prints each initialisation and iteration, 2 also timing and the
        change of the lower bound.
    verbose_interval : int, default=10
        Iterations between progress messages.
    n_jobs : int or None, default=None
        Threads for the Numba kernels; None or -1 means all available
        threads, -2 all but one. Results do not depend on it.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    means_ : ndarray of shape (n_components, n_features)
    covariances_ : ndarray
        Shape depends on ``covariance_type`` (as ``precisions_init``).
    precisions_ : ndarray
        Inverse covariances, same shape as ``covariances_``.
    precisions_cholesky_ : ndarray
        Upper-triangular Cholesky factors of ``precisions_``.
    converged_ : bool
        Whether the best initialisation converged.
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Mean log-likelihood of the training data at the last iteration of the
        best initialisation (weighted by ``sample_weight`` when given).
    lower_bounds_ : list of float
        The lower bound at every iteration of the best initialisation.
    n_features_in_ : int
        Number of features seen during ``fit``.

    Notes
    -----
    **Degenerate data: empty and collapsing components.** Fitted attributes
    never contain NaN or infinity; a fit either succeeds or raises a
    ``ValueError`` that names the problem. The policy:

    * An *empty* component (one that receives no responsibility, e.g. more
      components than distinct points, or a mean far from all data) is kept,
      exactly as scikit-learn keeps it: 10 machine epsilons of the data dtype
      are added to every component's responsibility sum, so the component
      keeps its previous mean, its covariance becomes ``reg_covar`` times the
      identity and its weight about ``10 * eps / n_samples``. It is not
      re-seeded: re-seeding would break the agreement with scikit-learn from
      the same starting point and the monotone lower bound, and could not help
      when the data have fewer distinct points than components.
    * A *collapsing* component, whose covariance is not positive-definite even
      after adding ``reg_covar`` (a component on a single point or a
      lower-dimensional subspace with ``reg_covar=0``), stops the fit with a
      ``ValueError`` that names the component (or the tied covariance) and
      suggests increasing ``reg_covar``. So does a float32 fit whose
      variances or precisions leave float32's range, and a fit whose
      statistics overflow float64 (asks to scale the data). The model keeps
      the fitted state it had before the failed ``fit``.

    **Model files.** :meth:`save` writes a portable file (``.npz`` layout plus
    JSON metadata, no pickle) and :meth:`load` reads it back, validating every
    value. ``pickle`` works as well.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0])
    array([ 1., 10.])
    """

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.n_jobs = n_jobs

    # -- parameter checks ---------------------------------------------------

    def _check_parameters(self) -> None:
        check_int(self.n_components, "n_components", 1)
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_real(self.tol, "tol", 0.0)
        check_real(self.reg_covar, "reg_covar", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_choice(self.init_params, "init_params", INIT_METHODS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be a bool, got {self.warm_start!r}.")
        check_int(int(self.verbose) if isinstance(self.verbose, (bool, np.bool_)) else self.verbose, "verbose", 0)
        check_int(self.verbose_interval, "verbose_interval", 1)
        resolve_n_jobs(self.n_jobs)

    def _checked_init_arrays(self, n_features: int, dtype) -> tuple:
        """Validated float64 copies of weights_init / means_init / precisions_init (None where absent).

        Copies, so that fitted attributes never alias the user's arrays.
        """
        k = self.n_components
        weights = None if self.weights_init is None else check_weights_init(self.weights_init, k)
        means = None if self.means_init is None else check_means_init(self.means_init, k, n_features, dtype)
        precisions = None
        if self.precisions_init is not None:
            precisions = check_precisions_init(self.precisions_init, self.covariance_type, k, n_features, dtype)
        return weights, means, precisions

    # -- fitting ------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the mixture parameters with EM.

        Fits ``n_init`` times and keeps the initialisation with the largest
        final lower bound. With ``warm_start``, continues from the previous fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, one row per sample. float32 data is fitted in float32.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight per row: a weight multiplies the row's
            contribution (0 drops the row, an integer repeats it).

        Returns
        -------
        self : GaussianMixture
        """
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the model and return the most probable component of each row of X.

        Equal to ``fit(X).predict(X)``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        X = self._fit(X, sample_weight)
        with numba_threads(resolve_n_jobs(self.n_jobs)):
            return np.argmax(weighted_log_prob(X, self._params(), self.covariance_type), axis=1)

    def _fit(self, X, sample_weight) -> np.ndarray:
        """Fit and set the fitted attributes; returns the validated X."""
        self._check_parameters()
        X = check_data(X, min_samples=2)
        n_samples, n_features = X.shape
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )
        sample_weight = check_sample_weight(sample_weight, n_samples)
        if sample_weight is not None and np.count_nonzero(sample_weight) < self.n_components:
            raise ValueError(
                f"sample_weight has {np.count_nonzero(sample_weight)} positive entries, fewer than "
                f"n_components = {self.n_components}."
            )
        inits = self._checked_init_arrays(n_features, X.dtype)
        covariance_type = self.covariance_type
        float32 = X.dtype == np.float32
        resp_eps = 10 * np.finfo(X.dtype).eps
        reg_covar = float(self.reg_covar)

        warm = bool(self.warm_start) and hasattr(self, "converged_")
        if warm and self.n_features_in_ != n_features:
            raise ValueError(
                f"X has {n_features} features, but GaussianMixture is expecting {self.n_features_in_} "
                "features as input (warm_start continues the previous fit)."
            )

        def initialize(random_state):
            return self._initial_params(X, sample_weight, random_state, inits, reg_covar, resp_eps, float32)

        with numba_threads(resolve_n_jobs(self.n_jobs)):
            result = run_em(
                initialize,
                lambda params: estep(X, sample_weight, params, covariance_type),
                lambda stats: mstep(stats, covariance_type, reg_covar, resp_eps, float32),
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=check_random_state(self.random_state),
                warm_params=self._params() if warm else None,
                warm_lower_bound=self.lower_bound_ if warm else -np.inf,
                verbose=int(self.verbose),
                verbose_interval=self.verbose_interval,
            )
        self._set_fitted(result.params, X.dtype)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = list(result.lower_bounds)
        self.n_features_in_ = n_features
        return X

    def _initial_params(self, X, sample_weight, random_state, inits, reg_covar, resp_eps, float32) -> GaussianParams:
        weights_init, means_init, precisions_init = inits
        covariance_type = self.covariance_type
        if weights_init is None or means_init is None or precisions_init is None:
            stats = initial_stats(X, sample_weight, self.n_components, self.init_params, covariance_type, random_state)
            params = mstep(stats, covariance_type, reg_covar, resp_eps, float32)
        else:
            params = GaussianParams(None, None, None, None)
        if weights_init is not None:
            params.weights = weights_init.copy()
        if means_init is not None:
            params.means = means_init.copy()
        if precisions_init is not None:
            params.precisions_cholesky = precision_cholesky_from_precisions(precisions_init, covariance_type)
            params.covariances = covariances_from_precisions(precisions_init, covariance_type)
        return params

    def _set_fitted(self, params: GaussianParams, dtype) -> None:
        self.weights_ = np.array(params.weights, dtype=dtype)
        self.means_ = np.array(params.means, dtype=dtype)
        self.covariances_ = np.array(params.covariances, dtype=dtype)
        self.precisions_cholesky_ = np.array(params.precisions_cholesky, dtype=dtype)
        self.precisions_ = precisions_from_cholesky(self.precisions_cholesky_, self.covariance_type).astype(dtype)

    def _params(self) -> GaussianParams:
        return GaussianParams(self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    # -- inference ----------------------------------------------------------

    def _weighted_log_prob(self, X) -> np.ndarray:
        self._check_is_fitted()
        X = check_data(X, n_features=self.n_features_in_)
        with numba_threads(resolve_n_jobs(self.n_jobs)):
            return weighted_log_prob(X, self._params(), self.covariance_type)

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each row of X under the fitted mixture.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
        """
        return logsumexp(self._weighted_log_prob(X), axis=1)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of the rows of X."""
        return float(np.mean(self.score_samples(X)))

    def predict(self, X) -> np.ndarray:
        """Most probable component for each row of X.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return np.argmax(self._weighted_log_prob(X), axis=1)

    def predict_proba(self, X) -> np.ndarray:
        """Posterior probability of each component for each row of X.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1.
        """
        log_prob = self._weighted_log_prob(X)
        return np.exp(log_prob - logsumexp(log_prob, axis=1, keepdims=True))

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture (seeded by ``random_state``, as scikit-learn).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component each sample came from.
        """
        self._check_is_fitted()
        n_samples = check_int(n_samples, "n_samples", 1)
        rng = check_random_state(self.random_state)
        n_features = self.means_.shape[1]
        counts = rng.multinomial(n_samples, self.weights_.astype(np.float64) / self.weights_.astype(np.float64).sum())
        means = self.means_.astype(np.float64)
        covariances = self.covariances_.astype(np.float64)
        if self.covariance_type == "full":
            parts = [rng.multivariate_normal(m, c, int(s)) for m, c, s in zip(means, covariances, counts)]
        elif self.covariance_type == "tied":
            parts = [rng.multivariate_normal(m, covariances, int(s)) for m, s in zip(means, counts)]
        else:
            parts = [
                m + rng.standard_normal(size=(s, n_features)) * np.sqrt(c) for m, c, s in zip(means, covariances, counts)
            ]
        labels = np.concatenate([np.full(int(s), j, dtype=np.int64) for j, s in enumerate(counts)])
        return np.vstack(parts).astype(self.means_.dtype), labels

    # -- model files ----------------------------------------------------------

    def save(self, file) -> None:
        """Save the fitted model to a portable file that loads without executing code.

        The file is a zip archive in NumPy's ``.npz`` layout: one ``.npy``
        member per array (float32/float64, never object arrays) and a
        ``metadata.json`` member with the format version, the constructor
        parameters and the scalar fitted attributes. ``random_state`` is saved
        when it is None, an int or a ``RandomState`` (its current state).

        Parameters
        ----------
        file : str, os.PathLike or binary file object
            Where to write. A path is written atomically (a temporary file in
            the same folder, then a rename); ``.npz`` is a good extension.

        Raises
        ------
        NotFittedError
            If the model is not fitted.
        ValueError
            If a parameter is not a plain value that can be saved.
        """
        save_model(self, file)

    @classmethod
    def load(cls, file) -> "GaussianMixture":
        """Load a model written by :meth:`save`.

        Nothing in the file is executed or unpickled, and every value is
        checked: shapes, dtypes, finiteness, weights that sum to one,
        positive-definite covariances, the format version.

        Parameters
        ----------
        file : str, os.PathLike or binary file object

        Returns
        -------
        model : GaussianMixture
            A fitted model with the saved parameters and attributes.

        Raises
        ------
        fastem.exceptions.ModelFileError
            (a ``ValueError``) if the file is corrupted, truncated, of another
            format or an unsupported version, or holds invalid values.
        """
        return load_model(file, cls)

    # -- model selection ------------------------------------------------------

    def _n_parameters(self) -> int:
        """Number of free parameters of the model."""
        n_features = self.means_.shape[1]
        k = self.n_components
        covariance_params = {
            "full": k * n_features * (n_features + 1) / 2.0,
            "diag": k * n_features,
            "tied": n_features * (n_features + 1) / 2.0,
            "spherical": k,
        }[self.covariance_type]
        return int(covariance_params + n_features * k + k - 1)

    def bic(self, X) -> float:
        """Bayesian information criterion on X (lower is better)."""
        log_prob = self.score_samples(X)
        return -2 * float(log_prob.sum()) + self._n_parameters() * math.log(log_prob.shape[0])

    def aic(self, X) -> float:
        """Akaike information criterion on X (lower is better)."""
        return -2 * float(self.score_samples(X).sum()) + 2 * self._n_parameters()
