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
running statistics ``s`` are per unit of weight. For step t, with ``b`` the
mini-batch's statistics under the current parameters, divided by its total
weight:

    rho_t = (t + 2) ** -ONLINE_DECAY,   s <- (1 - rho_t) s + rho_t b,   params <- M-step(s)

The first call initialises the parameters from its batch (``init_params``,
or ``weights_init``/``means_init``/``precisions_init``) and takes ``s = b``
(step 0, no blending); the calls after it are steps t = 1, 2, ... ``ONLINE_DECAY`` = 0.6 lies in (0.5,
1], where the step sizes sum to infinity while their squares do not, the
condition under which the running statistics converge.

After ``fit`` or ``update_from_statistics`` on W rows' worth of weight,
``partial_fit`` continues from the fitted model: ``s`` starts as the
statistics its parameters imply (``SufficientStatistics._implied_by``), and
a batch of weight B is step ``t = W / B``, as if the fit had been W / B
batches of that size. A small batch then moves a well-fitted model little.
A model read by ``load`` has no record of W and continues from t = 0.
"""

from __future__ import annotations

import numpy as np

from fastem._core.feature_names import check_feature_names, feature_names_of, record_feature_names
from fastem._core.threads import numba_threads, resolve_n_jobs
from fastem._core.sources import chunk_source, is_dask_array
from fastem._core.validation import check_data_with_missing, check_random_state, check_sample_weight
from fastem.mixture.chunked_fit import source_estep
from fastem.mixture.parameters import GaussianParams, precisions_shape
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
            Any data ``fit`` accepts, except missing values (NaN). An empty
            part (no rows, or weights all 0) gives statistics of weight 0.
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        stats : SufficientStatistics
        """
        self._check_is_fitted()
        if not _fitted_for_current_parameters(self):
            fitted_k, fitted_type = getattr(self, "_fitted_for", (None, None))
            raise ValueError(
                f"The fitted attributes were fitted for n_components={fitted_k}, covariance_type={fitted_type!r}, "
                f"but the model is now set to n_components={self.n_components}, "
                f"covariance_type={self.covariance_type!r}: fit it again first."
            )
        params = self._params()
        source = chunk_source(X, sample_weight)
        if source is None:
            check_feature_names(self, X)
            X = _checked_complete(X, self.n_features_in_, 0, "compute_statistics")
            weights = check_sample_weight(sample_weight, X.shape[0], allow_zero_total=True)
            with numba_threads(self._n_threads(*X.shape)):
                stats = estep(X, weights, params, self._layout)
        else:
            _expect_model_shape(source, self)
            with numba_threads(resolve_n_jobs(self.n_jobs)):  # blocks of unknown size: the default threads
                stats = source_estep(source, params, self._layout)
        if stats is None:  # a source with no blocks: an empty part
            return SufficientStatistics._zero(params, self.covariance_type)
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
        fitted = _fitted_for_current_parameters(self)
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
        self.lower_bounds_ = [*self.lower_bounds_, self.lower_bound_] if fitted else [self.lower_bound_]
        self.n_features_in_ = stats.n_features
        self._restart_online(stats.weight_total)
        return self

    def _apply_mstep(self, stats, dtype) -> None:
        float32 = dtype == np.float32
        params = mstep(stats, self.covariance_type, float(self.reg_covar), 10 * np.finfo(dtype).eps, float32)
        self._set_fitted(params, dtype)

    def _restart_online(self, weight_seen: float) -> None:
        """Forget online EM's running statistics: new parameters came from ``weight_seen`` rows' worth of data."""
        self._online_statistics = None
        self._online_weight_seen = float(weight_seen)

    # -- online EM ---------------------------------------------------------------------

    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the model from one mini-batch of rows (stepwise online EM; see the module docstring).

        The first call (and the first after ``n_components`` or
        ``covariance_type`` changed) initialises from its batch, which then
        needs at least ``n_components`` rows. After ``fit`` (or ``load``, or
        ``update_from_statistics``) it continues from the fitted model; see
        the module docstring. Missing values (NaN) are not supported here.

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
        After each call ``n_iter_`` is the number of ``partial_fit`` updates
        since the model was initialised or fitted, ``lower_bound_`` the
        batch's mean log-likelihood under the parameters it was given, and
        ``converged_`` False.
        """
        self._check_parameters()
        fitted = _fitted_for_current_parameters(self)
        if fitted:
            check_feature_names(self, X)
        names = feature_names_of(X)
        X = _checked_complete(X, self.n_features_in_ if fitted else None, 1, "partial_fit")
        weights = check_sample_weight(sample_weight, X.shape[0])
        batch_weight = X.shape[0] if weights is None else float(weights.sum())
        dtype = self.means_.dtype if fitted else X.dtype
        X = np.ascontiguousarray(X, dtype=dtype)
        running = getattr(self, "_online_statistics", None) if fitted else None
        with numba_threads(self._n_threads(*X.shape)):
            if not fitted:
                params, step, updates = self._first_batch_params(X, weights), None, 0
            else:
                params, updates = self._params(), getattr(self, "_online_updates", 0) if running is not None else 0
                if running is None:
                    # Continue a fitted model: the running statistics are those its parameters
                    # imply, and it counts as weight_seen / batch_weight batches already seen.
                    running = SufficientStatistics._implied_by(params, self.covariance_type, float(self.reg_covar))
                    step = getattr(self, "_online_weight_seen", 0.0) / batch_weight
                else:
                    step = self._online_steps
            stats = estep(X, weights, params, self._layout)
            batch = SufficientStatistics._from_internal(stats, self.covariance_type).scaled(1.0 / batch_weight)
            if step is None:
                running, step = batch, 0.0
            else:
                rho = (step + 2.0) ** -ONLINE_DECAY
                # Centre the running sums at the current means before blending (exact), so
                # they stay as accurate as a fresh E-step's.
                running = running.shifted_to(batch.shift).scaled(1.0 - rho).merge(batch.scaled(rho))
            self._apply_mstep(running._to_internal(), dtype)
        self._online_statistics = running
        self._online_steps = step + 1.0
        self._online_updates = updates + 1
        self.n_iter_ = self._online_updates
        self.converged_ = False
        self.lower_bound_ = batch.mean_log_likelihood
        self.lower_bounds_ = [self.lower_bound_] if updates == 0 else [*self.lower_bounds_, self.lower_bound_]
        self.n_features_in_ = X.shape[1]
        if not fitted:
            record_feature_names(self, names)
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
            check_feature_names(self, X)  # once here, not per block on the workers
            return _dask_inference(self, X, method)
        source = chunk_source(X)
        if source is None:
            return None
        _expect_model_shape(source, self)
        check_feature_names(self, X)  # once: the blocks are plain arrays
        output = _BLOCK_OUTPUTS[method]
        parts = [self._infer(*self._checked(block, check_names=False), output)
                 for block, _ in source.blocks() if block.shape[0]]
        return np.concatenate(parts) if parts else _empty_result(self, method, source.dtype or np.float64)


_BLOCK_OUTPUTS = {"predict": "labels", "predict_proba": "proba", "score_samples": "score"}


def _checked_complete(X, n_features, min_samples: int, method: str) -> np.ndarray:
    """X validated as ``fit`` validates it, then refused if it holds NaN, naming the method."""
    X, has_nan = check_data_with_missing(X, n_features=n_features, min_samples=min_samples)
    if has_nan:
        raise ValueError(
            f"Input X contains NaN. GaussianMixture.{method} does not support missing values; GaussianMixture.fit "
            "does (on in-memory arrays)."
        )
    return X


def _fitted_for_current_parameters(model) -> bool:
    """Whether the model holds fitted parameters of its current n_components and covariance_type.

    Decided from what the fitted attributes were made for (recorded when they
    are set), not from their shapes: 'tied' and 'diag' covariances have the
    same shape when n_components == n_features.
    """
    if not (hasattr(model, "means_") and hasattr(model, "n_features_in_")):
        return False
    fitted_for = getattr(model, "_fitted_for", None)
    if fitted_for is None:  # fitted attributes set by older code (an old pickle): judge by shapes
        k, d = model.means_.shape
        expected = precisions_shape(model.covariance_type, k, d)  # covariances have the precisions' shape
        return k == model.n_components and np.shape(model.covariances_) == expected
    return fitted_for == (model.n_components, model.covariance_type)


def _expect_model_shape(source, model) -> None:
    """Check a source against the fitted model's feature count.

    Iterables, whose first block would otherwise decide, are read in the
    model's dtype; memmaps and dask arrays keep their own.
    """
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
    record_feature_names(worker_model, None)  # checked once by the caller; blocks are plain arrays
    dtype = _result_dtype(model, method, X.dtype)
    if method == "predict_proba":
        return da.map_blocks(
            _apply_to_block, X, worker_model, method, dtype=dtype,
            chunks=(X.chunks[0], (model.n_components,)),
        )
    return da.map_blocks(_apply_to_block, X, worker_model, method, dtype=dtype, drop_axis=1)


def _apply_to_block(block, model, method: str):
    return getattr(model, method)(block) if block.shape[0] else _empty_result(model, method, block.dtype)


def _result_dtype(model, method: str, data_dtype) -> np.dtype:
    """The dtype ``method`` returns: int64 labels; float32 only for float32 data and a float32 model."""
    if method == "predict":
        return np.dtype(np.int64)
    data_dtype = np.dtype(data_dtype)
    float32 = data_dtype.kind == "f" and data_dtype.itemsize == 4 and model.means_.dtype == np.float32
    return np.dtype(np.float32 if float32 else np.float64)


def _empty_result(model, method: str, data_dtype) -> np.ndarray:
    """What ``method`` returns for no rows (the in-memory methods refuse empty input)."""
    shape = (0, model.n_components) if method == "predict_proba" else (0,)
    return np.empty(shape, dtype=_result_dtype(model, method, data_dtype))
