"""fastem: Expectation-Maximization for latent-variable models, as fast as the CPU allows.

The public API:

* :class:`GaussianMixture`: a drop-in for ``sklearn.mixture.GaussianMixture``
  with sample weights, thread control and float32 support.
* :mod:`fastem.reference`: the naive textbook EM, the correctness oracle.
"""

from fastem.exceptions import ConvergenceWarning, ModelFileError, NotFittedError
from fastem.mixture import GaussianMixture

__all__ = ["GaussianMixture", "ConvergenceWarning", "ModelFileError", "NotFittedError"]
__version__ = "0.1.0"
