"""DataFrames: feature_names_in_ recorded and checked as scikit-learn does; pandas NA as missing; messages for users."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

from fastem import GaussianHMM, GaussianMixture, GaussianMixtureIC, LatentDirichletAllocation
from fastem.exceptions import ConvergenceWarning

COLUMNS = ["eruptions", "waiting", "duration"]


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, size=(150, 3)), rng.normal([6.0, 0.0, -3.0], 1, size=(150, 3))])
    return pd.DataFrame(X, columns=COLUMNS)


@pytest.fixture(scope="module")
def fitted(frame):
    return GaussianMixture(2, random_state=0).fit(frame)


def test_fit_records_the_column_names(fitted):
    assert fitted.feature_names_in_.dtype == object
    assert list(fitted.feature_names_in_) == COLUMNS


def test_fit_on_an_array_records_none_and_forgets_earlier_names(frame):
    model = GaussianMixture(2, random_state=0).fit(frame)
    model.fit(frame.to_numpy())
    assert not hasattr(model, "feature_names_in_")


def test_integer_column_names_are_not_feature_names(frame):
    model = GaussianMixture(2, random_state=0).fit(frame.set_axis([0, 1, 2], axis=1))
    assert not hasattr(model, "feature_names_in_")


def test_mixed_column_name_types_raise_before_anything_changes(frame, fitted):
    model = GaussianMixture(2, random_state=0).fit(frame)
    means = model.means_.copy()
    with pytest.raises(TypeError, match="Feature names are only supported if all input features have string names"):
        model.fit(frame.set_axis(["a", 1, "c"], axis=1))
    np.testing.assert_array_equal(model.means_, means)


METHODS = ["predict", "predict_proba", "score_samples", "score", "bic", "aic", "icl", "impute", "compute_statistics"]


@pytest.mark.parametrize("method", METHODS)
def test_reordered_columns_raise(fitted, frame, method):
    with pytest.raises(ValueError, match="Feature names must be in the same order as they were in fit"):
        getattr(fitted, method)(frame[COLUMNS[::-1]])


@pytest.mark.parametrize("method", METHODS)
def test_the_same_columns_pass(fitted, frame, method):
    getattr(fitted, method)(frame)


def test_reordered_columns_would_give_other_labels(fitted, frame):
    # What the check prevents: the same rows, columns taken by position.
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        by_position = fitted.predict(frame[COLUMNS[::-1]].to_numpy())
    assert (by_position != fitted.predict(frame)).any()


def test_a_missing_and_an_extra_column_are_named(fitted, frame):
    renamed = frame.rename(columns={"duration": "temperature"})
    with pytest.raises(ValueError) as error:
        fitted.predict(renamed)
    message = str(error.value)
    assert "Feature names unseen at fit time:\n- temperature" in message
    assert "Feature names seen at fit time, yet now missing:\n- duration" in message


def test_a_missing_column_raises(fitted, frame):
    with pytest.raises(ValueError, match="yet now missing:\n- duration"):
        fitted.predict(frame[COLUMNS[:2]])


def test_an_extra_column_raises(fitted, frame):
    with pytest.raises(ValueError, match="unseen at fit time:\n- extra"):
        fitted.predict(frame.assign(extra=1.0))


def test_an_array_after_names_warns_at_the_callers_line(fitted, frame):
    with pytest.warns(UserWarning, match="X does not have valid feature names, but GaussianMixture was fitted with") as record:
        fitted.predict(frame.to_numpy())
    assert record[0].filename == __file__


def test_names_after_an_array_warn_at_the_callers_line(frame):
    model = GaussianMixture(2, random_state=0).fit(frame.to_numpy())
    with pytest.warns(UserWarning, match="X has feature names, but GaussianMixture was fitted without") as record:
        model.predict(frame)
    assert record[0].filename == __file__


def test_names_survive_the_model_file(fitted, frame):
    buffer = io.BytesIO()
    fitted.save(buffer)
    buffer.seek(0)
    loaded = GaussianMixture.load(buffer)
    assert list(loaded.feature_names_in_) == COLUMNS
    with pytest.raises(ValueError, match="same order"):
        loaded.predict(frame[COLUMNS[::-1]])


def test_partial_fit_records_on_the_first_batch_and_checks_later(frame):
    model = GaussianMixture(2, random_state=0).partial_fit(frame.iloc[:200])
    assert list(model.feature_names_in_) == COLUMNS
    with pytest.raises(ValueError, match="same order"):
        model.partial_fit(frame.iloc[200:][COLUMNS[::-1]])


def test_model_selection_checks_names(frame):
    ic = GaussianMixtureIC(n_components=[1, 2], covariance_type=["full"], random_state=0).fit(frame)
    assert list(ic.feature_names_in_) == COLUMNS
    with pytest.raises(ValueError, match="same order"):
        ic.predict(frame[COLUMNS[::-1]])


def test_hmm_records_checks_and_saves_names(frame):
    model = GaussianHMM(2, random_state=0, n_iter=5).fit(frame)
    assert list(model.feature_names_in_) == COLUMNS
    for method in ("predict", "score", "predict_proba", "decode", "score_samples"):
        with pytest.raises(ValueError, match="same order"):
            getattr(model, method)(frame[COLUMNS[::-1]])
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    assert list(GaussianHMM.load(buffer).feature_names_in_) == COLUMNS


def test_lda_records_and_checks_names():
    rng = np.random.default_rng(0)
    counts = pd.DataFrame(rng.poisson(1.0, size=(30, 6)), columns=[f"word{i}" for i in range(6)])
    model = LatentDirichletAllocation(2, max_iter=2, random_state=0).fit(counts)
    assert list(model.feature_names_in_) == list(counts.columns)
    with pytest.raises(ValueError, match="same order"):
        model.transform(counts[counts.columns[::-1]])
    with pytest.raises(ValueError, match="same order"):
        model.partial_fit(counts[counts.columns[::-1]])


# ---------------------------------------------------------------- pandas' missing values

def test_nullable_columns_with_pd_na_are_missing_values(frame):
    nullable = frame.astype("Float64")
    nullable.iloc[3, 1] = pd.NA
    plain = frame.copy()
    plain.iloc[3, 1] = np.nan
    with_na = GaussianMixture(2, random_state=0).fit(nullable)
    with_nan = GaussianMixture(2, random_state=0).fit(plain)
    assert with_na.lower_bound_ == with_nan.lower_bound_
    np.testing.assert_array_equal(with_na.predict(nullable), with_nan.predict(plain))
    assert nullable.iloc[3, 1] is pd.NA  # the input is not modified


def test_nullable_integer_and_float32_columns():
    ints = pd.DataFrame({"a": pd.array([1, 2, None, 4, 5, 6], dtype="Int64"),
                         "b": pd.array([0.5, 1.5, 2.0, None, 1.0, 3.0], dtype="Float32")})
    model = GaussianMixture(1).fit(ints)
    assert model.means_.dtype == np.float64
    assert np.isfinite(model.means_).all()
    single = pd.DataFrame({"a": pd.array([0.5, 1.5, 2.0, None, 1.0, 3.0], dtype="Float32"),
                           "b": pd.array([1.5, 0.5, 2.5, 2.0, None, 3.0], dtype="Float32")})
    assert GaussianMixture(1).fit(single).means_.dtype == np.float32


def test_pd_na_where_missing_values_are_not_supported_names_nan():
    counts = pd.DataFrame({"a": pd.array([1, None], dtype="Int64"), "b": pd.array([2, 3], dtype="Int64")})
    with pytest.raises(ValueError, match="NaN") as error:
        LatentDirichletAllocation(2).fit(counts)
    assert "NAType" not in str(error.value)


# ---------------------------------------------------------------- messages for users

@pytest.mark.parametrize("params, expected", [
    (dict(tol=np.float64(-1.0)), "got -1.0."),
    (dict(n_components=np.int64(0)), "got 0."),
    (dict(reg_covar=np.float32(-0.5)), "got -0.5."),
])
def test_messages_show_plain_numbers(params, expected):
    with pytest.raises(ValueError) as error:
        GaussianMixture(**params).fit(np.zeros((10, 2)) + np.arange(10)[:, None])
    assert str(error.value).endswith(expected)
    assert "np." not in str(error.value)


def test_a_negative_weight_is_shown_as_a_plain_number():
    with pytest.raises(ValueError, match=r"found minimum -2\.0\.$"):
        GaussianMixture(1).fit(np.arange(6.0).reshape(3, 2), sample_weight=np.array([1.0, -2.0, 1.0]))


def test_the_convergence_warning_points_at_the_callers_line(frame):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GaussianMixture(2, max_iter=1, random_state=0).fit(frame)
    found = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert found and found[0].filename == __file__


# ---------------------------------------------------------------- data read block by block

def test_a_fit_on_a_memmap_forgets_earlier_names(frame, tmp_path):
    path = tmp_path / "X.dat"
    data = np.memmap(path, dtype=np.float64, mode="w+", shape=frame.shape)
    data[:] = frame.to_numpy()
    data.flush()
    model = GaussianMixture(2, random_state=0).fit(frame)
    labels = model.fit_predict(np.memmap(path, dtype=np.float64, mode="r", shape=frame.shape))
    assert not hasattr(model, "feature_names_in_")
    assert labels.shape == (len(frame),)


def test_blocks_after_names_warn_once(fitted, frame):
    blocks = [frame.to_numpy()[:100], frame.to_numpy()[100:]]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = fitted.predict(lambda: iter(blocks))  # a callable returning the blocks
    assert len([w for w in caught if "valid feature names" in str(w.message)]) == 1
    np.testing.assert_array_equal(labels, fitted.predict(frame))


def test_names_are_recorded_before_a_warning_that_raises(frame, monkeypatch):
    from fastem.mixture import estimator

    model = GaussianMixture(2, random_state=0).fit(frame.to_numpy())

    def raising(*args):
        raise UserWarning("as with warnings turned into errors")

    monkeypatch.setattr(estimator, "warn_if_near_duplicates", raising)
    with pytest.raises(UserWarning):
        model.fit(frame)
    assert list(model.feature_names_in_) == COLUMNS  # consistent with the parameters just set


# ---------------------------------------------------------------- scikit-learn's BaseEstimator

def test_a_user_class_listing_base_estimator_first_does_not_break_fastem():
    import subprocess
    import sys

    # Defined after scikit-learn is loaded but before the first fastem estimator is created: the new base
    # would make Mine's method order inconsistent, so fastem keeps its placeholder rather than fail.
    code = (
        "import fastem, sklearn.base\n"
        "class Mine(sklearn.base.BaseEstimator, fastem.GaussianMixture): pass\n"
        "from fastem._core.estimator import adopt_sklearn_base\n"
        "print(adopt_sklearn_base(), type(fastem.GaussianHMM(2)).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "GaussianHMM"]


def test_dir_works_with_an_invalid_parameter():
    from fastem._core.estimator import adopt_sklearn_base

    pytest.importorskip("sklearn.base")
    assert adopt_sklearn_base()  # with scikit-learn's BaseEstimator and its __dir__ in the method order
    names = dir(GaussianMixture(covariance_type=None))  # _layout raises TypeError for it
    assert "fit" in names and "predict" in names
