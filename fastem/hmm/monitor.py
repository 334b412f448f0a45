"""The convergence monitor of Baum-Welch, with hmmlearn's ``ConvergenceMonitor`` interface."""

from __future__ import annotations

import logging
import sys
from collections import deque

import numpy as np

_log = logging.getLogger(__name__)


class ConvergenceMonitor:
    """Records the log-likelihood of every iteration and decides when EM has converged.

    The same attributes and behaviour as ``hmmlearn.base.ConvergenceMonitor``
    (0.3.3), so code that reads ``model.monitor_`` or subclasses the monitor
    to change ``converged`` works unchanged.

    Attributes
    ----------
    history : collections.deque
        The log-likelihood of the training data at each iteration, under the
        parameters *before* that iteration's M-step.
    iter : int
        Iterations performed.
    tol, n_iter, verbose
        As given to the model; refreshed from it at the start of every fit.
    """

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol, n_iter, verbose):
        self.tol = tol
        self.n_iter = n_iter
        self.verbose = verbose
        self.history = deque()
        self.iter = 0

    def __repr__(self) -> str:
        params = sorted(dict(vars(self), history=list(self.history)).items())
        return f"{type(self).__name__}(\n" + "".join(f"    {name}={value},\n" for name, value in params) + ")"

    def _reset(self) -> None:
        self.iter = 0
        self.history.clear()

    def report(self, log_prob: float) -> None:
        """Record one iteration's log-likelihood; print it to stderr when ``verbose``."""
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else np.nan
            print(self._template.format(iter=self.iter + 1, log_prob=log_prob, delta=delta), file=sys.stderr)
        precision = np.finfo(float).eps ** 0.5
        if self.history and (log_prob - self.history[-1]) < -precision:
            _log.warning(
                "Model is not converging.  Current: %s is not greater than %s. Delta is %s",
                log_prob, self.history[-1], log_prob - self.history[-1],
            )
        self.history.append(log_prob)
        self.iter += 1

    @property
    def converged(self) -> bool:
        """True once ``n_iter`` iterations ran or the last gain in log-likelihood is below ``tol``."""
        return self.iter == self.n_iter or (
            len(self.history) >= 2 and self.history[-1] - self.history[-2] < self.tol
        )
