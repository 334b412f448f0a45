"""Peak memory of one fit, measured in a fresh child process.

Numba allocations are invisible to tracemalloc, so only the operating
system's view of the resident set size (RSS) is honest.
"""

from __future__ import annotations

import gc
import json
import sys
import threading

import numpy as np

from fastem.bench.cases import Case, Settings, initial_parameters, make_data
from fastem.bench.child_process import _run_child
from fastem.bench.fits import fit


def _rss_status_kib(field_name: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    raise OSError(f"{field_name} not in /proc/self/status")


def _measure_peak_increase(function) -> tuple[float | None, str]:
    """Run ``function()``; return (peak RSS increase over the RSS before it, in bytes; the method used).

    On Linux the kernel's high-water mark is reset first (``/proc/self/clear_refs``),
    so it is exact and sees every allocation, Numba's included. Elsewhere
    psutil samples the RSS every millisecond from a thread, which can miss
    short peaks.
    """
    gc.collect()
    try:
        before = _rss_status_kib("VmRSS")
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    else:
        function()
        return (_rss_status_kib("VmHWM") - before) * 1024.0, "Linux VmHWM, reset just before the fit"

    try:
        import psutil
    except ImportError:
        function()
        return None, "not measured: needs Linux's /proc or psutil"

    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            done.wait(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        function()
    finally:
        done.set()
        sampler.join()
    peak[0] = max(peak[0], process.memory_info().rss)
    return float(peak[0] - before), "psutil RSS sampled every millisecond"


def _peak_memory_child() -> None:
    """Entry point of the peak-memory child (spec as JSON on stdin, result as JSON on stdout)."""
    spec = json.loads(sys.stdin.read())
    dtype = np.dtype(spec["dtype"])
    X = make_data(spec["n_samples"], spec["n_features"], spec["n_components"], dtype, spec["seed"])
    init = initial_parameters(X, spec["n_components"], spec["covariance_type"], spec["seed"])
    # A small fit first, so that compiling (or loading) the kernels and
    # importing scikit-learn are not counted as the fit's memory. It may fail
    # (too few rows for many components in many dimensions) after the work
    # that matters here is done; a fit on all rows would leave freed scratch
    # in the heap that the measured fit would then reuse unseen.
    try:
        fit(spec["implementation"], X[:2000], init, spec["covariance_type"], 1)
    except ValueError:
        pass
    increase, method = _measure_peak_increase(
        lambda: fit(spec["implementation"], X, init, spec["covariance_type"], spec["max_iter"])
    )
    print(json.dumps({"peak_increase_bytes": increase, "method": method}))


_PEAK_MEMORY_CODE = "from fastem.bench.memory import _peak_memory_child; _peak_memory_child()"


def peak_memory(
    implementation: str, case: Case, n_samples: int, settings: Settings, dtype=np.float64
) -> tuple[float | None, str]:
    """Peak RSS increase (bytes) of one ``max_iter=2`` fit, measured in a fresh child process."""
    spec = dict(
        implementation=implementation,
        n_samples=n_samples,
        n_features=case.n_features,
        n_components=case.n_components,
        covariance_type=case.covariance_type,
        dtype=np.dtype(dtype).name,
        seed=settings.seed,
        max_iter=2,
    )
    result = _run_child(_PEAK_MEMORY_CODE, spec)
    return result["peak_increase_bytes"], result["method"]
