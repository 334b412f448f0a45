"""A generic Expectation-Maximization driver.

It knows nothing about Gaussians. A model supplies three functions:

* ``initialize(random_state) -> params``
* ``estep(params) -> stats``; ``stats.mean_log_likelihood`` is the average
  log-likelihood of the data under ``params`` (the EM lower bound)
* ``mstep(stats) -> params``

and the driver runs ``n_init`` restarts, iterates until the lower bound changes
by less than ``tol``, keeps the best restart, and reports progress. The loop
follows scikit-learn's ``BaseMixture.fit_predict`` exactly (the lower bound of
iteration t is the likelihood of the parameters *before* the t-th M-step; the
best restart is the one with the largest final lower bound), so fits from the
same starting point take the same number of iterations as scikit-learn.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from fastem.exceptions import ConvergenceWarning, compatible, warn_at_caller


@dataclass
class EMResult:
    """Outcome of :func:`run_em` for the best restart."""

    params: Any
    converged: bool
    n_iter: int
    lower_bound: float
    lower_bounds: list = field(default_factory=list)


class _Progress:
    """Prints progress in the same format as scikit-learn's ``verbose`` option."""

    def __init__(self, verbose: int, interval: int):
        self.verbose = verbose
        self.interval = interval
        self._init_start = self._iter_start = 0.0

    def init_begin(self, index: int) -> None:
        if self.verbose >= 1:
            print(f"Initialization {index}")
            self._init_start = self._iter_start = time.time()

    def iteration_end(self, n_iter: int, change: float) -> None:
        if self.verbose < 1 or n_iter % self.interval != 0:
            return
        if self.verbose == 1:
            print(f"  Iteration {n_iter}")
        else:
            now = time.time()
            print(f"  Iteration {n_iter}\t time lapse {now - self._iter_start:.5f}s\t ll change {change:.5f}")
            self._iter_start = now

    def init_end(self, lower_bound: float, converged: bool) -> None:
        message = "converged" if converged else "did not converge"
        if self.verbose == 1:
            print(f"Initialization {message}.")
        elif self.verbose >= 2:
            elapsed = time.time() - self._init_start
            print(f"Initialization {message}. time lapse {elapsed:.5f}s\t lower bound {lower_bound:.5f}.")


def run_em(
    initialize: Callable[[np.random.RandomState], Any],
    estep: Callable[[Any], Any],
    mstep: Callable[[Any], Any],
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    random_state: np.random.RandomState,
    warm_params: Any = None,
    warm_lower_bound: float = -np.inf,
    verbose: int = 0,
    verbose_interval: int = 10,
    warn: bool = True,
) -> EMResult:
    """Run EM with restarts and return the best restart.

    Parameters
    ----------
    initialize, estep, mstep : callables
        The model's hooks (see the module docstring).
    n_init : int
        Restarts; ignored (one run) when ``warm_params`` is given.
    max_iter : int
        EM iterations per restart. With 0, the initial parameters are returned.
    tol : float
        Convergence threshold on the change of the mean log-likelihood.
    random_state : numpy.random.RandomState
        Shared by all restarts, in order.
    warm_params : optional
        Start from these parameters instead of initialising (warm start).
    warm_lower_bound : float
        The lower bound the warm parameters reached before.
    verbose, verbose_interval : int
        Progress printing, as in scikit-learn.
    warn : bool
        Whether a best restart that did not converge warns (ConvergenceWarning).
        Callers that judge convergence themselves turn it off: a flag, not
        ``warnings.catch_warnings``, which is not safe across threads.
    """
    progress = _Progress(verbose, verbose_interval)
    warm = warm_params is not None
    best = None
    max_lower_bound = -np.inf
    for init_index in range(1 if warm else n_init):
        progress.init_begin(init_index)
        params = warm_params if warm else initialize(random_state)
        lower_bound = warm_lower_bound if warm else -np.inf
        if max_iter == 0:
            # As in scikit-learn: the initial parameters are the result and the
            # lower bound stays -inf (no E-step has been run).
            best = EMResult(params, False, 0, max_lower_bound, [])
            continue
        history = []
        converged = False
        for n_iter in range(1, max_iter + 1):
            previous = lower_bound
            stats = estep(params)
            params = mstep(stats)
            lower_bound = stats.mean_log_likelihood
            history.append(lower_bound)
            change = lower_bound - previous
            progress.iteration_end(n_iter, change)
            if abs(change) < tol:
                converged = True
                break
        progress.init_end(lower_bound, converged)
        if lower_bound > max_lower_bound or max_lower_bound == -np.inf:
            max_lower_bound = lower_bound
            best = EMResult(params, converged, n_iter, lower_bound, history)
    if warn and not best.converged and max_iter > 0:
        warn_at_caller(
            "Best performing initialization did not converge. Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            compatible(ConvergenceWarning),
        )
    return best
