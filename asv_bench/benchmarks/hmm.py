"""Gaussian HMM: fastem's GaussianHMM against hmmlearn's, and fastem's first HMM fit in a fresh process.

The data and the common start come from :mod:`fastem.bench.hmm`, so asv and
``python -m fastem.bench`` time the same fits. Each timed fit runs exactly
``N_ITER`` Baum-Welch iterations (``tol=-inf``) from the same parameters.
By default the sequences are 10x shorter than the issue's cases;
``FASTEM_BENCH_LARGE=1`` uses the full sizes (hmmlearn then takes minutes).
"""

from __future__ import annotations

from dataclasses import replace

import fastem
from fastem.bench.cases import Settings
from fastem.bench.hmm import HMM_CASES, _runner, hmm_data

from .common import LARGE

N_ITER = 3
_CASES = [name for name, case in HMM_CASES.items() if case.kind == "hmm"]


def _case(name: str):
    case = HMM_CASES[name]
    return case if LARGE else replace(case, length=case.length // 10)


class BaumWelch:
    """A fit of ``N_ITER`` iterations by each implementation on each HMM case."""

    params = [["fastem", "hmmlearn"], _CASES]
    param_names = ["implementation", "case"]
    number = 1
    warmup_time = 0.0
    timeout = 1800.0

    def setup(self, implementation, name):
        case = _case(name)
        X, lengths, start = hmm_data(case, Settings())
        if implementation == "fastem":
            model_class = fastem.GaussianHMM
        else:
            from hmmlearn import hmm

            model_class = hmm.GaussianHMM
        self.run = _runner(model_class, case, X, lengths, start)
        self.run(1)  # compile fastem's kernels (or import hmmlearn) outside the timing

    def time_fit(self, implementation, name):
        self.run(N_ITER)


def timeraw_hmm_first_fit_cold_cache():
    """A default GaussianHMM fit on 100,000 x 2 rows in a fresh process with an empty Numba cache."""
    setup = (
        "import os, tempfile\nos.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp(prefix='fastem-asv-')\n"
        "import numpy as np\nX = np.random.default_rng(0).normal(size=(100_000, 2))\nX[::7] += 4.0\n"
    )
    return "import fastem\nfastem.GaussianHMM(4, random_state=0).fit(X)", setup


timeraw_hmm_first_fit_cold_cache.timeout = 600.0
timeraw_hmm_first_fit_cold_cache.number = 1
timeraw_hmm_first_fit_cold_cache.repeat = (1, 3, 120.0)
