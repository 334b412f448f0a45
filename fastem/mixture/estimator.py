"""The GaussianMixture estimator: a thin, scikit-learn compatible shell over the EM steps."""

from __future__ import annotations

import numbers

import numpy as np

from fastem._core.compilation import announce_compilation
from fastem._core.em import run_em
from fastem._core.estimator import EstimatorBase
from fastem._core.feature_names import feature_names_of, record_feature_names
from fastem._core.threads import numba_threads, resolve_n_jobs
from fastem._core.validation import (
    check_choice,
    check_data_with_missing,
    check_int,
    check_random_state,
    check_real,
    check_sample_weight,
    plain,
)
from fastem._core.numba import CHUNK_ROWS
from fastem._core.sources import chunk_source
from fastem.mixture import chunked_fit, missing
from fastem.mixture.model_file import load_model, save_model
from fastem.mixture.covariance_models import COVARIANCE_MODELS, kernel_layout
from fastem.mixture.criteria import CriteriaMethods
from fastem.mixture.diagnostics import warn_if_near_duplicates
from fastem.mixture.parameters import (
    INIT_METHODS,
    GaussianParams,
    check_means_init,
    check_precisions_init,
    check_weights_init,
    covariances_from_precisions,
    precision_cholesky_from_precisions,
    precisions_from_cholesky,
)
from fastem.mixture.streaming import StreamingMethods
from fastem.mixture.inference import InferenceMethods
from fastem.mixture.steps import estep, initial_stats, mstep

###############################################################################
# 7. The estimator


class GaussianMixture(InferenceMethods, StreamingMethods, CriteriaMethods, EstimatorBase):
    """Gaussian mixture model fitted by EM with fused, parallel Numba kernels.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: the
    same parameters, defaults, fitted attributes and methods, the same answers
    from the same starting point. In addition ``fit`` accepts
    ``sample_weight``, ``n_jobs`` sets the kernel threads (results are
    bit-identical for any value), float32 data is fitted in float32 (with
    float64 accumulation), giving float32 attributes, and data may have
    missing values (NaN): ``fit`` runs exact EM on the observed values, the
    inference methods use each row's observed values, and :meth:`impute`
    fills the gaps. ``fit`` also reads data block by block (memmaps,
    iterables of row blocks, dask arrays) with the in-memory answer;
    :meth:`partial_fit` runs online EM on mini-batches; and
    :meth:`compute_statistics` / :meth:`update_from_statistics` split an
    iteration at its mergeable statistics for E-steps run elsewhere.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : str, default='full'
        'full': each component has its own covariance matrix; 'tied': all
        share one; 'diag': each has a diagonal covariance; 'spherical': each
        has a single variance. Also any of mclust's fourteen models, named by
        volume, shape and orientation (E equal, V varying, I identity):
        'EII', 'VII', 'EEI', 'VEI', 'EVI', 'VVI', 'EEE', 'VEE', 'EVE',
        'VVE', 'EEV', 'VEV', 'EVV', 'VVV' (see
        ``fastem.mixture.covariance_models``); VII, VVI, EEE and VVV are
        spherical, diag, tied and full. ``covariances_`` has the shape of
        the kernel layout: (n_components,) for EII, (n_components,
        n_features) for the other diagonal models, (n_components,
        n_features, n_features) for the ellipsoidal ones but EEE.
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
        seeds, uniform random responsibilities, or random data points. Above
        ``max(32768, 512 * n_components)`` rows, 'kmeans' runs on a seeded
        sample of that many rows drawn in proportion to ``sample_weight``
        (``fastem._core.kmeans.draw_rows``); EM then uses every row.
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
        change of the lower bound. From 1, a fit that has to compile kernels
        (the first fit of its kind on a machine, before they are cached) says
        so first.
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

    **Missing values.** Rows are grouped by missingness pattern once per
    ``fit`` (a sorted copy of the rows that have an observed value), and the
    conditional factors are computed once per pattern and component (see
    ``fastem.mixture.missing``). ``lower_bound_`` is the mean log-likelihood
    of the observed values over all rows, a row with no observed value
    counting log 1 = 0, so it is on the scale of ``score(X)``.

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

    _accepts_missing_values = True
    # Set on an instance by callers that judge its fits themselves (GaussianMixtureIC's
    # short runs): no ConvergenceWarning and no near-duplicate warning.
    _silent_fit = False

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
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_MODELS)
        check_real(self.tol, "tol", 0.0)
        check_real(self.reg_covar, "reg_covar", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_choice(self.init_params, "init_params", INIT_METHODS)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise TypeError(f"warm_start must be a bool, got {plain(self.warm_start)!r}.")
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
            precisions = check_precisions_init(
                self.precisions_init, self._layout, k, n_features, dtype, model_name=self.covariance_type
            )
        return weights, means, precisions

    # -- fitting ------------------------------------------------------------

    def fit(self, X, y=None, sample_weight=None):
        """Estimate the mixture parameters with EM.

        Fits ``n_init`` times and keeps the initialisation with the largest
        final lower bound. With ``warm_start``, continues from the previous fit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), numpy.memmap, dask array, or row blocks
            Training data, one row per sample. float32 data is fitted in float32.
            NaN entries are missing values (missing at random): each iteration
            is an exact EM step on the likelihood of the observed values. Rows
            with no observed value are ignored; a column with none is an error.
            The initialisation runs on X with each NaN replaced by its column's
            observed mean.

            Data that is not held in memory is read block by block, one pass
            per iteration, with the in-memory result (see ``chunked_fit``): a
            ``numpy.memmap`` (blocks of 64 MiB, pages released as read); a
            callable with no arguments returning an iterable of 2-D row
            blocks, or of ``(X_block, weight_block)`` pairs (called once per
            pass); a re-iterable object of such blocks; a ``dask.array.Array``
            (one task per block on the active Dask scheduler). These take no
            NaN, and initialise on a seeded sample of at most 2**18 rows (and
            'kmeans' then on its own draw from that sample, as in memory).
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight per row: a weight multiplies the row's
            contribution (0 drops the row, an integer repeats it). With a
            memmap it may be a memmap; with a dask X, a dask array chunked
            like X's rows or an array-like; callables and iterables carry
            their weights in their blocks instead.

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
            A dask array for a dask X.
        """
        source = chunk_source(X, sample_weight)
        if source is not None:
            self._fit_source(source)
            return self.predict(X)
        X, has_nan = self._fit(X, sample_weight)
        return self._infer(X, has_nan, "labels")

    def _fit(self, X, sample_weight) -> tuple[np.ndarray, bool]:
        """Fit and set the fitted attributes; returns the validated X and whether it holds NaN.

        Data read block by block (memmaps, iterables of blocks, dask arrays)
        go to :meth:`_fit_source` instead, and (None, False) is returned.
        """
        names = feature_names_of(X)
        source = chunk_source(X, sample_weight)
        if source is not None:
            self._fit_source(source)
            return None, False
        self._check_parameters()
        X, has_nan = check_data_with_missing(X, min_samples=2)
        n_samples, n_features = X.shape
        self._check_row_counts(n_samples, None)
        sample_weight = check_sample_weight(sample_weight, n_samples)
        if sample_weight is not None:
            self._check_row_counts(n_samples, np.count_nonzero(sample_weight))
        incomplete = missing.MissingData(X, sample_weight) if has_nan else None
        if incomplete is not None and incomplete.n_informative < self.n_components:
            raise ValueError(
                f"X has {incomplete.n_informative} rows with an observed value (and a positive weight), fewer "
                f"than n_components = {self.n_components}; rows whose entries are all NaN carry no information."
            )
        inits = self._checked_init_arrays(n_features, X.dtype)
        layout = self._layout
        float32 = X.dtype == np.float32
        resp_eps = 10 * np.finfo(X.dtype).eps
        reg_covar = float(self.reg_covar)

        warm = self._continues_previous_fit(n_features)

        # With missing values, the initialisation runs on X with each NaN
        # replaced by its column's observed mean; the EM iterations then use
        # the exact missing-data E-step.
        # Rows with no observed value (which the fit leaves out) get weight 0 there.
        X_init = X if incomplete is None else incomplete.filled()
        init_weight = sample_weight if incomplete is None else incomplete.init_weights()

        def initialize(random_state):
            return self._initial_params(X_init, init_weight, random_state, inits, reg_covar, resp_eps, float32)

        if incomplete is None:
            def estep_hook(params):
                return estep(X, sample_weight, params, layout)
        else:
            def estep_hook(params):
                return incomplete.estep(params, layout)

        compiling = (
            f"compiling kernels for {layout} covariance, {X.dtype}, {n_features} features"
            f"{', missing values' if incomplete is not None else ''}; cached for later runs"
        )
        weight_total = float(n_samples if sample_weight is None else sample_weight.sum())
        self._run_em(initialize, estep_hook, X.dtype, n_features, n_samples, warm, compiling, weight_total, names)
        return X, has_nan

    def _check_row_counts(self, n_samples: int, n_positive) -> None:
        """At least n_components rows, and as many of positive weight (``n_positive``, None without weights)."""
        if n_samples < self.n_components:
            raise ValueError(
                f"Expected n_samples >= n_components but got n_components = {self.n_components}, "
                f"n_samples = {n_samples}"
            )
        if n_positive is not None and n_positive < self.n_components:
            raise ValueError(
                f"sample_weight has {n_positive} positive entries, fewer than n_components = {self.n_components}."
            )

    def _continues_previous_fit(self, n_features: int) -> bool:
        """Whether this fit warm-starts from the previous one (which must have had n_features)."""
        warm = bool(self.warm_start) and hasattr(self, "converged_")
        if warm and self.n_features_in_ != n_features:
            raise ValueError(
                f"X has {n_features} features, but GaussianMixture is expecting {self.n_features_in_} "
                "features as input (warm_start continues the previous fit)."
            )
        return warm

    def _fit_source(self, source) -> None:
        """Fit from data read block by block (see ``chunked_fit.fit_from_source``)."""
        chunked_fit.fit_from_source(self, source)

    def _run_em(self, initialize, estep_hook, dtype, n_features: int, n_rows: int, warm: bool, compiling: str,
                weight_total: float, feature_names=None) -> None:
        """Run the EM driver with this estimator's settings and store the fitted attributes.

        ``weight_total`` is the data's total weight (rows without weights),
        which online EM needs to continue from the fit (``streaming``).
        ``feature_names``: the data's column names (``feature_names_of``), or
        None (arrays and sources).
        """
        covariance_type = self.covariance_type
        reg_covar = float(self.reg_covar)
        resp_eps = 10 * np.finfo(dtype).eps
        float32 = dtype == np.float32
        with numba_threads(self._n_threads(n_rows, n_features)), \
                announce_compilation(compiling, enabled=self.verbose >= 1):
            result = run_em(
                initialize,
                estep_hook,
                lambda stats: mstep(stats, covariance_type, reg_covar, resp_eps, float32),
                n_init=self.n_init,
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=check_random_state(self.random_state),
                warm_params=self._params() if warm else None,
                warm_lower_bound=self.lower_bound_ if warm else -np.inf,
                verbose=int(self.verbose),
                verbose_interval=self.verbose_interval,
                warn=not self._silent_fit,
            )
        self._set_fitted(result.params, dtype)
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.lower_bounds_ = list(result.lower_bounds)
        self.n_features_in_ = n_features
        record_feature_names(self, feature_names)
        self._restart_online(weight_total)
        if not self._silent_fit:
            warn_if_near_duplicates(self, self._layout)

    def _n_threads(self, n_rows: int, n_features: int) -> int:
        """Kernel threads for passes over ``n_rows`` rows: ``n_jobs``, or for the default, one when the work is small.

        The work count is rows x components x features, and a pass has one
        task per ``CHUNK_ROWS`` rows (``fastem._core.threads``).
        """
        n_chunks = -(-n_rows // CHUNK_ROWS)
        return resolve_n_jobs(self.n_jobs, work=n_rows * self.n_components * n_features, n_tasks=n_chunks)

    def _initial_params(self, X, sample_weight, random_state, inits, reg_covar, resp_eps, float32) -> GaussianParams:
        weights_init, means_init, precisions_init = inits
        layout = self._layout
        if weights_init is None or means_init is None or precisions_init is None:
            stats = initial_stats(X, sample_weight, self.n_components, self.init_params, layout, random_state)
            params = mstep(stats, self.covariance_type, reg_covar, resp_eps, float32)
        else:
            params = GaussianParams(None, None, None, None)
        if weights_init is not None:
            params.weights = weights_init.copy()
        if means_init is not None:
            params.means = means_init.copy()
        if precisions_init is not None:
            params.precisions_cholesky = precision_cholesky_from_precisions(precisions_init, layout)
            params.covariances = covariances_from_precisions(precisions_init, layout)
        return params

    def _set_fitted(self, params: GaussianParams, dtype) -> None:
        self.weights_ = np.array(params.weights, dtype=dtype)
        self.means_ = np.array(params.means, dtype=dtype)
        self.covariances_ = np.array(params.covariances, dtype=dtype)
        self.precisions_cholesky_ = np.array(params.precisions_cholesky, dtype=dtype)
        self.precisions_ = precisions_from_cholesky(self.precisions_cholesky_, self._layout).astype(dtype)
        self._fitted_for = (self.n_components, self.covariance_type)

    @property
    def _layout(self) -> str:
        """The kernel layout of ``covariance_type`` (``covariance_models.kernel_layout``)."""
        return kernel_layout(self.covariance_type)

    def _params(self) -> GaussianParams:
        return GaussianParams(self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)

    # -- missing values and sampling -----------------------------------------

    def impute(self, X, method="mean", random_state=None) -> np.ndarray:
        """Fill the missing values (NaN) of X from the fitted mixture.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data with NaN for missing entries (missing at random).
        method : {'mean', 'sample'}, default='mean'
            'mean': each NaN becomes its conditional expectation given the
            row's observed values, sum_j r_j E[x_M | x_O, component j], with
            r_j the row's responsibilities. A row with no observed value gets
            the mixture mean. 'sample': a draw from the conditional
            distribution (a component from the responsibilities, then the
            missing values from that component's conditional Gaussian), for
            multiple imputation.
        random_state : int, RandomState instance or None, default=None
            Seeds ``method='sample'``; None uses the estimator's
            ``random_state`` (as :meth:`sample` does). Draws are made in row
            order (one uniform per incomplete row, then one standard normal
            per missing entry), so a seed gives the same imputation for any
            ``n_jobs``. Ignored by 'mean'.

        Returns
        -------
        X_imputed : ndarray of shape (n_samples, n_features)
            A new array of X's float dtype; observed values are copied unchanged.
        """
        check_choice(method, "method", ("mean", "sample"))
        X, has_nan = self._checked(X)
        if not has_nan:
            return X.copy()
        rng = None
        if method == "sample":
            rng = check_random_state(self.random_state if random_state is None else random_state)
        with numba_threads(self._n_threads(*X.shape)):
            return missing.impute(X, self._params(), self._layout, rng)

    def sample(self, n_samples=1):
        """Draw samples from the fitted mixture (seeded by ``random_state``, as scikit-learn).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        labels : ndarray of shape (n_samples,)
            The component each sample came from.
        """
        self._check_is_fitted()
        if isinstance(n_samples, numbers.Integral) and n_samples < 1:
            # scikit-learn's sentence, which code matches.
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling requires at least one sample."
            )
        n_samples = check_int(n_samples, "n_samples", 1)
        rng = check_random_state(self.random_state)
        n_features = self.means_.shape[1]
        counts = rng.multinomial(n_samples, self.weights_.astype(np.float64) / self.weights_.astype(np.float64).sum())
        means = self.means_.astype(np.float64)
        covariances = self.covariances_.astype(np.float64)
        layout = self._layout
        if layout == "full":
            parts = [rng.multivariate_normal(m, c, int(s)) for m, c, s in zip(means, covariances, counts)]
        elif layout == "tied":
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
