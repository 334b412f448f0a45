"""Gaussian HMM parameters: the container, the checks of user-set values, and the M-step.

Covariances are kept in hmmlearn's per-type layout: (k,) for 'spherical',
(k, d) for 'diag', (k, d, d) for 'full', (d, d) for 'tied'. The M-step is
hmmlearn's (0.3.3) maximum a posteriori update, with its priors, written on
statistics centred at the current means; where hmmlearn would divide by zero
(a state that received no posterior mass) the state keeps its previous
parameters instead of turning into NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem.mixture.parameters import GaussianStats

COVARIANCE_TYPES = ("spherical", "diag", "full", "tied")

# hmmlearn's log-density retries a covariance that is not positive-definite
# with this much added to its diagonal before it gives up.
_CHOLESKY_JITTER = 1e-7


@dataclass
class HMMParams:
    """The parameters of a Gaussian HMM (float64); ``covars`` in the per-type layout."""

    startprob: np.ndarray
    transmat: np.ndarray
    means: np.ndarray
    covars: np.ndarray


@dataclass
class HMMStats:
    """Additive statistics of an E-step: start and transition counts, emission statistics."""

    start: np.ndarray          # (k,) sum over sequences of w_s * gamma_first
    trans: np.ndarray          # (k, k) sum over sequences of w_s * sum_t xi_t
    emission: GaussianStats    # posterior-weighted Gaussian statistics, centred at the means
    log_likelihood: float      # sum over sequences of w_s * log p(sequence)


###############################################################################
# Covariance layouts


def full_covars(covars: np.ndarray, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """Covariances of any type as (n_components, n_features, n_features) matrices (a new array)."""
    covars = np.asarray(covars, dtype=np.float64)
    if covariance_type == "full":
        return covars.copy()
    if covariance_type == "tied":
        return np.repeat(covars[None], n_components, axis=0)
    if covariance_type == "diag":
        return covars[:, :, None] * np.eye(n_features)
    return covars.reshape(-1)[:, None, None] * np.eye(n_features)


def covars_from_template(template: np.ndarray, covariance_type: str, n_components: int) -> np.ndarray:
    """One (d, d) covariance spread over the states in the per-type layout (hmmlearn's initialisation)."""
    if covariance_type == "spherical":
        return np.full(n_components, template.mean())
    if covariance_type == "tied":
        return template.copy()
    if covariance_type == "diag":
        return np.tile(np.diag(template), (n_components, 1))
    return np.tile(template, (n_components, 1, 1))


def covars_shape(covariance_type: str, n_components: int, n_features: int) -> tuple:
    return {
        "spherical": (n_components,),
        "diag": (n_components, n_features),
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
    }[covariance_type]


def precisions_cholesky(covars: np.ndarray, covariance_type: str) -> np.ndarray:
    """Upper-triangular factors of the precisions, in the mixture kernels' layout.

    A matrix whose Cholesky factorisation fails is retried with 1e-7 added to
    its diagonal, as hmmlearn's log-density does; if that fails too, a
    ValueError names the state.
    """
    if covariance_type in ("spherical", "diag"):
        if not (np.isfinite(covars).all() and (covars > 0).all()):
            state = int(np.flatnonzero(~(np.isfinite(covars) & (covars > 0)).reshape(covars.shape[0], -1).all(axis=1))[0])
            raise ValueError(f"covars_ of state {state} must be positive and finite, got {covars[state]!r}.")
        return 1.0 / np.sqrt(covars)
    matrices = covars if covariance_type == "full" else covars[None]
    factors = np.empty_like(matrices)
    identity = np.eye(matrices.shape[-1])
    for j, matrix in enumerate(matrices):
        lower = _cholesky(matrix)
        if lower is None:
            lower = _cholesky(matrix + _CHOLESKY_JITTER * identity)
        if lower is None:
            which = "the tied covars_" if covariance_type == "tied" else f"covars_ of state {j}"
            raise ValueError(
                f"{which} must be symmetric, positive-definite (its Cholesky factorisation failed). "
                "Increase covars_prior, or give the state more data."
            )
        factors[j] = np.triu(np.linalg.solve(lower, identity).T)
    return factors if covariance_type == "full" else factors[0]


def _cholesky(matrix: np.ndarray):
    if not np.isfinite(matrix).all():
        return None
    try:
        lower = np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return None
    return lower if (np.diagonal(lower) > 0).all() else None


###############################################################################
# Checks of parameters set by the user (init_params without the letter)


def check_distribution(values, name: str, shape: tuple) -> np.ndarray:
    """A float64 copy of startprob_ (shape (k,)) or transmat_ ((k, k)): finite, non-negative, summing to 1."""
    array = np.array(values, dtype=np.float64, copy=True)
    if array.shape != shape:
        what = "length n_components" if len(shape) == 1 else "shape (n_components, n_components)"
        raise ValueError(f"{name} must have {what} = {shape}, got shape {array.shape}.")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative probabilities.")
    sums = array.sum(axis=-1)
    if not np.allclose(sums, 1):
        if array.ndim == 1:
            raise ValueError(f"{name} must sum to 1 (got {float(sums):.4f})")
        raise ValueError(f"{name} rows must sum to 1 (got row sums of {sums})")
    return array


def check_means(values, n_components: int, n_features: int) -> np.ndarray:
    means = np.array(values, dtype=np.float64, copy=True)
    if means.shape != (n_components, n_features):
        raise ValueError(f"means_ must have shape (n_components, n_features) = {(n_components, n_features)}, got {means.shape}.")
    if not np.isfinite(means).all():
        raise ValueError("means_ must be finite.")
    return means


def check_covars(values, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """A float64 copy of user-set covariances in the per-type layout, validated (symmetric, positive-definite)."""
    covars = np.array(values, dtype=np.float64, copy=True)
    if covariance_type == "spherical" and covars.shape == (n_components, n_features):
        covars = covars.mean(axis=1)  # hmmlearn's own fitted layout for spherical
    expected = covars_shape(covariance_type, n_components, n_features)
    if covars.shape != expected:
        raise ValueError(f"'{covariance_type}' covars must have shape {expected}, got {covars.shape}.")
    if covariance_type in ("full", "tied"):
        matrices = covars if covariance_type == "full" else covars[None]
        for j, matrix in enumerate(matrices):
            if not np.allclose(matrix, matrix.T) or _cholesky(matrix) is None:
                which = "'tied' covars" if covariance_type == "tied" else f"component {j} of 'full' covars"
                raise ValueError(f"{which} must be symmetric, positive-definite")
    elif not (np.isfinite(covars).all() and (covars > 0).all()):
        raise ValueError(f"'{covariance_type}' covars must be positive")
    return covars


###############################################################################
# M-step


@dataclass
class Priors:
    """hmmlearn's prior parameters, as given (scalars or arrays that broadcast)."""

    startprob: object
    transmat: object
    means: object
    means_weight: object
    covars: object
    covars_weight: object


def prior_shapes(name: str, covariance_type: str, k: int, d: int) -> tuple:
    """The array shapes prior ``name`` may have besides a scalar ((k,) arrays are per state)."""
    covars = {"spherical": ((k,),), "diag": ((k,), (d,), (k, d)), "full": ((k,), (d, d), (k, d, d)), "tied": ((d, d),)}
    return {
        "startprob_prior": ((k,),),
        "transmat_prior": ((k,), (k, k)),
        "means_prior": ((k,), (d,), (k, d)),
        "means_weight": ((k,),),
        "covars_prior": covars[covariance_type],
        "covars_weight": (),
    }[name]


def check_priors(priors: dict, covariance_type: str, n_components: int, n_features: int) -> None:
    """Raise a ValueError naming a prior whose shape the M-step cannot use."""
    for name, value in priors.items():
        shape = np.shape(value)
        allowed = prior_shapes(name, covariance_type, n_components, n_features)
        if shape != () and shape not in allowed:
            options = ", ".join(["a number"] + [f"shape {a}" for a in allowed])
            raise ValueError(
                f"{name} has shape {shape}; with n_components={n_components}, n_features={n_features} and "
                f"covariance_type={covariance_type!r} it must be {options}."
            )


def _per_state(value, n_components: int) -> np.ndarray:
    """A (k,) array of per-state prior values becomes (k, 1) so it broadcasts over features."""
    array = np.asarray(value, dtype=np.float64)
    return array[:, None] if array.ndim == 1 and array.shape[0] == n_components else array


def _distribution(previous: np.ndarray, counts: np.ndarray, prior) -> np.ndarray:
    """hmmlearn's Dirichlet MAP update; rows without any mass keep their previous values."""
    values = np.maximum(np.asarray(prior, dtype=np.float64) - 1 + counts, 0)
    values = np.where(previous == 0, 0, values)
    sums = values.sum(axis=-1, keepdims=True)
    empty = (sums == 0).reshape(sums.shape[:-1])
    safe = np.where(sums == 0, 1.0, sums)
    values = values / safe
    values[empty] = previous[empty]
    return values


def mstep(stats: HMMStats, params: HMMParams, priors: Priors, update: str, covariance_type: str) -> HMMParams:
    """hmmlearn's M-step for the letters in ``update`` ('s', 't', 'm', 'c'); the others stay."""
    startprob, transmat, means, covars = params.startprob, params.transmat, params.means, params.covars
    if "s" in update:
        startprob = _distribution(startprob, stats.start, priors.startprob)
    if "t" in update:
        transmat = _distribution(transmat, stats.trans, priors.transmat)
    emission = stats.emission
    n_components, n_features = means.shape
    post = emission.resp_sum[:, None]
    means_weight = _per_state(priors.means_weight, n_components)
    means_prior = _per_state(priors.means, n_components)
    shift = emission.shift
    if "m" in update:
        denominator = means_weight + post
        visited = np.broadcast_to(denominator != 0, means.shape)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = (means_weight * (means_prior - shift) + emission.first) / denominator
        means = np.where(visited, shift + delta, shift)
    if "c" in update:
        covars = _covars_mstep(emission, means, covars, priors, covariance_type)
    return HMMParams(startprob, transmat, means, covars)


def _covars_mstep(emission: GaussianStats, means, previous, priors: Priors, covariance_type: str) -> np.ndarray:
    n_components, n_features = means.shape
    post = emission.resp_sum
    delta = means - emission.shift  # new mean - centre of the statistics
    means_weight = _per_state(priors.means_weight, n_components)
    meandiff = means - _per_state(priors.means, n_components)
    covars_prior = priors.covars
    covars_weight = np.asarray(priors.covars_weight, dtype=np.float64)
    if covariance_type in ("spherical", "diag"):
        # sum_i gamma_i (x_i - mean)^2 from statistics centred at the shift.
        scatter = emission.second - 2 * delta * emission.first + delta**2 * post[:, None]
        c_n = means_weight * meandiff**2 + scatter
        c_d = np.maximum(covars_weight - 1, 0) + post[:, None]
        prior = _per_state(covars_prior, n_components)
        covars = (prior + c_n) / np.maximum(c_d, 1e-5)
        covars = covars.mean(axis=1) if covariance_type == "spherical" else covars
        unvisited = post == 0  # keeps its previous covariance (hmmlearn's update gives it prior / 1e-5)
        covars[unvisited] = previous[unvisited]
        return covars
    outer_delta_first = delta[:, :, None] * emission.first[:, None, :]
    scatter = (
        emission.second - outer_delta_first - outer_delta_first.swapaxes(1, 2)
        + post[:, None, None] * delta[:, :, None] * delta[:, None, :]
    )
    means_weight3 = np.asarray(priors.means_weight, dtype=np.float64)
    if means_weight3.ndim == 1 and means_weight3.shape[0] == n_components:
        means_weight3 = means_weight3[:, None, None]
    c_n = means_weight3 * meandiff[:, :, None] * meandiff[:, None, :] + scatter
    cvweight = np.maximum(covars_weight - n_features, 0)
    if covariance_type == "tied":
        denominator = cvweight + post.sum()
        if not denominator > 0:
            return previous
        return (covars_prior + c_n.sum(axis=0)) / denominator
    denominator = cvweight + post
    denominator = np.broadcast_to(denominator, (n_components,)) if np.ndim(denominator) <= 1 else denominator
    covars = np.array(previous, dtype=np.float64, copy=True)
    prior = np.asarray(covars_prior, dtype=np.float64)
    prior = np.broadcast_to(prior[:, None, None] if prior.shape == (n_components,) else prior, c_n.shape)
    for j in range(n_components):
        if denominator[j] > 0:
            covars[j] = (prior[j] + c_n[j]) / denominator[j]
    return covars
