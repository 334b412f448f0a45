"""The estimator follows scikit-learn's conventions without importing scikit-learn at run time."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from fastem import GaussianMixture


# Checks scikit-learn itself skips here, and why; nothing else may be skipped.
EXPECTED_SKIPS = {
    # Runs only with the environment variable SCIPY_ARRAY_API=1 and for
    # estimators tagged array_api_support; fastem computes with NumPy/Numba only.
    "check_array_api_input",
}


def test_check_estimator_passes():
    # scikit-learn's checks fit tiny data sets that raise its own and numpy's
    # warnings (e.g. convergence), so warnings are not errors inside this call.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = check_estimator(GaussianMixture(n_jobs=1), on_fail=None)
    # fastem's estimators are scikit-learn BaseEstimators once scikit-learn is loaded (no warning about it).
    assert not [w for w in caught if "inherit" in str(w.message)]
    failures = [(r["check_name"], repr(r["exception"])) for r in results if r["status"] == "failed"]
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    assert failures == []
    assert skipped == EXPECTED_SKIPS
    assert len(results) > 30


def test_same_constructor_parameters_as_sklearn():
    from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

    theirs = SklearnGaussianMixture().get_params()
    ours = GaussianMixture().get_params()
    assert set(ours) - set(theirs) == {"n_jobs"}
    for name, value in theirs.items():
        assert ours[name] == value, name


def test_clone_pipeline_and_grid_search(blobs):
    model = GaussianMixture(2, random_state=0)
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)).fit(blobs)
    assert pipeline.predict(blobs).shape == (len(blobs),)
    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 2, 3]}, cv=3).fit(blobs)
    assert search.best_params_["n_components"] in (2, 3)


def test_set_params_rejects_unknown_names():
    with pytest.raises(ValueError, match="Invalid parameter 'n_clusters'"):
        GaussianMixture().set_params(n_clusters=3)


def test_repr_shows_non_default_parameters():
    assert repr(GaussianMixture(3, covariance_type="diag")) == "GaussianMixture(n_components=3, covariance_type='diag')"


def test_pickle_round_trip(blobs):
    import pickle

    model = GaussianMixture(3, random_state=0).fit(blobs)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.score_samples(blobs), model.score_samples(blobs))


def test_estimators_become_base_estimators_once_sklearn_is_loaded():
    code = (
        "import fastem; early = fastem.GaussianMixture(2)\n"
        "import sklearn.base\n"
        "before = isinstance(early, sklearn.base.BaseEstimator)\n"
        "fastem.GaussianHMM(2)  # the first estimator created after scikit-learn is loaded\n"
        "print(before, isinstance(early, sklearn.base.BaseEstimator),\n"
        "      isinstance(fastem.LatentDirichletAllocation(), sklearn.base.BaseEstimator),\n"
        "      isinstance(fastem.GaussianMixtureIC(), sklearn.base.BaseEstimator))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True", "True"]


def test_fastem_works_without_sklearn_installed():
    code = (
        "import sys; sys.modules['sklearn'] = None  # 'import sklearn' now fails as if it were not installed\n"
        "import numpy as np, fastem\n"
        "from fastem._core.estimator import adopt_sklearn_base\n"
        "X = np.random.default_rng(0).normal(size=(200, 2))\n"
        "model = fastem.GaussianMixture(2, random_state=0).fit(X)\n"
        "print(adopt_sklearn_base(), model.predict(X).shape, type(model).__mro__[-2].__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "(200,)", "_UntilScikitLearnIsLoaded"]


def test_importing_fastem_does_not_import_sklearn():
    code = "import sys, fastem; fastem.GaussianMixture(2); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
