"""The default thread count: small work on one thread, the CPU budget (affinity, cgroup quota), passive waits."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from fastem import GaussianHMM, GaussianMixture, LatentDirichletAllocation
from fastem._core import threads
from fastem._core.numba import CHUNK_ROWS
from fastem._core.threads import PARALLEL_MIN_WORK, cgroup_cpu_limit, cpu_budget, max_threads, resolve_n_jobs


@pytest.fixture
def budget(monkeypatch):
    """Fake the CPUs the process may use (the affinity; no quota)."""
    def set_cpus(n):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)
        monkeypatch.setattr(threads, "_cgroup_cpus", lambda: None)
    return set_cpus


# ---------------------------------------------------------------- the decision

def test_small_work_runs_on_one_thread_by_default(budget):
    budget(max_threads())
    assert resolve_n_jobs(None, work=PARALLEL_MIN_WORK - 1) == 1
    assert resolve_n_jobs(None, work=PARALLEL_MIN_WORK) == max_threads()
    assert resolve_n_jobs(None) == max_threads()


def test_the_default_never_uses_more_threads_than_tasks(budget):
    budget(max_threads())
    assert resolve_n_jobs(None, work=10 * PARALLEL_MIN_WORK, n_tasks=1) == 1
    assert resolve_n_jobs(None, work=10 * PARALLEL_MIN_WORK, n_tasks=1000) == max_threads()


@pytest.mark.skipif(max_threads() < 2, reason="needs two Numba threads")
def test_an_explicit_count_is_obeyed_whatever_the_work(budget):
    budget(1)
    assert resolve_n_jobs(2, work=1, n_tasks=1) == 2
    assert resolve_n_jobs(10**6) == max_threads()


@pytest.mark.skipif(max_threads() < 2, reason="needs two Numba threads")
def test_the_default_and_minus_one_respect_the_cpu_budget(budget):
    budget(1)
    assert resolve_n_jobs(None, work=10 * PARALLEL_MIN_WORK) == 1
    assert resolve_n_jobs(-1) == 1
    assert resolve_n_jobs(-2) == 1
    budget(max_threads())
    assert resolve_n_jobs(-1) == max_threads()
    assert resolve_n_jobs(-2) == max_threads() - 1


@pytest.mark.parametrize("bad, error", [(0, ValueError), (1.5, TypeError), ("2", TypeError)])
def test_bad_n_jobs_is_named(bad, error):
    with pytest.raises(error, match="n_jobs"):
        resolve_n_jobs(bad)


@contextlib.contextmanager
def _thread_counts(monkeypatch, module):
    """Record the thread count each ``numba_threads`` block of ``module`` is given."""
    seen = []
    original = module.numba_threads

    def spy(n_threads):
        seen.append(n_threads)
        return original(n_threads)

    monkeypatch.setattr(module, "numba_threads", spy)
    yield seen


@pytest.mark.skipif(max_threads() < 2, reason="needs two Numba threads")
def test_estimators_pass_their_work_to_the_decision(monkeypatch, budget):
    from fastem.hmm import estimator as hmm_estimator
    from fastem.mixture import estimator as mixture_estimator
    from fastem.mixture import inference
    from fastem.topics import estimator as topic_estimator

    budget(max_threads())
    rng = np.random.default_rng(0)
    small = rng.normal(size=(150, 4))  # iris-sized: one chunk, little work
    with _thread_counts(monkeypatch, mixture_estimator) as fits, _thread_counts(monkeypatch, inference) as calls:
        model = GaussianMixture(3, random_state=0).fit(small)
        model.predict(small)
        GaussianMixture(3, random_state=0, n_jobs=2).fit(small)
    assert fits == [1, 2] and calls == [1]
    # Enough rows and work for threads (rows x components x features over the threshold).
    n_rows = 4 * CHUNK_ROWS
    n_features = -(-PARALLEL_MIN_WORK // (n_rows * 3))
    assert model._n_threads(n_rows, n_features) == max_threads()
    assert model._n_threads(n_rows, n_features - 1) == 1
    assert model._n_threads(CHUNK_ROWS, 10 * n_features) == 1  # one chunk: one task

    with _thread_counts(monkeypatch, hmm_estimator) as hmm_calls:
        GaussianHMM(2, n_iter=2, random_state=0).fit(small[:, :2])
    assert hmm_calls == [1]
    big_hmm = GaussianHMM(4)
    assert big_hmm._n_threads(np.empty((PARALLEL_MIN_WORK // 8 + 1, 4))) == max_threads()

    counts = rng.poisson(1.0, size=(20, 30)).astype(float)
    with _thread_counts(monkeypatch, topic_estimator) as lda_calls:
        LatentDirichletAllocation(3, max_iter=2, random_state=0).fit(counts)
    assert set(lda_calls) == {1}


@pytest.mark.skipif(max_threads() < 2, reason="needs two Numba threads")
def test_one_thread_and_the_default_give_bit_identical_fits(budget):
    budget(max_threads())
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(size=(20_000, 8)), rng.normal(4, 1, size=(20_000, 8))])
    default = GaussianMixture(2, covariance_type="diag", random_state=0)
    assert default._n_threads(*X.shape) == max_threads()  # 40,000 x 2 x 8 is above the threshold
    default.fit(X)
    one = GaussianMixture(2, covariance_type="diag", random_state=0, n_jobs=1).fit(X)
    assert default.lower_bound_ == one.lower_bound_
    np.testing.assert_array_equal(default.means_, one.means_)


# ---------------------------------------------------------------- the CPU budget

def _cgroup_files(tmp_path, proc_line: str, files: dict):
    proc = tmp_path / "cgroup"
    proc.write_text(proc_line + "\n")
    root = tmp_path / "fs"
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    return proc, root


def test_cgroup_v2_quota(tmp_path):
    proc, root = _cgroup_files(tmp_path, "0::/job", {"job/cpu.max": "150000 100000\n"})
    assert cgroup_cpu_limit(proc, root) == 1.5


def test_cgroup_v2_without_a_quota(tmp_path):
    proc, root = _cgroup_files(tmp_path, "0::/job", {"job/cpu.max": "max 100000\n"})
    assert cgroup_cpu_limit(proc, root) is None


def test_cgroup_v2_the_smallest_quota_of_the_ancestors(tmp_path):
    proc, root = _cgroup_files(tmp_path, "0::/outer/inner", {
        "cpu.max": "max 100000\n",
        "outer/cpu.max": "400000 100000\n",
        "outer/inner/cpu.max": "100000 100000\n",
    })
    assert cgroup_cpu_limit(proc, root) == 1.0
    (root / "outer/cpu.max").write_text("50000 100000\n")  # a parent's smaller quota binds the child
    assert cgroup_cpu_limit(proc, root) == 0.5


def test_cgroup_v2_inside_a_container_reads_the_mount_root(tmp_path):
    # The process's path names the host's cgroup, which the container's mount does not show.
    proc, root = _cgroup_files(tmp_path, "0::/kubepods/pod1/abc", {"cpu.max": "50000 100000\n"})
    assert cgroup_cpu_limit(proc, root) == 0.5


def test_cgroup_v1_quota(tmp_path):
    proc, root = _cgroup_files(tmp_path, "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc", {
        "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
        "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_limit(proc, root) == 2.0


def test_cgroup_v1_unlimited(tmp_path):
    proc, root = _cgroup_files(tmp_path, "4:cpu,cpuacct:/", {
        "cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup_cpu_limit(proc, root) is None


def test_no_cgroup_files_means_no_limit(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "absent", tmp_path) is None
    proc, root = _cgroup_files(tmp_path, "0::/job", {})
    assert cgroup_cpu_limit(proc, root) is None


def test_cpu_budget_takes_the_smaller_of_affinity_and_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: 2)
    assert cpu_budget() == 2
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: None)
    assert cpu_budget() == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    monkeypatch.setattr(threads, "_cgroup_cpus", lambda: 2)
    assert cpu_budget() == 1


def test_a_fractional_quota_rounds_up(tmp_path, monkeypatch):
    proc, root = _cgroup_files(tmp_path, "0::/", {"cpu.max": "150000 100000\n"})
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: cgroup_cpu_limit(proc, root))
    threads._cgroup_cpus.cache_clear()
    try:
        assert threads._cgroup_cpus() == 2
    finally:
        threads._cgroup_cpus.cache_clear()


# ---------------------------------------------------------------- the wait policy

def _openmp_settings_after_a_fit(extra_env: dict) -> str:
    """A fit in a fresh process with OpenMP printing its settings; its output, then the layer and OMP_WAIT_POLICY."""
    env = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    env.update(OMP_DISPLAY_ENV="TRUE", **extra_env)
    code = (
        "import os, numpy as np, fastem, numba\n"
        "fastem.GaussianMixture(1).fit(np.arange(8.0).reshape(4, 2))\n"
        "print(numba.threading_layer(), os.environ.get('OMP_WAIT_POLICY'))"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return result.stderr + result.stdout


def _threading_layer() -> str:
    import numba

    threads.start_threading_layer()  # as fastem's first kernel would
    return numba.threading_layer()


@pytest.mark.skipif(_threading_layer() != "omp", reason="the wait policy concerns Numba's OpenMP layer")
def test_openmp_threads_wait_passively_and_the_variable_is_removed():
    output = _openmp_settings_after_a_fit({})
    assert "OMP_WAIT_POLICY = 'PASSIVE'" in output
    assert output.rstrip().endswith("omp None")  # other OpenMP libraries loaded later keep their default


@pytest.mark.skipif(_threading_layer() != "omp", reason="the wait policy concerns Numba's OpenMP layer")
def test_a_wait_policy_the_user_set_is_kept():
    output = _openmp_settings_after_a_fit({"OMP_WAIT_POLICY": "ACTIVE"})
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in output
    assert output.rstrip().endswith("omp ACTIVE")


def test_importing_fastem_starts_no_threading_layer():
    # A loaded OpenMP layer makes a later fork unsafe, and Numba's start fixes multiprocessing's start method.
    code = (
        "import multiprocessing, fastem\n"
        "from numba.np.ufunc import parallel\n"
        "print(parallel._is_initialized)\n"
        "multiprocessing.set_start_method('spawn')  # raises if the start method had been fixed\n"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "ok"]


def test_a_forked_child_fits_after_the_parent_imported_fastem():
    code = (
        "import multiprocessing as mp, numpy as np, fastem\n"
        "def child(queue):\n"
        "    model = fastem.GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(100, 2)))\n"
        "    queue.put(model.converged_)\n"
        "if __name__ == '__main__':\n"
        "    context = mp.get_context('fork'); queue = context.Queue()\n"
        "    process = context.Process(target=child, args=(queue,)); process.start()\n"
        "    print(queue.get(timeout=120)); process.join()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300).stdout.split()
    assert out == ["True"]
