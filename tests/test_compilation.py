"""How the kernels are compiled: the vector-width preference reaches LLVM; generated code is current."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib

import numba
import numpy as np

from fastem._core.intrinsics import prefer_wide_vectors
from fastem.mixture import _accumulate, _log_density, _normaliser
from fastem.mixture import _unrolled_full as unrolled


@numba.njit
def _dot_wide(a, b):
    prefer_wide_vectors()
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


def test_wide_vector_preference_is_a_function_attribute():
    a = np.random.default_rng(0).normal(size=1001)
    np.testing.assert_allclose(_dot_wide(a, a), float(a @ a), rtol=1e-13)
    llvm = _dot_wide.inspect_llvm(_dot_wide.signatures[0])
    assert '"prefer-vector-width"="512"' in llvm


_HOT_HELPERS = (
    (_log_density, ("load_block", "_log_prob_full_loops", "_log_prob_full_blas", "log_prob_tied_block", "log_prob_diag_block")),
    (_normaliser, ("normalise_block", "_exp_normalise", "list_nonzero")),
    (_accumulate, (
        "_select_rows", "_add_pairs_loops", "_append_pairs_loops", "_accumulate_dense_loops", "accumulate_full_block",
        "_accumulate_full_blas", "accumulate_tied_block", "accumulate_diag_block",
    )),
)


def test_hot_helpers_ask_for_wide_vectors():
    # Kernels loaded from the on-disk cache keep no LLVM IR to inspect, so the
    # check is on the source: the preference must be the helper's own
    # statement, since it applies to the function that makes the call.
    for module, names in _HOT_HELPERS:
        for name in names:
            source = inspect.getsource(getattr(module, name).py_func)
            assert "\n    prefer_wide_vectors()\n" in source, name


def test_unrolled_specialisations_ask_for_wide_vectors():
    for n_features in range(2, unrolled.MAX_UNROLLED_FEATURES + 1):
        families = ["_log_prob_full", "_append_pairs", "_flush_pairs"]
        families += ["_accumulate_dense"] if n_features <= unrolled.MAX_DENSE_UNROLLED_FEATURES else []
        for family in families:
            source = inspect.getsource(getattr(unrolled, f"{family}_{n_features}").py_func)
            assert "\n    prefer_wide_vectors()\n" in source, (family, n_features)


def test_generated_module_is_current():
    # fastem/mixture/_unrolled_full.py is written by a script; an edit to either
    # without regenerating would leave the two disagreeing.
    generator = _load_generator()
    expected = generator.source()
    assert pathlib.Path(unrolled.__file__).read_text() == expected, (
        "fastem/mixture/_unrolled_full.py is stale: run python setup_helpers/generate_unrolled_kernels.py"
    )
    assert unrolled.MAX_UNROLLED_FEATURES == generator.MAX_UNROLLED_FEATURES
    assert unrolled.MAX_DENSE_UNROLLED_FEATURES == generator.MAX_DENSE_UNROLLED_FEATURES


def _load_generator():
    path = pathlib.Path(__file__).resolve().parent.parent / "setup_helpers" / "generate_unrolled_kernels.py"
    spec = importlib.util.spec_from_file_location("generate_unrolled_kernels", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
