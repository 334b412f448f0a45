"""Latency of ``import fastem`` and of the first fit in a fresh Python process.

Numba compiles fastem's kernels on first use and caches them on disk, so a
user's first fit costs what the asv ``time_`` benchmarks never see (their
``setup`` compiles). ``timeraw_`` benchmarks run their code in a new
interpreter each time: with an empty ``NUMBA_CACHE_DIR`` (everything is
compiled) and with one filled beforehand (kernels loaded from the cache).

The ``Target*`` classes measure the first-fit figures that issue 12 sets
targets for: a cold default fit and the inference after it, a cold diag
float32 fit, and fits after ``python -m fastem compile``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from .common import LARGE

# A first fit as a user writes it (default k-means initialisation, so its
# kernels are compiled too), on data too small for the fit itself to matter.
_DATA = """
import warnings
import numpy as np
X = np.random.default_rng(0).normal(size=(5000, 8))
"""

_FIT = """
import fastem
with warnings.catch_warnings():
    warnings.simplefilter("ignore", fastem.ConvergenceWarning)
    fastem.GaussianMixture(16, covariance_type={covariance_type!r}, max_iter=5, tol=0.0, random_state=0).fit(X)
"""

# The cold start of every covariance type costs about 20 s per sample; by
# default only 'full' is measured.
COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"] if LARGE else ["full"]


def _set_cache_dir(expression: str) -> str:
    """Setup code pointing Numba's cache at the directory ``expression`` evaluates to.

    Numba reads NUMBA_CACHE_DIR when it is imported, which happens in the
    timed statement (``import fastem``), after this setup code.
    """
    return f"import os\nos.environ['NUMBA_CACHE_DIR'] = {expression}\n"


def timeraw_import_fastem():
    """``import fastem`` in a fresh process (numba, scipy and the package; no compilation)."""
    return "import fastem", "import numpy"


class FirstFitColdCache:
    """Fresh process, empty Numba cache: import fastem, compile, fit."""

    params = [COVARIANCE_TYPES]
    param_names = ["covariance_type"]
    number = 1
    repeat = (1, 3, 120.0)
    rounds = 1
    timeout = 600.0

    def timeraw_first_fit(self, covariance_type):
        setup = (
            "import atexit, shutil, tempfile\n"
            "cache_dir = tempfile.mkdtemp(prefix='fastem-asv-numba-')\n"
            "atexit.register(shutil.rmtree, cache_dir, True)\n"
            + _set_cache_dir("cache_dir")
            + _DATA
        )
        return _FIT.format(covariance_type=covariance_type), setup


class FirstFitWarmCache:
    """Fresh process, Numba cache filled beforehand: import fastem, load the kernels, fit."""

    params = [COVARIANCE_TYPES]
    param_names = ["covariance_type"]
    number = 1
    repeat = (1, 5, 60.0)
    rounds = 1
    timeout = 600.0

    def setup(self, covariance_type):
        self.cache_dir = tempfile.mkdtemp(prefix="fastem-asv-numba-")
        code = _set_cache_dir(repr(self.cache_dir)) + _DATA + _FIT.format(covariance_type=covariance_type)
        subprocess.run([sys.executable, "-c", code], check=True)

    def teardown(self, covariance_type):
        shutil.rmtree(self.cache_dir, ignore_errors=True)

    def timeraw_first_fit(self, covariance_type):
        return _FIT.format(covariance_type=covariance_type), _set_cache_dir(repr(self.cache_dir)) + _DATA


# The first-fit targets of issue 12, also reported (next to their targets) by
# ``python -m fastem.bench --cases first_fit_targets``: seeded blobs of
# TARGET_ROWS rows and 3 components from the comparison script's own builder,
# fits written as a user writes them (default max_iter, tol and k-means
# initialisation). Setup imports fastem and builds the data, so the timed
# statement is the fit (or the inference) alone, as the targets define it.
TARGET_ROWS = 100_000

_TARGET_DATA = """
import warnings
import numpy as np
import fastem
from fastem.bench.cases import make_data
X = make_data({n_samples}, {n_features}, 3, np.{dtype}, 0)
def fit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        return fastem.GaussianMixture(3, covariance_type={covariance_type!r}, random_state=0).fit(X)
"""

_EMPTY_CACHE = (
    "import atexit, shutil, tempfile\n"
    "cache_dir = tempfile.mkdtemp(prefix='fastem-asv-numba-')\n"
    "atexit.register(shutil.rmtree, cache_dir, True)\n"
    + _set_cache_dir("cache_dir")
)

# "covariance_type, n_features, dtype" labels of the fits each target names.
_TARGET_FITS = {
    "full d=2 float64": ("full", 2, "float64"),
    "diag d=4 float32": ("diag", 4, "float32"),
    "tied d=3 float64": ("tied", 3, "float64"),
    "full d=6 float32": ("full", 6, "float32"),
}


def _target_data(label: str) -> str:
    covariance_type, n_features, dtype = _TARGET_FITS[label]
    return _TARGET_DATA.format(n_samples=TARGET_ROWS, n_features=n_features, dtype=dtype, covariance_type=covariance_type)


class TargetColdFit:
    """Issue 12 (a) and (c): fresh process, empty Numba cache, the first fit (targets: 10 s each)."""

    params = [["full d=2 float64", "diag d=4 float32"]]
    param_names = ["fit"]
    number = 1
    repeat = (1, 3, 120.0)
    rounds = 1
    timeout = 600.0

    def timeraw_fit(self, fit):
        return "fit()", _EMPTY_CACHE + _target_data(fit)


class TargetInferenceAfterColdFit:
    """Issue 12 (b): right after the cold fit of (a) in that process, the four inference methods (target: 2 s).

    The cold fit runs in the setup code, untimed; the statement is
    ``predict`` + ``predict_proba`` + ``score_samples`` + ``score`` on X.
    """

    number = 1
    repeat = (1, 3, 120.0)
    rounds = 1
    timeout = 600.0

    def timeraw_inference(self):
        setup = _EMPTY_CACHE + _target_data("full d=2 float64") + "model = fit()\n"
        return "model.predict(X); model.predict_proba(X); model.score_samples(X); model.score(X)", setup


class TargetFitAfterCompile:
    """Issue 12 (f): after ``python -m fastem compile`` (defaults), a fresh process's first fit and a refit.

    ``setup_cache`` compiles once into a directory that asv removes after
    the class has run. The target is the first fit at most 0.5 s slower
    than ``timeraw_refit``, the same fit again in its process (the setup
    code fits once, untimed). ``track_compile_seconds`` is how long the
    compile command took (one run, so the same figure for both fits).
    """

    params = [["tied d=3 float64", "full d=6 float32"]]
    param_names = ["fit"]
    number = 1
    repeat = (1, 5, 60.0)
    rounds = 1
    timeout = 600.0

    def setup_cache(self):
        # asv runs setup_cache, and then the benchmarks, in a temporary
        # working directory of their own.
        cache_dir = os.path.abspath("numba-cache")
        environment = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastem", "compile"], check=True, env=environment, stdout=subprocess.DEVNULL)
        return {"cache_dir": cache_dir, "compile_seconds": time.perf_counter() - start}

    setup_cache.timeout = 1800.0

    def timeraw_first_fit(self, compiled, fit):
        return "fit()", _set_cache_dir(repr(compiled["cache_dir"])) + _target_data(fit)

    def timeraw_refit(self, compiled, fit):
        return "fit()", _set_cache_dir(repr(compiled["cache_dir"])) + _target_data(fit) + "fit()\n"

    def track_compile_seconds(self, compiled, fit):
        return compiled["compile_seconds"]

    track_compile_seconds.unit = "seconds"
