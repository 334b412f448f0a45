"""LLVM intrinsics the kernels use where Numba has no construct of its own.

Bit casts and bit scans lower to single LLVM instructions (bitcast, cttz) that
the loop vectoriser handles like any other arithmetic; ``float_like`` keeps
float32 arithmetic in float32; ``prefer_wide_vectors`` asks LLVM for 512-bit
vectors in one function. Every model family may use them.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import types
from numba.core.extending import intrinsic

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


@intrinsic
def data_address(typingctx, array):
    """The address of an array's first element, as an int64 (to align scratch buffers)."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        view = context.make_array(signature.args[0])(context, builder, args[0])
        return builder.ptrtoint(view.data, ir.IntType(64))

    return types.int64(array), codegen
