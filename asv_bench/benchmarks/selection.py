"""Model selection: a whole BIC sweep with GaussianMixtureIC against the loop of scikit-learn fits.

The case and both sweeps come from :mod:`fastem.bench.selection`, so asv and
``python -m fastem.bench --cases selection_100000_d8`` time the same work. By
default the data have 10x fewer rows (1e4 x 8); ``FASTEM_BENCH_LARGE=1`` uses
1e5 x 8.
"""

from __future__ import annotations

from dataclasses import replace

from fastem.bench.selection import SELECTION_CASES, _fastem_sweep, _sklearn_sweep

from .common import LARGE


class SelectionSweep:
    """n_components 1..9 x four covariance types, one sweep per timing."""

    params = [["fastem", "sklearn"]]
    param_names = ["implementation"]
    number = 1
    warmup_time = 0.0
    timeout = 1800.0

    def setup(self, implementation):
        from fastem.datasets import make_blobs

        case = SELECTION_CASES["selection_100000_d8"]
        self.case = case if LARGE else replace(case, n_samples=case.n_samples // 10)
        self.X, _ = make_blobs(self.case.n_samples, self.case.n_features, self.case.n_clusters, random_state=0)
        self.sweep = _fastem_sweep if implementation == "fastem" else _sklearn_sweep
        if implementation == "fastem":
            _fastem_sweep(self.case, self.X[:2000], 0)  # compile outside the timing

    def time_sweep(self, implementation):
        self.sweep(self.case, self.X, 0)
