"""Gaussian hidden Markov models fitted by Baum-Welch: the ``GaussianHMM`` estimator and its kernels.

``estimator`` holds the estimator and ``monitor`` its convergence monitor;
``parameters`` the parameter container, checks and M-step; ``steps`` the
E-step and inference passes; ``model_file`` the model file's contents. The
private ``_forward_backward`` holds the forward-backward and Viterbi kernels.
Emission log-densities and statistics come from the mixture family
(``fastem.mixture.emissions``).
"""

from fastem.hmm.estimator import GaussianHMM
from fastem.hmm.monitor import ConvergenceMonitor

__all__ = ["GaussianHMM", "ConvergenceMonitor"]
