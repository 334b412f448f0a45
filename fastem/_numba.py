"""The one place that decides how fastem's Numba kernels are compiled and threaded.

Kernels elsewhere are decorated with :func:`kernel` (parallel, over row chunks)
or :func:`helper` (serial building blocks called from kernels), so the compile
options cannot drift apart between modules.
"""

from __future__ import annotations

import contextlib
import functools
import operator
import threading

import numba
from llvmlite import ir
from numba.core import types
from numba.core.extending import intrinsic

# Fast-math flags: allow reassociation (vectorised reductions), contraction
# (FMA), reciprocal approximation and ignoring the sign of zero. Deliberately
# *not* 'nnan'/'ninf': validation and the post-kernel checks rely on NaN and
# inf propagating honestly.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}

# Rows handled by one parallel task. Fixed, independent of the thread count,
# so the partial statistics (and therefore every result) are the same for any
# number of threads.
CHUNK_ROWS = 2048

# Rows processed together inside a task: small enough that a transposed block
# of X and the (n_components, BLOCK_ROWS) log-probabilities stay in L1/L2, long
# enough that the inner loops over rows vectorise.
BLOCK_ROWS = 128

_OPTIONS = dict(cache=True, nogil=True, error_model="numpy", fastmath=FASTMATH)


def kernel(function):
    """Compile a parallel kernel (``prange`` over row chunks)."""
    return numba.njit(parallel=True, **_OPTIONS)(function)


def _without_refcounts() -> dict:
    """Numba's option to compile a function without its runtime's reference counting.

    ``_nrt`` is a long-standing but private option; if a Numba release drops
    it, helpers are compiled with reference counting: slower, equally correct.
    """
    from numba.core.cpu import CPUTargetOptions

    return {"_nrt": False} if hasattr(CPUTargetOptions, "_nrt") else {}


_HELPER_OPTIONS = dict(_OPTIONS, **_without_refcounts())


def helper(function):
    """Compile a serial building block that kernels call.

    Helpers neither allocate nor return arrays, so they are compiled without
    reference counting: with it, every array argument of every call (and
    every view made inside) costs a pair of atomic updates, which `perf`
    measured at 17% of the E-step time for two features and three components
    (blocks of 128 rows make many calls). A helper that needs NumPy's
    allocating functions uses :func:`allocating_helper`.
    """
    return numba.njit(parallel=False, **_HELPER_OPTIONS)(function)


def allocating_helper(function):
    """A serial helper that calls allocating or BLAS-backed NumPy functions (reference-counted)."""
    return numba.njit(parallel=False, **_OPTIONS)(function)


def max_threads() -> int:
    """Number of threads Numba launched for this process."""
    return int(numba.config.NUMBA_NUM_THREADS)


def resolve_n_jobs(n_jobs) -> int:
    """Turn an ``n_jobs`` value into a thread count for the kernels.

    ``None`` and ``-1`` mean all threads; ``-2`` all but one, and so on.
    Counts larger than the available threads are clipped.
    """
    available = max_threads()
    if n_jobs is None:
        return available
    try:
        n_jobs = operator.index(n_jobs)
    except TypeError:
        raise TypeError(f"n_jobs must be an integer or None, got {n_jobs!r}") from None
    if n_jobs == 0:
        raise ValueError("n_jobs must be a non-zero integer or None, got 0")
    if n_jobs < 0:
        n_jobs = max(available + 1 + n_jobs, 1)
    return min(n_jobs, available)


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
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        with _blas_single_thread():
            yield
    finally:
        numba.set_num_threads(previous)


# ---------------------------------------------------------------------------
# Bit-level intrinsics for the kernels. Numba exposes no scalar bit casts or
# bit scans; these lower to single LLVM instructions (bitcast, cttz) that the
# loop vectoriser handles like any other arithmetic.


_FLOAT_OF_BITS = {types.int64: (types.float64, ir.DoubleType()), types.int32: (types.float32, ir.FloatType())}


@intrinsic
def float_from_bits(typingctx, bits):
    """The float64 (float32) whose IEEE-754 representation is the int64 (int32) ``bits``."""
    if bits not in _FLOAT_OF_BITS:
        return None
    result, llvm_type = _FLOAT_OF_BITS[bits]

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llvm_type)

    return result(bits), codegen


@intrinsic
def bits_from_float(typingctx, value):
    """The int64 holding the IEEE-754 representation of the float64 ``value``."""
    if value != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def float_like(typingctx, value, array):
    """``value`` converted to the dtype of the float ``array``.

    Generic kernels write their constants through it: a float64 constant
    next to float32 operands would make Numba do the arithmetic in float64
    and LLVM size the vectors for float64.
    """
    if not isinstance(array, types.Array) or not isinstance(array.dtype, types.Float):
        return None
    if not isinstance(value, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return context.cast(builder, args[0], signature.args[0], signature.return_type)

    return array.dtype(value, array), codegen


@intrinsic
def trailing_zeros(typingctx, word):
    """Index of the lowest set bit of a non-zero uint64."""
    if word != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 1))

    return types.uint64(types.uint64), codegen


# LLVM's default for recent Intel CPUs with AVX-512 is to vectorise with
# 256-bit registers (the "prefer-256-bit" tuning, which dates from CPUs that
# lowered their clock for 512-bit instructions). For these kernels, which are
# bound by multiply-adds and the polynomial exp, 512-bit vectors took the
# one-thread E-step at eight features and sixteen components from about 120
# to about 100 ns/row in most runs on an Emerald Rapids Xeon, though less
# steadily than 256-bit code (see BENCHMARKS.md). The preference is a
# per-function LLVM attribute, so it changes fastem's helpers only and not
# other Numba code in the process; CPUs without AVX-512 ignore it. It applies
# to the function that makes the call: in a parallel kernel that is the
# serial outer function, not the prange body, so loops that carry work
# belong in helpers.
_WIDE_VECTOR_ATTRIBUTE = '"prefer-vector-width"="512"'


@intrinsic
def prefer_wide_vectors(typingctx):
    """Let LLVM vectorise the calling function's loops with 512-bit registers where the CPU has them.

    Call it as the first statement of a helper whose loops carry the work.
    It emits no instructions. llvmlite accepts only a fixed list of function
    attributes, so the string attribute is added to the attribute set
    directly; should llvmlite ever refuse that, the function compiles with
    LLVM's default width (slower, equally correct).
    """

    def codegen(context, builder, signature, args):
        try:
            set.add(builder.function.attributes, _WIDE_VECTOR_ATTRIBUTE)
        except Exception:  # pragma: no cover - depends on llvmlite internals
            pass
        return context.get_dummy_value()

    return types.none(), codegen
