"""Measure where a second thread starts to pay: the table behind ``fastem._core.threads.PARALLEL_MIN_WORK``.

Ten EM iterations (``tol=0``, ``init_params='random_from_data'``) of
``GaussianMixture`` on Gaussian noise, with ``n_jobs=1`` and ``n_jobs=2``
(explicit counts, which the small-work rule does not override), medians of
15 fits per side alternating in groups of three. Prints one line per shape
with the work count (rows x components x features) and the ratio of the
two-thread time to the one-thread time (below 1: two threads faster).

    python setup_helpers/thread_threshold.py diag,full

Run it on an otherwise idle machine; it takes a few minutes.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings

import numpy as np

from fastem import GaussianMixture

SHAPES = ((2, 2), (4, 3), (8, 8), (16, 8))  # (features, components)
ROWS = (2048, 4096, 8192, 16384, 65536)


def fit_seconds(X, k: int, covariance_type: str, n_jobs: int, repeats: int) -> list:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        GaussianMixture(k, covariance_type=covariance_type, max_iter=10, tol=0, random_state=0, n_jobs=n_jobs,
                        init_params="random_from_data").fit(X)
        seconds.append(time.perf_counter() - start)
    return seconds


def main(covariance_types) -> None:
    warnings.simplefilter("ignore")  # ConvergenceWarning: the fits stop at max_iter on purpose
    rng = np.random.default_rng(0)
    for covariance_type in covariance_types:
        for n_features, k in SHAPES:
            for n_rows in ROWS:
                X = rng.normal(size=(n_rows, n_features))
                fit_seconds(X, k, covariance_type, 1, 1)  # compile (or load) both
                fit_seconds(X, k, covariance_type, 2, 1)
                one, two = [], []
                for _ in range(5):
                    one += fit_seconds(X, k, covariance_type, 1, 3)
                    two += fit_seconds(X, k, covariance_type, 2, 3)
                one_ms, two_ms = 1e3 * statistics.median(one), 1e3 * statistics.median(two)
                print(f"{covariance_type:9s} {n_rows:6d} x {n_features:2d}, k={k}: work {n_rows * k * n_features:.2e}  "
                      f"1 thread {one_ms:7.2f} ms  2 threads {two_ms:7.2f} ms  ratio {two_ms / one_ms:.2f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(",") if len(sys.argv) > 1 else ("diag", "full"))
