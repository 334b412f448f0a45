"""Information criteria of a fitted Gaussian mixture: parameter counts, BIC, AIC and ICL.

A mixin of ``GaussianMixture``. All three criteria are on scikit-learn's
scale, where lower is better: mclust reports -BIC and -ICL (higher is better).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from fastem.mixture.covariance_models import n_covariance_parameters


class CriteriaMethods:
    """``_n_parameters``, ``bic``, ``aic`` and ``icl`` of a fitted ``GaussianMixture``."""

    def _n_parameters(self) -> int:
        """Number of free parameters: means, mixing weights and covariances (as mclust counts them)."""
        n_features = self.means_.shape[1]
        k = self.n_components
        covariance_params = n_covariance_parameters(self.covariance_type, k, n_features)
        return int(covariance_params + n_features * k + k - 1)

    def bic(self, X) -> float:
        """Bayesian information criterion on X: -2 log L + p log n (lower is better)."""
        log_prob = self.score_samples(X)
        return -2 * float(log_prob.sum(dtype=np.float64)) + self._n_parameters() * math.log(log_prob.shape[0])

    def aic(self, X) -> float:
        """Akaike information criterion on X: -2 log L + 2 p (lower is better)."""
        return -2 * float(self.score_samples(X).sum(dtype=np.float64)) + 2 * self._n_parameters()

    def icl(self, X) -> float:
        """Integrated completed likelihood on X, as mclust defines it (lower is better).

        ICL = BIC - 2 sum_i log z_i,c(i), with z the responsibilities and
        c(i) each row's most probable component: BIC plus twice the entropy
        of the hard classification, which penalises overlapping components
        (Biernacki, Celeux & Govaert 2000). mclust reports -ICL.
        """
        log_prob = self._weighted_log_prob(X)
        log_norm = logsumexp(log_prob, axis=1)
        log_resp_of_label = log_prob.max(axis=1) - log_norm
        return -2 * float(log_norm.sum()) + self._n_parameters() * math.log(log_prob.shape[0]) - 2 * float(
            np.sum(log_resp_of_label)
        )
