"""Gaussian mixtures fitted by EM: the ``GaussianMixture`` estimator and its kernels.

``estimator`` holds the estimator; ``parameters`` the parameter containers,
checks and Cholesky factors; ``steps`` the E-step, M-step and initialisation;
``model_file`` the model file's contents; ``statistics`` the public
``SufficientStatistics``; ``chunked_fit`` fits from memmaps, iterables of
row blocks and dask arrays (over ``fastem._core.sources``); ``streaming`` the
estimator's statistics hand-over, online EM and blockwise inference; ``missing`` data with missing
values (NaN), over the kernels of ``_missing_kernels``. The private modules are the Numba
kernels (``_estep_kernels``, ``_log_prob_kernels``) and their building blocks
(``_log_density``, ``_normaliser``, ``_accumulate``, the generated
``_unrolled_full``), and ``_posterior_stats``. ``emissions`` is the documented
interface other families use (an HMM's emission densities and statistics).
``covariance_models`` names the covariance models (scikit-learn's four and
mclust's fourteen) and ``constrained_mstep`` holds mclust's M-steps;
``criteria`` the BIC/AIC/ICL methods; ``inference`` predict, predict_proba
and score_samples (over the fused kernels of ``_log_prob_kernels``, whose
per-block output ``_inference_output`` writes); ``diagnostics`` the checks of a fitted
model (near-duplicate and singular components); ``selection`` the
``GaussianMixtureIC`` sweep over the ``starts`` it shares between models.
The k-means initialisation lives in ``fastem._core.kmeans``.
"""

from fastem.mixture.estimator import GaussianMixture
from fastem.mixture.selection import GaussianMixtureIC
from fastem.mixture.statistics import SufficientStatistics

__all__ = ["GaussianMixture", "GaussianMixtureIC", "SufficientStatistics"]
