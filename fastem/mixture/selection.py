"""``GaussianMixtureIC``: fit a grid of (covariance model, number of components) and keep the best by BIC, AIC or ICL.

The sweep is built to find each cell's maximum likelihood, not one start's:

1. for each number of components k, a few starting partitions are computed
   once (``starts``: a Ward tree cut at k, then k-means runs and k-means++
   seedings; starts that coincide are kept once) and shared by every
   covariance model;
2. each start runs ``screen_iter`` EM iterations (a short run), on a seeded
   subsample of ``SCREEN_ROWS`` rows when the data have more;
3. the start with the best likelihood after the short run continues to
   convergence (``tol``, ``max_iter``); with a subsample, to its maximum on
   the subsample, from which EM on all rows then converges in a few
   iterations.

A cell fails, and is recorded with its reason but never chosen, when it has
more components than rows, when EM fails (an ill-defined covariance), or
when its fitted model is singular (``diagnostics.singular_components``: a
component collapsed onto a point or a line, whose likelihood only
``reg_covar`` bounds), as mclust records such cells as NA.
"""

from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastem._core.estimator import EstimatorBase
from fastem._core.feature_names import feature_names_of, record_feature_names
from fastem._core.threads import numba_threads, resolve_n_jobs
from fastem._core.validation import (
    check_choice,
    check_data,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
)
from fastem.exceptions import ConvergenceWarning, compatible, warn_at_caller
from fastem.mixture import starts
from fastem.mixture.covariance_models import COVARIANCE_MODELS, MCLUST_MODELS, SKLEARN_TYPES, kernel_layout
from fastem.mixture.diagnostics import singular_components
from fastem.mixture.estimator import GaussianMixture
from fastem.mixture.parameters import GaussianParams, GaussianStats, precisions_from_cholesky
from fastem.mixture.steps import _reduce_second, _stats_from_labels, mstep, weighted_log_prob

CRITERIA = ("bic", "aic", "icl")

# Rows per batch when scoring a fitted cell (bounds the n x k matrix of a batch).
_SCORE_BATCH_ROWS = 65536

#: Cells at each number of components whose partitions are shared with the
#: other models in the second round (the best ones by the criterion).
SHARED_SOURCES = 3

#: Rows of the subsample the short runs use on larger data: enough to rank
#: starts (10 iterations on it cost as much as one on 2e5 rows).
SCREEN_ROWS = 20_000


class GaussianMixtureIC(EstimatorBase):
    """Gaussian mixture model selection in one call: a grid of covariance models and component counts.

    The Python counterpart of R's ``Mclust(X, G = 1:9)``. Every cell
    (covariance model, number of components) is fitted from several starts
    (see the module notes), and the cell with the best ``criterion`` is kept
    as ``best_estimator_``, a fitted :class:`GaussianMixture`. ``predict``,
    ``predict_proba``, ``score``, ``score_samples`` and ``sample`` use it.

    Parameters
    ----------
    n_components : int or sequence of int, default=9
        The numbers of components to try: an int N means 1..N.
    covariance_type : str or sequence of str, default='all'
        The covariance models to try: 'all' is scikit-learn's four ('full',
        'tied', 'diag', 'spherical'); 'mclust' is mclust's fourteen ('EII'
        ... 'VVV'); or a name or a list of names ``GaussianMixture`` accepts.
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        What chooses the model; lower is better (scikit-learn's sign: mclust
        reports -BIC). 'icl' is BIC plus twice the entropy of the hard
        classification (``GaussianMixture.icl``).
    n_init : int, default=5
        Starts per cell: a hierarchical start, then ``n_init - 1`` k-means
        runs and k-means++ seedings, alternately (``starts``); starts that
        coincide are run once. Shared by all covariance models for one
        number of components.
    screen_iter : int, default=10
        EM iterations of the short run from each start (on a seeded
        subsample of ``SCREEN_ROWS`` = 20,000 rows for larger data).
    tol : float, default=1e-5
        Relative convergence threshold, mclust's rule and default: a cell's
        EM stops when its mean log-likelihood changes by less than
        ``tol * max(1, |mean log-likelihood|)`` (``GaussianMixture``'s tol is
        absolute, 1e-3 by default).
    reg_covar : float, default=1e-6
    max_iter : int, default=200
        EM iterations per cell at most on the rows the short runs use (the
        short run included); with a subsample, as many again on all rows.
    random_state : int, RandomState instance or None, default=None
        Seeds the starts. A seed gives the same results for any ``n_jobs``.
    n_jobs : int or None, default=None
        Cells fitted in parallel (threads, each fit on one thread); None uses
        all CPUs the process may use.

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The chosen cell's fitted model.
    n_components_ : int
    covariance_type_ : str
    criterion_ : float
        The chosen cell's criterion value.
    results_ : dict of columns
        One entry per cell, in the order (covariance model, then number of
        components): 'covariance_type', 'n_components', 'log_likelihood'
        (total, weighted), 'n_parameters', 'bic', 'aic', 'icl', 'n_iter'
        (EM iterations of the chosen start on all rows), 'converged', and 'error' (None, or why the cell failed; its
        log-likelihood and criteria are then NaN, its n_parameters and n_iter -1). ``pandas.DataFrame(results_)`` gives a table.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianMixtureIC
    >>> rng = np.random.default_rng(0)
    >>> X = np.vstack([rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2))])
    >>> ic = GaussianMixtureIC(n_components=4, random_state=0).fit(X)
    >>> ic.n_components_
    2
    """

    def __init__(
        self,
        n_components=9,
        *,
        covariance_type="all",
        criterion="bic",
        n_init=5,
        screen_iter=10,
        tol=1e-5,
        reg_covar=1e-6,
        max_iter=200,
        random_state=None,
        n_jobs=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.criterion = criterion
        self.n_init = n_init
        self.screen_iter = screen_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs

    # -- parameters -----------------------------------------------------------

    def _grid(self) -> tuple[list, list]:
        """The checked (covariance models, numbers of components) to try."""
        counts = self.n_components
        if isinstance(counts, (int, np.integer)) and not isinstance(counts, bool):
            counts = range(1, check_int(counts, "n_components", 1) + 1)
        try:
            counts = [check_int(value, "n_components", 1) for value in counts]
        except TypeError:
            raise TypeError(
                f"n_components must be an int or a sequence of ints, got {type(self.n_components).__name__}."
            ) from None
        if not counts:
            raise ValueError("n_components is empty: give at least one number of components.")
        models = self.covariance_type
        if isinstance(models, str):
            models = {"all": list(SKLEARN_TYPES), "mclust": list(MCLUST_MODELS)}.get(models, [models])
        models = [check_choice(model, "covariance_type", COVARIANCE_MODELS + ("all", "mclust")) for model in models]
        if not models or any(model in ("all", "mclust") for model in models):
            raise ValueError("covariance_type must be 'all', 'mclust', a model name, or a non-empty list of model names.")
        return list(dict.fromkeys(models)), sorted(set(counts))

    def _check_parameters(self) -> tuple[list, list]:
        """Check every parameter; returns the grid (``_grid``)."""
        grid = self._grid()
        check_choice(self.criterion, "criterion", CRITERIA)
        check_int(self.n_init, "n_init", 1)
        check_int(self.screen_iter, "screen_iter", 1)
        check_real(self.tol, "tol", 0.0)
        check_real(self.reg_covar, "reg_covar", 0.0)
        check_int(self.max_iter, "max_iter", 1)
        resolve_n_jobs(self.n_jobs)
        return grid

    # -- fitting --------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Fit every cell of the grid and keep the best by ``criterion``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Complete data (no NaN), float32 or float64.
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Weights as in ``GaussianMixture.fit``; the criteria then count
            ``sum(sample_weight)`` rows.

        Returns
        -------
        self : GaussianMixtureIC

        Raises
        ------
        ValueError
            If every cell fails (the table of reasons is in the message).
        """
        models, counts = self._check_parameters()
        names = feature_names_of(X)
        X = check_data(X, min_samples=1, estimator_name="GaussianMixtureIC")
        weights = check_sample_weight(sample_weight, X.shape[0])
        random_state = check_random_state(self.random_state)
        n_threads = resolve_n_jobs(self.n_jobs)
        screen = _subsample(X, weights, random_state)
        with numba_threads(n_threads):
            centres = self._starting_centres(*screen, counts, random_state)
            partitions = {
                k: _distinct([_Partition.from_centres(*screen, start) for start in found]) for k, found in centres.items()
            }
        cells = [(model, k) for model in models for k in counts]

        def first_round(cell):
            with numba_threads(1):  # one thread per cell; the cells run on n_jobs threads
                return self._fit_cell(X, weights, screen, cell[0], cell[1], partitions.get(cell[1], []))

        outcomes = _map(first_round, cells, n_threads)
        shared = self._shared_partitions(outcomes, screen, partitions)

        def second_round(outcome):
            extra = [p for p in shared.get(outcome["n_components"], []) if p.key != outcome.get("partition_key")]
            if not extra:
                return outcome
            # On a subsample, a new start must win the short runs to cost a long run; when the short
            # runs see all rows, every new start is run to the end (cheap, and it finds more maxima).
            bar = outcome.get("screen_bound", -np.inf) if screen[0] is not X else -np.inf
            with numba_threads(1):
                again = self._fit_cell(X, weights, screen, outcome["covariance_type"], outcome["n_components"],
                                       extra, bar)
            return _better(outcome, again)

        self._set_results(_map(second_round, outcomes, n_threads), names)
        return self

    def _shared_partitions(self, outcomes: list, screen, partitions: dict) -> dict:
        """For each k, the partitions of the subsample made by the best-fitting models at k, new ones only.

        The second round gives them to every other model at k: the partition
        that the model the data prefer found (VVV's, say) is often a better
        start for a constrained model than any of the first round's.
        """
        screen_X = screen[0]
        shared = {}
        for k in sorted({outcome["n_components"] for outcome in outcomes}):
            fitted = [o for o in outcomes if o["n_components"] == k and o["error"] is None]
            labels = {}
            for outcome in fitted:
                labels[id(outcome)] = outcome["estimator"].predict(screen_X)
                outcome["partition_key"] = _Partition.key_of(labels[id(outcome)], k)
            fitted.sort(key=lambda o: o[self.criterion])
            known = {p.key for p in partitions.get(k, [])}
            found = []
            for outcome in fitted[:SHARED_SOURCES]:
                if outcome["partition_key"] in known:
                    continue
                known.add(outcome["partition_key"])
                partition = _Partition.from_labels(*screen, labels[id(outcome)], k)
                if partition is not None:
                    found.append(partition)
            shared[k] = found
        return shared

    def _starting_centres(self, X, weights, counts, random_state) -> dict:
        """For each number of components, the list of starting centres (seeded, in a fixed order).

        X is the short runs' subsample (all rows when there are few).
        """
        tree, rows = starts.hierarchy(X, weights, random_state)
        n_positive = X.shape[0] if weights is None else int(np.count_nonzero(weights))
        centres = {}
        for k in counts:
            seeds = random_state.randint(np.iinfo(np.int32).max, size=self.n_init - 1)
            if k > n_positive:
                continue
            found = [starts.hierarchy_centres(tree, rows, k)]
            found += [
                starts.kmeans_centres(X, weights, k, np.random.RandomState(seed), lloyd=index % 2 == 0)
                for index, seed in enumerate(seeds)
            ]
            centres[k] = [c for c in found if c is not None]
        return centres

    def _fit_cell(self, X, weights, screen, model: str, n_components: int, partitions: list,
                  to_beat: float = -np.inf) -> dict:
        """One cell: short runs from each start, the best continued; a record with the fitted model or the error.

        The best short run is continued only if its bound exceeds ``to_beat``
        (the second round's bar: the first round's best short run).
        """
        record = {"covariance_type": model, "n_components": n_components, "estimator": None, "error": None}
        n_positive = X.shape[0] if weights is None else int(np.count_nonzero(weights))
        if n_components > n_positive:
            record["error"] = f"n_components = {n_components} exceeds the {n_positive} rows (of positive weight)"
            return record
        screen_X, screen_weights = screen
        n_screen_positive = screen_X.shape[0] if screen_weights is None else int(np.count_nonzero(screen_weights))
        if n_components > n_screen_positive:
            screen_X, screen_weights = X, weights
            partitions = [_Partition.from_centres(X, weights, partition.centres) for partition in partitions]
        screened, errors = [], []
        screen_iter = min(self.screen_iter, self.max_iter)
        for partition in partitions:
            try:
                params = partition.initial_params(model, float(self.reg_covar), screen_X.dtype)
                screened.append(self._run(screen_X, screen_weights, model, params, screen_iter))
            except ValueError as exc:
                errors.append(str(exc))
        if not screened:
            record["error"] = errors[0] if errors else "no start could be made"
            return record
        screened.sort(key=lambda gm: -gm.lower_bound_)  # stable: ties keep the starts' order
        if screened[0].lower_bound_ <= to_beat:
            record["error"] = "no start better than the first round's"
            return record
        record["screen_bound"] = screened[0].lower_bound_
        # The best short run is continued; if it ends singular (a collapsed component wins short
        # runs by its growing likelihood) or fails, the next best is, as long as any is left.
        for candidate in screened:
            if candidate.lower_bound_ <= to_beat:
                break
            fitted, error = self._finish(candidate, X, weights, screen_X, screen_weights, screen_iter)
            if fitted is not None:
                record.update(_criteria(fitted, X, weights))
                record["estimator"] = fitted
                record["error"] = None
                return record
            record["error"] = error
        return record

    def _finish(self, best, X, weights, screen_X, screen_weights, screen_iter: int) -> tuple:
        """Continue a short run to convergence (then on all rows): (fitted model, None) or (None, why it failed)."""
        model, n_components = best.covariance_type, best.n_components
        tol = float(self.tol) * max(1.0, abs(best.lower_bound_))
        try:
            if not best.converged_ and self.max_iter > screen_iter:
                best.set_params(warm_start=True, max_iter=self.max_iter - screen_iter, tol=tol)
                iterations, history = best.n_iter_, list(best.lower_bounds_)
                self._quiet_fit(best, screen_X, screen_weights)
                best.n_iter_ += iterations
                best.lower_bounds_ = history + best.lower_bounds_  # one bound per iteration, as n_iter_ counts
            if screen_X is not X:
                # The runs so far saw a subsample; all rows take over from its maximum, which is
                # near theirs, so this costs a few iterations where a fresh run would take dozens.
                screened = GaussianParams(best.weights_, best.means_, best.covariances_, best.precisions_cholesky_)
                best = self._run(X, weights, model, screened, self.max_iter, tol)
        except ValueError as exc:
            return None, str(exc)
        layout = kernel_layout(model)
        singular = singular_components(best.covariances_, layout, n_components, X.shape[1], float(self.reg_covar))
        if singular.size:
            return None, (
                f"singular covariance: component {int(singular[0])} collapsed (its covariance, without reg_covar, "
                "is singular)"
            )
        # Hand over an ordinary model: warnings on, the sweep's n_jobs and random_state (sample() is
        # then reproducible); tol stays the absolute one it converged to.
        best.set_params(warm_start=False, max_iter=self.max_iter, n_jobs=self.n_jobs, random_state=self.random_state)
        best._silent_fit = False
        return best, None

    def _run(self, X, weights, model: str, params, max_iter: int, tol=None) -> GaussianMixture:
        """A GaussianMixture fitted from ``params`` (absolute ``tol``, ``self.tol`` by default)."""
        layout = kernel_layout(model)
        gm = GaussianMixture(
            params.means.shape[0],
            covariance_type=model,
            tol=self.tol if tol is None else tol,
            reg_covar=self.reg_covar,
            max_iter=max_iter,
            weights_init=params.weights,
            means_init=params.means,
            precisions_init=precisions_from_cholesky(params.precisions_cholesky, layout),
            n_jobs=1,
        )
        return self._quiet_fit(gm, X, weights)

    @staticmethod
    def _quiet_fit(gm: GaussianMixture, X, weights) -> GaussianMixture:
        # Short runs stop before convergence on purpose, and near-duplicate
        # components are what the sweep's other starts and cells are for.
        # (A flag: warnings.catch_warnings is not safe across threads.)
        gm._silent_fit = True
        return gm.fit(X, sample_weight=weights)

    def _set_results(self, outcomes: list, feature_names) -> None:
        columns = ("log_likelihood", "n_parameters", "bic", "aic", "icl", "n_iter", "converged")
        results = {"covariance_type": [o["covariance_type"] for o in outcomes],
                   "n_components": np.array([o["n_components"] for o in outcomes])}
        for name in columns:
            values = [o.get(name, np.nan) for o in outcomes]
            if name == "converged":
                results[name] = np.array([bool(v) if o["error"] is None else False for v, o in zip(values, outcomes)])
            elif name in ("n_parameters", "n_iter"):
                results[name] = np.array([-1 if o["error"] is not None else v for v, o in zip(values, outcomes)])
            else:
                results[name] = np.array(values, dtype=np.float64)
        results["error"] = [o["error"] for o in outcomes]
        fitted = [i for i, o in enumerate(outcomes) if o["error"] is None]
        if not fitted:
            reasons = "; ".join(f"{o['covariance_type']} k={o['n_components']}: {o['error']}" for o in outcomes[:10])
            raise ValueError(f"Every cell of the model-selection grid failed: {reasons}")
        values = results[self.criterion]
        chosen = min(fitted, key=lambda i: values[i])  # ties: the first cell in the grid's order
        self.results_ = results
        self.best_estimator_ = outcomes[chosen]["estimator"]
        self.n_components_ = int(results["n_components"][chosen])
        self.covariance_type_ = results["covariance_type"][chosen]
        self.criterion_ = float(values[chosen])
        self.n_features_in_ = self.best_estimator_.n_features_in_
        for fitted in (self, self.best_estimator_):  # the chosen model checks the names of later calls
            record_feature_names(fitted, feature_names)
        if not results["converged"][chosen]:
            warn_at_caller(
                f"The chosen model ({self.covariance_type_}, {self.n_components_} components) did not converge "
                f"within max_iter={self.max_iter} iterations; increase max_iter.",
                compatible(ConvergenceWarning),
            )

    # -- inference by the chosen model ----------------------------------------

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit the grid, then the most probable component of each row of X under the chosen model."""
        return self.fit(X, y, sample_weight).predict(X)

    def predict(self, X):
        """Most probable component of each row under the chosen model."""
        return self._best().predict(X)

    def predict_proba(self, X):
        """Responsibilities of the chosen model's components for each row."""
        return self._best().predict_proba(X)

    def score_samples(self, X):
        """Log-density of each row under the chosen model."""
        return self._best().score_samples(X)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of the rows under the chosen model."""
        return self._best().score(X)

    def sample(self, n_samples=1):
        """Draw from the chosen model; returns (X, labels)."""
        return self._best().sample(n_samples)

    def _best(self) -> GaussianMixture:
        self._check_is_fitted()
        return self.best_estimator_


class _Partition:
    """A start: a hard partition of the rows, and its statistics, shared by all models.

    The statistics are kept per component in full (k, d, d) once; each model
    takes its layout's part and runs its own M-step on it.
    """

    def __init__(self, X, weights, labels, centres):
        self.centres = centres
        self.stats = _stats_from_labels(X, weights, labels, np.ascontiguousarray(centres), "full")
        self.key = self.key_of(labels, centres.shape[0])

    @classmethod
    def from_centres(cls, X, weights, centres) -> "_Partition":
        """Each row to its nearest centre."""
        return cls(X, weights, starts.nearest_centre(X, centres), centres)

    @classmethod
    def from_labels(cls, X, weights, labels, n_components: int):
        """The partition given by ``labels`` (centred at its clusters' means), or None if a cluster is empty."""
        counts = np.bincount(labels, minlength=n_components)
        if (counts == 0).any():
            return None
        sums = np.zeros((n_components, X.shape[1]))
        np.add.at(sums, labels, X.astype(np.float64))
        return cls(X, weights, np.ascontiguousarray(labels, dtype=np.intp), sums / counts[:, None])

    @staticmethod
    def key_of(labels, n_components: int) -> bytes:
        """The partition itself, whatever the components' order: labels renumbered by first appearance."""
        _, first_rows = np.unique(labels, return_index=True)
        renumber = np.zeros(n_components, dtype=np.intp)
        renumber[labels[np.sort(first_rows)]] = np.arange(first_rows.size)
        return hashlib.sha1(renumber[labels].tobytes()).digest()

    def initial_params(self, model: str, reg_covar: float, dtype):
        """The model's M-step on this partition."""
        stats = self.stats
        layout = kernel_layout(model)
        second = _reduce_second(stats.second, layout)
        layout_stats = GaussianStats(stats.resp_sum, stats.first, second, stats.shift, 0.0, stats.weight_total)
        return mstep(layout_stats, model, reg_covar, 10 * np.finfo(dtype).eps, dtype == np.float32)


def _map(function, items: list, n_threads: int) -> list:
    """``[function(item) for item in items]``, on up to ``n_threads`` threads (same results, same order)."""
    if n_threads > 1 and len(items) > 1:
        with ThreadPoolExecutor(max_workers=min(n_threads, len(items))) as pool:
            return list(pool.map(function, items))
    return [function(item) for item in items]


def _better(first: dict, second: dict) -> dict:
    """The outcome with the higher log-likelihood (a fitted one over a failed one; ties keep ``first``)."""
    if second["error"] is not None:
        return first
    if first["error"] is not None or second["log_likelihood"] > first["log_likelihood"]:
        return second
    return first


def _subsample(X, weights, random_state) -> tuple:
    """(rows, weights) of a seeded sample of ``SCREEN_ROWS`` rows for the short runs, or all of them if fewer."""
    if X.shape[0] <= SCREEN_ROWS:
        return X, weights
    rows = np.sort(random_state.choice(X.shape[0], size=SCREEN_ROWS, replace=False))
    return np.ascontiguousarray(X[rows]), None if weights is None else weights[rows]


def _distinct(partitions: list) -> list:
    """The partitions, each kept once: k-means runs from different seeds often end at the same one, and
    for one component every start is the same."""
    kept, seen = [], set()
    for partition in partitions:
        if partition.key not in seen:
            seen.add(partition.key)
            kept.append(partition)
    return kept


def _criteria(gm: GaussianMixture, X, weights) -> dict:
    """Log-likelihood, parameter count, BIC, AIC, ICL of a fitted cell (weights count as repeated rows)."""
    log_likelihood, log_resp_of_labels = 0.0, 0.0
    params, layout = gm._params(), kernel_layout(gm.covariance_type)
    for start in range(0, X.shape[0], _SCORE_BATCH_ROWS):
        # X is validated already; log-sum-exp by hand and in place: scipy's general one cost as
        # much as the fit's last iterations.
        log_prob = weighted_log_prob(X[start:start + _SCORE_BATCH_ROWS], params, layout)
        largest = log_prob.max(axis=1)
        log_prob -= largest[:, None]
        np.exp(log_prob, out=log_prob)
        log_norm = largest + np.log(log_prob.sum(axis=1))
        row_weights = 1.0 if weights is None else weights[start:start + _SCORE_BATCH_ROWS]
        log_likelihood += float(np.sum(row_weights * log_norm))
        log_resp_of_labels += float(np.sum(row_weights * (largest - log_norm)))
    n_rows = X.shape[0] if weights is None else float(weights.sum())
    n_parameters = gm._n_parameters()
    bic = -2 * log_likelihood + n_parameters * math.log(n_rows)
    return {
        "log_likelihood": log_likelihood,
        "n_parameters": n_parameters,
        "bic": bic,
        "aic": -2 * log_likelihood + 2 * n_parameters,
        "icl": bic - 2 * log_resp_of_labels,
        "n_iter": gm.n_iter_,
        "converged": gm.converged_,
    }
