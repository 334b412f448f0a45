"""One EM iteration of a Gaussian mixture, and its initialisation.

The E-step is one pass of the Numba kernels over the data and returns additive
sufficient statistics; the M-step turns statistics into parameters without
touching the data. Sections:

4. the E-step (dispatch to the kernels) and log-probabilities
5. the M-step: statistics -> parameters
6. initialisation (k-means, k-means++, random responsibilities, random points)
"""

from __future__ import annotations

import math

import numpy as np

from fastem.mixture import _estep_kernels, _log_prob_kernels
from fastem._core.kmeans import draw_rows, kmeans, kmeans_plusplus
from fastem.mixture._inference_output import LOG_PROB, OUTPUTS
from fastem.mixture._unrolled_full import MAX_UNROLLED_FEATURES
from fastem.mixture.constrained_mstep import constrained_covariances
from fastem.mixture.covariance_models import is_constrained, kernel_layout
from fastem.mixture.parameters import (
    GaussianParams,
    GaussianStats,
    ill_defined_message,
    log_det_cholesky,
    precision_cholesky,
    second_moment_shape,
)
from fastem._core.numba import call_specialised
from fastem._core.threads import BLAS_MIN_FEATURES, blas_pinning_available

_LOG_2PI = math.log(2.0 * math.pi)

# Rows per NumPy batch when building random initial responsibilities: bounds
# the memory of that batch to INIT_BATCH_ROWS * n_components floats.
_INIT_BATCH_ROWS = 65536

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


def full_variant(n_features: int) -> tuple[bool, int]:
    """The compile-time choices ``(use_blas, unrolled)`` of the full-covariance kernels for ``n_features``.

    BLAS from ``BLAS_MIN_FEATURES`` when it can be pinned to one thread (see
    ``fastem._core.numba``); otherwise the generated loops for two to
    ``MAX_UNROLLED_FEATURES`` features, and the general loops (0) for every
    other count, so all of those share one compiled specialisation.
    """
    use_blas = n_features >= BLAS_MIN_FEATURES and blas_pinning_available()
    unrolled = n_features if not use_blas and 2 <= n_features <= MAX_UNROLLED_FEATURES else 0
    return use_blas, unrolled


def _symmetrise(upper: np.ndarray) -> np.ndarray:
    """Fill the strict lower triangle(s) from the upper one(s)."""
    return upper + np.triu(upper, 1).swapaxes(-1, -2)


class StatsAccumulator:
    """E-step statistics of rows under fixed ``params``, gathered from one block of rows or many.

    The kernels *add* into the raw arrays, so adding the blocks of a data set
    in order performs the same additions as one call on the whole array when
    every block but the last has a multiple of ``CHUNK_ROWS`` rows (the
    kernels' own chunks): out-of-core fits then equal in-memory ones to the
    bit. :meth:`merge` adds another accumulator's raw arrays (blocks computed
    elsewhere, e.g. Dask tasks); :meth:`result` forms the statistics once.

    Parameters
    ----------
    params : GaussianParams
    covariance_type : str
    dtype : numpy dtype
        The data's float dtype (float32 or float64); every block must have it.
    """

    def __init__(self, params: GaussianParams, covariance_type: str, dtype):
        self.covariance_type = covariance_type
        self.dtype = np.dtype(dtype)
        self.model = _kernel_model(params, covariance_type, self.dtype)
        n_components, n_features = params.means.shape
        self.n_features = n_features
        second_shape = second_moment_shape(covariance_type, n_components, n_features)
        self.raw = [np.zeros(n_components), np.zeros((n_components, n_features)), np.zeros(second_shape)]
        if covariance_type == "tied":
            self.raw.append(np.zeros((n_components, n_components)))  # the responsibility spread
        self.raw.append(np.zeros(2))  # [sum w log p(x), sum w]

    def add(self, X: np.ndarray, sample_weight=None) -> "StatsAccumulator":
        """Add the statistics of the rows of X (C-contiguous, of ``dtype``), weighted by ``sample_weight``."""
        weights = np.empty(0) if sample_weight is None else sample_weight
        if X.shape[0] == 0:
            return self
        outputs = tuple(self.raw)
        if self.covariance_type == "full":
            call_specialised(_estep_kernels.estep_full, (X, weights, self.model, outputs), full_variant(self.n_features))
        elif self.covariance_type == "tied":
            _estep_kernels.estep_tied(X, weights, self.model, outputs)
        else:
            _estep_kernels.estep_diag(X, weights, self.model, outputs)
        return self

    def merge(self, other: "StatsAccumulator") -> "StatsAccumulator":
        """Add ``other``'s raw sums (gathered under the same parameters) into this accumulator."""
        for total, part in zip(self.raw, other.raw):
            total += part
        return self

    def result(self) -> GaussianStats:
        """The statistics, centred at the current means; a ValueError if the log-likelihood is not finite."""
        resp_sum, first, second = self.raw[0].copy(), self.raw[1].copy(), self.raw[2]
        totals = self.raw[-1]
        shift = self.model[0].astype(np.float64)
        if self.covariance_type == "full":
            second = _symmetrise(second)
        elif self.covariance_type == "tied":
            centred_shift = shift - self.model[1].astype(np.float64)
            second = _symmetrise(second) + centred_shift.T @ _symmetrise(self.raw[3]) @ centred_shift
        else:
            second = second.copy()
        log_likelihood, weight_total = float(totals[0]), float(totals[1])
        if not np.isfinite(log_likelihood):
            raise ValueError(
                "The log-likelihood of the data is not finite: some rows have zero density under every "
                "component (extreme precisions, or data far outside the model), or (for data read block by "
                "block) a block held NaN or infinity on a later pass than the one that checked it. Scale the "
                "data, or increase reg_covar."
            )
        return GaussianStats(resp_sum, first, second, shift, log_likelihood, weight_total)


def estep(X: np.ndarray, sample_weight, params: GaussianParams, covariance_type: str) -> GaussianStats:
    """One pass over X: sufficient statistics under ``params``, centred at the current means.

    Parameters
    ----------
    X : ndarray (n_samples, n_features), float32 or float64, C-contiguous
    sample_weight : ndarray (n_samples,) float64, or None for unit weights
    params : GaussianParams
    covariance_type : str
    """
    return StatsAccumulator(params, covariance_type, X.dtype).add(X, sample_weight).result()


def weighted_log_prob(X: np.ndarray, params: GaussianParams, covariance_type: str, out=None) -> np.ndarray:
    """log w_j + log N(x_i | mean_j, Sigma_j) for every row and component, (n_samples, n_components).

    ``out``, if given, is a C-contiguous float64 (n_samples, n_components) array to write into.
    """
    if out is None:
        out = np.empty((X.shape[0], params.means.shape[0]))
    return _run_log_prob_kernel(X, params, covariance_type, out, LOG_PROB)


def infer(X: np.ndarray, params: GaussianParams, covariance_type: str, output: str) -> np.ndarray:
    """Scores, labels or responsibilities of the rows of X, computed block by block (no n x k scratch).

    ``output`` is 'score' (log p(x_i), shape (n,)), 'labels' (the most
    probable component, int64 (n,)) or 'proba' (responsibilities (n, k)).
    Scores and responsibilities are in X's dtype. A row infinitely far from
    every component scores -inf and gets the weights as its
    responsibilities (see ``_inference_output``).
    """
    n_samples, n_components = X.shape[0], params.means.shape[0]
    if output == "labels":
        out = np.empty(n_samples, dtype=np.int64)
    elif output == "score":
        out = np.empty(n_samples, dtype=X.dtype)
    else:
        out = np.empty((n_samples, n_components), dtype=X.dtype)
    return _run_log_prob_kernel(X, params, covariance_type, out, OUTPUTS[output])


def _run_log_prob_kernel(X, params: GaussianParams, covariance_type: str, out: np.ndarray, output: int) -> np.ndarray:
    """Run the layout's log-probability kernel with ``out`` in the slot of ``output`` (empty arrays elsewhere).

    The four slots always have the same types for one data dtype, so one
    compiled kernel serves every output.
    """
    model = _kernel_model(params, covariance_type, X.dtype)
    weights = params.weights.astype(np.float64)
    prior = np.ascontiguousarray(weights / weights.sum())
    outputs = [np.empty((0, 0)), np.empty(0, X.dtype), np.empty(0, np.int64), np.empty((0, 0), X.dtype)]
    outputs[output] = out
    arguments = (X, model, tuple(outputs), prior, output)
    if covariance_type == "full":
        call_specialised(_log_prob_kernels.weighted_log_prob_full, arguments, full_variant(X.shape[1]))
    elif covariance_type == "tied":
        _log_prob_kernels.weighted_log_prob_tied(*arguments)
    else:
        _log_prob_kernels.weighted_log_prob_diag(*arguments)
    return out


###############################################################################
# 5. M-step: statistics -> parameters


def mstep(stats: GaussianStats, covariance_type: str, reg_covar: float, resp_eps: float, float32: bool = False) -> GaussianParams:
    """Maximise the expected complete-data log-likelihood given ``stats``.

    ``covariance_type`` is any model of ``covariance_models``: the statistics
    are in its kernel layout, and mclust's constrained models constrain the
    layout's covariances (``constrained_mstep``); the returned covariances
    have the layout's shape.

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
        layout = kernel_layout(covariance_type)
        covariances = _covariances_from_stats(stats, resp_sum, delta, layout, reg_covar)
        if is_constrained(covariance_type) and np.isfinite(covariances).all():
            covariances = _constrained(covariance_type, layout, resp_sum, covariances, float32)
    not_finite = np.flatnonzero(~np.isfinite(means).all(axis=1))
    if not_finite.size:
        raise ValueError(
            f"Fitting the mixture model failed because the mean of component {int(not_finite[0])} is not "
            "finite: its weighted sums overflowed. Scale the input data or the sample weights."
        )
    weights = resp_sum / resp_sum.sum()
    prec_chol = precision_cholesky(covariances, layout, float32)
    return GaussianParams(weights, means, covariances, prec_chol)


def _constrained(covariance_type: str, layout: str, resp_sum, covariances, float32: bool) -> np.ndarray:
    """``constrained_covariances``, or the ill-defined-covariance error when a covariance is singular."""
    if layout == "full":
        smallest = np.linalg.eigvalsh(covariances)[:, 0]
    else:
        smallest = covariances.reshape(covariances.shape[0], -1).min(axis=1)
    singular = np.flatnonzero(~(smallest > 0))
    if singular.size:
        raise ValueError(ill_defined_message(int(singular[0]), layout, float32))
    return constrained_covariances(covariance_type, resp_sum, covariances)


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
    _estep_kernels.label_stats(X, weights, labels, shift, (resp_sum, first, second))
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
        # Large data: k-means and the start's statistics on a seeded sample of
        # rows (``draw_rows``); the first E-step then runs on all rows.
        sample = draw_rows(X.shape[0], weights, n_components, random_state)
        if sample is not None:
            rows, weights = sample
            X, sample_weight = X[rows], weights
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
