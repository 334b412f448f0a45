"""fastem: Expectation-Maximization for latent-variable models, as fast as the CPU allows.

The public API:

* :class:`GaussianMixture`: a drop-in for ``sklearn.mixture.GaussianMixture``
  with sample weights, thread control and float32 support.
* :class:`GaussianMixtureIC`: model selection in one call, over covariance
  models (scikit-learn's four, mclust's fourteen) and numbers of components,
  by BIC, AIC or ICL.
* :class:`GaussianHMM`: a drop-in for ``hmmlearn.hmm.GaussianHMM``, parallel
  over sequences, with per-sequence weights.
* :class:`LatentDirichletAllocation`: a drop-in for
  ``sklearn.decomposition.LatentDirichletAllocation``, parallel over documents.
* :class:`SufficientStatistics`: a Gaussian mixture's mergeable E-step
  statistics, for E-steps run elsewhere (``GaussianMixture.compute_statistics``
  and ``update_from_statistics``).
* :mod:`fastem.reference`: the naive textbook EM, the correctness oracle.
"""

from fastem.exceptions import ConvergenceWarning, ModelFileError, NotFittedError
from fastem.hmm import GaussianHMM
from fastem.mixture import GaussianMixture, GaussianMixtureIC, SufficientStatistics
from fastem.topics import LatentDirichletAllocation

__all__ = [
    "GaussianMixture",
    "GaussianMixtureIC",
    "GaussianHMM",
    "LatentDirichletAllocation",
    "SufficientStatistics",
    "ConvergenceWarning",
    "ModelFileError",
    "NotFittedError",
]
__version__ = "0.1.0"
