"""Gaussian mixtures on data with missing values (NaN): exact EM, marginal densities, imputation.

Missing entries are assumed missing at random. For a row with observed
coordinates O, the E-step uses the marginal density of x_O under each
component, and the statistics use the conditional expectation of the missing
coordinates and their conditional covariance, so every iteration is an exact
EM step on the observed-data likelihood. The kernels
(``_missing_kernels``) need the rows grouped by missingness pattern; a
:class:`MissingLayout` holds that grouping, computed once per call (the
pattern of a row never changes during a fit).

Data without NaN never come here: they take the complete-data kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem.mixture import _missing_kernels
from fastem.mixture.parameters import GaussianParams, GaussianStats
from fastem.mixture.steps import _reduce_second


def check_observed_columns(mask: np.ndarray, name: str = "X", weighted: bool = False) -> None:
    """Raise a ValueError naming the first column of ``name`` in which every entry of ``mask`` is missing.

    ``weighted``: ``mask`` holds only the rows of positive weight (the message says so).
    """
    empty = np.flatnonzero(mask.all(axis=0))
    if empty.size:
        columns = ", ".join(str(int(c)) for c in empty[:5]) + (", ..." if empty.size > 5 else "")
        where = " in the rows of positive sample_weight" if weighted else ""
        raise ValueError(
            f"Column {int(empty[0])} of {name} has no observed value{where} (every entry is NaN); columns "
            f"without observed values: {columns}. A mixture cannot estimate anything about them: drop them "
            "before fitting."
        )


@dataclass
class MissingLayout:
    """Rows of X grouped by missingness pattern, for the kernels.

    order : (n_used,) intp
        Indices of the rows taken into account, rows with the same pattern
        consecutive (patterns in a data-dependent order, never thread-dependent).
    pattern_starts : (n_patterns + 1,) intp
        Where each pattern starts in ``order``, and the end.
    """

    order: np.ndarray
    pattern_starts: np.ndarray

    @classmethod
    def of_rows(cls, mask: np.ndarray, rows: np.ndarray) -> "MissingLayout":
        """The layout of the rows ``rows`` (indices into ``mask``, the NaN mask of X)."""
        rows = np.asarray(rows, dtype=np.intp)
        if rows.size == 0:
            return cls(rows, np.zeros(1, dtype=np.intp))
        packed = np.packbits(mask[rows], axis=1)
        if packed.shape[1] <= 8:
            # Up to 64 features: one integer per row. Sorting integers is
            # several times faster, and numpy's stable sort of 8- and 16-bit
            # integers (up to 16 features) is a radix sort.
            width = next(size for size in (1, 2, 4, 8) if size >= packed.shape[1])
            padded = np.zeros((packed.shape[0], width), dtype=np.uint8)
            padded[:, : packed.shape[1]] = packed
            keys = padded.view(f"<u{width}").ravel()
        else:
            # One opaque bytes value per row, so np.unique compares whole patterns at once.
            keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
        # One stable sort: rows of a pattern keep their order in X.
        by_pattern = np.argsort(keys, kind="stable")
        sorted_keys = keys[by_pattern]
        changes = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        pattern_starts = np.concatenate([[0], changes, [rows.size]]).astype(np.intp)
        return cls(np.ascontiguousarray(rows[by_pattern]), pattern_starts)

    @property
    def n_patterns(self) -> int:
        return self.pattern_starts.size - 1

    def sorted_rows(self, X: np.ndarray) -> np.ndarray:
        """The rows ``order`` of X, as one contiguous copy in that order."""
        return np.ascontiguousarray(X[self.order])


def full_covariances(params: GaussianParams, covariance_type: str, n_features: int) -> np.ndarray:
    """The covariances as float64 (k or 1, d, d) matrices: one shared matrix for 'tied'."""
    covariances = np.asarray(params.covariances, dtype=np.float64)
    if covariance_type == "full":
        return np.ascontiguousarray(covariances)
    if covariance_type == "tied":
        return np.ascontiguousarray(covariances[None])
    n_components = params.means.shape[0]
    variances = covariances if covariance_type == "diag" else np.repeat(covariances[:, None], n_features, axis=1)
    full = np.zeros((n_components, n_features, n_features))
    full[:, np.arange(n_features), np.arange(n_features)] = variances
    return full


def _kernel_model(params: GaussianParams, covariance_type: str, n_features: int) -> tuple:
    means = np.ascontiguousarray(params.means, dtype=np.float64)
    with np.errstate(divide="ignore"):  # a zero weight is a component that can never win
        log_weights = np.log(np.asarray(params.weights, dtype=np.float64))
    return means, full_covariances(params, covariance_type, n_features), log_weights


class MissingData:
    """X with NaN, prepared once for the EM iterations of a fit.

    Rows with no observed value, and rows of weight 0, are left out of the
    E-step: their marginal likelihood is 1 whatever the parameters, so they
    carry no information. Their weights still count in the mean
    log-likelihood (each adds log 1 = 0), so ``lower_bound_`` stays the mean
    of ``score_samples`` over all rows.
    """

    def __init__(self, X: np.ndarray, sample_weight):
        self.X = X
        self.mask = np.isnan(X)
        check_observed_columns(self.mask)
        self.sample_weight = sample_weight
        observed_any = ~self.mask.all(axis=1)
        used = observed_any if sample_weight is None else observed_any & (sample_weight > 0)
        if sample_weight is not None:
            check_observed_columns(self.mask[used], weighted=True)
        self.used = used
        self.n_informative = int(np.count_nonzero(used))
        self.layout = MissingLayout.of_rows(self.mask, np.flatnonzero(used))
        # The kernels read the rows in pattern order: a sorted copy, made once
        # per fit, turns that into one sequential pass per iteration.
        self.X_sorted = self.layout.sorted_rows(X)
        self.sorted_weights = np.empty(0) if sample_weight is None else sample_weight[self.layout.order]
        unused = ~used
        self.unused_weight = float(np.count_nonzero(unused) if sample_weight is None else sample_weight[unused].sum())

    def estep(self, params: GaussianParams, covariance_type: str) -> GaussianStats:
        """Expected complete-data statistics under ``params``, centred at the current means."""
        n_features = self.X.shape[1]
        n_components = params.means.shape[0]
        means, covariances, log_weights = _kernel_model(params, covariance_type, n_features)
        resp_sum = np.zeros(n_components)
        first = np.zeros((n_components, n_features))
        second = np.zeros((n_components, n_features, n_features))
        totals = np.zeros(2)
        _missing_kernels.estep_missing(
            self.X_sorted, self.sorted_weights, self.layout.pattern_starts, means, covariances, log_weights,
            (resp_sum, first, second, totals),
        )
        log_likelihood = float(totals[0])
        if not np.isfinite(log_likelihood):
            raise ValueError(
                "The log-likelihood of the observed data is not finite: some rows have zero density under "
                "every component (extreme precisions, or data far outside the model). Scale the data, or "
                "increase reg_covar."
            )
        return GaussianStats(
            resp_sum, first, _reduce_second(second, covariance_type), means, log_likelihood,
            float(totals[1]) + self.unused_weight,
        )

    def init_weights(self):
        """The row weights for initialisation: ``sample_weight``, with 0 for the rows left out of the fit.

        A row with no observed value would otherwise enter k-means (or be
        drawn as a starting point) as the column-mean point. None when every
        row is used and there is no ``sample_weight``, so that such data
        consume the random state exactly as complete data do.
        """
        if self.used.all():
            return self.sample_weight
        weights = np.ones(self.X.shape[0]) if self.sample_weight is None else self.sample_weight.copy()
        weights[~self.used] = 0.0
        return weights

    def filled(self) -> np.ndarray:
        """A copy of X with each NaN replaced by its column's weighted observed mean, for initialisation.

        The means are over the rows the fit uses, each of which has a
        positive weight; every column is observed in one of them (checked).
        """
        X = self.X
        weights = np.where(self.used, 1.0 if self.sample_weight is None else self.sample_weight, 0.0)
        observed_weights = np.where(self.mask, 0.0, weights[:, None])
        values = np.where(self.mask, 0.0, X.astype(np.float64))
        column_means = (observed_weights * values).sum(axis=0) / observed_weights.sum(axis=0)
        return np.ascontiguousarray(np.where(self.mask, column_means.astype(X.dtype), X))


def weighted_log_prob(X: np.ndarray, params: GaussianParams, covariance_type: str) -> np.ndarray:
    """log w_j + log N(x_iO | mu_jO, Sigma_jOO) for every row (its observed coordinates O) and component.

    A row with no observed value gets log w_j.
    """
    n_samples, n_features = X.shape
    mask = np.isnan(X)
    layout = MissingLayout.of_rows(mask, np.arange(n_samples))
    means, covariances, log_weights = _kernel_model(params, covariance_type, n_features)
    out = np.empty((n_samples, means.shape[0]))
    _missing_kernels.log_prob_missing(
        layout.sorted_rows(X), layout.order, layout.pattern_starts, means, covariances, log_weights, out
    )
    return out


def impute(X: np.ndarray, params: GaussianParams, covariance_type: str, random_state=None) -> np.ndarray:
    """A copy of X with its NaN replaced: conditional expectations, or (``random_state`` given) draws.

    A draw picks a component from the row's responsibilities, then the
    missing values from that component's conditional Gaussian. The random
    numbers are drawn here, in row order: one uniform per incomplete row,
    then one standard normal per missing entry, row by row.
    """
    mask = np.isnan(X)
    out = X.copy()
    incomplete = np.flatnonzero(mask.any(axis=1))
    if incomplete.size == 0:
        return out
    layout = MissingLayout.of_rows(mask, incomplete)
    means, covariances, log_weights = _kernel_model(params, covariance_type, X.shape[1])
    if random_state is None:
        uniforms = normals = np.empty(0)
        normal_starts = np.empty(0, dtype=np.intp)
    else:
        counts = mask[incomplete].sum(axis=1)
        uniforms_by_row = random_state.uniform(size=incomplete.size)
        normals = random_state.standard_normal(size=int(counts.sum()))
        starts_by_row = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
        # The kernel reads them by position in layout.order.
        rank = np.empty(X.shape[0], dtype=np.intp)
        rank[incomplete] = np.arange(incomplete.size)
        positions = rank[layout.order]
        uniforms = np.ascontiguousarray(uniforms_by_row[positions])
        normal_starts = np.ascontiguousarray(starts_by_row[positions])
    _missing_kernels.impute_missing(
        layout.sorted_rows(X), layout.order, layout.pattern_starts, means, covariances, log_weights, uniforms, normals,
        normal_starts, out,
    )
    failed = np.isnan(out[incomplete]).any(axis=1)
    if failed.any():
        row = int(incomplete[np.flatnonzero(failed)[0]])
        raise ValueError(
            f"Row {row} of X has zero density under every component of the model (its observed values are far "
            f"outside it), so its missing values cannot be imputed; {int(failed.sum())} row(s) are in this case. "
            "Check the row, or scale the data as they were scaled for fitting."
        )
    return out
