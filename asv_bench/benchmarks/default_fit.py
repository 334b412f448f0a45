"""The whole default fit (initialisation included) and inference on many rows, against scikit-learn.

The cases come from :mod:`fastem.bench.default_fit` and
:mod:`fastem.bench.inference`, so asv and ``python -m fastem.bench --cases
default_fit_k4,default_fit_k8,inference_full_d8_k16`` time the same work. By
default the data have 10x fewer rows (2e5 x 10 and 1e5 x 8);
``FASTEM_BENCH_LARGE=1`` uses the cases' sizes.
"""

from __future__ import annotations

import warnings

from fastem.bench.default_fit import DEFAULT_FIT_CASES
from fastem.bench.inference import INFERENCE_CASES, _fitted_pair

from .common import LARGE


class DefaultFit:
    """``GaussianMixture(k, covariance_type=t, random_state=0).fit(X)`` on blobs: what a new user runs."""

    params = [["fastem", "sklearn"], ["default_fit_k4", "default_fit_k8"], ["full", "tied", "diag", "spherical"]]
    param_names = ["implementation", "case", "covariance_type"]
    number = 1
    warmup_time = 0.0
    timeout = 1800.0

    def setup(self, implementation, case_name, covariance_type):
        from fastem.datasets import make_blobs

        case = DEFAULT_FIT_CASES[case_name]
        n_samples = case.n_samples if LARGE else case.n_samples // 10
        self.X, _ = make_blobs(n_samples, case.n_features, case.n_components, random_state=0)
        if implementation == "fastem":
            from fastem import GaussianMixture
        else:
            from sklearn.mixture import GaussianMixture
        self.make = lambda: GaussianMixture(case.n_components, covariance_type=covariance_type, random_state=0)
        if implementation == "fastem":
            self._fit(self.X[:5000])  # compile outside the timing

    def _fit(self, X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.make().fit(X)

    def time_fit(self, implementation, case_name, covariance_type):
        self._fit(self.X)


class Inference:
    """predict_proba, score_samples and predict of a full-covariance model with 16 components."""

    params = [["fastem", "sklearn"], ["predict_proba", "score_samples", "predict"]]
    param_names = ["implementation", "method"]
    number = 1
    timeout = 600.0

    def setup(self, implementation, method):
        from fastem.datasets import make_blobs

        case = INFERENCE_CASES["inference_full_d8_k16"]
        n_samples = case.n_samples if LARGE else case.n_samples // 10
        self.X, _ = make_blobs(n_samples, case.n_features, case.n_components, random_state=0)
        ours, theirs = _fitted_pair(case, self.X, 0)
        self.model = ours if implementation == "fastem" else theirs
        getattr(self.model, method)(self.X[:1000])  # compile outside the timing

    def time_method(self, implementation, method):
        getattr(self.model, method)(self.X)

    def peakmem_method(self, implementation, method):
        getattr(self.model, method)(self.X)
