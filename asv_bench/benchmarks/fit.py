"""Fitting cost: time, peak memory and convergence of fastem, scikit-learn and the naive EM.

Every fit starts from the same parameters and, for the time and memory
benchmarks, runs exactly ``N_ITER`` iterations (``tol=0``). The timed fit is
the whole ``fit`` call: it includes each implementation's one-off work
(validation; scikit-learn's initial M-step and final E-step). ``python -m
fastem.bench`` reports the per-iteration cost with that work removed.
"""

from __future__ import annotations

import itertools

from fastem import bench

from .common import (
    COVARIANCE_TYPES,
    DTYPES,
    IMPLEMENTATIONS,
    LARGE,
    N_ITER,
    check_feasible,
    prepare,
    shape_label,
    shapes,
    warm_up,
)


class _FitBenchmark:
    """``fit`` of each implementation on each shape of one covariance type."""

    covariance_type = "full"
    param_names = ["implementation", "shape", "dtype"]
    number = 1  # one fit is long enough to time on its own
    warmup_time = 0.0  # setup already ran a fit; asv's warm-up would only add time
    timeout = 1800.0  # the naive EM and scikit-learn on the LARGE shapes

    def setup(self, implementation, shape, dtype):
        check_feasible(implementation, shape, dtype)
        self.X, self.init = prepare(shape, self.covariance_type, dtype)
        # Compile fastem's kernels (or import scikit-learn) outside the timing.
        warm_up(implementation, self.X, self.init, self.covariance_type)

    def time_fit(self, implementation, shape, dtype):
        bench.fit(implementation, self.X, self.init, self.covariance_type, N_ITER)

    def peakmem_fit(self, implementation, shape, dtype):
        # asv reports the peak RSS of the whole benchmark process: the data
        # built in setup are included, so compare implementations rather than
        # reading it as the memory of the fit alone.
        bench.fit(implementation, self.X, self.init, self.covariance_type, N_ITER)


class FitFull(_FitBenchmark):
    covariance_type = "full"
    params = [IMPLEMENTATIONS, shapes("full"), DTYPES]


class FitTied(_FitBenchmark):
    covariance_type = "tied"
    params = [IMPLEMENTATIONS, shapes("tied"), DTYPES]


class FitDiag(_FitBenchmark):
    covariance_type = "diag"
    params = [IMPLEMENTATIONS, shapes("diag"), DTYPES]


class FitSpherical(_FitBenchmark):
    covariance_type = "spherical"
    params = [IMPLEMENTATIONS, shapes("spherical"), DTYPES]


class Convergence:
    """Iterations to convergence and the final mean log-likelihood, from the same start.

    fastem follows scikit-learn's stopping rule (change of the mean
    log-likelihood below ``tol``), so both numbers should match scikit-learn's;
    a change here flags a numerical regression that timings would not show.
    The blobs overlap (separation 2), so EM needs tens of iterations and small
    numerical drifts have room to show. The naive EM has no convergence test
    and is not tracked.
    """

    param_names = ["implementation", "covariance_type", "shape", "dtype"]
    params = [
        ["fastem", "sklearn"],
        COVARIANCE_TYPES,
        [shape_label(20_000, 8, 16)] + ([shape_label(1_000_000, 8, 16)] if LARGE else []),
        DTYPES,
    ]
    tol = 1e-3  # scikit-learn's default
    max_iter = 1000
    timeout = 1800.0

    def setup_cache(self):
        # Both tracks read the same fits: fit every combination once, here.
        outcomes = {}
        for implementation, covariance_type, shape, dtype in itertools.product(*self.params):
            X, init = prepare(shape, covariance_type, dtype, separation=2.0)
            result = bench.fit(implementation, X, init, covariance_type, self.max_iter, tol=self.tol)
            outcomes[implementation, covariance_type, shape, dtype] = (result.n_iter, result.lower_bound)
        return outcomes

    setup_cache.timeout = 3600.0

    def track_n_iter(self, outcomes, implementation, covariance_type, shape, dtype):
        return outcomes[implementation, covariance_type, shape, dtype][0]

    track_n_iter.unit = "iterations"

    def track_lower_bound(self, outcomes, implementation, covariance_type, shape, dtype):
        return outcomes[implementation, covariance_type, shape, dtype][1]

    track_lower_bound.unit = "mean log-likelihood"
