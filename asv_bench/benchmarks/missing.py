"""Gaussian mixtures on data with missing values: an EM fit with NaN against the same rows complete, and impute.

The data, the missing entries and the common start come from
:mod:`fastem.bench.missing`, so asv and ``python -m fastem.bench`` time the
same fits. Each timed fit runs exactly ``N_ITER`` iterations (``tol=0``).
By default the cases have 10x fewer rows than the issue's;
``FASTEM_BENCH_LARGE=1`` uses the full sizes.
"""

from __future__ import annotations

from dataclasses import replace

from fastem.bench.cases import Settings
from fastem.bench.missing import MISSING_CASES, _runner, missing_data

from .common import LARGE

N_ITER = 5
_CASES = [name for name, case in MISSING_CASES.items() if case.kind == "missing"]


def _case(name: str):
    case = MISSING_CASES[name]
    return case if LARGE else replace(case, n_samples=case.n_samples // 10)


class MissingValuesFit:
    """``N_ITER`` EM iterations on the complete rows and on the same rows with 20% NaN."""

    params = [["complete", "with NaN"], _CASES]
    param_names = ["data", "case"]
    number = 1
    warmup_time = 0.0
    timeout = 600.0

    def setup(self, data, name):
        case = _case(name)
        complete, incomplete, start = missing_data(case, Settings())
        self.run = _runner(case, complete if data == "complete" else incomplete, start)
        self.run(1)  # compile outside the timing

    def time_fit(self, data, name):
        self.run(N_ITER)


class Impute:
    """``impute`` of every row of the full case (conditional means and draws)."""

    params = [["mean", "sample"]]
    param_names = ["method"]
    number = 1
    timeout = 600.0

    def setup(self, method):
        case = _case("missing_impute")
        _, self.incomplete, start = missing_data(case, Settings())
        self.model = _runner(case, self.incomplete, start)(2)
        self.model.impute(self.incomplete, method=method, random_state=0)  # compile

    def time_impute(self, method):
        self.model.impute(self.incomplete, method=method, random_state=0)
