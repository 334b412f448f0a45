"""The kernels' own exp and log agree with NumPy's to a few units in the last place.

The exp comes in two precisions, picked by the argument's type: float32
blocks normalise in float32.
"""

from __future__ import annotations

import numba
import numpy as np

from fastem._core.fast_math import RESP_LOG_FLOOR, exp_flushed, log_positive


@numba.njit
def _apply_exp(values):
    out = np.empty_like(values)
    for i in range(values.shape[0]):
        out[i] = exp_flushed(values[i])
    return out


@numba.njit
def _exp_of_scalar(value):
    return exp_flushed(value)


@numba.njit
def _apply_log(values):
    out = np.empty_like(values)
    for i in range(values.shape[0]):
        out[i] = log_positive(values[i])
    return out


def test_exp_matches_numpy_down_to_the_flush_threshold():
    floor = RESP_LOG_FLOOR
    x = np.concatenate([
        -np.random.default_rng(0).uniform(0, -floor, 200_000),
        np.linspace(floor, 0.0, 10_001),
        [0.0, -0.0, floor, np.nextafter(floor, 0.0)],
    ])
    got = _apply_exp(x)
    want = np.exp(x)
    assert np.max(np.abs(got - want) / want) < 4e-15
    assert got[x == 0.0].tolist() == [1.0] * int(np.sum(x == 0.0))  # exp(0) is exactly 1 (hard rows rely on it)


def test_exp_flushes_negligible_values_to_exact_zero():
    floor = RESP_LOG_FLOOR
    x = np.array([np.nextafter(floor, -np.inf), -40.0, -700.0, -1e300, -np.inf, np.nan])
    assert _apply_exp(x).tolist() == [0.0] * len(x)


def test_log_matches_numpy_on_row_sums():
    rng = np.random.default_rng(1)
    values = np.concatenate([
        rng.uniform(1.0, 2.0, 100_000),
        rng.uniform(1.0, 4096.0, 100_000),
        [1.0, np.sqrt(2.0), np.nextafter(np.sqrt(2.0), 2.0), 2.0, 1e-300, 1e300],
    ])
    got = _apply_log(values)
    want = np.log(values)
    assert got[200_000] == 0.0  # log(1) is exactly 0 (hard rows rely on it)
    error = np.abs(got - want) / np.maximum(np.abs(want), 1.0)
    assert error.max() < 2e-15


FLOOR_32 = np.float32(RESP_LOG_FLOOR)


def test_float32_exp_matches_numpy_down_to_its_flush_threshold():
    x = np.concatenate([
        -np.random.default_rng(2).uniform(0, -FLOOR_32, 200_000),
        np.linspace(FLOOR_32, 0.0, 10_001),
        [0.0, -0.0, FLOOR_32, np.nextafter(FLOOR_32, np.float32(0.0))],
    ]).astype(np.float32)
    got = _apply_exp(x)
    want = np.exp(x.astype(np.float64))
    # A float32 ulp is 6e-8 to 1.2e-7 relative; measured at most 1.6e-7 (near the floor).
    assert np.max(np.abs(got - want) / want) < 2.5e-7
    assert got[x == 0.0].tolist() == [1.0] * int(np.sum(x == 0.0))  # exp(0) is exactly 1 (hard rows rely on it)


def test_float32_exp_is_float32_and_flushes_below_its_floor():
    _exp_of_scalar(np.float32(-1.0))
    _exp_of_scalar(-1.0)
    return_types = {sig.args[0]: sig.return_type for sig in _exp_of_scalar.nopython_signatures}
    assert return_types == {numba.float32: numba.float32, numba.float64: numba.float64}
    x = np.array([np.nextafter(FLOOR_32, np.float32(-np.inf)), -40.0, -700.0, -3e38, -np.inf, np.nan], np.float32)
    assert _apply_exp(x).tolist() == [0.0] * len(x)
