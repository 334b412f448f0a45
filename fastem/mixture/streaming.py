"""GaussianMixture's methods for data beyond one array: statistics hand-over, online EM, blockwise inference.

* :meth:`~StreamingMethods.compute_statistics` and
  :meth:`~StreamingMethods.update_from_statistics` split an EM iteration at
  its additive middle (:class:`~fastem.mixture.statistics.SufficientStatistics`),
  so other engines can run the E-step on their part of the data.
* :meth:`~StreamingMethods.partial_fit` is stepwise (online) EM: running
  statistics blended with each mini-batch's, then the M-step.
* ``predict``, ``predict_proba`` and ``score_samples`` of memmaps and
  iterables of row blocks run block by block (NumPy results); of dask arrays
  they return dask arrays computed one task per block.

Online EM (Cappé & Moulines 2009; Liang & Klein 2009, "stepwise EM"). The
running statistics ``s`` are per unit of weight. For the t-th call (t = 0, 1,
...), with ``b`` the mini-batch's statistics under the current parameters,
divided by its total weight:

    rho_t = (t + 2) ** -ONLINE_DECAY,   s <- (1 - rho_t) s + rho_t b,   params <- M-step(s)

The first call initialises the parameters from its batch (``init_params``,
or ``weights_init``/``means_init``/``precisions_init``) and takes ``s = b``
(rho = 1). ``ONLINE_DECAY`` = 0.6 lies in (0.5, 1], where the step sizes sum
to infinity while their squares do not, the condition under which the
running statistics converge. A ``fit`` starts over; ``partial_fit`` after a
``fit`` continues from the fitted parameters with t = 0.
"""

from __future__ import annotations

import numpy as np

from fastem._core.numba import numba_threads, resolve_n_jobs
from fastem._core.sources import chunk_source, is_dask_array
from fastem._core.validation import check_data, check_random_state, check_sample_weight
from fastem.mixture.chunked_fit import source_estep
from fastem.mixture.parameters import GaussianParams
from fastem.mixture.statistics import SufficientStatistics
from fastem.mixture.steps import estep, mstep

ONLINE_DECAY = 0.6


class StreamingMethods:
    """Mixed into :class:`~fastem.mixture.GaussianMixture`; see the module docstring."""

    # -- statistics hand-over ----------------------------------------------------

    def compute_statistics(self, X, sample_weight=None) -> SufficientStatistics:
        """E-step statistics of X under the current (fitted) parameters.

        Statistics of disjoint parts of a data set merge
        (:meth:`SufficientStatistics.merge`) into those of the whole, and
        :meth:`update_from_statistics` turns them into parameters: one EM
        iteration, with the E-step run wherever the data are.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap, dask array, or row blocks
            Any data ``fit`` accepts, except missing values (NaN).
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        stats : SufficientStatistics
        """
        self._check_is_fitted()
        params = self._params()
        with numba_threads(resolve_n_jobs(self.n_jobs)):
            source = chunk_source(X, sample_weight)
            if source is None:
                X = check_data(X, n_features=self.n_features_in_)
                weights = check_sample_weight(sample_weight, X.shape[0])
                stats = estep(X, weights, params, self.covariance_type)
            else:
                _expect_model_shape(source, self)
                stats = source_estep(source, params, self.covariance_type)
        return SufficientStatistics._from_internal(stats, self.covariance_type)

    def update_from_statistics(self, stats: SufficientStatistics):
        """Run the M-step on ``stats`` and set the fitted attributes from the result.

        The model need not be fitted: statistics computed elsewhere fix the
        number of features. ``n_iter_`` counts the updates since the last
        ``fit``, ``lower_bound_`` is ``stats.mean_log_likelihood`` (the mean
        log-likelihood under the parameters the statistics were computed
        with) and ``converged_`` is False (nothing tested convergence).

        Parameters
        ----------
        stats : SufficientStatistics
            For this model's ``n_components`` and ``covariance_type``.

        Returns
        -------
        self
        """
        self._check_parameters()
        if not isinstance(stats, SufficientStatistics):
            raise TypeError(f"stats must be a SufficientStatistics, got {type(stats).__name__}.")
        if stats.n_components != self.n_components or stats.covariance_type != self.covariance_type:
            raise ValueError(
                f"stats are for {stats.n_components} components with covariance_type={stats.covariance_type!r}; "
                f"this model has n_components={self.n_components}, covariance_type={self.covariance_type!r}."
            )
        fitted = self.__sklearn_is_fitted__() and hasattr(self, "means_")
        if fitted and stats.n_features != self.n_features_in_:
            raise ValueError(
                f"stats have {stats.n_features} features, but GaussianMixture is expecting "
                f"{self.n_features_in_} features."
            )
        if stats.weight_total <= 0:
            raise ValueError("stats have a total weight of 0: they hold no rows to estimate from.")
        dtype = self.means_.dtype if fitted else np.dtype(np.float64)
        self._apply_mstep(stats._to_internal(), dtype)
        self.n_iter_ = (self.n_iter_ + 1) if fitted and hasattr(self, "n_iter_") else 1
        self.converged_ = False
        self.lower_bound_ = stats.mean_log_likelihood
        self.lower_bounds_ = [*getattr(self, "lower_bounds_", []), self.lower_bound_] if fitted else [self.lower_bound_]
        self.n_features_in_ = stats.n_features
        return self

    def _apply_mstep(self, stats, dtype) -> None:
        float32 = dtype == np.float32
        params = mstep(stats, self.covariance_type, float(self.reg_covar), 10 * np.finfo(dtype).eps, float32)
        self._set_fitted(params, dtype)

    # -- online EM ---------------------------------------------------------------------

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model from one mini-batch of rows (stepwise online EM; see the module docstring).

        The first call (and the first after ``n_components`` or
        ``covariance_type`` changed) initialises from its batch, which then needs at least
        ``n_components`` rows. Missing values (NaN) are not supported here.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        self

        Notes
        -----
        After each call ``n_iter_`` is the number of updates since the model
        was initialised, ``lower_bound_`` the batch's mean log-likelihood under
        the parameters it was given, and ``converged_`` False.
        """
        self._check_parameters()
        fitted = _fitted_for_current_parameters(self)
        X = check_data(X, n_features=self.n_features_in_ if fitted else None, estimator_name="GaussianMixture")
        weights = check_sample_weight(sample_weight, X.shape[0])
        batch_weight = X.shape[0] if weights is None else float(weights.sum())
        if batch_weight <= 0:
            raise ValueError("The mini-batch has a total sample_weight of 0: nothing to learn from.")
        dtype = self.means_.dtype if fitted else X.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        running = getattr(self, "_online_statistics", None) if fitted else None
        with numba_threads(resolve_n_jobs(self.n_jobs)):
            if fitted:
                params = self._params()
            else:
                params = self._first_batch_params(X, weights)
            stats = estep(X, weights, params, self.covariance_type)
            batch = SufficientStatistics._from_internal(stats, self.covariance_type).scaled(1.0 / batch_weight)
            step = 0 if running is None else self._online_steps
            rho = 1.0 if running is None else (step + 2.0) ** -ONLINE_DECAY
            if running is None:
                running = batch
            else:
                # Centre the running sums at the current means before blending (exact), so
                # they stay as accurate as a fresh E-step's.
                running = running.shifted_to(batch.shift).scaled(1.0 - rho).merge(batch.scaled(rho))
            self._apply_mstep(running._to_internal(), dtype)
        self._online_statistics = running
        self._online_steps = step + 1
        self.n_iter_ = self._online_steps
        self.converged_ = False
        self.lower_bound_ = batch.mean_log_likelihood
        self.lower_bounds_ = [self.lower_bound_] if step == 0 else [*self.lower_bounds_, self.lower_bound_]
        self.n_features_in_ = X.shape[1]
        return self

    def _first_batch_params(self, X, weights) -> GaussianParams:
        n_samples = X.shape[0]
        if n_samples < self.n_components:
            raise ValueError(
                f"The first partial_fit batch initialises the model and needs n_samples >= n_components; got "
                f"n_components = {self.n_components}, n_samples = {n_samples}."
            )
        if weights is not None and np.count_nonzero(weights) < self.n_components:
            raise ValueError(
                f"sample_weight has {np.count_nonzero(weights)} positive entries, fewer than "
                f"n_components = {self.n_components}."
            )
        inits = self._checked_init_arrays(X.shape[1], X.dtype)
        resp_eps = 10 * np.finfo(X.dtype).eps
        return self._initial_params(
            X, weights, check_random_state(self.random_state), inits, float(self.reg_covar), resp_eps,
            X.dtype == np.float32,
        )

    # -- inference on blocks ------------------------------------------------------------

    def _on_blocks(self, X, method: str):
        """``method``'s result for X read block by block, or None when X is an in-memory array-like.

        Dask arrays give a dask array (one task per block, each on one
        thread); memmaps and iterables of blocks give a NumPy array.
        """
        self._check_is_fitted()
        if is_dask_array(X):
            return _dask_inference(self, X, method)
        source = chunk_source(X)
        if source is None:
            return None
        _expect_model_shape(source, self)
        parts = [getattr(self, method)(block) for block, _ in source.blocks() if block.shape[0]]
        if parts:
            return np.concatenate(parts)
        empty_shape = (0, self.n_components) if method == "predict_proba" else (0,)
        return np.empty(empty_shape, dtype=np.int64 if method == "predict" else np.float64)


def _fitted_for_current_parameters(model) -> bool:
    """Whether the model holds fitted parameters of its current n_components and covariance_type."""
    if not (hasattr(model, "means_") and hasattr(model, "n_features_in_")):
        return False
    k, d = model.means_.shape
    expected = {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}.get(model.covariance_type)
    return k == model.n_components and model.covariances_.shape == expected


def _expect_model_shape(source, model) -> None:
    """Check a source against the fitted model's feature count; blocks are then read in the model's dtype."""
    if source.n_features is not None and source.n_features != model.n_features_in_:
        raise ValueError(
            f"X has {source.n_features} features, but GaussianMixture is expecting {model.n_features_in_} "
            "features as input."
        )
    source.n_features = model.n_features_in_
    source.features_expected_by = "GaussianMixture is expecting"
    if source.dtype is None:
        source.dtype = model.means_.dtype


def _dask_inference(model, X, method: str):
    import copy

    import dask.array as da

    if X.ndim != 2:
        raise ValueError(f"Expected a 2D array for X, got a dask array of shape {X.shape}.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    worker_model = copy.deepcopy(model)
    worker_model.n_jobs = 1  # a task per block and per worker thread is the parallelism
    if method == "predict_proba":
        return da.map_blocks(
            _apply_to_block, X, worker_model, method, dtype=np.float64,
            chunks=(X.chunks[0], (model.n_components,)),
        )
    dtype = np.int64 if method == "predict" else np.float64
    return da.map_blocks(_apply_to_block, X, worker_model, method, dtype=dtype, drop_axis=1)


def _apply_to_block(block, model, method: str):
    if block.shape[0] == 0:
        shape = (0, model.n_components) if method == "predict_proba" else (0,)
        return np.empty(shape, dtype=np.int64 if method == "predict" else np.float64)
    return getattr(model, method)(block)
