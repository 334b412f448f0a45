"""Grids, gating and data preparation shared by the benchmark classes.

The data builders and the ``fit`` helper come from :mod:`fastem.bench`, so
the asv suite and ``python -m fastem.bench`` measure exactly the same fits:
seeded blobs in random row order, one starting point for every
implementation, a fixed number of iterations (``tol=0``).
"""

from __future__ import annotations

import os

import numpy as np

from fastem import bench

# FASTEM_BENCH_LARGE=1 adds the issue's full-size shapes (up to a million
# rows; minutes per benchmark) and the cold start of every covariance type.
# The default grid keeps `asv run --python=same --quick` to a few minutes on
# a 2-core machine.
LARGE = os.environ.get("FASTEM_BENCH_LARGE", "").strip().lower() not in ("", "0", "false", "no")

# EM iterations of every timed fit (tol=0, so exactly this many).
N_ITER = 5

# Rows of the default (small) version of every shape.
SMALL_N_SAMPLES = 10_000

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]

# The (n, d, k) shapes of the "Benchmarks" issue per covariance type: the
# main-table cases of the comparison script, so both measure the same sizes.
ISSUE_SHAPES = {
    covariance_type: [
        (case.n_samples, case.n_features, case.n_components)
        for case in bench.CASES.values()
        if case.kind == "em" and case.covariance_type == covariance_type
    ]
    for covariance_type in COVARIANCE_TYPES
}

# The naive EM costs roughly n * k * d * (d + 8) times 1e-9 to 1e-8 seconds
# per iteration on a 2-core machine (per-component scipy log-densities and
# weighted scatter matrices). Above this much work an N_ITER fit takes more
# than ~10 s, so it is skipped.
NAIVE_MAX_WORK = 2e8

IMPLEMENTATIONS = list(bench.IMPLEMENTATIONS)
DTYPES = ["float64", "float32"]


def shape_label(n_samples: int, n_features: int, n_components: int) -> str:
    return f"n={n_samples},d={n_features},k={n_components}"


def parse_shape(label: str) -> tuple:
    """'n=20000,d=8,k=16' -> (20000, 8, 16)."""
    values = dict(item.split("=") for item in label.split(","))
    return int(values["n"]), int(values["d"]), int(values["k"])


def shapes(covariance_type: str) -> list:
    """Shape labels for ``covariance_type``: the issue's shapes cut to SMALL_N_SAMPLES rows, plus full size if LARGE."""
    labels = [shape_label(min(n, SMALL_N_SAMPLES), d, k) for n, d, k in ISSUE_SHAPES[covariance_type]]
    if LARGE:
        labels += [shape_label(n, d, k) for n, d, k in ISSUE_SHAPES[covariance_type]]
    return labels


def check_feasible(implementation: str, shape: str, dtype: str) -> None:
    """Raise NotImplementedError (asv: skipped) for combinations not worth running."""
    if implementation != "naive":
        return
    if dtype != "float64":
        raise NotImplementedError("the naive EM computes in float64 only")
    n_samples, n_features, n_components = parse_shape(shape)
    if n_samples * n_components * n_features * (n_features + 8) > NAIVE_MAX_WORK:
        raise NotImplementedError("the naive EM would take too long on this shape")


def prepare(shape: str, covariance_type: str, dtype: str, seed: int = 0, separation: float = 8.0):
    """Seeded data of ``shape`` in ``dtype`` and the common starting point (from the float64 data)."""
    n_samples, n_features, n_components = parse_shape(shape)
    X = bench.make_data(n_samples, n_features, n_components, np.float64, seed, separation)
    init = bench.initial_parameters(X, n_components, covariance_type, seed)
    return np.ascontiguousarray(X, dtype=dtype), init


def warm_up(implementation: str, X, init, covariance_type: str) -> None:
    """Compile fastem's kernels for this dtype and covariance type, or import scikit-learn, outside the timing.

    A one-iteration fit on all of X: a fit on a few rows would be cheaper,
    but with many components in many dimensions those rows cannot support
    positive-definite covariances (scikit-learn fails in float32). The naive
    EM has nothing to warm up.
    """
    if implementation != "naive":
        bench.fit(implementation, X, init, covariance_type, 1)
