"""The GaussianHMM estimator: a drop-in for ``hmmlearn.hmm.GaussianHMM`` over parallel kernels."""

from __future__ import annotations

import string

import numpy as np

from fastem._core.compilation import announce_compilation
from fastem._core.estimator import EstimatorBase
from fastem._core.feature_names import check_feature_names, feature_names_of, record_feature_names
from fastem._core.threads import numba_threads, resolve_n_jobs
from fastem._core.validation import check_choice, check_data, check_int, check_random_state, check_real, plain
from fastem.exceptions import NotFittedError, compatible
from fastem.hmm import sequences as sequence_checks
from fastem.hmm import steps
from fastem.hmm.model_file import load_model, save_model
from fastem.hmm.monitor import ConvergenceMonitor
from fastem.hmm.parameters import (
    COVARIANCE_TYPES,
    HMMParams,
    Priors,
    check_covars,
    check_distribution,
    check_priors,
    check_means,
    covars_from_template,
    full_covars,
    mstep,
)
from fastem._core.kmeans import kmeans

DECODER_ALGORITHMS = ("viterbi", "map")
IMPLEMENTATIONS = ("log", "scaling")
_PARAM_LETTERS = "stmc"
_PRIORS = ("startprob_prior", "transmat_prior", "means_prior", "means_weight", "covars_prior", "covars_weight")


class GaussianHMM(EstimatorBase):
    """Hidden Markov model with Gaussian emissions, fitted by Baum-Welch with parallel Numba kernels.

    A drop-in replacement for :class:`hmmlearn.hmm.GaussianHMM` (0.3.3): the
    same parameters, defaults, fitted attributes and methods, the same
    answers from the same starting parameters. Sequences are processed in
    parallel (``n_jobs`` threads; results are bit-identical for any value),
    and a single long sequence still uses the threads for its emission
    densities and statistics. Beyond hmmlearn, ``fit`` takes per-sequence
    ``sample_weight``, ``score(..., per_sequence=True)`` returns one
    log-likelihood per sequence, lengths that are not positive are rejected,
    and a state that receives no posterior mass keeps its previous
    parameters instead of becoming NaN.

    Parameters
    ----------
    n_components : int, default=1
        Number of states.
    covariance_type : {'spherical', 'diag', 'full', 'tied'}, default='diag'
        'spherical': one variance per state; 'diag': a diagonal covariance
        per state; 'full': a full covariance per state; 'tied': one full
        covariance shared by all states.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance that initialises
        ``covars_`` (as in hmmlearn, it is not a floor during EM).
    startprob_prior : float or array of shape (n_components,), default=1.0
        Dirichlet prior of ``startprob_`` (1 means none).
    transmat_prior : float or array of shape (n_components, n_components), default=1.0
        Dirichlet prior of each row of ``transmat_``.
    means_prior, means_weight : float or array, default=0
        Mean and precision of the normal prior of ``means_``.
    covars_prior : float or array, default=1e-2
    covars_weight : float, default=1
        Inverse-gamma ('spherical', 'diag') or inverse-Wishart ('full',
        'tied') prior of the covariances, with hmmlearn's update.
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder used by :meth:`decode` and :meth:`predict`.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation and :meth:`sample`.
    n_iter : int, default=10
        Maximum Baum-Welch iterations (0 only initialises, as in hmmlearn).
    tol : float, default=1e-2
        EM stops when the log-likelihood gains less than ``tol``.
    verbose : bool, default=False
        Print each iteration's log-likelihood to stderr (hmmlearn's format).
    params, init_params : str, default='stmc'
        Parameters updated during training, and initialised before it:
        's' startprob, 't' transmat, 'm' means, 'c' covars.
    implementation : {'log', 'scaling'}, default='log'
        Accepted for compatibility. fastem always runs its own scaled
        forward-backward, which falls back to log space on the rows where
        scaling would underflow, so it is as robust as 'log' and as fast as
        'scaling'.
    n_jobs : int or None, default=None
        Threads for the kernels; None or -1 means all available threads.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    means_ : ndarray of shape (n_components, n_features)
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Reads as full matrices for every covariance type, as in hmmlearn;
        set it in the per-type shape: (n_components,) 'spherical',
        (n_components, n_features) 'diag', (n_features, n_features) 'tied',
        (n_components, n_features, n_features) 'full'.
    monitor_ : ConvergenceMonitor
        ``history`` of log-likelihoods, ``iter``, ``converged``.
    n_features : int
        Number of features (also ``n_features_in_``).

    Notes
    -----
    The model works in float64 whatever the dtype of X, as hmmlearn does.
    With the default priors (``covars_prior=1e-2``) EM maximises the
    posterior, so the log-likelihood in ``monitor_.history`` can dip by a
    tiny amount; with ``covars_prior=0`` and ``means_weight=0`` it never
    decreases.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import GaussianHMM
    >>> rng = np.random.RandomState(0)
    >>> X = np.concatenate([rng.normal(0, 1, (50, 1)), rng.normal(8, 1, (50, 1))])
    >>> model = GaussianHMM(n_components=2, random_state=0).fit(X)
    >>> np.sort(np.round(model.means_.ravel())).tolist()
    [0.0, 8.0]
    """

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        means_prior=0,
        means_weight=0,
        covars_prior=1e-2,
        covars_weight=1,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmc",
        init_params="stmc",
        implementation="log",
        n_jobs=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_jobs = n_jobs
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)

    # -- covars_ as hmmlearn exposes it ---------------------------------------

    @property
    def covars_(self) -> np.ndarray:
        """Covariances as full (n_components, n_features, n_features) matrices."""
        if not hasattr(self, "_covars_"):
            raise AttributeError("covars_")
        n_features = self.means_.shape[1] if hasattr(self, "means_") else self._covars_.shape[-1]
        return full_covars(self._covars_, self.covariance_type, self.n_components, n_features)

    @covars_.setter
    def covars_(self, covars) -> None:
        covars = np.array(covars, dtype=np.float64, copy=True)
        n_features = covars.shape[-1] if covars.ndim >= 2 else 1
        if self.covariance_type == "spherical" and covars.ndim == 2:
            n_features = covars.shape[1]
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        self._covars_ = check_covars(covars, self.covariance_type, self.n_components, n_features)

    def __sklearn_is_fitted__(self) -> bool:
        return all(hasattr(self, name) for name in ("startprob_", "transmat_", "means_", "_covars_"))

    def _check_is_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise compatible(NotFittedError)(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )

    # -- parameter checks -------------------------------------------------------

    def _check_parameters(self) -> None:
        check_int(self.n_components, "n_components", 1)
        check_choice(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_real(self.min_covar, "min_covar", 0.0)
        check_choice(self.algorithm, "algorithm", DECODER_ALGORITHMS)
        check_choice(self.implementation, "implementation", IMPLEMENTATIONS)
        check_int(self.n_iter, "n_iter", 0)
        if isinstance(self.tol, (bool, np.bool_)) or not isinstance(self.tol, (int, float, np.integer, np.floating)) \
                or np.isnan(self.tol):
            raise ValueError(f"tol must be a number (-inf disables the convergence test), got {plain(self.tol)!r}.")
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string of the letters 's', 't', 'm', 'c', got {plain(value)!r}.")
            unknown = sorted(set(value) - set(_PARAM_LETTERS) - set(string.whitespace))
            if unknown:
                raise ValueError(
                    f"{name} may contain only 's' (startprob), 't' (transmat), 'm' (means) and 'c' (covars); "
                    f"got {plain(value)!r}."
                )
        for name in _PRIORS:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if not np.isfinite(value).all():
                raise ValueError(f"{name} must be finite, got {plain(getattr(self, name))!r}.")
        resolve_n_jobs(self.n_jobs)

    def _n_threads(self, X) -> int:
        """Kernel threads for passes over X: ``n_jobs``, or for the default, one when the work is small.

        The work count is rows x states x (states + features) (``fastem._core.threads``).
        """
        n_rows, n_features = X.shape
        return resolve_n_jobs(self.n_jobs, work=n_rows * self.n_components * (self.n_components + n_features))

    def _priors(self) -> Priors:
        return Priors(
            self.startprob_prior, self.transmat_prior, self.means_prior, self.means_weight, self.covars_prior,
            self.covars_weight,
        )

    def _checked_params(self, n_features: int) -> HMMParams:
        """The current parameters, validated (hmmlearn's ``_check``), as float64 copies."""
        k = self.n_components
        startprob = check_distribution(self.startprob_, "startprob_", (k,))
        transmat = check_distribution(self.transmat_, "transmat_", (k, k))
        means = check_means(self.means_, k, n_features)
        covars = check_covars(self._covars_, self.covariance_type, k, n_features)
        return HMMParams(startprob, transmat, means, covars)

    def _n_features(self) -> int:
        return int(np.shape(self.means_)[1])

    # -- fitting ------------------------------------------------------------------

    def fit(self, X, lengths=None, sample_weight=None):
        """Estimate the model parameters with Baum-Welch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The sequences, concatenated.
        lengths : array-like of int, shape (n_sequences,), default=None
            Length of each sequence; they must be positive and sum to
            ``n_samples``. None means one sequence.
        sample_weight : array-like of shape (n_sequences,), default=None
            Non-negative weight per *sequence*: it multiplies the sequence's
            contribution to every statistic (0 drops it, an integer repeats it).

        Returns
        -------
        self : GaussianHMM
        """
        self._check_parameters()
        names = feature_names_of(X)
        X = check_data(X, min_samples=1, estimator_name="GaussianHMM").astype(np.float64, copy=False)
        lengths = sequence_checks.check_lengths(lengths, X.shape[0])
        weights = sequence_checks.check_sequence_weights(sample_weight, lengths.shape[0])
        sequences = sequence_checks.make_sequences(lengths, weights)
        covariance_type = self.covariance_type
        update = self.params
        priors = self._priors()
        compiling = f"compiling kernels for a {covariance_type} GaussianHMM, {X.shape[1]} features; cached for later runs"
        check_priors({name: getattr(self, name) for name in _PRIORS}, covariance_type, self.n_components, X.shape[1])
        with numba_threads(self._n_threads(X)), announce_compilation(compiling, enabled=bool(self.verbose)):
            params = self._initial_params(X, sequences)
            monitor = self.monitor_
            monitor.tol, monitor.n_iter, monitor.verbose = self.tol, self.n_iter, self.verbose
            monitor._reset()
            workspace = steps.Workspace()
            for _ in range(self.n_iter):
                stats = steps.estep(X, sequences, params, covariance_type, workspace)
                params = mstep(stats, params, priors, update, covariance_type)
                monitor.report(stats.log_likelihood)
                if monitor.converged:
                    break
        self._set_params(params)
        record_feature_names(self, names)
        return self

    def _needs_init(self, code: str, name: str) -> bool:
        return code in self.init_params or not hasattr(self, name)

    def _initial_params(self, X: np.ndarray, sequences) -> HMMParams:
        """hmmlearn's initialisation for the letters in ``init_params`` (and missing attributes)."""
        k = self.n_components
        n_samples, n_features = X.shape
        if not (self._needs_init("m", "means_") and self._needs_init("c", "_covars_")) and hasattr(self, "means_"):
            if self._n_features() != n_features:
                raise ValueError(
                    f"Unexpected number of dimensions, got {n_features} but expected {self._n_features()} "
                    "(means_ or covars_ are kept from before: init_params does not contain 'm' and 'c')."
                )
        random_state = check_random_state(self.random_state)
        startprob = random_state.dirichlet(np.full(k, 1.0 / k)) if self._needs_init("s", "startprob_") else self.startprob_
        transmat = (
            random_state.dirichlet(np.full(k, 1.0 / k), size=k) if self._needs_init("t", "transmat_") else self.transmat_
        )
        row_weights = sequences.row_weights
        if self._needs_init("m", "means_"):
            if n_samples < k:
                raise ValueError(f"n_samples={n_samples} should be >= n_components={k} to initialise means_ by k-means.")
            if row_weights is not None and np.count_nonzero(row_weights) < k:
                raise ValueError(f"sample_weight leaves fewer than n_components={k} rows with a positive weight.")
            weights = np.empty(0) if row_weights is None else row_weights
            means, _ = kmeans(X, weights, k, check_random_state(self.random_state))
        else:
            means = self.means_
        if self._needs_init("c", "_covars_"):
            if n_samples < 2:
                raise ValueError("At least 2 samples are needed to initialise covars_ from the data covariance.")
            if row_weights is not None and np.count_nonzero(row_weights) < 2:
                raise ValueError(
                    "sample_weight leaves fewer than 2 rows with a positive weight: the data covariance that "
                    "initialises covars_ needs two."
                )
            template = np.atleast_2d(np.cov(X.T, aweights=row_weights)) + self.min_covar * np.eye(n_features)
            covars = covars_from_template(template, self.covariance_type, k)
        else:
            covars = self._covars_
        startprob = check_distribution(startprob, "startprob_", (k,))
        transmat = check_distribution(transmat, "transmat_", (k, k))
        return HMMParams(startprob, transmat, check_means(means, k, n_features),
                         check_covars(covars, self.covariance_type, k, n_features))

    def _set_params(self, params: HMMParams) -> None:
        self.startprob_ = params.startprob
        self.transmat_ = params.transmat
        self.means_ = params.means
        self._covars_ = params.covars
        self.n_features = self.n_features_in_ = params.means.shape[1]

    # -- inference ------------------------------------------------------------------

    def _prepare(self, X, lengths):
        """Validated (X, sequences, params) for an inference call."""
        self._check_is_fitted()
        self._check_parameters()
        n_features = self._n_features()
        check_feature_names(self, X)
        X = check_data(X, n_features=n_features, estimator_name="GaussianHMM").astype(np.float64, copy=False)
        sequences = sequence_checks.make_sequences(sequence_checks.check_lengths(lengths, X.shape[0]))
        return X, sequences, self._checked_params(n_features)

    def score(self, X, lengths=None, *, per_sequence=False):
        """Log-likelihood of X under the model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        lengths : array-like of int, shape (n_sequences,), default=None
        per_sequence : bool, default=False
            Return one log-likelihood per sequence instead of their sum.

        Returns
        -------
        log_prob : float, or ndarray of shape (n_sequences,) with ``per_sequence``
        """
        X, sequences, params = self._prepare(X, lengths)
        with numba_threads(self._n_threads(X)):
            log_likelihoods = steps.sequence_log_likelihoods(X, sequences, params, self.covariance_type)
        return log_likelihoods if per_sequence else float(log_likelihoods.sum())

    def score_samples(self, X, lengths=None):
        """Log-likelihood of X and the state posteriors of every row.

        Returns
        -------
        log_prob : float
        posteriors : ndarray of shape (n_samples, n_components)
        """
        X, sequences, params = self._prepare(X, lengths)
        with numba_threads(self._n_threads(X)):
            log_likelihoods, posteriors = steps.posteriors(X, sequences, params, self.covariance_type)
        return float(log_likelihoods.sum()), posteriors

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """State posteriors of every row, shape (n_samples, n_components); rows sum to 1."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm=None):
        """Most likely states of X.

        Parameters
        ----------
        algorithm : {'viterbi', 'map'}, default=None (the model's ``algorithm``)
            'viterbi': the most likely state sequence, with its
            log-probability. 'map': each row's most likely state; the first
            value returned is then, as in hmmlearn, the sum over rows of the
            largest posterior (not a log-probability).

        Returns
        -------
        log_prob : float
        state_sequence : ndarray of shape (n_samples,)
        """
        algorithm = self.algorithm if algorithm is None else algorithm
        if algorithm not in DECODER_ALGORITHMS:
            raise ValueError(f"Unknown decoder {algorithm!r}; expected one of {DECODER_ALGORITHMS}.")
        X, sequences, params = self._prepare(X, lengths)
        with numba_threads(self._n_threads(X)):
            if algorithm == "viterbi":
                log_probs, path = steps.viterbi(X, sequences, params, self.covariance_type)
                return float(log_probs.sum()), path
            _, posteriors = steps.posteriors(X, sequences, params, self.covariance_type)
        return float(posteriors.max(axis=1).sum()), np.argmax(posteriors, axis=1)

    def predict(self, X, lengths=None) -> np.ndarray:
        """Most likely state of every row (by the model's ``algorithm``)."""
        return self.decode(X, lengths)[1]

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """Generate a sequence from the model (the same draws as hmmlearn for the same seed).

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None
            None uses the model's ``random_state``.
        currstate : int, default=None
            The state to start in; None draws it from ``startprob_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        state_sequence : ndarray of shape (n_samples,)
        """
        self._check_is_fitted()
        n_samples = check_int(n_samples, "n_samples", 1)
        params = self._checked_params(self._n_features())
        rng = check_random_state(self.random_state if random_state is None else random_state)
        covars = full_covars(params.covars, self.covariance_type, self.n_components, self._n_features())
        transmat_cdf = np.cumsum(params.transmat, axis=1)
        if currstate is None:
            currstate = int((np.cumsum(params.startprob) > rng.rand()).argmax())
        else:
            currstate = check_int(currstate, "currstate", 0)
            if currstate >= self.n_components:
                raise ValueError(f"currstate must be a state index below n_components={self.n_components}, got {currstate}.")
        states = [currstate]
        X = [rng.multivariate_normal(params.means[currstate], covars[currstate])]
        for _ in range(n_samples - 1):
            currstate = int((transmat_cdf[currstate] > rng.rand()).argmax())
            states.append(currstate)
            X.append(rng.multivariate_normal(params.means[currstate], covars[currstate]))
        return np.atleast_2d(X), np.array(states, dtype=int)

    def get_stationary_distribution(self) -> np.ndarray:
        """The stationary distribution of ``transmat_`` (its left eigenvector for eigenvalue 1)."""
        self._check_is_fitted()
        eigvals, eigvecs = np.linalg.eig(np.asarray(self.transmat_, dtype=np.float64).T)
        vector = np.real_if_close(eigvecs[:, np.argmax(eigvals)])
        return vector / vector.sum()

    # -- model selection ------------------------------------------------------------

    def _n_parameters(self) -> int:
        k, d = self.n_components, self._n_features()
        counts = {
            "s": k - 1,
            "t": k * (k - 1),
            "m": k * d,
            "c": {"spherical": k, "diag": k * d, "full": k * d * (d + 1) // 2, "tied": d * (d + 1) // 2}[
                self.covariance_type
            ],
        }
        return sum(counts.values())

    def aic(self, X, lengths=None) -> float:
        """Akaike information criterion on X (lower is better); counts every free parameter, as hmmlearn."""
        return -2 * self.score(X, lengths) + 2 * self._n_parameters()

    def bic(self, X, lengths=None) -> float:
        """Bayesian information criterion on X (lower is better); counts every free parameter, as hmmlearn."""
        return -2 * self.score(X, lengths) + self._n_parameters() * np.log(len(X))

    # -- model files ------------------------------------------------------------------

    def save(self, file) -> None:
        """Save the model to a portable file that loads without executing code (see GaussianMixture.save)."""
        save_model(self, file)

    @classmethod
    def load(cls, file) -> "GaussianHMM":
        """Load a model written by :meth:`save`, checking every value.

        Raises
        ------
        fastem.exceptions.ModelFileError
            (a ``ValueError``) if the file is corrupted, of another format or
            version, or holds invalid values.
        """
        return load_model(file, cls)
