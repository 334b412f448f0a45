"""Where the data come from: in-memory arrays, memmaps, iterables of row blocks, Dask arrays.

An E-step only needs the rows one block at a time, and the statistics of
blocks add (see ``DESIGN.md``). So every way of holding the data reduces to
one operation, :meth:`ChunkSource.reduce`: compute a state per block with a
model's function and combine the states. Local sources fold the blocks in
order into one state (so a model can add every block into the same sums and
match its in-memory result); the Dask source (``fastem._core.dask_source``)
computes the blocks as tasks and merges them in a tree.

This module knows no model. :func:`chunk_source` decides which source
``X`` is; in-memory arrays (and lists, DataFrames, anything array-like) are
not sources: the estimators take their usual path for them.

Blocks handed to a model are validated here: 2-D, C-contiguous, native
float32 or float64 (the first block's float type, for iterables; other
numeric types become float64), finite, with the fit's feature count.
Missing values (NaN) are rejected with a message saying they are supported
for in-memory arrays only.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any, Callable, Iterator

import numpy as np

from fastem._core.numba import CHUNK_ROWS
from fastem._core.validation import _as_float_array, check_finite

# Rows per block read from a memmap: about this many bytes, rounded down to a
# multiple of the kernels' chunk (then an out-of-core E-step adds exactly the
# in-memory sums in the same order).
MEMMAP_BLOCK_BYTES = 64 * 2**20

_PAGE = mmap.PAGESIZE

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # NumPy 1.x
    _byte_bounds = np.byte_bounds


def is_dask_array(X) -> bool:
    """Whether X is a ``dask.array.Array``, decided without importing dask."""
    return any(cls.__module__.startswith("dask.array") and cls.__name__ == "Array" for cls in type(X).__mro__)


def _is_array_like(X) -> bool:
    return (
        isinstance(X, (list, tuple, np.ndarray, str, bytes, dict))
        or hasattr(X, "__array__")
        or hasattr(X, "__array_interface__")
        or hasattr(X, "shape")
        or np.isscalar(X)
    )


def chunk_source(X, sample_weight=None, *, name: str = "X"):
    """The :class:`ChunkSource` for X, or None when X is an in-memory array-like.

    Raises a TypeError for a one-shot iterator (a generator object), which
    would be exhausted after the first pass, and for ``sample_weight`` given
    with a callable or iterable (their blocks carry weights instead: yield
    ``(X_block, weight_block)`` pairs).
    """
    if is_dask_array(X):
        from fastem._core.dask_source import DaskSource  # dask is imported only for dask input

        return DaskSource(X, sample_weight, name=name)
    if isinstance(X, np.memmap):
        return MemmapSource(X, sample_weight, name=name)
    if _is_array_like(X):
        return None
    if hasattr(X, "__next__"):
        raise TypeError(
            f"{name} is a one-shot iterator ({type(X).__name__}): fastem reads block sources more than once "
            "(a fit checks the data in a first pass, then makes one pass per EM iteration), and an iterator is "
            "exhausted after the first pass. Pass a callable that returns a new iterator "
            f"of row blocks each time it is called (for example `lambda: read_blocks(path)`), or an object "
            "whose __iter__ starts a new pass."
        )
    if callable(X) or hasattr(X, "__iter__"):
        if sample_weight is not None:
            raise TypeError(
                f"sample_weight cannot be given with row blocks from a callable or iterable {name}; "
                "yield (X_block, weight_block) pairs instead."
            )
        return IterableSource(X, name=name)
    raise TypeError(
        f"{name} must be an array-like, a numpy.memmap, a dask array, a callable returning an iterable of row "
        f"blocks, or a re-iterable object of row blocks; got {type(X).__name__}."
    )


class ChunkSource:
    """Row blocks of a data set that is not held in memory at once.

    Subclasses provide :meth:`_raw_blocks` (local) or override :meth:`reduce`.
    ``n_features`` and ``dtype`` are known after :meth:`survey`.
    """

    name = "X"
    n_features: int | None = None
    dtype: np.dtype | None = None
    n_samples: int | None = None
    # Who set n_features, for the error message of a block that disagrees.
    features_expected_by = "the blocks before it have"

    def _raw_blocks(self) -> Iterator[tuple[Any, Any]]:
        raise NotImplementedError

    def blocks(self, check_values: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Validated ``(X_block, weight_block or None)`` pairs, one pass over the data.

        Shapes, dtypes and weights are checked on every pass; the values
        (NaN, infinity) with ``check_values``, which :meth:`survey` sets: one
        full check per fit, not one per iteration (the check reads every
        block once more, which measured 10-20% of an iteration). A value that
        turns non-finite in a later pass still cannot reach a model: the
        E-step's log-likelihood becomes non-finite and the fit raises.
        """
        n_rows = 0
        for index, (block, weights) in enumerate(self._raw_blocks()):
            block, weights = self._checked_block(block, weights, index, check_values)
            n_rows += block.shape[0]
            yield block, weights
        if self.n_samples is not None and n_rows != self.n_samples:
            raise ValueError(
                f"{self.name} gave {n_rows} rows on this pass but {self.n_samples} on the first: every pass must "
                "give the same rows. (A one-shot iterator, returned again on each pass, gives none the second time.)"
            )

    def _checked_block(self, block, weights, index: int, check_values: bool = True):
        where = f"{self.name} block {index}"
        block = _as_float_array(block, where)
        if block.ndim != 2:
            raise ValueError(f"Expected 2D row blocks in {self.name}; {where} has shape {block.shape}.")
        if self.dtype is None:
            self.dtype = block.dtype
            self.n_features = block.shape[1]
            if self.n_features < 1:
                raise ValueError(f"{where} has 0 features; a minimum of 1 is required.")
        if block.shape[1] != self.n_features:
            raise ValueError(
                f"{where} has {block.shape[1]} features, but {self.features_expected_by} {self.n_features}."
            )
        block = np.ascontiguousarray(block, dtype=self.dtype)
        if check_values and check_finite(block, where, allow_nan=True):
            raise ValueError(
                f"Input {where} contains NaN. Missing values are supported for in-memory arrays only; "
                "load the data (a memmap with numpy.array(X)) to fit it with missing values, or drop or fill "
                "the incomplete rows."
            )
        if weights is not None:
            weights = _checked_block_weights(weights, block.shape[0], where)
        return block, weights

    def survey(self) -> "Survey":
        """One validating pass: row count, feature count, dtype, and the weights' total and positive count."""
        self.n_samples = None  # what this pass finds is what later passes must give
        survey = Survey()
        for block, weights in self.blocks(check_values=True):
            survey.add(block, weights)
        if self.n_features is None:
            raise ValueError(f"{self.name} yielded no row blocks: found 0 samples.")
        self.n_samples = survey.n_samples
        return survey

    def reduce(self, block_state: Callable, context, merge: Callable):
        """``block_state(X_block, weight_block, context, into)`` over every block, folded in order.

        The first block gets ``into=None`` and returns a new state; every
        later block adds into that state. ``merge`` is for sources that
        compute blocks apart (Dask) and is not used here.
        """
        state = None
        for block, weights in self.blocks():
            state = block_state(block, weights, context, state)
        return state

    def rows(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows at sorted ``indices`` (and their weights), gathered in one pass."""
        parts, weight_parts = [], []
        start = 0
        position = 0
        any_weights = False
        for block, weights in self.blocks():
            stop = start + block.shape[0]
            end = np.searchsorted(indices, stop, side="left")
            local = indices[position:end] - start
            parts.append(block[local])
            weight_parts.append(np.ones(len(local)) if weights is None else weights[local])
            any_weights |= weights is not None
            position = end
            start = stop
        X = np.concatenate(parts) if parts else np.empty((0, self.n_features), dtype=self.dtype)
        return np.ascontiguousarray(X), (np.concatenate(weight_parts) if any_weights else None)


class Survey:
    """What one pass learns about the data: sizes and the weights' total and positive count."""

    def __init__(self):
        self.n_samples = 0
        self.n_positive = 0
        self.weight_total = 0.0
        self.weighted = False

    def add(self, block: np.ndarray, weights) -> None:
        self.n_samples += block.shape[0]
        if weights is None:
            self.n_positive += block.shape[0]
            self.weight_total += block.shape[0]
        else:
            self.weighted = True
            self.n_positive += int(np.count_nonzero(weights))
            self.weight_total += float(weights.sum())

    def merge(self, other: "Survey") -> "Survey":
        merged = Survey()
        merged.n_samples = self.n_samples + other.n_samples
        merged.n_positive = self.n_positive + other.n_positive
        merged.weight_total = self.weight_total + other.weight_total
        merged.weighted = self.weighted or other.weighted
        return merged


def checked_matrix(X, name: str, what: str) -> np.dtype:
    """Check a whole-data-set array (memmap, dask array) is 2-D, numeric, with features; return the fit's dtype.

    float32 and float64 keep their precision (native byte order); other
    numeric types are read as float64, as in-memory input is.
    """
    if X.ndim != 2:
        kind = {0: "scalar", 1: "1D"}.get(X.ndim, f"{X.ndim}D")
        raise ValueError(f"Expected a 2D array for {name}, got a {kind} {what} instead (shape={X.shape}).")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got a {what} of dtype {X.dtype}.")
    if X.shape[1] == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is required.")
    if X.dtype.kind == "f" and X.dtype.itemsize in (4, 8):
        return X.dtype.newbyteorder("=")
    return np.dtype(np.float64)


def _checked_block_weights(weights, n_rows: int, where: str) -> np.ndarray:
    weights = _as_float_array(weights, f"sample_weight of {where}")
    if weights.shape != (n_rows,):
        raise ValueError(f"sample_weight of {where} has shape {weights.shape}; expected ({n_rows},).")
    if not np.isfinite(weights).all():
        raise ValueError(f"sample_weight of {where} contains NaN or infinity.")
    if (weights < 0).any():
        raise ValueError(f"sample_weight of {where} contains negative values.")
    return np.ascontiguousarray(weights, dtype=np.float64)


class IterableSource(ChunkSource):
    """Row blocks from a callable (called once per pass) or a re-iterable object (iterated once per pass).

    Each item is a 2-D row block, or an ``(X_block, weight_block)`` pair.
    Nothing is cached: every pass asks the source again.
    """

    def __init__(self, source, *, name: str = "X"):
        self.source = source
        self.name = name

    def _raw_blocks(self):
        items = self.source() if callable(self.source) else self.source
        if items is None or _is_array_like(items) and not isinstance(items, (list, tuple)):
            raise TypeError(
                f"{self.name} must return (or be) an iterable of 2-D row blocks; got {type(items).__name__}."
            )
        for item in items:
            if isinstance(item, tuple) and len(item) == 2 and np.ndim(item[0]) == 2 and np.ndim(item[1]) == 1:
                yield item
            else:
                yield item, None


class MemmapSource(ChunkSource):
    """A ``numpy.memmap`` read in blocks of about ``MEMMAP_BLOCK_BYTES``, never held whole.

    The file pages of each block are released from the process once the
    block has been used (``madvise(MADV_DONTNEED)``), so the resident memory
    stays at about one block however large the file: containers with memory
    limits count mapped pages. The pages stay in the system's file cache, and
    nothing is lost, because the release applies to shared mappings only
    (modes 'r', 'r+', 'w+'). A copy-on-write memmap (mode 'c') may hold
    changes that exist nowhere else, so its pages are not released and its
    resident memory grows as it is read.

    Blocks of a C-contiguous memmap of native float32/float64 are handed to
    the kernels in place, without a copy: a copy doubled the time per
    iteration (2e7 x 8, 500 ms against 251 in memory), since reading the
    file pages, writing the copy and reading it again is three passes over
    memory where the kernels need one. A read-only mapping (mode 'r') is
    seen through a writeable alias (:func:`_writeable_alias`) because Numba
    compiles a separate specialisation of every kernel for read-only arrays;
    the kernels never write to X. Other memmaps (other dtypes or byte
    orders, strided views, writeable mappings the caller marked read-only)
    are copied block by block into one buffer.

    Blocks hold whole kernel chunks (``CHUNK_ROWS`` rows), so the E-step adds
    exactly the in-memory sums, except for rows wider than a block's budget
    (over 4096 float64 features), which get fewer rows per block.
    """

    def __init__(self, X: np.memmap, sample_weight=None, *, name: str = "X", block_bytes: int | None = None):
        self.dtype = checked_matrix(X, name, "memmap")
        self.X = X
        self.name = name
        self.n_samples, self.n_features = X.shape
        block_bytes = MEMMAP_BLOCK_BYTES if block_bytes is None else block_bytes
        row_bytes = max(self.n_features * self.dtype.itemsize, 1)
        rows = max(block_bytes // row_bytes, 1)
        # Whole kernel chunks where a block holds at least one (bit-identical
        # to in memory); very wide rows get smaller blocks, to keep the memory bound.
        self.block_rows = rows // CHUNK_ROWS * CHUNK_ROWS if rows >= CHUNK_ROWS else rows
        # In place: native floats, contiguous, and either writeable or a read-only
        # mapping (mode 'r'), where a stray write would fault instead of changing data.
        self.in_place = (
            X.dtype == self.dtype and X.flags.c_contiguous and (X.flags.writeable or getattr(X, "mode", None) == "r")
        )
        self.sample_weight = None
        if sample_weight is not None:
            self.sample_weight = sample_weight if isinstance(sample_weight, np.memmap) else np.asarray(sample_weight)
            if self.sample_weight.shape != (self.n_samples,):
                raise ValueError(
                    f"sample_weight.shape == {self.sample_weight.shape}, expected ({self.n_samples},)!"
                )

    def _raw_blocks(self):
        n_rows = self.X.shape[0]
        buffer = None
        if not self.in_place:
            buffer = np.empty((min(self.block_rows, n_rows), self.n_features), dtype=self.dtype)
        for start in range(0, n_rows, self.block_rows):
            stop = min(start + self.block_rows, n_rows)
            view = self.X[start:stop]
            if self.in_place:
                block = view if view.flags.writeable else _writeable_alias(view)
            else:
                block = buffer[: stop - start]
                np.copyto(block, view, casting="unsafe")
                release_pages(view)
            weights = None
            if self.sample_weight is not None:
                weights = np.array(self.sample_weight[start:stop], dtype=np.float64)
                release_pages(self.sample_weight[start:stop])
            yield block, weights
            if self.in_place:
                del block
                release_pages(view)  # the consumer is done with the block's pages


def _writeable_alias(view: np.ndarray) -> np.ndarray:
    """A writeable ndarray over the memory of the read-only, C-contiguous ``view`` (no copy).

    Only for handing read-only file pages to kernels that read them: a
    write through the alias to a read-only mapping would be a segmentation
    fault, not a silent change. The alias keeps ``view`` (hence the mapping)
    alive through its ``base``.
    """
    interface = dict(view.__array_interface__)
    interface["data"] = (interface["data"][0], False)  # (address, read-only flag)

    class _Holder:
        __array_interface__ = interface
        keep_alive = view

    return np.asarray(_Holder())


def release_pages(view) -> None:
    """Drop the file pages under ``view`` (a slice of a shared ``numpy.memmap``) from this process's memory.

    Safe for shared mappings: the pages stay in the file (and the system's
    cache) and are read again on the next access. Does nothing for
    copy-on-write memmaps, non-memmaps, or where ``madvise`` is missing.
    """
    mapping = getattr(view, "_mmap", None)
    if (
        mapping is None
        or getattr(view, "mode", None) == "c"
        or not hasattr(mmap, "MADV_DONTNEED")
        or not sys.platform.startswith("linux")
        or view.size == 0
    ):
        return
    base = np.frombuffer(mapping, dtype=np.uint8, count=1).ctypes.data
    low, high = _byte_bounds(view)
    start = (low - base) // _PAGE * _PAGE
    length = high - base - start
    try:
        mapping.madvise(mmap.MADV_DONTNEED, start, length)
    except (OSError, ValueError):  # a closed or foreign mapping: keep the pages
        pass
