"""The scale cases: a memmap larger than the fit's memory, and the cost of Dask per EM iteration.

* ``scale_memmap``: a float64 memmap of 2e7 x 8 (1.28 GB) written to a
  temporary file, fitted out of core. In a fresh child process: the peak RSS
  increase of the memmap fit (the kernel's high-water mark, reset just
  before), then the data loaded whole, then ms/iter of the memmap fit and of
  the in-memory fit, alternating.
* ``scale_dask``: 2e6 x 8 in memory against the same rows as a dask array, on
  the threaded scheduler (blocks of 250,000 rows) and on a 2-process
  ``LocalCluster`` on 127.0.0.1 (the array persisted on the workers first, so
  an iteration sends only the parameters). The issue's target: the threaded
  scheduler within 1.3x of in-memory.

ms/iter is ``(t(max_iter=1+m) - t(max_iter=1)) / m`` from one start, which
leaves out each fit's one-off validating pass and initialisation.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np

import fastem
from fastem.bench.cases import Settings
from fastem.bench.child_process import _run_child
from fastem.bench.hmm import time_pairs
from fastem.bench.report import Report, _log, _mib, _ms, _ratio, _times


@dataclass(frozen=True)
class ScaleCase:
    """One scale case; ``kind`` is ``"scale_memmap"`` or ``"scale_dask"``."""

    name: str
    kind: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    target: float | None = None  # bound on (dask threaded ms/iter) / (in-memory ms/iter)


SCALE_CASES = {
    case.name: case
    for case in [
        ScaleCase("scale_memmap_20000000_d8_k4", "scale_memmap", 20_000_000, 8, 4, "full"),
        ScaleCase("scale_dask_2000000_d8_k4", "scale_dask", 2_000_000, 8, 4, "full", 1.3),
    ]
}

_ITERATIONS = 3
_DASK_BLOCK_ROWS = 250_000


def _n_samples(case: ScaleCase, settings: Settings) -> int:
    return case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)


def _start(case: ScaleCase, seed: int) -> dict:
    """A fixed start: the parameters after three iterations on a 20,000-row sample of the same blobs."""
    from fastem.datasets import make_blobs

    X, _ = make_blobs(20_000, case.n_features, case.n_components, random_state=seed)
    model = fastem.GaussianMixture(case.n_components, covariance_type=case.covariance_type, max_iter=3, tol=0.0,
                                   random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X)
    return dict(weights_init=model.weights_.tolist(), means_init=model.means_.tolist(),
                precisions_init=model.precisions_.tolist())


def _runner(case: ScaleCase, X, start: dict):
    def run(n_iter):
        model = fastem.GaussianMixture(case.n_components, covariance_type=case.covariance_type, max_iter=n_iter,
                                       tol=0.0, **start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X)

    return run


def _write_blobs(path: str, case: ScaleCase, n_samples: int, seed: int) -> None:
    """Blobs written in slices, so the parent never holds the whole array."""
    from fastem.datasets import make_blobs

    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_samples, case.n_features))
    step = min(1_000_000, n_samples)
    # One slice of blobs, repeated with fresh small noise (the same centres throughout).
    block, _ = make_blobs(step, case.n_features, case.n_components, random_state=seed)
    for index, begin in enumerate(range(0, n_samples, step)):
        rows = min(step, n_samples - begin)
        noise = np.random.default_rng(seed + 1 + index).normal(scale=0.05, size=(rows, case.n_features))
        out[begin:begin + rows] = block[:rows] + noise
    out.flush()
    del out


_MEMMAP_CHILD = r"""
import json, sys, time, warnings
import numpy as np
import fastem
from fastem.bench.hmm import time_pairs
from fastem.bench.memory import _measure_peak_increase

spec = json.loads(sys.stdin.read())
start = spec["start"]

def runner(X):
    def run(n_iter):
        model = fastem.GaussianMixture(spec["k"], covariance_type=spec["covariance_type"], max_iter=n_iter, tol=0.0,
                                       **start)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(X)
    return run

memmap = np.load(spec["path"], mmap_mode="r")
runner(memmap)(1)  # compilation
peak, method = _measure_peak_increase(lambda: runner(memmap)(1 + spec["iterations"]))
X = np.load(spec["path"])
timings = time_pairs({"memmap": (runner(memmap), spec["iterations"]), "memory": (runner(X), spec["iterations"])},
                     spec["repeats"])
same = bool(np.array_equal(timings["memmap"][2].means_, timings["memory"][2].means_))
print(json.dumps({"peak": peak, "method": method, "memmap": timings["memmap"][0], "memory": timings["memory"][0],
                  "same": same}))
"""


def run_scale_memmap_case(case: ScaleCase, settings: Settings, report: Report) -> None:
    """Peak memory and ms/iter of a memmap fit against the in-memory fit, in a fresh child process."""
    from fastem._core.sources import MEMMAP_BLOCK_BYTES

    n_samples = _n_samples(case, settings)
    with tempfile.TemporaryDirectory(prefix="fastem-bench-") as folder:
        path = os.path.join(folder, "X.npy")
        _log(f"{case.name}: writing {n_samples:,} x {case.n_features} float64 to {path}")
        _write_blobs(path, case, n_samples, settings.seed)
        _log(f"{case.name}: memmap and in-memory fits in a child process")
        result = _run_child(_MEMMAP_CHILD, {
            "path": path, "k": case.n_components, "covariance_type": case.covariance_type,
            "iterations": _ITERATIONS, "repeats": max(settings.repeats, 3), "start": _start(case, settings.seed),
        })
    data_bytes = n_samples * case.n_features * 8
    section = report.section(
        "Out of core: fitting a memmap",
        "`GaussianMixture.fit` on a float64 `numpy.memmap` (read in blocks of "
        f"{MEMMAP_BLOCK_BYTES // 2**20} MiB whose file pages are then released), against the same rows loaded in "
        "memory, from the same start, in one fresh child process. **peak RSS**: the increase of the process's "
        "resident set during a memmap fit of 1 + m iterations (Linux VmHWM, reset just before; file pages "
        "included). **ms/iter**: `(t(max_iter=1+m) - t(max_iter=1)) / m`, m = "
        f"{_ITERATIONS}, the median of {max(settings.repeats, 3)} repeats in which the two alternate (the file "
        "is in the system's page cache). **same**: whether the two fits' means are equal to the bit.",
        ["case", "data MiB", "peak RSS increase MiB", "memmap ms/iter", "in-memory ms/iter", "ratio", "same"],
    )
    section.rows.append([
        f"{case.covariance_type}, {n_samples:,} x {case.n_features}, k={case.n_components}",
        _mib(data_bytes), _mib(result["peak"]), _ms(result["memmap"]), _ms(result["memory"]),
        _times(_ratio(result["memmap"], result["memory"])), "yes" if result["same"] else "no",
    ])


def run_scale_dask_case(case: ScaleCase, settings: Settings, report: Report) -> None:
    """ms/iter in memory, on dask's threaded scheduler and on a 2-process local cluster, alternating."""
    import dask
    import dask.array as da
    import distributed

    from fastem.datasets import make_blobs

    n_samples = _n_samples(case, settings)
    X, _ = make_blobs(n_samples, case.n_features, case.n_components, random_state=settings.seed)
    start = _start(case, settings.seed)
    block_rows = min(_DASK_BLOCK_ROWS, max(n_samples // 8, 1))
    dX = da.from_array(X, chunks=(block_rows, case.n_features))
    repeats = max(settings.repeats, 3)
    memory_run, dask_run = _runner(case, X, start), _runner(case, dX, start)

    def threaded(n_iter):
        with dask.config.set(scheduler="threads"):
            return dask_run(n_iter)

    _log(f"{case.name}: in memory and on dask's threaded scheduler, alternating")
    local = time_pairs({"memory": (memory_run, _ITERATIONS), "threads": (threaded, _ITERATIONS)}, repeats)
    _log(f"{case.name}: in memory and on a 2-process LocalCluster, alternating")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0", silence_logs=40) as cluster, \
            distributed.Client(cluster) as client:
        persisted = client.persist(dX)
        distributed.wait(persisted)
        cluster_run = _runner(case, persisted, start)
        remote = time_pairs({"memory": (memory_run, _ITERATIONS), "cluster": (cluster_run, _ITERATIONS)}, repeats)
    section = report.section(
        "Dask: cost per EM iteration against in memory",
        "`GaussianMixture.fit` on a NumPy array (2 Numba threads) and on the same rows as a dask array in blocks of "
        f"{block_rows:,} rows (one task per block, each on one thread), from the same start: dask's threaded "
        "scheduler (2 threads), and a `LocalCluster` of 2 worker processes with 1 thread each on 127.0.0.1, the "
        "array persisted on the workers first so that an iteration sends only the parameters. **ms/iter**: "
        f"`(t(max_iter=1+m) - t(max_iter=1)) / m`, m = {_ITERATIONS}, the median of {repeats} repeats; each dask "
        "variant alternates with its own in-memory run. Target: threaded within 1.3x of in-memory.",
        ["case", "in-memory ms/iter", "threaded ms/iter", "threaded ratio", "target", "met",
         "in-memory ms/iter (cluster run)", "cluster ms/iter", "cluster ratio"],
    )
    threaded_ratio = _ratio(local["threads"][0], local["memory"][0])
    met = "yes" if threaded_ratio is not None and threaded_ratio <= case.target else "no"
    section.rows.append([
        f"{case.covariance_type}, {n_samples:,} x {case.n_features}, k={case.n_components}",
        _ms(local["memory"][0]), _ms(local["threads"][0]), _times(threaded_ratio), f"<= {case.target:g}x", met,
        _ms(remote["memory"][0]), _ms(remote["cluster"][0]), _times(_ratio(remote["cluster"][0], remote["memory"][0])),
    ])
