"""Compile every kernel specialisation once and store it in Numba's disk cache.

Run after installing (``python setup_helpers/warm_numba_cache.py``) so that the
first fit in a new process does not pay compilation: all covariance types,
float32 and float64, with and without sample weights, every init method.
"""

from __future__ import annotations

import time
import warnings

import numpy as np


def main() -> None:
    from fastem import GaussianMixture
    from fastem.mixture.parameters import COVARIANCE_TYPES, INIT_METHODS

    start = time.perf_counter()
    X = np.random.default_rng(0).normal(size=(300, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for dtype in (np.float64, np.float32):
            data = X.astype(dtype)
            for covariance_type in COVARIANCE_TYPES:
                for init_params in INIT_METHODS:
                    model = GaussianMixture(2, covariance_type=covariance_type, init_params=init_params, max_iter=2)
                    model.fit(data, sample_weight=np.ones(len(data)))
                    model.fit(data).predict(data)
    print(f"Numba cache warm ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
