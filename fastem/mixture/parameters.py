"""Gaussian mixture parameters: containers, checks of user-supplied values, Cholesky factors.

Pure functions, no data pass. Conventions follow scikit-learn:
``precisions_cholesky_`` are upper-triangular ``P`` with ``P P^T = precision``,
so ``log N(x | mu, Sigma) = -d/2 log 2pi + log det P - |(x - mu) P|^2 / 2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem._core.validation import check_init_array

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

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
    # The messages start with scikit-learn's sentences, which call the parameter 'weights'.
    weights = check_init_array(weights, "weights_init", (n_components,), anchor_name="weights")
    if (weights < 0).any() or (weights > 1).any():
        # scikit-learn's message prints the minimum as "max value" and the
        # maximum as "min value"; this one labels them correctly.
        raise ValueError(
            f"The parameter 'weights' should be in the range [0, 1], but got min value "
            f"{weights.min():.5f}, max value {weights.max():.5f} in weights_init."
        )
    if not abs(1.0 - weights.sum()) <= 1e-6:
        raise ValueError(
            f"The parameter 'weights' should be normalized, but got sum(weights) = {weights.sum():.5f} "
            f"({weights.sum():.10g}) in weights_init."
        )
    return weights


def check_means_init(means, n_components: int, n_features: int, dtype=np.float64) -> np.ndarray:
    """Validated float64 copy of ``means_init``; with float32 data the means must fit in float32."""
    means = check_init_array(means, "means_init", (n_components, n_features), anchor_name="means")
    if np.dtype(dtype) == np.float32 and (np.abs(means) > _FLOAT32.max).any():
        component = int(np.flatnonzero((np.abs(means) > _FLOAT32.max).any(axis=1))[0])
        raise ValueError(
            f"means_init (component {component}) has values beyond the float32 range (|x| <= {_FLOAT32.max:.3g}) "
            "and the data are float32. Pass float64 data or rescale."
        )
    return means


def second_moment_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    """Shape of the second-moment statistics kept for ``covariance_type`` (see ``GaussianStats``).

    Spherical models keep the diagonal, as diag ones: their M-step averages it.
    """
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
    }.get(covariance_type, (n_components, n_features))


def precisions_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


def check_precisions_init(
    precisions, covariance_type: str, n_components: int, n_features: int, dtype=np.float64, model_name=None
) -> np.ndarray:
    """Validated float64 copy of ``precisions_init``.

    ``covariance_type`` is the kernel layout ('full', 'tied', 'diag' or
    'spherical'), which fixes the shape; ``model_name`` is the estimator's
    ``covariance_type`` as the user wrote it (an mclust name such as 'VEV',
    or the layout itself when None), which the messages name.

    Checks the shape, finiteness, symmetry and positive-definiteness (a
    Cholesky factorisation must succeed; the error names the component), and,
    for float32 data, that the precisions, their Cholesky factors and the
    covariances they imply fit in float32 (the kernels compute in the data
    dtype, so anything else would silently become inf or 0 there). The
    messages start with scikit-learn's sentences ("'full precision' should
    be ..."), so code matching those still works.
    """
    label = f"{model_name or covariance_type} precision"
    shape = precisions_shape(covariance_type, n_components, n_features)
    precisions = check_init_array(precisions, "precisions_init", shape, anchor_name=label)
    if covariance_type in ("diag", "spherical"):
        bad = np.flatnonzero(~(precisions > 0).reshape(n_components, -1).all(axis=1))
        if bad.size:
            raise ValueError(
                f"'{label}' should be positive, but component {int(bad[0])} of precisions_init has a value <= 0."
            )
    else:
        matrices = precisions if covariance_type == "full" else precisions[None]
        for j, matrix in enumerate(matrices):
            where = f" (component {j})" if covariance_type == "full" else ""
            # atol relative to the matrix's scale, so that tiny precisions are
            # not declared symmetric merely for being small.
            if not np.allclose(matrix, matrix.T, rtol=1e-5, atol=1e-8 * np.abs(matrix).max()):
                raise ValueError(
                    f"'{label}' should be symmetric, positive-definite, but precisions_init{where} is not symmetric."
                )
            try:
                # The factorisation precision_cholesky_from_precisions will do.
                np.linalg.cholesky(matrix[::-1, ::-1])
            except np.linalg.LinAlgError:
                smallest = np.linalg.eigvalsh(matrix).min()
                raise ValueError(
                    f"'{label}' should be symmetric, positive-definite, but precisions_init{where} is not "
                    f"positive-definite: its smallest eigenvalue is {smallest:.6g}."
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


def ill_defined_message(component, covariance_type: str, float32: bool) -> str:
    """scikit-learn's ill-defined-covariance sentence (code matches it), then which covariance failed."""
    which = (
        "the shared (tied) covariance"
        if covariance_type == "tied"
        else f"the covariance of component {component}"
    )
    message = (
        "Fitting the mixture model failed because some components have ill-defined empirical covariance "
        "(for instance caused by singleton or collapsed samples). Try to decrease the number of components, "
        "increase reg_covar, or scale the input data."
    )
    if float32:
        # scikit-learn's float32 message continues with this sentence directly.
        message += " The numerical accuracy can also be improved by passing float64 data instead of float32."
    return message + f" Here {which} is not positive-definite."


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
            raise ValueError(ill_defined_message(int(bad[0]), covariance_type, float32))
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
            raise ValueError(ill_defined_message(_first_not_positive_definite(matrices), covariance_type, float32))
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
