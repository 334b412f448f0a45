"""The one place that decides how fastem's Numba kernels are compiled and threaded.

Kernels elsewhere are decorated with :func:`kernel` (parallel, over row chunks)
or :func:`helper` (serial building blocks called from kernels), so the compile
options cannot drift apart between modules.

Compile only what a call needs
------------------------------
Numba compiles a kernel for the *types* of its arguments, and everything the
kernel may call is compiled with it, whether or not the data ever take that
branch. So where a kernel would choose between variants at run time (the
generated loops for each feature count, a BLAS path), the choice is made at
compile time instead: the kernel receives the choice as a plain int or bool,
calls ``numba.literally`` on it, so Numba compiles one specialisation per
value, and passes it down to a :func:`specialise` overload that returns the
one implementation that value needs. The others are never typed, lowered or
optimised. Specialisations are cached on disk like any other signature.
"""

from __future__ import annotations

import numba
from numba.core import types
from numba.core.cpu_options import ParallelOptions
from numba.core.errors import TypingError
from numba.core.typing.typeof import Purpose
from numba.extending import overload

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


# Only explicit ``prange`` loops run in parallel. Numba's other parallel
# transformations would turn every ``np.zeros`` and array expression of a
# kernel into a parallel region of its own, each compiled as a separate
# function: for a kernel's partial-statistics allocations that cost about
# 0.7 s of compile time per array (label_stats 5.1 -> 2.6 s) and bought
# nothing, since they run once per wave, not per row.
# An options object, not a dict: Numba consumes a dict's entries on the first
# compilation, so a kernel compiled again (a second signature, or after
# ``numba.literally``) would silently get every transformation back.
_PARALLEL = ParallelOptions(dict(
    prange=True, comprehension=False, reduction=True, inplace_binop=False, setitem=False, numpy=False,
    stencil=False, fusion=False,
))


def kernel(function):
    """Compile a parallel kernel (``prange`` over row chunks)."""
    return numba.njit(parallel=_PARALLEL, **_OPTIONS)(function)


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


def inlined_helper(function):
    """A small serial helper that Numba inlines into each caller before LLVM sees it.

    For a helper called inside a loop that should vectorise: LLVM declines to
    inline a callee holding a loop of its own (the AS 103 digamma's shift
    steps), and a call in a loop keeps the loop scalar; inlined, the loop
    over topics that calls digamma ran 3.6x faster (measured). Costs compile
    time in every caller, so keep it for hot, small functions.
    """
    return numba.njit(parallel=False, inline="always", **_HELPER_OPTIONS)(function)


def ordered_helper(function):
    """A serial helper whose floating-point sums are added in the order written (no ``reassoc``).

    With ``reassoc``, LLVM chooses how a sum is grouped when it vectorises
    it, and that choice can differ between a kernel compiled in the running
    process and the same kernel loaded from Numba's cache (measured: block
    totals of LDA's M-step differing by 1e-14). Sums whose rounding must not
    depend on that go through a helper compiled without it; write them with
    several accumulators in a fixed pattern so that they still vectorise.
    """
    options = dict(_HELPER_OPTIONS, fastmath=FASTMATH - {"reassoc"})
    return numba.njit(parallel=False, **options)(function)


def allocating_helper(function):
    """A serial helper that calls allocating or BLAS-backed NumPy functions (reference-counted)."""
    return numba.njit(parallel=False, **_OPTIONS)(function)


def specialise(function):
    """Register the implementation chooser of ``function``, a name for compiled code only.

    ``function`` is a stub whose body raises (Python never runs it). The
    chooser receives Numba types; literal arguments (ints and bools made
    compile-time constants by ``numba.literally`` in the calling kernel) are
    read with :func:`literal_value`, and the chooser returns the function,
    with the same parameters, that Numba compiles for that value.
    """
    return lambda chooser: overload(function, prefer_literal=True, jit_options=dict(fastmath=FASTMATH))(chooser)


def call_specialised(kernel, arguments: tuple, choices: tuple):
    """``kernel(*arguments, *choices)``, where ``kernel`` makes ``choices`` compile-time constants.

    Numba's dispatcher matches a Python int or bool to an ``int64`` or
    ``bool`` signature, never to the literal one that ``numba.literally``
    compiled, so every call would take its slow path, which starts typing
    the kernel again before it finds the literal specialisation (about 60 ms
    a call, measured, more than a whole E-step on small data). Instead the
    literal signature is built here and its compiled entry point called
    directly; the first call of a specialisation in a process compiles that
    signature, or loads it from the cache.
    """
    signature = tuple(numba.typeof(value, Purpose.argument) for value in arguments)
    signature += tuple(types.literal(value) for value in choices)
    compiled = kernel.overloads.get(signature)
    if compiled is None:
        # Compiling the literal signature directly loads it from the disk
        # cache when it is there. A call through the dispatcher would first
        # type the non-literal signature, fail at ``literally`` and announce
        # a compilation (the "numba:compile" event) even for a cache hit.
        return kernel.compile(signature)(*arguments, *choices)
    return compiled.entry_point(*arguments, *choices)


def literal_value(value_type, name: str):
    """The compile-time value of the literal int or bool argument ``name``."""
    if isinstance(value_type, (types.IntegerLiteral, types.BooleanLiteral)):
        return value_type.literal_value
    raise TypingError(
        f"{name} must be a compile-time constant here (got {value_type}): "
        f"call numba.literally({name}) in the kernel that receives it"
    )
