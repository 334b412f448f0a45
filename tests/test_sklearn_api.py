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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(GaussianMixture(n_jobs=1), on_fail=None)
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


def test_importing_fastem_does_not_import_sklearn():
    code = "import sys, fastem; fastem.GaussianMixture(2); print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
