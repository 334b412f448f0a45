"""Vectorisable exp and log for kernels (float32 and float64).

Numba lowers np.exp/np.log inside loops to scalar libm calls, which would
cost more than all the arithmetic around them. These versions use only
arithmetic, comparisons and bit casts that LLVM vectorises when they are
inlined into a loop over rows: Cody-Waite range reduction and a polynomial,
with the power of two built directly in the exponent bits. Both are
accurate to a few ulp on the ranges used here (arguments <= 0 for exp,
values in [1, n_components] for log).
"""

from __future__ import annotations

import numpy as np
from numba.core import types
from numba.extending import overload

from fastem._core.intrinsics import bits_from_float, float_from_bits
from fastem._core.numba import FASTMATH, helper


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: HI has 32 significant
_LN2_LO = 1.90821492927058770002e-10  # bits, so n * HI is exact for |n| < 2**21
_MANTISSA_MASK = (1 << 52) - 1
_SQRT2 = 1.4142135623730951

# A responsibility below 2**-52 of its row is below the float64 resolution of
# the row's unit mass: it is flushed to exactly zero (in the normaliser and in
# the statistics), which lets the accumulation skip it. exp(x) < 2**-52 for
# x < -36.04. float32 data use the same floor, rounded to float32 (1.8e-6
# higher), against differences rounded to float32: for log-probabilities of
# modest magnitude (their float32 rounding is about |log p| * 6e-8), only a
# component within a few 1e-6 of the floor can be kept in one precision and
# flushed in the other.
RESP_LOG_FLOOR = -36.04365338911715


def exp_flushed(x):
    """exp(x) for x <= 0, and exactly 0 for x < RESP_LOG_FLOOR (or NaN), in x's precision.

    Callable from compiled code only: the overload below picks the float64
    or float32 version by the argument's type.
    """
    raise TypeError("exp_flushed is only callable from Numba-compiled code")


@overload(exp_flushed, jit_options=dict(fastmath=FASTMATH))
def _exp_flushed_for(x):
    if x == types.float64:
        return lambda x: _exp_flushed64(x)
    if x == types.float32:
        return lambda x: _exp_flushed32(x)
    return None


@helper
def _exp_in_range(y):
    """exp(y) for float64 y in [-708, 0]: Cody-Waite reduction and a Taylor series, to a few ulp."""
    k = np.floor(y * _LOG2E + 0.5)
    r = (y - k * _LN2_HI) - k * _LN2_LO
    # Taylor series to r**13: |r| <= ln2 / 2 leaves a truncation error below 1e-17.
    p = 1.0 / 6227020800.0
    p = p * r + 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * float_from_bits((np.int64(k) + 1023) << 52)  # 2**k, built in the exponent bits


@helper
def _exp_flushed64(x):
    """float64 ``exp_flushed``."""
    y = max(x, RESP_LOG_FLOOR - 1.0)  # keeps the exponent below in range
    return _exp_in_range(y) if x >= RESP_LOG_FLOOR else 0.0


# Below this exp(x) is subnormal (or zero): exp_nonpositive returns 0.
_EXP_NORMAL_FLOOR = -708.0


@helper
def exp_nonpositive(x):
    """exp(x) for float64 x <= 0, to a few ulp, and 0 below -708 (where exp leaves the normal range).

    Unlike ``exp_flushed`` it keeps values far below the row's largest one:
    forward-backward multiplies them by predicted probabilities that may be
    much larger than the largest value's.
    """
    y = max(x, _EXP_NORMAL_FLOOR)
    return _exp_in_range(y) if x >= _EXP_NORMAL_FLOOR else 0.0


# float32 versions of the constants. ln 2 is split for float32 as above: HI
# has 9 significant bits, so n * HI is exact for |n| < 2**15.
_LOG2E_32 = np.float32(_LOG2E)
_LN2_HI_32 = np.float32(0.693359375)
_LN2_LO_32 = np.float32(-2.12194440e-4)
_RESP_LOG_FLOOR_32 = np.float32(RESP_LOG_FLOOR)


@helper
def _exp_flushed32(x):
    """float32 ``exp_flushed``: the same reduction in float32 and a shorter series.

    The floor is RESP_LOG_FLOOR rounded to float32, as in the float32
    normaliser's comparisons, so both agree on which values are flushed.
    """
    y = max(x, _RESP_LOG_FLOOR_32 - np.float32(1.0))
    k = np.floor(y * _LOG2E_32 + np.float32(0.5))
    r = (y - k * _LN2_HI_32) - k * _LN2_LO_32
    # Taylor series to r**7: |r| <= ln2 / 2 leaves a truncation error below 1e-8.
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    scale = float_from_bits(np.int32((np.int32(k) + 127) << 23))  # 2**k in the exponent bits (Numba widens int32 sums)
    return p * scale if x >= _RESP_LOG_FLOOR_32 else np.float32(0.0)


@helper
def log_positive(value):
    """log(value) for a positive, finite, normal float64."""
    word = bits_from_float(value)
    e = np.float64((word >> 52) - 1023)
    m = float_from_bits((word & _MANTISSA_MASK) | (np.int64(1023) << 52))  # mantissa in [1, 2)
    if m > _SQRT2:  # centre the mantissa on 1: [sqrt(1/2), sqrt(2))
        m *= 0.5
        e += 1.0
    u = (m - 1.0) / (m + 1.0)  # log m = 2 atanh(u), |u| <= 0.1716
    u2 = u * u
    series = 1.0 / 21.0
    series = series * u2 + 1.0 / 19.0
    series = series * u2 + 1.0 / 17.0
    series = series * u2 + 1.0 / 15.0
    series = series * u2 + 1.0 / 13.0
    series = series * u2 + 1.0 / 11.0
    series = series * u2 + 1.0 / 9.0
    series = series * u2 + 1.0 / 7.0
    series = series * u2 + 1.0 / 5.0
    series = series * u2 + 1.0 / 3.0
    series = series * u2 + 1.0
    return e * _LN2_HI + (e * _LN2_LO + 2.0 * u * series)
