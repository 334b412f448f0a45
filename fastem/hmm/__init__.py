"""Gaussian hidden Markov models fitted by Baum-Welch: the ``GaussianHMM`` estimator and its kernels.

``estimator`` holds the estimator and ``monitor`` its convergence monitor;
``parameters`` the parameter container, checks and M-step; ``sequences`` the
checks and grouping of the sequences; ``steps`` the E-step and inference
passes; ``model_file`` the model file's contents; ``precompile`` what
``python -m fastem compile`` builds. The private kernels:
``_forward_backward`` (scaled forward-backward and Viterbi),
``_long_sequences`` (long sequences on two threads, meeting in the middle)
and ``_forward_backward_log`` (the log-space fallback).
Emission log-densities and statistics come from the mixture family
(``fastem.mixture.emissions``).
"""

from fastem.hmm.estimator import GaussianHMM
from fastem.hmm.monitor import ConvergenceMonitor

__all__ = ["GaussianHMM", "ConvergenceMonitor"]
