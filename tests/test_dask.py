"""Fits and inference on dask arrays: the threaded scheduler and a real 2-process LocalCluster.

The cluster tests start ``dask.distributed.LocalCluster`` on 127.0.0.1 and
close it themselves. One of them kills a worker process in the middle of a fit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import COVARIANCE_TYPES, init_kwargs
from fastem import GaussianMixture

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore::fastem.exceptions.ConvergenceWarning")

FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def assert_same_fit(model, reference, rtol=1e-10):
    for name in FITTED:
        np.testing.assert_allclose(getattr(model, name), getattr(reference, name), rtol=rtol, atol=1e-13, err_msg=name)
    assert model.n_iter_ == reference.n_iter_


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_threaded_scheduler_fit_equals_in_memory(big_blobs, covariance_type):
    X = big_blobs
    kwargs = dict(init_kwargs(covariance_type, 5, X.shape[1], seed=3), max_iter=12, tol=0.0)
    reference = GaussianMixture(**kwargs).fit(X)
    chunks = ((1, 1999, 0, 1000, 2000), (2, 2))  # a 1-row block, an empty block, an odd count, columns in two chunks
    model = GaussianMixture(**kwargs).fit(da.from_array(X, chunks=chunks))
    assert_same_fit(model, reference)


def test_blocks_of_unknown_size_and_weights(big_blobs):
    X = big_blobs
    keep = np.arange(X.shape[0]) % 3 != 0
    dX = da.from_array(X, chunks=(450, 4))  # 12 blocks: two levels of merges
    masked = dX[da.from_array(keep, chunks=450)]
    assert np.isnan(masked.shape[0])
    kwargs = dict(init_kwargs("full", 5, X.shape[1]), max_iter=10, tol=0.0)
    reference = GaussianMixture(**kwargs).fit(X[keep])
    assert_same_fit(GaussianMixture(**kwargs).fit(masked), reference)
    # Default (k-means) initialisation on blocks of unknown size: the in-memory start.
    assert_same_fit(GaussianMixture(5, random_state=0).fit(masked), GaussianMixture(5, random_state=0).fit(X[keep]))
    weights = np.random.default_rng(0).uniform(0, 2, X.shape[0])
    weighted = GaussianMixture(**kwargs).fit(X, sample_weight=weights)
    assert_same_fit(GaussianMixture(**kwargs).fit(dX, sample_weight=weights), weighted)
    assert_same_fit(GaussianMixture(**kwargs).fit(dX, sample_weight=da.from_array(weights, chunks=450)), weighted)


def test_float32_dask_fits_stay_float32(blobs):
    X = blobs.astype(np.float32)
    reference = GaussianMixture(3, random_state=0).fit(X)
    model = GaussianMixture(3, random_state=0).fit(da.from_array(X, chunks=(250, 3)))
    assert model.means_.dtype == np.float32
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-6)


def test_inference_returns_dask_arrays(blobs):
    model = GaussianMixture(3, random_state=0).fit(blobs)
    dX = da.from_array(blobs, chunks=(250, 3))
    labels, proba, scores = model.predict(dX), model.predict_proba(dX), model.score_samples(dX)
    for result in (labels, proba, scores):
        assert isinstance(result, da.Array)
    np.testing.assert_array_equal(labels.compute(), model.predict(blobs))
    np.testing.assert_allclose(proba.compute(), model.predict_proba(blobs), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(scores.compute(), model.score_samples(blobs), rtol=1e-12)
    assert model.score(dX) == pytest.approx(model.score(blobs), rel=1e-12)
    stats = model.compute_statistics(dX)
    np.testing.assert_allclose(stats.second, model.compute_statistics(blobs).second, rtol=1e-12)
    labels = GaussianMixture(3, random_state=0).fit_predict(dX)
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), model.predict(blobs))


def test_bad_dask_input_is_named(blobs):
    bad = blobs.copy()
    bad[400, 2] = np.nan
    with pytest.raises(ValueError, match="X block 1 contains NaN.*in-memory arrays only"):
        GaussianMixture(3).fit(da.from_array(bad, chunks=(300, 3)))
    with pytest.raises(ValueError, match="Expected a 2D array for X, got a 1D dask array"):
        GaussianMixture(3).fit(da.from_array(blobs[:, 0], chunks=100))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(3).fit(da.from_array(blobs[:2], chunks=1))
    with pytest.raises(ValueError, match="sample_weight has 5 values, but X has 600 rows"):
        GaussianMixture(3).fit(da.from_array(blobs, chunks=(300, 3)), sample_weight=np.ones(5))
    model = GaussianMixture(3, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.compute_statistics(da.from_array(blobs[:, :2], chunks=100))


def test_fitting_numpy_data_imports_no_dask():
    code = (
        "import sys, numpy as np\n"
        "from fastem import GaussianMixture\n"
        "GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2)))\n"
        "loaded = [m for m in ('dask', 'distributed') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each, on 127.0.0.1, closed by the module."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", silence_logs=40,
    ) as local_cluster:
        yield local_cluster


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_two_process_cluster_fit_equals_in_memory(cluster, big_blobs, covariance_type):
    X = big_blobs
    kwargs = dict(init_kwargs(covariance_type, 5, X.shape[1], seed=4), max_iter=8, tol=0.0)
    reference = GaussianMixture(**kwargs).fit(X)
    with distributed.Client(cluster) as client, distributed.get_task_stream(client) as tasks:
        model = GaussianMixture(**kwargs).fit(da.from_array(X, chunks=(1000, 4)))
        labels = model.predict(da.from_array(X, chunks=(1000, 4))).compute()
    assert_same_fit(model, reference)
    np.testing.assert_array_equal(labels, reference.predict(X))
    assert len({task["worker"] for task in tasks.data}) == 2  # both worker processes ran tasks


def test_a_worker_killed_during_a_fit_gives_the_same_model(big_blobs):
    X = np.concatenate([big_blobs] * 4)
    kwargs = dict(init_kwargs("full", 5, X.shape[1], seed=5), max_iter=60, tol=0.0)
    reference = GaussianMixture(**kwargs).fit(X)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0", silence_logs=50,
    ) as local_cluster, distributed.Client(local_cluster) as client:
        dX = da.from_array(X, chunks=(1000, 4))
        model = GaussianMixture(**kwargs)
        outcome = {}

        def fit():
            try:
                outcome["model"] = model.fit(dX)
            except Exception as exc:  # reported below
                outcome["error"] = exc

        fitting = threading.Thread(target=fit)
        fitting.start()
        time.sleep(2.0)
        alive_when_killed = fitting.is_alive()
        victim = next(iter(client.run(os.getpid).values()))
        os.kill(victim, signal.SIGKILL)
        fitting.join(timeout=600)
    assert alive_when_killed, "the fit ended before the worker was killed: make it longer"
    assert not fitting.is_alive()
    if "error" in outcome:
        # Allowed: a clear error naming the cause, never a different model.
        assert isinstance(outcome["error"], RuntimeError), outcome["error"]
        assert "Dask computation" in str(outcome["error"])
        assert not hasattr(model, "means_")
    else:
        assert_same_fit(outcome["model"], reference)
