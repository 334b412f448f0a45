"""``SufficientStatistics``: the public, mergeable E-step statistics of a Gaussian mixture.

An EM iteration is ``stats = E-step(data, params)`` then ``params =
M-step(stats)``, and the statistics of disjoint sets of rows add up. This type
is that hand-over point: other engines (Spark, Ray, a database, another
process) compute the statistics of their part of the data with
``GaussianMixture.compute_statistics``, merge them, and give the sum to
``GaussianMixture.update_from_statistics``, which runs fastem's M-step.

Statistics are *centred*: sums of ``x - shift_j`` rather than of ``x``, which
keeps second moments accurate for data far from the origin. Two statistics
computed under the same parameters share their shift and merge by addition;
otherwise one is first moved to the other's shift, exactly (Chan et al.):
with ``delta = old_shift - new_shift``,

    first'  = first + N delta
    second' = second + delta first^T + first delta^T + N delta delta^T
"""

from __future__ import annotations

import numbers

import numpy as np

from fastem._core.validation import plain
from fastem.mixture.covariance_models import COVARIANCE_MODELS, kernel_layout
from fastem.mixture.parameters import GaussianStats, second_moment_shape


class SufficientStatistics:
    """Weighted E-step statistics of a set of rows under one mixture's parameters.

    Create them with :meth:`GaussianMixture.compute_statistics`; combine
    disjoint sets of rows with :meth:`merge`; fit parameters to them with
    :meth:`GaussianMixture.update_from_statistics`. Objects are immutable in
    use: no method modifies its inputs, and the arrays are read-only.

    Attributes
    ----------
    covariance_type : str
        The model the statistics are for (any ``GaussianMixture``
        covariance type). The sums are kept in the model's kernel layout
        (``fastem.mixture.covariance_models.kernel_layout``): models of one
        layout keep the same sums; their M-steps differ.
    resp_sum : ndarray of shape (n_components,)
        ``sum_i w_i r_ij``: the weighted responsibility of each component.
    first : ndarray of shape (n_components, n_features)
        ``sum_i w_i r_ij (x_i - shift_j)``.
    second : ndarray
        ``sum_i w_i r_ij (x_i - shift_j)(x_i - shift_j)^T`` of shape
        (n_components, n_features, n_features) for the 'full' layout; its sum
        over the components, (n_features, n_features), for 'tied'; its
        diagonal, (n_components, n_features), for 'diag' and 'spherical'.
    shift : ndarray of shape (n_components, n_features)
        The centre of each component's sums (the means the statistics were
        computed under).
    log_likelihood : float
        ``sum_i w_i log p(x_i)`` under the parameters used.
    weight_total : float
        ``sum_i w_i`` (the number of rows without weights).
    """

    __slots__ = ("covariance_type", "resp_sum", "first", "second", "shift", "log_likelihood", "weight_total")

    def __init__(self, covariance_type, resp_sum, first, second, shift, log_likelihood, weight_total):
        if covariance_type not in COVARIANCE_MODELS:
            raise ValueError(f"covariance_type must be one of {COVARIANCE_MODELS}, got {covariance_type!r}.")
        resp_sum = _float_array(resp_sum, "resp_sum", 1)
        n_components = resp_sum.shape[0]
        first = _float_array(first, "first", 2)
        n_features = first.shape[1]
        shift = _float_array(shift, "shift", 2)
        second = _float_array(second, "second", None)
        expected_second = second_moment_shape(kernel_layout(covariance_type), n_components, n_features)
        for name, array, shape in (
            ("first", first, (n_components, n_features)),
            ("shift", shift, (n_components, n_features)),
            ("second", second, expected_second),
        ):
            if array.shape != shape:
                raise ValueError(
                    f"SufficientStatistics.{name} must have shape {shape} for {n_components} components, "
                    f"{n_features} features and covariance_type={covariance_type!r}; got {array.shape}."
                )
        if (resp_sum < 0).any():
            raise ValueError("SufficientStatistics.resp_sum must be non-negative.")
        for name, value in (("log_likelihood", log_likelihood), ("weight_total", weight_total)):
            if not isinstance(value, numbers.Real) or not np.isfinite(value):
                raise ValueError(f"SufficientStatistics.{name} must be a finite real number, got {plain(value)!r}.")
        if weight_total < 0:
            raise ValueError(f"SufficientStatistics.weight_total must be non-negative, got {plain(weight_total)!r}.")
        self.covariance_type = covariance_type
        self.resp_sum, self.first, self.second, self.shift = resp_sum, first, second, shift
        self.log_likelihood = float(log_likelihood)
        self.weight_total = float(weight_total)

    # -- conversions with the engine's container --------------------------------

    @classmethod
    def _from_internal(cls, stats: GaussianStats, covariance_type: str) -> "SufficientStatistics":
        return cls(
            covariance_type, stats.resp_sum, stats.first, stats.second, stats.shift,
            stats.log_likelihood, stats.weight_total,
        )

    def _to_internal(self) -> GaussianStats:
        return GaussianStats(
            self.resp_sum.copy(), self.first.copy(), self.second.copy(), self.shift.copy(),
            self.log_likelihood, self.weight_total,
        )

    @classmethod
    def _implied_by(cls, params, covariance_type: str, reg_covar: float) -> "SufficientStatistics":
        """The statistics, per unit of weight, whose M-step gives back ``params`` (up to rounding).

        ``resp_sum`` = the weights, ``first`` = 0 at ``shift`` = the means,
        ``second`` = weight x (covariance - reg_covar), in each type's layout.
        Online EM starts from these to continue a fitted model.
        """
        weights = np.asarray(params.weights, dtype=np.float64)
        means = np.asarray(params.means, dtype=np.float64)
        covariances = np.asarray(params.covariances, dtype=np.float64)
        n_features = means.shape[1]
        layout = kernel_layout(covariance_type)
        if layout == "full":
            second = weights[:, None, None] * (covariances - reg_covar * np.eye(n_features))
        elif layout == "tied":
            second = weights.sum() * (covariances - reg_covar * np.eye(n_features))
        elif layout == "diag":
            second = weights[:, None] * (covariances - reg_covar)
        else:
            second = np.repeat((weights * (covariances - reg_covar))[:, None], n_features, axis=1)
        return cls(covariance_type, weights, np.zeros_like(means), second, means, 0.0, 1.0)

    @classmethod
    def _zero(cls, params, covariance_type: str) -> "SufficientStatistics":
        """The statistics of no rows (an empty part of a data set), centred at ``params.means``."""
        means = np.asarray(params.means, dtype=np.float64)
        k, d = means.shape
        second = np.zeros(second_moment_shape(kernel_layout(covariance_type), k, d))
        return cls(covariance_type, np.zeros(k), np.zeros((k, d)), second, means, 0.0, 0.0)

    def __reduce__(self):
        # Through __init__ again, so an unpickled copy is validated and read-only as well.
        return (
            SufficientStatistics,
            (self.covariance_type, self.resp_sum, self.first, self.second, self.shift,
             self.log_likelihood, self.weight_total),
        )

    # -- algebra ---------------------------------------------------------------------

    @property
    def n_components(self) -> int:
        return self.resp_sum.shape[0]

    @property
    def n_features(self) -> int:
        return self.first.shape[1]

    @property
    def mean_log_likelihood(self) -> float:
        """``log_likelihood / weight_total``: the EM lower bound of these rows."""
        return self.log_likelihood / self.weight_total if self.weight_total > 0 else 0.0

    def shifted_to(self, shift) -> "SufficientStatistics":
        """The same statistics centred at ``shift`` (n_components, n_features) instead; exact up to rounding."""
        shift = _float_array(shift, "shift", 2)
        if shift.shape != self.shift.shape:
            raise ValueError(f"shift must have shape {self.shift.shape}, got {shift.shape}.")
        delta = self.shift - shift
        first = self.first + self.resp_sum[:, None] * delta
        # Per component: second + delta f^T + f delta^T + N delta delta^T, with f the old first sums.
        cross = delta[:, :, None] * self.first[:, None, :]
        per_component = cross + cross.swapaxes(1, 2) + self.resp_sum[:, None, None] * delta[:, :, None] * delta[:, None, :]
        layout = kernel_layout(self.covariance_type)
        if layout == "full":
            second = self.second + per_component
        elif layout == "tied":
            second = self.second + per_component.sum(axis=0)
        else:
            second = self.second + np.diagonal(per_component, axis1=1, axis2=2)
        return SufficientStatistics(
            self.covariance_type, self.resp_sum, first, second, shift, self.log_likelihood, self.weight_total
        )

    def merge(self, other: "SufficientStatistics") -> "SufficientStatistics":
        """The statistics of both sets of rows (disjoint sets: nothing is counted twice).

        ``other`` is moved to this object's shift first when the two differ.
        Returns a new object; neither input is modified.
        """
        if not isinstance(other, SufficientStatistics):
            raise TypeError(f"merge expects a SufficientStatistics, got {type(other).__name__}.")
        if other.covariance_type != self.covariance_type or other.first.shape != self.first.shape:
            raise ValueError(
                "Cannot merge statistics of different models: "
                f"{self.covariance_type!r} with {self.n_components} components and {self.n_features} features, "
                f"and {other.covariance_type!r} with {other.n_components} components and {other.n_features} features."
            )
        if not np.array_equal(other.shift, self.shift):
            other = other.shifted_to(self.shift)
        return SufficientStatistics(
            self.covariance_type,
            self.resp_sum + other.resp_sum,
            self.first + other.first,
            self.second + other.second,
            self.shift,
            self.log_likelihood + other.log_likelihood,
            self.weight_total + other.weight_total,
        )

    def __add__(self, other):
        if not isinstance(other, SufficientStatistics):
            return NotImplemented
        return self.merge(other)

    def scaled(self, factor: float) -> "SufficientStatistics":
        """Every sum multiplied by ``factor`` >= 0 (as if every row's weight were); used by online EM."""
        if not (isinstance(factor, numbers.Real) and np.isfinite(factor) and factor >= 0):
            raise ValueError(f"factor must be a finite non-negative number, got {plain(factor)!r}.")
        return SufficientStatistics(
            self.covariance_type, self.resp_sum * factor, self.first * factor, self.second * factor,
            self.shift, self.log_likelihood * factor, self.weight_total * factor,
        )

    def __repr__(self) -> str:
        return (
            f"SufficientStatistics(covariance_type={self.covariance_type!r}, n_components={self.n_components}, "
            f"n_features={self.n_features}, weight_total={self.weight_total:.6g})"
        )


def _float_array(value, name: str, ndim) -> np.ndarray:
    """A read-only float64 copy of ``value``, finite, of ``ndim`` dimensions (any if None)."""
    array = np.array(value, dtype=np.float64)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"SufficientStatistics.{name} must be {ndim}-dimensional, got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"SufficientStatistics.{name} holds NaN or infinity.")
    array.flags.writeable = False
    return array
