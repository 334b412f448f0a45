"""Inference of a fitted Gaussian mixture: scores, labels and responsibilities of new rows.

A mixin of ``GaussianMixture``. Complete rows run through the fused kernels
of ``_log_prob_kernels``, which write the result block by block: ``predict``
and ``score_samples`` allocate nothing of size n_samples x n_components, and
``predict_proba`` only its result. Rows with missing values go through the
missing-data log-probabilities (``missing``) and the same rules in NumPy.
"""

from __future__ import annotations

import numpy as np

from fastem._core.feature_names import check_feature_names
from fastem._core.threads import numba_threads
from fastem._core.validation import check_data_with_missing
from fastem.mixture import missing
from fastem.mixture._inference_output import reduce_log_prob
from fastem.mixture.steps import infer, weighted_log_prob


class InferenceMethods:
    """``score_samples``, ``score``, ``predict`` and ``predict_proba`` of a fitted ``GaussianMixture``."""

    def _checked(self, X, check_names: bool = True) -> tuple[np.ndarray, bool]:
        """X validated for inference, and whether it holds NaN (``check_names``: False for blocks of a checked X)."""
        self._check_is_fitted()
        if check_names:
            check_feature_names(self, X)
        return check_data_with_missing(X, n_features=self.n_features_in_)

    def _weighted_log_prob(self, X) -> np.ndarray:
        """log w_j + log N(x_i) for every row and component; the marginal over observed values for rows with NaN."""
        return self._log_prob_of_valid(*self._checked(X))

    def _log_prob_of_valid(self, X, has_nan: bool) -> np.ndarray:
        with numba_threads(self._n_threads(*X.shape)):
            if has_nan:
                return missing.weighted_log_prob(X, self._params(), self._layout)
            return weighted_log_prob(X, self._params(), self._layout)

    def _infer(self, X, has_nan: bool, output: str) -> np.ndarray:
        """'score', 'labels' or 'proba' of validated rows X.

        Complete rows run through the fused kernels (no n x k scratch); rows
        with NaN through the missing-data log-probabilities. Scores and
        responsibilities have X's float dtype, or float64 when either X or
        the model is float64 (as scikit-learn's; float32 rows are then
        computed in float64).
        """
        dtype = np.result_type(X.dtype, self.means_.dtype)
        if X.dtype != dtype:
            # float32 rows and a float64 model: computed in float64, as scikit-learn's
            # (the kernels compute in the data's dtype).
            X = X.astype(dtype)
        with numba_threads(self._n_threads(*X.shape)):
            if not has_nan:
                return infer(X, self._params(), self._layout, output)
            log_prob = missing.weighted_log_prob(X, self._params(), self._layout)
        result = reduce_log_prob(log_prob, output, self.weights_, dtype)
        if output == "score":
            # log sum_j w_j is 0 up to rounding; an all-NaN row's score is exactly log 1.
            result[np.isnan(X).all(axis=1)] = 0.0
        return result

    def score_samples(self, X) -> np.ndarray:
        """Log-likelihood of each row of X under the fitted mixture.

        A row with NaN entries gets the log of its marginal density over its
        observed coordinates; a row with no observed value gets 0 (log 1). A
        row so far from every component that its density underflows to zero
        even in log space (squared distances beyond the float range) gets -inf.

        Returns
        -------
        log_prob : ndarray of shape (n_samples,)
            X's float dtype (float64 if the model is float64). A dask array
            for a dask X.
        """
        blockwise = self._on_blocks(X, "score_samples")
        if blockwise is not None:
            return blockwise
        return self._infer(*self._checked(X), "score")

    def score(self, X, y=None) -> float:
        """Mean log-likelihood of the rows of X: ``score_samples(X).mean()``, in its dtype (as scikit-learn's)."""
        return np.asarray(self.score_samples(X)).mean()

    def predict(self, X) -> np.ndarray:
        """Most probable component for each row of X.

        Computed block by block: nothing of size n_samples x n_components is
        allocated. Ties go to the lowest index; a row infinitely far from
        every component (see :meth:`predict_proba`) gets the heaviest one.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            A dask array for a dask X.
        """
        blockwise = self._on_blocks(X, "predict")
        if blockwise is not None:
            return blockwise
        return self._infer(*self._checked(X), "labels")

    def predict_proba(self, X) -> np.ndarray:
        """Posterior probability of each component for each row of X.

        Computed in log space with each row's largest term shifted out, block
        by block into the result (the only array of size n_samples x
        n_components allocated). A row so far from every component that all
        its log-densities are -inf (squared distances beyond the float range:
        about 1e154 standard deviations in float64, 1e19 in float32) carries
        no evidence the model can measure: it gets the mixture weights
        ``weights_`` as its responsibilities. No row gets NaN.

        Returns
        -------
        resp : ndarray of shape (n_samples, n_components)
            Rows sum to 1. X's float dtype (float64 if the model is
            float64). A dask array for a dask X.
        """
        blockwise = self._on_blocks(X, "predict_proba")
        if blockwise is not None:
            return blockwise
        return self._infer(*self._checked(X), "proba")
