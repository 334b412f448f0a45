"""How many threads fastem's kernels run on, and how idle threads wait.

Three rules, each from a measurement on a shared 2-core machine:

* **Idle threads sleep.** Numba's OpenMP threading layer uses GNU OpenMP,
  whose idle threads spin for a while before they sleep. When another
  process wants the same cores (a container whose CPU quota is below the
  host's core count, a busy CI runner, a notebook beside a build), a
  spinning thread takes the time slice the thread doing the work needs, and
  every parallel region stalls: iris, k=3, was 190x slower with the default
  threads than on one thread beside one busy process. OpenMP reads its wait
  policy once, when the library is loaded, so :func:`start_threading_layer`
  loads it, before fastem's first kernel, with ``OMP_WAIT_POLICY=PASSIVE``
  and then removes the variable again, so that other OpenMP libraries loaded
  later in the process (scikit-learn's own copy, for example) keep their
  defaults. A policy the user set is kept.
* **The default thread count is the CPUs this process may use**: its CPU
  affinity and its cgroup CPU quota (Docker's ``--cpus``, Kubernetes' CPU
  limits), not the host's core count that Numba starts with.
* **Small work runs on one thread.** Waking a thread for a parallel region
  costs more than it saves when there is little work; see
  :data:`PARALLEL_MIN_WORK`. This applies to the default ``n_jobs=None``; an
  explicit count is obeyed (clipped to the threads Numba started).

Results do not depend on any of this: kernels split the rows into chunks of
a fixed size (``CHUNK_ROWS``) and combine them in a fixed order, whatever
the number of threads.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import os
import pathlib
import threading

import numba

# A fit's work per pass over the data below which the default n_jobs uses one
# thread, in the units the estimators count: rows x components x features
# for mixtures, rows x states x (states + features) for HMMs, nonzero counts
# x topics for LDA. Measured on mixtures (10 EM iterations, one thread
# against two, 2-core machine, passive wait policy; setup_helpers/thread_threshold.py over
# shapes from 2048 x 2, k=2 to 65,536 x 16, k=8): at 2.6e5 two threads
# ranged from 1.35x faster (diag 65,536 x 2, k=2) to 1.2x slower (diag 2048
# x 16, k=8, one chunk: 1.22x; diag 4096 x 8, k=8: 1.15x); from 5.2e5 they were
# faster (diag 8192 x 8, k=8: 1.16x; full 8192 x 8, k=8: 1.22x; full 4096 x
# 16, k=8: 1.1x) except full covariances with few features (65,536 x 4,
# k=3, 7.9e5: 1.02x slower), the same for both covariance types in these
# units. The benchmark case shared_cpus checks the outcome on real data.
PARALLEL_MIN_WORK = 500_000


def max_threads() -> int:
    """Number of threads Numba launched for this process."""
    return int(numba.config.NUMBA_NUM_THREADS)


def _cgroup_v2_limit(directory: pathlib.Path, root: pathlib.Path):
    """The smallest ``cpu.max`` quota / period from ``directory`` up to ``root`` (None: no limit)."""
    limit = None
    while True:
        try:
            quota, period = (directory / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            quota = period = "max"
        if quota != "max":
            share = int(quota) / int(period)
            limit = share if limit is None else min(limit, share)
        if directory == root or root not in directory.parents:
            return limit
        directory = directory.parent


def _cgroup_v1_limit(directory: pathlib.Path):
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(proc_cgroup="/proc/self/cgroup", root="/sys/fs/cgroup"):
    """The CPU quota of this process's cgroup in CPUs (1.5 for ``--cpus=1.5``), or None.

    Reads cgroup v2 (``cpu.max``, the process's cgroup and its ancestors) or
    v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``). Inside a container the
    process's cgroup path is often not visible under the mount, whose root
    is then the container's own cgroup; that root is read instead. The
    arguments exist for tests, which fake both files.
    """
    root = pathlib.Path(root)
    try:
        lines = pathlib.Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        relative = path.strip().lstrip("/")
        if hierarchy == "0" and controllers == "":
            directory = root / relative
            return _cgroup_v2_limit(directory if directory.is_dir() else root, root)
        if "cpu" in controllers.split(","):
            for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
                if mount.is_dir():
                    directory = mount / relative
                    return _cgroup_v1_limit(directory if directory.is_dir() else mount)
    return None


@functools.cache
def _cgroup_cpus():
    limit = cgroup_cpu_limit()
    return None if limit is None else max(1, math.ceil(limit))


def cpu_budget() -> int:
    """The CPUs this process may use: its affinity and its cgroup quota, at least 1.

    The affinity is read on every call (a process can be moved); the quota
    once per process. ``OMP_NUM_THREADS`` is deliberately not read: dask's
    ``LocalCluster`` sets it to 1 in the process that starts it (its nanny
    settings leak there), which would silently take every thread from the
    fits of that process.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return max(1, min(cpus, quota) if quota is not None else cpus)


def resolve_n_jobs(n_jobs, work=None, n_tasks=None) -> int:
    """Turn an ``n_jobs`` value into a thread count for the kernels.

    ``None`` (the default) means the CPUs this process may use
    (:func:`cpu_budget`), but one thread when ``work`` (the estimator's count
    of its work per pass, see :data:`PARALLEL_MIN_WORK`) is small, and no
    more threads than ``n_tasks``, the parallel tasks a pass has (row chunks
    of a mixture). ``-1`` means every CPU this process may use, ``-2`` all
    but one, and so on. Positive counts are obeyed, up to the threads Numba
    started.
    """
    available = max_threads()
    if n_jobs is None:
        if work is not None and work < PARALLEL_MIN_WORK:
            return 1
        return max(1, min(available, cpu_budget(), n_tasks if n_tasks is not None else available))
    try:
        n_jobs = operator.index(n_jobs)
    except TypeError:
        raise TypeError(f"n_jobs must be an integer or None, got {n_jobs!r}") from None
    if n_jobs == 0:
        raise ValueError("n_jobs must be a non-zero integer or None, got 0")
    if n_jobs < 0:
        n_jobs = max(min(available, cpu_budget()) + 1 + n_jobs, 1)
    return min(n_jobs, available)


_layer_lock = threading.Lock()
_layer_started = False


def start_threading_layer() -> None:
    """Load Numba's threading layer, with OpenMP's idle threads set to sleep, not spin (once per process).

    GNU OpenMP reads ``OMP_WAIT_POLICY`` once, when the library is loaded,
    which Numba does at its first parallel call or thread-count query.
    :func:`numba_threads` calls this first, so the layer is loaded with the
    variable set for just that moment: fastem's kernels get the passive
    policy, and OpenMP libraries the process loads later keep theirs.

    Not at import: a loaded OpenMP layer makes a later ``fork`` unsafe
    (Numba then stops a forked child at its first parallel call) and fixes
    ``multiprocessing``'s start method, so importing fastem loads neither.

    The policy has no effect when the user chose one (kept as is), when
    Numba uses its TBB or workqueue layer (neither spins like this), or when
    something had loaded the same OpenMP library before (its setting stands).
    """
    global _layer_started
    if _layer_started:
        return
    from numba.np.ufunc import parallel

    with _layer_lock:
        if _layer_started:
            return
        user_policy = "OMP_WAIT_POLICY" in os.environ
        if not user_policy:
            os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        try:
            parallel._launch_threads()
        except ValueError:  # no threading layer could load: Numba says so, with its hint, at the first parallel call
            pass
        finally:
            if not user_policy:
                del os.environ["OMP_WAIT_POLICY"]
        _layer_started = True


# Kernels with many features call BLAS (np.dot) inside their parallel loops.
# A multithreaded BLAS called from every Numba thread would oversubscribe the
# cores, so BLAS is pinned to one thread while kernels run. Pinning needs
# threadpoolctl (it ships with scikit-learn); without it the kernels use their
# loop path for every size and never call BLAS.
BLAS_MIN_FEATURES = 32


@functools.cache
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    return ThreadpoolController()


def blas_pinning_available() -> bool:
    """True if BLAS can be pinned to one thread (threadpoolctl is installed)."""
    return _blas_controller() is not None


# BLAS thread settings are process-wide while Numba's are per thread: fits
# running concurrently in several Python threads share one pinning, taken by
# the first to enter and released by the last to leave.
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@contextlib.contextmanager
def _blas_single_thread():
    global _blas_users, _blas_limiter
    controller = _blas_controller()
    if controller is None:
        yield
        return
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


@contextlib.contextmanager
def numba_threads(n_threads: int):
    """Run the enclosed kernels on ``n_threads`` threads (BLAS on one), then restore both.

    Numba's thread count is thread-local, so two Python threads fitting at
    once do not disturb each other; the ``finally`` clauses restore the
    previous settings even when a fit is interrupted.
    """
    start_threading_layer()
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        with _blas_single_thread():
            yield
    finally:
        numba.set_num_threads(previous)
