"""Inference on many rows: predict_proba, score_samples and predict against scikit-learn's.

``inference_full_d8_k16``: a full-covariance model with 16 components fitted
on blobs of 1e6 x 8, then each method on the same 1e6 rows. Both sides hold
the same parameters (scikit-learn's model is given fastem's fitted ones), so
the answers are compared too. Reported per method: the median seconds of
repeats alternating the two, the speed-up, the largest difference between
the answers, and fastem's peak memory beyond its output, measured in a
fresh child process with the kernel's high-water mark (Numba's allocations
included). Targets (issue 17): at least 20x each, peak beyond the output at
most 16 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastem.bench.cases import Settings
from fastem.bench.child_process import _run_child
from fastem.bench.report import MIB, Report, _log, _times
from fastem.bench.timing import time_calls_alternating

_METHODS = ("predict_proba", "score_samples", "predict")


@dataclass(frozen=True)
class InferenceCase:
    name: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str
    target: float = 20.0
    memory_target_mib: float = 16.0
    kind: str = "inference"


INFERENCE_CASES = {
    case.name: case for case in [InferenceCase("inference_full_d8_k16", 1_000_000, 8, 16, "full")]
}


def _fitted_pair(case: InferenceCase, X, seed: int):
    """fastem's model after a short fit, and a scikit-learn model holding the same parameters."""
    import warnings

    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    from fastem import GaussianMixture

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GaussianMixture(case.n_components, covariance_type=case.covariance_type, max_iter=5,
                               random_state=seed).fit(X)
    theirs = SklearnGaussianMixture(case.n_components, covariance_type=case.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(theirs, name, getattr(ours, name).copy())
    theirs.converged_, theirs.n_iter_, theirs.lower_bound_ = True, ours.n_iter_, ours.lower_bound_
    theirs.n_features_in_ = X.shape[1]
    return ours, theirs


_PEAK_CHILD = """
import json, sys, warnings
import numpy as np
from fastem import GaussianMixture
from fastem.bench.memory import _measure_peak_increase
from fastem.datasets import make_blobs
spec = json.loads(sys.stdin.read())
X, _ = make_blobs(spec["n_samples"], spec["n_features"], spec["n_components"], random_state=spec["seed"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = GaussianMixture(spec["n_components"], covariance_type=spec["covariance_type"], max_iter=2,
                            random_state=spec["seed"]).fit(X)
method = spec["method"]
getattr(model, method)(X[:1000])  # compiled before the measurement
holder = {}
increase, how = _measure_peak_increase(lambda: holder.update(result=getattr(model, method)(X)))
peak = None if increase is None else increase - holder["result"].nbytes
print(json.dumps({"peak": peak, "method": how}))
"""


def _peaks_beyond_output(case: InferenceCase, n_samples: int, seed: int) -> dict:
    """Each method's peak beyond its output, one fresh child process per method.

    One process per method: a freed result of an earlier call would stay
    resident in the allocator's heap and hide part of the next one's.
    """
    peaks = {}
    for method in _METHODS:
        spec = dict(n_samples=n_samples, n_features=case.n_features, n_components=case.n_components,
                    covariance_type=case.covariance_type, seed=seed, method=method)
        peaks[method] = _run_child(_PEAK_CHILD, spec)["peak"]
    return peaks


def _largest_difference(method: str, ours, theirs) -> str:
    if method == "predict":
        return f"{int(np.count_nonzero(ours != theirs))} labels differ"
    return f"{float(np.max(np.abs(ours.astype(np.float64) - theirs))):.1e}"


def run_inference_case(case: InferenceCase, settings: Settings, report: Report) -> None:
    from fastem.datasets import make_blobs

    n_samples = case.n_samples if settings.n_samples is None else min(case.n_samples, settings.n_samples)
    X, _ = make_blobs(n_samples, case.n_features, case.n_components, random_state=settings.seed)
    _log(f"{case.name}: fitting the model both sides use")
    ours, theirs = _fitted_pair(case, X, settings.seed)
    repeats = max(3, settings.repeats)
    peaks = _peaks_beyond_output(case, n_samples, settings.seed) if settings.memory else {}
    section = report.section(
        "Inference: predict_proba, score_samples and predict",
        "A model fitted on blobs, then each method on the same rows; scikit-learn's model holds fastem's "
        f"parameters, so the answers are compared. Seconds, the median of {repeats} calls alternating the two. "
        "**peak beyond output**: fastem's peak resident memory during the call minus its result's size, in a "
        "fresh child process (Linux VmHWM, Numba's allocations included); target <= 16 MiB. Target speed-up >= 20x.",
        ["case", "method", "fastem s", "sklearn s", "speed-up", "largest difference", "fastem peak beyond output MiB"],
    )
    for method in _METHODS:
        getattr(ours, method)(X[:1000])  # compiled before the timing
        seconds, results = time_calls_alternating(
            {"fastem": lambda: getattr(ours, method)(X), "sklearn": lambda: getattr(theirs, method)(X)},
            repeats, f"{case.name} {method}",
        )
        fastem_s, sklearn_s = seconds["fastem"], seconds["sklearn"]
        peak = peaks.get(method)
        section.rows.append([
            f"{n_samples:,} x {case.n_features}, {case.covariance_type}, k={case.n_components}", method,
            f"{fastem_s:.3f}", f"{sklearn_s:.3f}", _times(sklearn_s / fastem_s),
            _largest_difference(method, results["fastem"], results["sklearn"]),
            "not measured" if peak is None else f"{peak / MIB:.1f}",
        ])
