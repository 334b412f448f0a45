"""fastem: Expectation-Maximization for latent-variable models, as fast as the CPU allows.

The public API:

* :class:`GaussianMixture`: a drop-in for ``sklearn.mixture.GaussianMixture``
  with sample weights, thread control and float32 support.
* :class:`GaussianHMM`: a drop-in for ``hmmlearn.hmm.GaussianHMM``, parallel
  over sequences, with per-sequence weights.
* :class:`LatentDirichletAllocation`: a drop-in for
  ``sklearn.decomposition.LatentDirichletAllocation``, parallel over documents.
* :mod:`fastem.reference`: the naive textbook EM, the correctness oracle.
"""

from fastem.exceptions import ConvergenceWarning, ModelFileError, NotFittedError
from fastem.hmm import GaussianHMM
from fastem.mixture import GaussianMixture
from fastem.topics import LatentDirichletAllocation

__all__ = [
    "GaussianMixture",
    "GaussianHMM",
    "LatentDirichletAllocation",
    "ConvergenceWarning",
    "ModelFileError",
    "NotFittedError",
]
__version__ = "0.1.0"
