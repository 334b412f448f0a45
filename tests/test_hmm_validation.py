"""GaussianHMM: clear errors on bad input and parameters, nothing mutated, model files, pickling."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

from fastem import GaussianHMM, ModelFileError, NotFittedError
from hmm_data import sequences, start_params, with_params


@pytest.fixture(scope="module")
def fitted():
    X, lengths = sequences(seed=13)
    return GaussianHMM(3, covariance_type="full", n_iter=3, random_state=0).fit(X, lengths), X, lengths


@pytest.mark.parametrize(
    "lengths, match",
    [
        ([60, 7, 45, 1, 29], "doesn't sum to 143"),
        ([60, 7, 45, 0, 31], r"lengths must be positive: lengths\[3\] = 0"),
        ([70, -3, 45, 1, 30], r"lengths must be positive: lengths\[1\] = -3"),
        ([60.5, 6.5, 45, 1, 30], "integers"),
        ([[143]], "1D"),
    ],
)
def test_bad_lengths(lengths, match):
    X, _ = sequences(seed=13)
    with pytest.raises(ValueError, match=match):
        GaussianHMM(2).fit(X, lengths)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data(bad):
    X, lengths = sequences(seed=13)
    X = X.copy()
    X[5, 1] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        GaussianHMM(2).fit(X, lengths)


def test_wrong_feature_count_at_predict_time(fitted):
    model, X, lengths = fitted
    with pytest.raises(ValueError, match="X has 3 features, but GaussianHMM is expecting 2"):
        model.predict(np.ones((10, 3)))


@pytest.mark.parametrize("method", ["score", "score_samples", "predict", "predict_proba", "decode", "sample", "save"])
def test_use_before_fit(method):
    model = GaussianHMM(2)
    arguments = {"sample": (), "save": (io.BytesIO(),)}.get(method, (np.ones((4, 2)),))
    with pytest.raises(NotFittedError, match="not fitted yet"):
        getattr(model, method)(*arguments)


def test_transmat_rows_must_sum_to_one():
    X, lengths = sequences(seed=13)
    model = with_params(GaussianHMM(3, init_params=""), start_params("diag"))
    model.transmat_ = np.full((3, 3), 0.3)
    with pytest.raises(ValueError, match="transmat_ rows must sum to 1"):
        model.fit(X, lengths)
    with pytest.raises(ValueError, match="transmat_ rows must sum to 1"):
        model.score(X, lengths)
    model.transmat_ = np.eye(3)
    model.startprob_ = np.array([0.5, 0.6, -0.1])
    with pytest.raises(ValueError, match="startprob_ must hold finite, non-negative"):
        model.fit(X, lengths)
    model.startprob_ = np.array([0.5, 0.6, 0.1])
    with pytest.raises(ValueError, match="startprob_ must sum to 1"):
        model.score(X, lengths)


def test_invalid_covars_and_shapes():
    model = GaussianHMM(3, covariance_type="full")
    with pytest.raises(ValueError, match="component 1 of 'full' covars must be symmetric, positive-definite"):
        model.covars_ = np.stack([np.eye(2), -np.eye(2), np.eye(2)])
    model = GaussianHMM(3, covariance_type="diag")
    with pytest.raises(ValueError, match="'diag' covars must be positive"):
        model.covars_ = np.array([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    X, lengths = sequences(seed=13)
    model = with_params(GaussianHMM(3, init_params=""), start_params("diag"))
    model.means_ = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"means_ must have shape \(n_components, n_features\)"):
        model.fit(X, lengths)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"n_components": 0}, "n_components"),
        ({"covariance_type": "banana"}, "covariance_type"),
        ({"algorithm": "forward"}, "algorithm"),
        ({"implementation": "fast"}, "implementation"),
        ({"params": "stmx"}, "params may contain only"),
        ({"init_params": "q"}, "init_params may contain only"),
        ({"n_iter": -1}, "n_iter"),
        ({"tol": float("nan")}, "tol"),
        ({"min_covar": -1.0}, "min_covar"),
        ({"covars_prior": float("inf")}, "covars_prior must be finite"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_invalid_parameters_name_the_parameter(params, match):
    X, lengths = sequences(seed=13)
    with pytest.raises(ValueError, match=match):
        GaussianHMM(**{"n_components": 2, **params}).fit(X, lengths)


def test_bad_sample_weight():
    X, lengths = sequences(seed=13)
    model = GaussianHMM(2)
    with pytest.raises(ValueError, match=r"one weight per sequence, shape \(5,\)"):
        model.fit(X, lengths, sample_weight=np.ones(len(X)))
    with pytest.raises(ValueError, match="non-negative"):
        model.fit(X, lengths, sample_weight=[1, 1, -1, 1, 1])
    with pytest.raises(ValueError, match="sums to zero"):
        model.fit(X, lengths, sample_weight=np.zeros(5))
    with pytest.raises(ValueError, match="n_samples=2 should be >= n_components=3"):
        GaussianHMM(3).fit(X[:2])


def test_inputs_are_not_modified_and_attributes_do_not_alias_them():
    X, lengths = sequences(seed=13)
    params = start_params("full")
    copies = [p.copy() for p in params]
    X_copy, lengths_copy = X.copy(), lengths.copy()
    weights = np.arange(1.0, 6.0)
    model = with_params(GaussianHMM(3, covariance_type="full", init_params="", n_iter=2), params)
    model.fit(X, lengths, sample_weight=weights)
    model.score_samples(X, lengths)
    model.decode(X, lengths)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(lengths, lengths_copy)
    np.testing.assert_array_equal(weights, np.arange(1.0, 6.0))
    for original, copy in zip(params, copies):
        np.testing.assert_array_equal(original, copy)
    assert not np.shares_memory(model.means_, params[2])


def test_failed_fit_keeps_the_previous_model(fitted):
    """A fit that fails after its first M-step (a negative covariance prior) leaves the model as it was."""
    model, X, lengths = fitted
    model = pickle.loads(pickle.dumps(model))
    before = [getattr(model, name).copy() for name in ("startprob_", "transmat_", "means_", "_covars_")]
    with pytest.raises(ValueError, match="covars_ of state .* must be symmetric, positive-definite"):
        model.set_params(init_params="", covars_prior=-100.0, n_iter=5).fit(X, lengths)
    for name, value in zip(("startprob_", "transmat_", "means_", "_covars_"), before):
        np.testing.assert_array_equal(getattr(model, name), value)


def test_model_file_round_trip_and_pickle(fitted, tmp_path):
    model, X, lengths = fitted
    path = tmp_path / "hmm.npz"
    model.save(path)
    loaded = GaussianHMM.load(path)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert list(loaded.monitor_.history) == list(model.monitor_.history)
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X, lengths), model.predict(X, lengths))
    unpickled = pickle.loads(pickle.dumps(model))
    assert unpickled.score(X, lengths) == model.score(X, lengths)
    with_priors = GaussianHMM(3, covariance_type="diag", means_weight=np.full(3, 2.0), n_iter=2, random_state=0)
    with_priors.fit(X, lengths)
    buffer = io.BytesIO()
    with_priors.save(buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(GaussianHMM.load(buffer).means_weight, np.full(3, 2.0))


def test_malformed_model_files(fitted, tmp_path):
    model, _, _ = fitted
    path = tmp_path / "hmm.npz"
    model.save(path)
    data = path.read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="Not a fastem model file"):
        GaussianHMM.load(tmp_path / "truncated.npz")
    from fastem import GaussianMixture

    with pytest.raises(ModelFileError, match="expected 'fastem.GaussianMixture'"):
        GaussianMixture.load(path)
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.full((3, 3), 0.5))
    members["transmat_.npy"] = buffer.getvalue()
    with zipfile.ZipFile(tmp_path / "bad.npz", "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    with pytest.raises(ModelFileError, match="transmat_ rows must sum to 1"):
        GaussianHMM.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("params, match", [
    ({"covars_weight": np.ones(3)}, "covars_weight has shape"),
    ({"covariance_type": "full", "means_weight": np.ones((3, 2))}, "means_weight has shape"),
    ({"covariance_type": "tied", "covars_prior": np.ones(3)}, "covars_prior has shape"),
])
def test_prior_shapes_are_checked_before_fitting(params, match):
    X, lengths = sequences(seed=13)
    with pytest.raises(ValueError, match=match):
        GaussianHMM(3, **params).fit(X, lengths)


def test_impossible_sequence_posteriors_are_an_error_not_log_densities():
    model = GaussianHMM(2, covariance_type="diag")
    model.startprob_, model.transmat_ = np.array([1.0, 0.0]), np.eye(2)
    model.means_, model.covars_ = np.array([[0.0], [1e200]]), np.ones((2, 1))
    X = np.array([[0.0], [1e200], [1.0]])
    assert model.score(X) == -np.inf
    with pytest.raises(ValueError, match="zero probability"):
        model.predict_proba(X)
