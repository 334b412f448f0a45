"""First fit in a fresh process: latency with a cold and a warm Numba cache, and the targets of issue 12.

Every measurement runs in a new Python interpreter whose ``NUMBA_CACHE_DIR``
is a temporary directory: empty for a cold cache (everything the fit needs is
compiled), filled by an earlier child (or by ``python -m fastem compile``) for
a warm one.

Two cases use this: ``first_fit`` times one fit of a benchmark shape cold,
warm and again; ``first_fit_targets`` measures the figures that issue 12 sets
targets for (:data:`FIRST_FIT_TARGETS`) and reports each next to its target.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from fastem.bench.cases import Case, Settings, _n_samples_for
from fastem.bench.child_process import _child_environment, _run_child, cold_then_warm
from fastem.bench.report import Report, _count, _data_label, _log, _ratio, _times


# Runs in a fresh interpreter. numpy is imported before the clock starts (a
# user's process has it already); then ``import fastem`` and the first fit are
# timed, then the same fit again, now compiled.
_FIRST_FIT_CODE = """
import json, sys, time, warnings
import numpy as np
spec = json.loads(sys.stdin.read())
start = time.perf_counter()
import fastem
import_seconds = time.perf_counter() - start
from fastem.bench import make_data
X = make_data(spec["n_samples"], spec["n_features"], spec["n_components"], np.float64, spec["seed"])
def one_fit():
    model = fastem.GaussianMixture(
        spec["n_components"],
        covariance_type=spec["covariance_type"],
        max_iter=spec["max_iter"],
        tol=0.0,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        model.fit(X)
    return time.perf_counter() - start
first = one_fit()
again = one_fit()
print(json.dumps({"import_seconds": import_seconds, "first_fit_seconds": first, "again_seconds": again}))
"""


def first_fit_latency(case: Case, n_samples: int, settings: Settings) -> dict:
    """First fit in a fresh process with a cold Numba cache, then with a warm one.

    The cold run gets an empty temporary ``NUMBA_CACHE_DIR``, so every kernel
    it needs (k-means initialisation included: the fit uses the default
    ``init_params``) is compiled; the warm run reuses that directory, now
    filled. Each child also times the same fit a second time: the
    in-process, compiled cost.
    """
    spec = dict(
        n_samples=n_samples,
        n_features=case.n_features,
        n_components=case.n_components,
        covariance_type=case.covariance_type,
        seed=settings.seed,
        max_iter=1 + settings.iterations,
    )
    cold, warm = cold_then_warm(_FIRST_FIT_CODE, spec)
    return {"cold": cold, "warm": warm}


def run_first_fit_case(case: Case, settings: Settings, report: Report) -> None:
    """Import and first fit in fresh processes (cold, then warm Numba cache) against the compiled fit."""
    n_samples = _n_samples_for(case, settings)
    _log(f"{case.name}: fresh processes, cold then warm Numba cache")
    latency = first_fit_latency(case, n_samples, settings)
    cold, warm = latency["cold"], latency["warm"]
    again = warm["again_seconds"]
    report.first_fit_rows.append(
        [
            _data_label(case, n_samples, np.float64) + f", {1 + settings.iterations} iterations, k-means init",
            f"{cold['import_seconds']:.2f} (cold) / {warm['import_seconds']:.2f} (warm)",
            f"{cold['first_fit_seconds']:.2f}",
            f"{warm['first_fit_seconds']:.2f}",
            f"{again:.3f}",
            _times(_ratio(cold["first_fit_seconds"], again)),
            _times(_ratio(warm["first_fit_seconds"], again)),
        ]
    )


###############################################################################
# The targets of issue 12


@dataclass(frozen=True)
class FirstFitTarget:
    """One figure of issue 12 and the most it may be.

    ``description`` may use ``{n}`` (rows) and ``{k}`` (components).
    ``seconds`` is the target (None: reported without one). With
    ``over_refit`` the figure is the first fit minus the same fit run again
    in that process (what loading from the cache costs), not the first fit's
    own time. ``quick`` targets are measured with ``--quick`` too.
    """

    key: str
    description: str
    seconds: float | None
    over_refit: bool = False
    quick: bool = False


FIRST_FIT_TARGETS = (
    FirstFitTarget(
        "cold_fit",
        "(a) empty cache: `GaussianMixture({k}).fit(X)`, X {n} x 2 float64 (defaults: full, k-means init)",
        10.0,
        quick=True,
    ),
    FirstFitTarget(
        "inference",
        "(b) then, in the process of (a): `predict` + `predict_proba` + `score_samples` + `score` on X",
        2.0,
        quick=True,
    ),
    FirstFitTarget(
        "cold_diag_float32", '(c) empty cache: `GaussianMixture({k}, covariance_type="diag").fit(X)`, X {n} x 4 float32', 10.0
    ),
    FirstFitTarget(
        "second_feature_count", "(d) cache holding the fit of (a): `GaussianMixture({k}).fit(X)`, X {n} x 5 float64", 4.0
    ),
    FirstFitTarget(
        "warm",
        "(e) warm cache (the directory of (a)): the fit of (a), first in a fresh process against again in it",
        0.5,
        over_refit=True,
        quick=True,
    ),
    FirstFitTarget("compile", "(f) `python -m fastem compile` (defaults) into an empty cache", None),
    FirstFitTarget(
        "compiled_tied",
        '(f) then, a fresh process: `GaussianMixture({k}, covariance_type="tied").fit(X)`, X {n} x 3 float64, '
        "first fit against again",
        0.5,
        over_refit=True,
    ),
    FirstFitTarget(
        "compiled_full_float32",
        "(f) then, a fresh process: `GaussianMixture({k}).fit(X)`, X {n} x 6 float32 (full), first fit against again",
        0.5,
        over_refit=True,
    ),
)

# Runs in a fresh interpreter: the fits of ``spec["fits"]`` one after the
# other, each as a user writes it (default max_iter, tol and k-means
# initialisation; random_state only makes runs repeatable) and timed on its
# own, without ``import fastem`` or building the data. ``inference`` times
# the four inference methods right after the fit, ``again`` the same fit once
# more, now compiled and loaded.
_TARGET_FITS_CODE = """
import json, sys, time, warnings
import numpy as np
spec = json.loads(sys.stdin.read())
import fastem
from fastem.bench.cases import make_data
def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value
def fit(X, covariance_type):
    model = fastem.GaussianMixture(spec["n_components"], covariance_type=covariance_type, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        return model.fit(X)
def inference(model, X):
    model.predict(X)
    model.predict_proba(X)
    model.score_samples(X)
    model.score(X)
results = []
for step in spec["fits"]:
    X = make_data(spec["n_samples"], step["n_features"], spec["n_components"], np.dtype(step["dtype"]), spec["seed"])
    result = {}
    result["first"], model = timed(lambda: fit(X, step["covariance_type"]))
    if step.get("inference"):
        result["inference"], _ = timed(lambda: inference(model, X))
    if step.get("again"):
        result["again"], _ = timed(lambda: fit(X, step["covariance_type"]))
    results.append(result)
print(json.dumps({"fits": results}))
"""


def _fits_in_fresh_process(base: dict, environment: dict, *fits) -> list:
    """Run ``fits`` (dicts of n_features, dtype, covariance_type and optionally inference, again) in one child."""
    return _run_child(_TARGET_FITS_CODE, dict(base, fits=list(fits)), environment)["fits"]


def _compile_ahead(environment: dict) -> dict:
    """``python -m fastem compile`` (defaults) in a child: its seconds and last line, or why it failed."""
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "fastem", "compile"], capture_output=True, text=True, env=_child_environment(environment)
    )
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        tail = " ".join((completed.stderr.strip() or completed.stdout.strip()).splitlines()[-3:])
        return {"failed": f"compile command failed: {tail}"}
    lines = completed.stdout.strip().splitlines()
    return {"seconds": seconds, "detail": lines[-1] if lines else ""}


def first_fit_targets(case: Case, n_samples: int, settings: Settings) -> dict:
    """Measure the figures of :data:`FIRST_FIT_TARGETS` in fresh child processes.

    (a), (b), (d) and (e) share one cache directory, empty before (a); (c)
    gets an empty one of its own, and so does (f), which
    ``python -m fastem compile`` fills before each of its two fits runs in
    a fresh process. Without ``settings.all_first_fit_targets`` only the
    ``quick`` targets are measured.

    Returns
    -------
    dict
        ``key -> {"seconds": s}`` (a figure), ``{"first": s, "again": s}``
        (an ``over_refit`` figure), ``{"failed": text}`` or
        ``{"not_run": reason}``; input of :func:`first_fit_target_rows`.
    """
    base = dict(n_samples=n_samples, n_components=case.n_components, seed=settings.seed)
    first_case = dict(n_features=case.n_features, dtype="float64", covariance_type=case.covariance_type)
    measured = {}
    with tempfile.TemporaryDirectory(prefix="fastem-bench-numba-") as cache_dir:
        environment = {"NUMBA_CACHE_DIR": cache_dir}
        _log(f"{case.name}: (a) and (b), empty Numba cache")
        (cold,) = _fits_in_fresh_process(base, environment, dict(first_case, inference=True))
        measured["cold_fit"] = {"seconds": cold["first"]}
        measured["inference"] = {"seconds": cold["inference"]}
        if settings.all_first_fit_targets:
            _log(f"{case.name}: (d) 5 features, cache holding (a)")
            (second,) = _fits_in_fresh_process(base, environment, dict(first_case, n_features=5))
            measured["second_feature_count"] = {"seconds": second["first"]}
        _log(f"{case.name}: (e) warm cache")
        (warm,) = _fits_in_fresh_process(base, environment, dict(first_case, again=True))
        measured["warm"] = {"first": warm["first"], "again": warm["again"]}
    if not settings.all_first_fit_targets:
        skipped = {"not_run": "not run with --quick (it compiles kernels of its own)"}
        return {target.key: measured.get(target.key, skipped) for target in FIRST_FIT_TARGETS}

    with tempfile.TemporaryDirectory(prefix="fastem-bench-numba-") as cache_dir:
        _log(f"{case.name}: (c) diag float32, empty Numba cache")
        (diag,) = _fits_in_fresh_process(
            base, {"NUMBA_CACHE_DIR": cache_dir}, dict(n_features=4, dtype="float32", covariance_type="diag")
        )
        measured["cold_diag_float32"] = {"seconds": diag["first"]}

    with tempfile.TemporaryDirectory(prefix="fastem-bench-numba-") as cache_dir:
        environment = {"NUMBA_CACHE_DIR": cache_dir}
        _log(f"{case.name}: (f) python -m fastem compile into an empty Numba cache")
        measured["compile"] = _compile_ahead(environment)
        compiled_fits = {
            "compiled_tied": dict(n_features=3, dtype="float64", covariance_type="tied", again=True),
            "compiled_full_float32": dict(n_features=6, dtype="float32", covariance_type="full", again=True),
        }
        for key, fit_spec in compiled_fits.items():
            if "failed" in measured["compile"]:
                measured[key] = {"not_run": "not run: the compile command failed"}
                continue
            label = f"{fit_spec['covariance_type']} d={fit_spec['n_features']} {fit_spec['dtype']}"
            _log(f"{case.name}: (f) {label}, fresh process after the compile")
            (result,) = _fits_in_fresh_process(base, environment, fit_spec)
            measured[key] = {"first": result["first"], "again": result["again"]}
    return measured


def _cell(text: str) -> str:
    """``text`` fit for one markdown table cell (a compiler's message may hold newlines or pipes)."""
    return " ".join(text.split()).replace("|", "\\|")


def first_fit_target_rows(measured: dict, n_samples: int, n_components: int) -> list:
    """Rows of the targets table (``report.FIRST_FIT_TARGET_COLUMNS``) from what :func:`first_fit_targets` returns.

    A target absent from ``measured`` is reported as not measured; a figure
    meets its target when it is at most the target's seconds.
    """
    rows = []
    for target in FIRST_FIT_TARGETS:
        result = measured.get(target.key, {"not_run": "not measured"})
        figure = None
        if "first" in result:
            figure = result["first"] - result["again"]
            cell = f"{figure:+.2f} s ({result['first']:.2f} s first, {result['again']:.2f} s again)"
        elif "seconds" in result:
            figure = result["seconds"]
            cell = f"{figure:.2f} s" + (f" ({result['detail']})" if result.get("detail") else "")
        else:
            cell = result.get("failed") or result.get("not_run", "not measured")
        if target.seconds is None:
            goal = "—"
        else:
            goal = f"≤ +{target.seconds:g} s over a refit" if target.over_refit else f"≤ {target.seconds:g} s"
        met = "—" if figure is None or target.seconds is None else ("yes" if figure <= target.seconds else "no")
        description = target.description.format(n=_count(n_samples), k=n_components)
        rows.append([_cell(description), _cell(cell), goal, met])
    return rows


def run_first_fit_targets_case(case: Case, settings: Settings, report: Report) -> None:
    """The first-fit figures of issue 12, each next to its target."""
    n_samples = _n_samples_for(case, settings)
    measured = first_fit_targets(case, n_samples, settings)
    report.first_fit_target_rows += first_fit_target_rows(measured, n_samples, case.n_components)
