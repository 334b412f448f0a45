"""Saying when kernels compile, and ``python -m fastem compile``.

The announcement and the progress lines listen to Numba's compile events, so
they are tested first on small functions compiled here (fresh ones, never
cached), then end to end in a fresh process with an empty Numba cache.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from fastem._core.compilation import announce_compilation, compile_ahead
from fastem.mixture.precompile import DEFAULT_FEATURES, specialisations, variant_label


def _fresh_function():
    @numba.njit(cache=False)
    def add_one(x):
        return x + 1.0

    return add_one


def test_announcement_is_printed_once_before_a_compilation(capsys):
    first, second = _fresh_function(), _fresh_function()
    with announce_compilation("compiling now"):
        assert first(1.0) == 2.0
        assert second(1.0) == 2.0  # a second compilation: no second message
    assert capsys.readouterr().out == "compiling now\n"


def test_no_announcement_without_compilation_or_when_disabled(capsys):
    function = _fresh_function()
    function(1.0)  # compiled before the block
    with announce_compilation("compiling now"):
        function(2.0)
    with announce_compilation("compiling now", enabled=False):
        _fresh_function()(1.0)
    assert capsys.readouterr().out == ""


def test_compile_ahead_reports_each_kernel_and_what_was_cached(capsys):
    function = _fresh_function()
    done = compile_ahead([("first task", lambda: function(1.0)), ("same again", lambda: function(2.0))])
    out = capsys.readouterr().out
    assert "[1/2] first task" in out and "[2/2] same again" in out
    assert "compiled _fresh_function.<locals>.add_one in" in out
    assert "already compiled (cache)" in out
    assert [len(compiled) for _, compiled, _ in done] == [1, 0]


def test_default_specialisations_cover_every_variant_once():
    chosen = specialisations()
    # full: the general loops (1 and 9+) and each of 2..8; the other types once per dtype.
    assert len(chosen) == 2 * (8 + 3)
    labels = {(dtype, cov, variant_label(cov, d)) for dtype, cov, d in chosen}
    assert len(labels) == len(chosen)
    assert ("float32", "full", "6 features") in labels
    assert ("float64", "tied", "any number of features") in labels
    assert specialisations(("float64",), ("full",), (40,))[0] == ("float64", "full", 40)
    assert max(DEFAULT_FEATURES) == 9


def _run(arguments, cache, code=None):
    environment = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONWARNINGS="ignore")
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "fastem", *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=900)


_VERBOSE_FITS = """
import numpy as np
from fastem import GaussianMixture
X = np.random.default_rng(0).normal(size=(200, 3))
X[::2] += 4.0
for verbose in (1, 1):
    model = GaussianMixture(2, covariance_type="diag", verbose=verbose, random_state=0)
    model.fit(X, sample_weight=np.ones(len(X)))
    model.predict_proba(X)
    model.score_samples(X)
    model.predict(X)
    model.icl(X)
print("fits done")
"""


@pytest.mark.slow
def test_verbose_fit_announces_compilation_and_compile_command_fills_the_cache(tmp_path):
    cache = tmp_path / "numba-cache"
    data = tmp_path / "data.csv"
    X = np.random.default_rng(1).normal(size=(100, 2))
    X[::2] += 5.0
    np.savetxt(data, X, delimiter=",")
    cli = _run(["fit", str(data), "-k", "2", "--covariance-type", "tied"], cache)
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert cli.stdout.startswith("compiling kernels for tied covariance, float64, 2 features (first run only")
    assert cli.stdout.count("compiling kernels") == 1 and "BIC" in cli.stdout
    cli_again = _run(["fit", str(data), "-k", "2", "--covariance-type", "tied"], cache)
    assert cli_again.returncode == 0 and "compiling kernels" not in cli_again.stdout  # loaded from the cache

    fits = _run(None, cache, code=_VERBOSE_FITS)
    assert fits.returncode == 0, fits.stderr[-3000:]
    lines = fits.stdout.splitlines()
    announced = [line for line in lines if line.startswith("compiling kernels")]
    assert announced == ["compiling kernels for diag covariance, float64, 3 features; cached for later runs"]
    # Printed when the first kernel starts compiling, before the first fit's end.
    assert lines.index(announced[0]) < lines.index("Initialization converged.")
    assert lines[-1] == "fits done"

    # The fits above compiled (and cached) everything this specialisation needs.
    again = _run(["compile", "--models", "mixture", "--dtypes", "float64", "--covariance-types", "diag", "--features", "3"],
                 cache)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[1/1] GaussianMixture diag, float64, any number of features" in again.stdout
    assert "already compiled (cache)" in again.stdout and "    compiled " not in again.stdout

    fresh = _run(["compile", "--dtypes", "float32", "--covariance-types", "spherical", "--features", "2"], cache)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "    compiled estep_diag in" in fresh.stdout
    assert "specialisations already cached" in fresh.stdout.splitlines()[-1]
    # The HMM's own kernels come with it, including the log-space forward-backward.
    assert "GaussianHMM diag and spherical" in fresh.stdout
    for kernel in ("forward_backward", "forward_backward_log", "meet_in_the_middle", "viterbi"):
        assert f"    compiled {kernel} in" in fresh.stdout, kernel
    # And the kernels of data with missing values.
    assert "GaussianMixture with missing values (NaN), float32" in fresh.stdout
    for kernel in ("estep_missing", "log_prob_missing", "impute_missing"):
        assert f"    compiled {kernel} in" in fresh.stdout, kernel
    # And LatentDirichletAllocation's.
    assert "LatentDirichletAllocation (every dtype and learning method)" in fresh.stdout
    for kernel in ("document_topics", "topic_word_statistics", "_update_by_blocks", "_fill_expectations",
                   "_fill_listed_words", "word_major_index", "document_bounds"):
        assert f"    compiled {kernel} in" in fresh.stdout, kernel


@pytest.mark.parametrize("arguments, message", [
    (["--dtypes", "float16"], "invalid choice 'float16'"),
    (["--covariance-types", "full,banana"], "invalid choice 'banana'"),
    (["--features", "0"], "feature counts must be positive"),
    (["--features", "two"], "invalid"),
    (["--models", "mixture,lda"], "invalid choice 'lda'"),
    (["--models", "nan"], "invalid choice 'nan'"),
])
def test_compile_command_rejects_bad_choices(tmp_path, arguments, message):
    result = _run(["compile", *arguments], tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
