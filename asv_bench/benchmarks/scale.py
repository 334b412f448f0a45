"""Scale: EM on a memmap and on dask arrays against the same rows in memory, plus the memmap fit's peak memory.

The cases, the data and the common start come from :mod:`fastem.bench.scale`,
so asv and ``python -m fastem.bench`` time the same fits. Each timed fit runs
exactly ``N_ITER`` iterations (``tol=0``). By default the cases have 10x fewer
rows than the issue's (2e6 x 8 for the memmap, 2e5 x 8 for dask);
``FASTEM_BENCH_LARGE=1`` uses the full sizes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace

import numpy as np

from fastem.bench.memory import _measure_peak_increase
from fastem.bench.scale import SCALE_CASES, _runner, _start, _write_blobs

from .common import LARGE

N_ITER = 3


def _case(name: str):
    case = SCALE_CASES[name]
    return case if LARGE else replace(case, n_samples=case.n_samples // 10)


class MemmapFit:
    """``N_ITER`` EM iterations on a float64 memmap file and on the same rows loaded in memory."""

    params = [["memmap", "in memory"]]
    param_names = ["data"]
    number = 1
    warmup_time = 0.0
    timeout = 1200.0

    def setup(self, data):
        case = _case("scale_memmap_20000000_d8_k4")
        self.folder = tempfile.mkdtemp(prefix="fastem-asv-")
        path = os.path.join(self.folder, "X.npy")
        _write_blobs(path, case, case.n_samples, 0)
        X = np.load(path, mmap_mode="r") if data == "memmap" else np.load(path)
        self.run = _runner(case, X, _start(case, 0))
        self.run(1)  # compile outside the timing

    def teardown(self, data):
        shutil.rmtree(self.folder, ignore_errors=True)

    def time_fit(self, data):
        self.run(N_ITER)

    def track_peak_rss_increase_mib(self, data):
        peak, _ = _measure_peak_increase(lambda: self.run(N_ITER))
        return (peak or 0.0) / 2**20

    track_peak_rss_increase_mib.unit = "MiB"


class DaskFit:
    """``N_ITER`` EM iterations in memory and on dask's threaded scheduler (blocks of 1/8 of the rows)."""

    params = [["in memory", "dask threads"]]
    param_names = ["data"]
    number = 1
    timeout = 1200.0

    def setup(self, data):
        import dask
        import dask.array as da

        from fastem.datasets import make_blobs

        case = _case("scale_dask_2000000_d8_k4")
        X, _ = make_blobs(case.n_samples, case.n_features, case.n_components, random_state=0)
        if data == "dask threads":
            X = da.from_array(X, chunks=(case.n_samples // 8, case.n_features))
        run = _runner(case, X, _start(case, 0))

        def threaded(n_iter):
            with dask.config.set(scheduler="threads"):
                return run(n_iter)

        self.run = threaded
        self.run(1)

    def time_fit(self, data):
        self.run(N_ITER)
