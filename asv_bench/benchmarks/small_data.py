"""Whole fits on small real data sets: where fixed costs and thread wake-ups, not the kernels, set the time.

The data sets and settings are those of :mod:`fastem.bench.shared_cpus`
(without its busy-loop competitor, which asv's own timing would not
tolerate): Old Faithful, iris, wine and digits, ``random_state=0`` and
otherwise the defaults, fastem's default threads, fastem on one thread, and
scikit-learn. A regression of the small-work thread rule shows here as
``fastem`` drifting away from ``fastem_n_jobs_1``.
"""

from __future__ import annotations

import warnings


class SmallDataFit:
    """``GaussianMixture(k, covariance_type=t, random_state=0).fit(X)`` on a small real data set."""

    params = [["fastem", "fastem_n_jobs_1", "sklearn"], ["Old Faithful", "iris", "wine", "digits"],
              ["full", "diag"], [1, 3, 8]]
    param_names = ["implementation", "data", "covariance_type", "n_components"]
    number = 5
    repeat = (3, 10, 20.0)

    def setup(self, implementation, data, covariance_type, n_components):
        from fastem.bench.shared_cpus import _datasets, _fitters

        self.X = _datasets()[data]
        label = {"fastem": "fastem defaults", "fastem_n_jobs_1": "fastem n_jobs=1", "sklearn": "sklearn"}[implementation]
        self.fit = _fitters(self.X, n_components, covariance_type, 0)[label]
        self.fit()  # compile (or load) outside the timing

    def time_fit(self, implementation, data, covariance_type, n_components):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.fit()
