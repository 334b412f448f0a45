"""Fits from data read block by block: memmaps, callables and re-iterables of row blocks.

Each source must give the in-memory answer: to the bit for memmaps (read in
blocks of whole kernel chunks), to 1e-10 relative for blocks of any size.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import COVARIANCE_TYPES, init_kwargs
from fastem import GaussianMixture
from fastem._core import sources
from fastem.mixture import chunked_fit

# Fits here run a fixed number of iterations (tol=0) to compare them step for step.
pytestmark = pytest.mark.filterwarnings("ignore::fastem.exceptions.ConvergenceWarning")

# Unequal blocks of 5000 rows, with a 1-row block and blocks that split kernel chunks.
BLOCK_SIZES = [1, 999, 2048, 5, 1, 1446, 500]
FITTED = ("weights_", "means_", "covariances_", "precisions_cholesky_")


def split_rows(X, sizes=BLOCK_SIZES):
    assert sum(sizes) == X.shape[0]
    edges = np.cumsum([0, *sizes])
    return [X[a:b] for a, b in zip(edges[:-1], edges[1:])]


class Blocks:
    """A re-iterable object: each __iter__ starts a new pass (and counts the passes)."""

    def __init__(self, blocks):
        self.blocks = blocks
        self.passes = 0

    def __iter__(self):
        self.passes += 1
        return iter(self.blocks)


def write_memmap(path, X):
    np.save(path, X)
    return np.load(path, mmap_mode="r")


def assert_same_fit(model, reference, rtol):
    for name in FITTED:
        np.testing.assert_allclose(getattr(model, name), getattr(reference, name), rtol=rtol, atol=1e-13, err_msg=name)
    assert model.n_iter_ == reference.n_iter_
    np.testing.assert_allclose(model.lower_bounds_, reference.lower_bounds_, rtol=rtol)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_memmap_callable_and_iterable_fits_equal_the_in_memory_fit(big_blobs, tmp_path, covariance_type):
    X = big_blobs
    kwargs = dict(init_kwargs(covariance_type, 5, X.shape[1], seed=2), max_iter=15, tol=0.0)
    reference = GaussianMixture(**kwargs).fit(X)
    memmap = write_memmap(tmp_path / "X.npy", X)
    from_memmap = GaussianMixture(**kwargs).fit(memmap)
    # Blocks of whole kernel chunks: the same additions in the same order.
    for name in FITTED:
        np.testing.assert_array_equal(getattr(from_memmap, name), getattr(reference, name), err_msg=name)
    blocks = split_rows(X)
    calls = []

    def read_blocks():
        calls.append(1)
        return iter(blocks)

    assert_same_fit(GaussianMixture(**kwargs).fit(read_blocks), reference, 1e-10)
    assert len(calls) == 1 + reference.n_iter_  # a validating pass, then one per iteration: never cached
    reiterable = Blocks(blocks)
    assert_same_fit(GaussianMixture(**kwargs).fit(reiterable), reference, 1e-10)
    assert reiterable.passes == 1 + reference.n_iter_


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_default_initialisations_match_in_memory_on_data_within_the_sample(blobs, init_params):
    # Data smaller than the initialisation sample are gathered whole: the same start, the same fit.
    reference = GaussianMixture(3, init_params=init_params, random_state=4).fit(blobs)
    chunked = GaussianMixture(3, init_params=init_params, random_state=4).fit(lambda: split_rows(blobs, [300, 1, 299]))
    assert_same_fit(chunked, reference, 1e-10)


def test_sample_weights_with_memmaps_and_weighted_blocks(big_blobs, tmp_path):
    X = big_blobs
    weights = np.random.default_rng(0).uniform(0, 3, X.shape[0])
    weights[::7] = 0.0
    kwargs = dict(init_kwargs("full", 5, X.shape[1]), max_iter=10, tol=0.0)
    reference = GaussianMixture(**kwargs).fit(X, sample_weight=weights)
    memmap = write_memmap(tmp_path / "X.npy", X)
    weight_memmap = write_memmap(tmp_path / "w.npy", weights)
    assert_same_fit(GaussianMixture(**kwargs).fit(memmap, sample_weight=weight_memmap), reference, 1e-12)
    pairs = list(zip(split_rows(X), split_rows(weights)))
    assert_same_fit(GaussianMixture(**kwargs).fit(lambda: iter(pairs)), reference, 1e-10)


def test_float32_memmap_keeps_float32(blobs, tmp_path):
    X = blobs.astype(np.float32)
    reference = GaussianMixture(3, random_state=0).fit(X)
    chunked = GaussianMixture(3, random_state=0).fit(write_memmap(tmp_path / "X.npy", X))
    assert chunked.means_.dtype == np.float32
    for name in FITTED:
        np.testing.assert_array_equal(getattr(chunked, name), getattr(reference, name), err_msg=name)


@pytest.mark.parametrize("dtype", ["<f8", ">f8"], ids=["in place", "copied"])
def test_memmap_pages_are_released_as_they_are_read(tmp_path, monkeypatch, dtype):
    # 64 MiB of file read in 4 MiB blocks: the file pages this process keeps
    # mapped (RssFile) must stay near one block, not grow to the file. Native
    # floats go to the kernels in place; other byte orders are copied.
    monkeypatch.setattr(sources, "MEMMAP_BLOCK_BYTES", 4 * 2**20)
    rng = np.random.default_rng(0)
    path = tmp_path / "big.npy"
    rows = (64 * 2**20) // (8 * 4)
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.dtype(dtype), shape=(rows, 4))
    for start in range(0, rows, 2**18):
        X[start:start + 2**18] = rng.normal(size=(min(2**18, rows - start), 4))
    X.flush()
    del X
    memmap = np.load(path, mmap_mode="r")
    assert sources.MemmapSource(memmap).in_place == (dtype == "<f8")
    before = _rss_file_bytes()
    kwargs = init_kwargs("diag", 2, 4)
    GaussianMixture(**kwargs, max_iter=2, tol=0.0).fit(memmap)
    grown = _rss_file_bytes() - before
    assert grown < 16 * 2**20, f"file pages kept resident: {grown / 2**20:.1f} MiB"


def _rss_file_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssFile:"):
                return int(line.split()[1]) * 1024
    pytest.skip("/proc/self/status has no RssFile line on this system")


def test_memmaps_of_other_dtypes_are_converted_block_by_block(blobs, tmp_path):
    reference = GaussianMixture(3, random_state=0).fit(np.round(blobs * 100).astype(np.int32))
    chunked = GaussianMixture(3, random_state=0).fit(write_memmap(tmp_path / "X.npy", np.round(blobs * 100).astype(np.int32)))
    assert chunked.means_.dtype == np.float64
    np.testing.assert_array_equal(chunked.means_, reference.means_)
    swapped = GaussianMixture(3, random_state=0).fit(write_memmap(tmp_path / "big.npy", blobs.astype(">f8")))
    np.testing.assert_array_equal(swapped.means_, GaussianMixture(3, random_state=0).fit(blobs).means_)


def test_writeable_memmaps_marked_read_only_are_copied_not_aliased(blobs, tmp_path):
    np.save(tmp_path / "X.npy", blobs)
    memmap = np.load(tmp_path / "X.npy", mmap_mode="r+")
    memmap.flags.writeable = False
    assert not sources.MemmapSource(memmap).in_place
    assert sources.MemmapSource(np.load(tmp_path / "X.npy", mmap_mode="r")).in_place
    np.testing.assert_array_equal(GaussianMixture(3, random_state=0).fit(memmap).means_,
                                  GaussianMixture(3, random_state=0).fit(blobs).means_)


def test_copy_on_write_memmaps_are_read_without_dropping_changes(blobs, tmp_path):
    np.save(tmp_path / "X.npy", blobs)
    memmap = np.load(tmp_path / "X.npy", mmap_mode="c")
    memmap[0, 0] = 1e3  # a private change that exists nowhere else
    changed = np.array(memmap)
    reference = GaussianMixture(3, random_state=0).fit(changed)
    chunked = GaussianMixture(3, random_state=0).fit(memmap)
    assert memmap[0, 0] == 1e3
    np.testing.assert_array_equal(chunked.means_, reference.means_)


def test_large_data_initialise_on_a_seeded_sample(big_blobs, monkeypatch):
    monkeypatch.setattr(chunked_fit, "INIT_SAMPLE_MAX_ROWS", 1000)
    monkeypatch.setattr(chunked_fit, "INIT_SAMPLE_MIN_ROWS", 1000)
    X = big_blobs
    first = GaussianMixture(5, random_state=7).fit(lambda: split_rows(X))
    again = GaussianMixture(5, random_state=7).fit(lambda: split_rows(X, [2500, 2500]))
    for name in FITTED:
        np.testing.assert_allclose(getattr(first, name), getattr(again, name), rtol=1e-10, atol=1e-12)
    other_seed = GaussianMixture(5, random_state=8, max_iter=1).fit(lambda: split_rows(X))
    assert not np.allclose(np.sort(other_seed.means_, axis=0), np.sort(
        GaussianMixture(5, random_state=7, max_iter=1).fit(lambda: split_rows(X)).means_, axis=0))
    # A sensible start: the sampled fit reaches the in-memory fit's likelihood.
    in_memory = GaussianMixture(5, random_state=7).fit(X)
    assert first.score(X) == pytest.approx(in_memory.score(X), abs=1e-3)


def test_inference_on_memmaps_and_blocks(blobs, tmp_path):
    model = GaussianMixture(3, random_state=0).fit(blobs)
    memmap = write_memmap(tmp_path / "X.npy", blobs)
    blocks = lambda: split_rows(blobs, [300, 1, 299])  # noqa: E731
    for X in (memmap, blocks):
        np.testing.assert_array_equal(model.predict(X), model.predict(blobs))
        np.testing.assert_allclose(model.predict_proba(X), model.predict_proba(blobs), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(model.score_samples(X), model.score_samples(blobs), rtol=1e-12)
    labels = GaussianMixture(3, random_state=0).fit_predict(memmap)
    np.testing.assert_array_equal(labels, model.predict(blobs))


# -- errors -------------------------------------------------------------------


def test_one_shot_iterators_are_refused(blobs):
    generator = (block for block in split_rows(blobs, [300, 300]))
    with pytest.raises(TypeError, match="one-shot iterator"):
        GaussianMixture(3).fit(generator)
    with pytest.raises(TypeError, match="one-shot iterator"):
        GaussianMixture(3).fit(iter(split_rows(blobs, [300, 300])))
    # An object whose __iter__ hands back the same iterator every time is one
    # too: found when the second pass comes up empty.
    shared = iter(split_rows(blobs, [300, 300]))
    with pytest.raises(ValueError, match="gave 0 rows on this pass but 600 on the first.*one-shot iterator"):
        GaussianMixture(3).fit(_SameIterator(shared))


class _SameIterator:
    def __init__(self, iterator):
        self.iterator = iterator

    def __iter__(self):
        return self.iterator


def test_bad_blocks_are_named(blobs):
    good = split_rows(blobs, [300, 300])
    nan_block = good[1].copy()
    nan_block[5, 1] = np.nan
    with pytest.raises(ValueError, match="X block 1 contains NaN.*in-memory arrays only"):
        GaussianMixture(3).fit(lambda: [good[0], nan_block])
    inf_block = good[1].copy()
    inf_block[0, 0] = np.inf
    with pytest.raises(ValueError, match="X block 1 contains infinity"):
        GaussianMixture(3).fit(lambda: [good[0], inf_block])
    with pytest.raises(ValueError, match="X block 1 has 2 features, but the blocks before it have 3"):
        GaussianMixture(3).fit(lambda: [good[0], good[1][:, :2]])
    with pytest.raises(ValueError, match="Expected 2D row blocks.*block 0"):
        GaussianMixture(3).fit(lambda: [good[0][:, 0]])
    with pytest.raises(ValueError, match="yielded no row blocks"):
        GaussianMixture(3).fit(lambda: [])
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(3).fit(lambda: [good[0][:2]])
    with pytest.raises(ValueError, match="strings"):
        GaussianMixture(3).fit(lambda: [np.array([["a", "b", "c"]] * 4)])
    with pytest.raises(TypeError, match="iterable of 2-D row blocks"):
        GaussianMixture(3).fit(lambda: 5)
    with pytest.raises(TypeError, match="yield \\(X_block, weight_block\\) pairs"):
        GaussianMixture(3).fit(lambda: good, sample_weight=np.ones(600))
    with pytest.raises(ValueError, match="sample_weight of X block 0 contains negative"):
        GaussianMixture(3).fit(lambda: [(good[0], -np.ones(300))])


def test_memmap_errors_and_inputs_left_alone(blobs, tmp_path):
    memmap = write_memmap(tmp_path / "X.npy", blobs)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(5,\), expected \(600,\)"):
        GaussianMixture(3).fit(memmap, sample_weight=np.ones(5))
    np.save(tmp_path / "one.npy", blobs[:, 0])
    with pytest.raises(ValueError, match="Expected a 2D array for X, got a 1D memmap"):
        GaussianMixture(3).fit(np.load(tmp_path / "one.npy", mmap_mode="r"))
    with_nan = blobs.copy()
    with_nan[10, 0] = np.nan
    with pytest.raises(ValueError, match="contains NaN.*in-memory arrays only"):
        GaussianMixture(3).fit(write_memmap(tmp_path / "nan.npy", with_nan))
    model = GaussianMixture(3, random_state=0).fit(memmap)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        GaussianMixture(3, random_state=0).fit(blobs[:, :2]).predict(memmap)
    np.testing.assert_array_equal(np.load(tmp_path / "X.npy"), blobs)
    assert model.n_features_in_ == 3


def test_values_that_turn_bad_after_the_checking_pass_stop_the_fit(blobs):
    # Values are checked on the first pass; a source that changes afterwards
    # must still never produce a model with NaN.
    passes = []

    def changing():
        passes.append(1)
        blocks = split_rows(blobs, [300, 300])
        if len(passes) > 2:
            blocks[1] = blocks[1].copy()
            blocks[1][7, 0] = np.nan
        return blocks

    model = GaussianMixture(3, random_state=0)
    with pytest.raises(ValueError, match="log-likelihood of the data is not finite.*later pass"):
        model.fit(changing)
    assert not hasattr(model, "means_")
    # A fitted model whose refit fails in the middle of EM keeps its parameters.
    model.fit(blobs)
    means = model.means_.copy()
    passes.clear()
    with pytest.raises(ValueError, match="not finite"):
        model.fit(changing)
    np.testing.assert_array_equal(model.means_, means)


def test_a_failed_chunked_fit_keeps_the_previous_model(blobs):
    model = GaussianMixture(3, random_state=0).fit(blobs)
    means = model.means_.copy()
    bad = split_rows(blobs, [300, 300])
    bad = [bad[0], np.where(np.arange(300)[:, None] == 3, np.nan, bad[1])]
    with pytest.raises(ValueError, match="NaN"):
        model.fit(lambda: bad)
    np.testing.assert_array_equal(model.means_, means)
