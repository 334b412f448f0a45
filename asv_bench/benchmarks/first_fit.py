"""Latency of ``import fastem`` and of the first fit in a fresh Python process.

Numba compiles fastem's kernels on first use and caches them on disk, so a
user's first fit costs what the asv ``time_`` benchmarks never see (their
``setup`` compiles). ``timeraw_`` benchmarks run their code in a new
interpreter each time: with an empty ``NUMBA_CACHE_DIR`` (everything is
compiled) and with one filled beforehand (kernels loaded from the cache).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile

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
