"""Thread counts, concurrent fits, interrupted fits, and other sources of non-determinism.

* Results are bit-identical for any ``n_jobs``, including thread counts that do
  not divide the number of row chunks (checked in a subprocess that starts
  Numba with 4 threads; this machine may have fewer cores), for read-only
  input, and whether the kernels were just compiled or loaded from Numba's
  disk cache.
* Two models fitted at once from two Python threads give the results they give
  one after the other.
* A KeyboardInterrupt or an exception in the middle of ``fit`` or ``predict``
  leaves the process's Numba and BLAS thread settings as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import fastem.mixture.estimator as gaussian_mixture
import fastem.mixture.inference as inference
from fastem import GaussianMixture
from fastem.datasets import make_blobs
from tests.conftest import COVARIANCE_TYPES, init_kwargs

FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fit_summary(model, X, sample_weight=None) -> dict:
    """Everything a fit and the inference methods produce, as lists (exact float64 values)."""
    labels = model.fit_predict(X, sample_weight=sample_weight)
    summary = {name: getattr(model, name).astype(np.float64).ravel().tolist() for name in FITTED}
    summary["lower_bounds_"] = list(model.lower_bounds_)
    summary["labels"] = labels.tolist()
    summary["proba"] = model.predict_proba(X).ravel().tolist()
    summary["score_samples"] = model.score_samples(X).tolist()
    return summary


# Fits every covariance type and dtype with the given n_jobs values and prints
# the results as JSON; run in a subprocess whose Numba has 4 threads.
_THREAD_COUNT_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import numba
    import numpy as np
    from fastem import GaussianMixture
    from fastem.datasets import make_blobs

    X, _ = make_blobs(5000, 4, 5, separation=3.0, random_state=3)
    weights = np.random.default_rng(0).uniform(0, 2, len(X))
    out = {"numba_threads": numba.config.NUMBA_NUM_THREADS}
    for covariance_type in ("full", "tied", "diag", "spherical"):
        for dtype in ("float64", "float32"):
            for n_jobs in [int(v) if v != "None" else None for v in sys.argv[1:]]:
                model = GaussianMixture(5, covariance_type=covariance_type, random_state=0, max_iter=15, tol=0.0, n_jobs=n_jobs)
                data = X.astype(dtype)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # max_iter is reached on purpose
                    labels = model.fit_predict(data, sample_weight=weights)
                out[f"{covariance_type}-{dtype}-{n_jobs}"] = {
                    "means": model.means_.astype(np.float64).ravel().tolist(),
                    "covariances": model.covariances_.astype(np.float64).ravel().tolist(),
                    "weights": model.weights_.astype(np.float64).ravel().tolist(),
                    "lower_bounds": list(model.lower_bounds_),
                    "labels": labels.tolist(),
                    "score_samples": model.score_samples(data).tolist(),
                }
    json.dump(out, sys.stdout)
    """
)


def run_script(script, *args, **environment):
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "PYTHONPATH": ROOT, **environment},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_any_thread_count_gives_bit_identical_results():
    """n_jobs = 1, 3 (does not divide the chunks evenly), 4 and None with 4 Numba threads.

    (1 against 2 threads in this process: test_em_invariants.py.)
    """
    n_jobs_values = ("1", "3", "4", "None")
    results = run_script(_THREAD_COUNT_SCRIPT, *n_jobs_values, NUMBA_NUM_THREADS="4")
    assert results.pop("numba_threads") == 4
    for key, single in results.items():
        prefix, n_jobs = key.rsplit("-", 1)
        for field, values in single.items():
            assert results[f"{prefix}-1"][field] == values, (prefix, n_jobs, field)  # exact equality of every float


# One fit from given parameters (no k-means: fewer kernels to compile), printed as JSON.
_ONE_FIT_SCRIPT = textwrap.dedent(
    """
    import json, warnings
    import numpy as np
    from fastem import GaussianMixture
    from fastem.datasets import make_blobs
    from tests.conftest import init_kwargs

    X, _ = make_blobs(5000, 4, 5, separation=3.0, random_state=3)
    model = GaussianMixture(max_iter=15, tol=0.0, n_jobs=1, **init_kwargs("diag", 5, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is reached on purpose
        model.fit(X)
    print(json.dumps({"means": model.means_.ravel().tolist(), "lower_bounds": model.lower_bounds_}))
    """
)


def test_results_across_numba_cache_states(tmp_path):
    """What a process that compiles the kernels and ones that load them from
    Numba's disk cache share.

    Processes that load the same cached kernels are bit-identical. A process
    that compiled the kernels itself can differ from them in the last bit:
    LLVM vectorises the reassociated (fastmath 'reassoc') reductions of the
    freshly JIT-compiled module differently from the object code that is
    cached. Without 'reassoc' both agree bit for bit but the E-step is about
    1.5x slower, so the flag stays and the difference is bounded here.
    """
    cache = str(tmp_path / "numba-cache")
    compiled = run_script(_ONE_FIT_SCRIPT, NUMBA_CACHE_DIR=cache)  # cold: compiles, then writes the cache
    loaded = run_script(_ONE_FIT_SCRIPT, NUMBA_CACHE_DIR=cache)  # warm: loads the cached machine code
    loaded_again = run_script(_ONE_FIT_SCRIPT, NUMBA_CACHE_DIR=cache)
    assert loaded_again == loaded
    np.testing.assert_allclose(loaded["lower_bounds"], compiled["lower_bounds"], rtol=1e-13)
    np.testing.assert_allclose(loaded["means"], compiled["means"], rtol=1e-13, atol=1e-13)


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(6000, 4, 4, separation=2.5, random_state=11)
    return X


# Two different models so that the two threads run different kernels, with
# different thread counts (Numba's count is per Python thread).
JOBS = {
    "full-float64": dict(n_components=4, covariance_type="full", n_jobs=1, random_state=0),
    "diag-float32": dict(n_components=4, covariance_type="diag", n_jobs=2, random_state=1),
}


def run_job(name, X, repeats):
    # Fits that converge: a ConvergenceWarning cannot be caught safely from two
    # threads (warnings.catch_warnings is process-global), and with warnings
    # as errors one would surface as a failure of the thread.
    dtype = np.float32 if name.endswith("float32") else np.float64
    return [fit_summary(GaussianMixture(max_iter=500, tol=1e-4, **JOBS[name]), X.astype(dtype)) for _ in range(repeats)]


def test_two_python_threads_fit_at_once(data):
    repeats = 3
    sequential = {name: run_job(name, data, 1)[0] for name in JOBS}
    barrier = threading.Barrier(len(JOBS))
    results, errors, spans = {}, [], {}

    def worker(name):
        try:
            barrier.wait()
            start = time.perf_counter()
            results[name] = run_job(name, data, repeats)
            spans[name] = (start, time.perf_counter())
        except BaseException as exc:  # reported below, in the main thread
            errors.append((name, exc))

    threads = [threading.Thread(target=worker, args=(name,)) for name in JOBS]
    numba_threads_before = numba.get_num_threads()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert errors == []
    assert numba.get_num_threads() == numba_threads_before
    (start_a, stop_a), (start_b, stop_b) = spans.values()
    assert start_a < stop_b and start_b < stop_a, "the two fits did not overlap in time"
    for name in JOBS:
        for run in results[name]:
            assert run == sequential[name], name  # exact equality of every float


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_read_only_data_gives_identical_results(blobs, covariance_type, weighted):
    """Read-only arrays (np.load(mmap_mode='r'), a DataFrame's values under pandas
    copy-on-write) are the same data and give the same fit.

    Numba compiles a separate specialisation for read-only arrays. Like a
    freshly compiled kernel against a cached one (see
    test_results_across_numba_cache_states), its vectorised fastmath
    reductions may round differently in the last bit, so agreement is checked
    to 1e-13 rather than bit for bit.
    """
    sample_weight = np.random.default_rng(0).uniform(0.5, 2.0, len(blobs)) if weighted else None
    read_only = blobs.copy()
    read_only.setflags(write=False)
    kwargs = init_kwargs(covariance_type, 2, 3)
    writeable_fit = fit_summary(GaussianMixture(**kwargs), blobs, sample_weight)
    read_only_fit = fit_summary(GaussianMixture(**kwargs), read_only, sample_weight)
    for field, values in writeable_fit.items():
        np.testing.assert_allclose(read_only_fit[field], values, rtol=1e-13, atol=1e-13, err_msg=field)


# ---------------------------------------------------------------------------
# Interrupted fits


def blas_threads():
    return sorted((info["filepath"], info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas")


class Interrupt:
    """Replace a module function by one that raises ``error`` on its ``on_call``-th call.

    Records the Numba thread count seen at that moment, to show that the
    interruption happened inside fastem's thread-count context.
    """

    def __init__(self, monkeypatch, name, error, on_call=1, module=gaussian_mixture):
        self.original = getattr(module, name)
        self.error, self.on_call, self.calls, self.numba_threads_inside = error, on_call, 0, None
        monkeypatch.setattr(module, name, self)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.on_call:
            self.numba_threads_inside = numba.get_num_threads()
            raise self.error("interrupted by the test")
        return self.original(*args, **kwargs)


# Where to interrupt: during the initialisation, in the middle of EM (third
# M-step), and inside an inference method (its fused kernel's call).
INTERRUPTION_POINTS = [("initial_stats", 1, "fit"), ("mstep", 3, "fit"), ("infer", 1, "predict_proba")]


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
@pytest.mark.parametrize("function, on_call, method", INTERRUPTION_POINTS)
def test_interruption_restores_thread_settings(blobs, monkeypatch, function, on_call, method, error):
    # n_jobs=1 differs from the default thread count on any multi-core machine.
    model = GaussianMixture(3, random_state=0, n_jobs=1).fit(blobs)
    fitted_means = model.means_.copy()
    numba_before, blas_before = numba.get_num_threads(), blas_threads()
    module = inference if function == "infer" else gaussian_mixture
    interrupt = Interrupt(monkeypatch, function, error, on_call, module)
    with pytest.raises(error, match="interrupted by the test"):
        getattr(model, method)(blobs)
    assert interrupt.numba_threads_inside == 1
    assert numba.get_num_threads() == numba_before
    assert blas_threads() == blas_before
    np.testing.assert_array_equal(model.means_, fitted_means)  # an interrupted fit changes nothing


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interruption_restores_settings_the_user_chose(blobs, monkeypatch, error):
    """The user's own limits (1 Numba thread, 1 BLAS thread) survive an interrupted n_jobs=-1 fit."""
    numba_default = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            blas_limited = blas_threads()
            interrupt = Interrupt(monkeypatch, "mstep", error, on_call=3)
            with pytest.raises(error):
                GaussianMixture(3, random_state=0, n_jobs=-1).fit(blobs)
            assert interrupt.numba_threads_inside == numba.config.NUMBA_NUM_THREADS
            assert numba.get_num_threads() == 1
            assert blas_threads() == blas_limited
    finally:
        numba.set_num_threads(numba_default)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_a_real_failure_mid_fit_restores_thread_settings(covariance_type):
    """Not a test double: a component collapsing in EM (reg_covar=0) raises from inside the fit."""
    X = np.r_[np.ones((5, 2)), np.zeros((5, 2))]
    numba_before, blas_before = numba.get_num_threads(), blas_threads()
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, covariance_type=covariance_type, reg_covar=0.0, n_jobs=1, random_state=0).fit(X)
    assert numba.get_num_threads() == numba_before
    assert blas_threads() == blas_before
