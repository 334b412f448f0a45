"""Document-word count matrices: checks, and the CSR form the LDA kernels read.

Users pass a dense array or any SciPy sparse matrix or array of
non-negative counts (documents as rows, vocabulary words as columns). The
kernels read CSR arrays with int64 indices and float64 counts, whatever the
input's types, so each kernel compiles once. The caller's matrix is never
written to: a CSR matrix whose indices are unsorted or repeated is summed
and sorted in a copy (a repeated entry counts as the sum of its values).
scikit-learn's LDA, by contrast, sorts the caller's indices in place.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse

from fastem._core.validation import _as_float_array, check_finite
from fastem.topics._document_kernels import word_major_index


class Corpus:
    """A count matrix as the kernels read it.

    Attributes
    ----------
    indptr, indices : int64 arrays
        CSR structure: the words of document d are ``indices[indptr[d]:indptr[d + 1]]``.
    counts : float64 array
        The count of each of those entries.
    n_docs, n_words : int
    dtype : numpy dtype
        float32 or float64: the precision results keep (the input's, or float64
        for integer input).
    """

    def __init__(self, indptr, indices, counts, n_words: int, dtype):
        self.indptr = indptr
        self.indices = indices
        self.counts = counts
        self.n_docs = indptr.shape[0] - 1
        self.n_words = n_words
        self.dtype = np.dtype(dtype)
        self._word_index = None

    @property
    def total_count(self) -> float:
        """The number of word tokens (the sum of all counts)."""
        return float(self.counts.sum())

    def documents(self, start: int, stop: int) -> "Corpus":
        """The documents ``start`` to ``stop`` (a mini-batch), sharing this corpus's arrays."""
        first, last = self.indptr[start], self.indptr[stop]
        return Corpus(self.indptr[start:stop + 1] - first, self.indices[first:last], self.counts[first:last],
                      self.n_words, self.dtype)

    def present_words(self) -> np.ndarray:
        """The words (column indices, increasing) that occur in at least one document."""
        word_starts = self.word_index()[0]
        return np.flatnonzero(word_starts[1:] > word_starts[:-1])

    def word_index(self):
        """(word_starts, word_docs, word_positions): the entries of each word, in increasing document order.

        Entries of word w are ``word_starts[w]`` to ``word_starts[w + 1]``;
        each gives its document and its position in the CSR arrays. Built
        once per corpus (a counting sort of the column indices).
        """
        if self._word_index is None:
            n_entries = self.indices.shape[0]
            index = (np.empty(self.n_words + 1, dtype=np.int64), np.empty(n_entries, dtype=np.int64),
                     np.empty(n_entries, dtype=np.int64))
            word_major_index(self.indptr, self.indices, self.n_words, *index)
            self._word_index = index
        return self._word_index


def _reject_bad_counts(values: np.ndarray, name: str, whom: str) -> None:
    check_finite(values, name, estimator_name="LatentDirichletAllocation")
    if values.size and values.min() < 0:
        # scikit-learn's wording (check_non_negative), which callers match.
        raise ValueError(f"Negative values in data passed to {whom}. Word counts must be >= 0.")


def check_counts(X, *, whom: str, dtype=None, n_words: int | None = None, name: str = "X") -> Corpus:
    """Validate a document-word count matrix and return it as a :class:`Corpus`.

    Parameters
    ----------
    X : array-like or SciPy sparse matrix/array of shape (n_docs, n_words)
    whom : str
        The method being called (``"LatentDirichletAllocation.fit"``), named in
        the negative-count error as scikit-learn names it.
    dtype : float32, float64 or None
        The precision of the results; None keeps float32/float64 input's and
        uses float64 for other input.
    n_words : int or None
        If given, the vocabulary size the fitted model expects.

    Raises
    ------
    ValueError
        For a matrix that is not 2-D, empty, holds NaN, infinity or negative
        values, or has another vocabulary size than ``n_words``.
    """
    if scipy.sparse.issparse(X):
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D matrix for {name}, got shape {X.shape}.")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold real numbers; got a sparse matrix of dtype {X.dtype}.")
        matrix = scipy.sparse.csr_matrix(X)  # a new object (sharing arrays when X is already CSR)
        if matrix is X or not matrix.has_canonical_format:
            matrix = matrix.copy()
            matrix.sum_duplicates()  # also sorts the indices, in the copy
        values = matrix.data
        input_dtype = matrix.dtype
        if matrix.nnz and (matrix.indices.min() < 0 or matrix.indices.max() >= matrix.shape[1]):
            raise ValueError(
                f"{name} is a malformed sparse matrix: a column index lies outside 0..{matrix.shape[1] - 1}."
            )
    else:
        array = _as_float_array(X, name)
        if array.ndim != 2:
            kind = {0: "scalar", 1: "1D"}.get(array.ndim, f"{array.ndim}D")
            raise ValueError(
                f"Expected 2D array, got {kind} array instead: a document-word count matrix of shape "
                f"(n_docs, n_words) is needed for {name} (got shape {array.shape})."
            )
        matrix = None
        values = array
        input_dtype = array.dtype
    n_docs, n_columns = values.shape if matrix is None else matrix.shape
    if n_docs < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape=({n_docs}, {n_columns})) while a minimum of 1 is required "
            "by LatentDirichletAllocation."
        )
    if n_columns < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape=({n_docs}, {n_columns})) while a minimum of 1 is required "
            "by LatentDirichletAllocation."
        )
    if n_words is not None and n_columns != n_words:
        raise ValueError(
            f"X has {n_columns} features, but LatentDirichletAllocation is expecting {n_words} features as input "
            "(the vocabulary size it was fitted with)."
        )
    _reject_bad_counts(values, name, whom)
    if dtype is None:
        dtype = input_dtype if input_dtype in (np.float32, np.float64) else np.float64
    if matrix is None:
        matrix = scipy.sparse.csr_matrix(values)  # keeps the nonzero entries only
    # Writeable arrays (copied only if not, e.g. a read-only memmap): Numba
    # compiles read-only arrays as types of their own.
    return Corpus(
        np.require(matrix.indptr, np.int64, ["C", "W"]),
        np.require(matrix.indices, np.int64, ["C", "W"]),
        np.require(matrix.data, np.float64, ["C", "W"]),
        n_columns,
        dtype,
    )
