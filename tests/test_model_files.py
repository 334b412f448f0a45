"""gm.save(path) / GaussianMixture.load(path): portable, no pickle, every bad file rejected clearly."""

from __future__ import annotations

import builtins
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from fastem import GaussianMixture, NotFittedError
from fastem.exceptions import ModelFileError
from tests.conftest import COVARIANCE_TYPES, DTYPES, init_kwargs

FITTED = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]
SCALARS = ["converged_", "n_iter_", "lower_bound_", "lower_bounds_", "n_features_in_"]


def assert_same_model(loaded, original, X):
    for name in FITTED:
        ours, theirs = getattr(loaded, name), getattr(original, name)
        assert ours.dtype == theirs.dtype, name
        np.testing.assert_array_equal(ours, theirs, err_msg=name)
        assert ours.flags.c_contiguous and ours.flags.writeable and ours.dtype.isnative
    for name in SCALARS:
        assert getattr(loaded, name) == getattr(original, name), name
    for name, value in original.get_params().items():
        if isinstance(value, (np.ndarray, list)):
            np.testing.assert_array_equal(loaded.get_params()[name], value, err_msg=name)
        elif not isinstance(value, np.random.RandomState):
            assert loaded.get_params()[name] == value, name
    np.testing.assert_array_equal(loaded.score_samples(X), original.score_samples(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), original.predict_proba(X))


def saved_bytes(model) -> bytes:
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def load_bytes(data: bytes):
    return GaussianMixture.load(io.BytesIO(data))


@pytest.fixture(scope="module")
def fitted(blobs):
    return GaussianMixture(3, random_state=0, n_jobs=1).fit(blobs)


@pytest.fixture(scope="module")
def good_file(fitted) -> bytes:
    return saved_bytes(fitted)


# ---------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip_through_a_path(blobs, tmp_path, covariance_type, dtype):
    X = blobs.astype(dtype)
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=7, tol=1e-4, reg_covar=1e-5).fit(X)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = GaussianMixture.load(path)
    assert type(loaded) is GaussianMixture
    assert_same_model(loaded, model, X)
    np.testing.assert_array_equal(loaded.sample(20)[0], model.sample(20)[0])  # the same int seed
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left behind


def test_round_trip_with_initial_parameters_and_a_random_state(blobs):
    kwargs = init_kwargs("full", 3, 3, seed=1)
    model = GaussianMixture(**kwargs, random_state=np.random.RandomState(5), warm_start=True, n_jobs=1, verbose=0)
    model.fit(blobs)
    loaded = load_bytes(saved_bytes(model))
    assert_same_model(loaded, model, blobs)
    for name in ("weights_init", "means_init", "precisions_init"):
        assert not np.shares_memory(getattr(loaded, name), kwargs[name])
    # The RandomState's state at save time is restored, independent of the original's.
    assert loaded.random_state is not model.random_state
    np.testing.assert_array_equal(loaded.sample(10)[0], model.sample(10)[0])
    # A loaded warm_start model continues where the saved one stopped.
    np.testing.assert_array_equal(loaded.fit(blobs).means_, model.fit(blobs).means_)


def test_model_after_max_iter_zero_round_trips(blobs):
    model = GaussianMixture(**init_kwargs("diag", 2, 3), max_iter=0).fit(blobs)
    assert model.lower_bound_ == -np.inf and model.lower_bounds_ == []
    assert_same_model(load_bytes(saved_bytes(model)), model, blobs)


def test_file_is_a_plain_npz_with_json_metadata(fitted, tmp_path):
    path = tmp_path / "model.npz"
    fitted.save(str(path))
    with np.load(path, allow_pickle=False) as archive:  # portable: plain NumPy reads the arrays
        np.testing.assert_array_equal(archive["means_"], fitted.means_)
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["format"] == "fastem.GaussianMixture"
    assert metadata["format_version"] == 1
    assert metadata["params"]["n_components"] == 3
    assert metadata["attributes"]["n_iter_"] == fitted.n_iter_


def test_saving_overwrites_an_existing_file(fitted, blobs, tmp_path):
    path = tmp_path / "model.npz"
    GaussianMixture(2, random_state=0).fit(blobs).save(path)
    fitted.save(path)
    assert GaussianMixture.load(path).n_components == 3


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        GaussianMixture(2).save(tmp_path / "model.npz")
    assert list(tmp_path.iterdir()) == []


def test_unsaveable_parameters_are_refused_at_save_time(fitted):
    model = pickle.loads(pickle.dumps(fitted))
    model.set_params(random_state=np.random.default_rng(0))
    with pytest.raises(ValueError, match="random_state"):
        model.save(io.BytesIO())
    model.set_params(random_state=0, means_init=np.zeros((2, 3)))  # wrong shape for 3 components
    with pytest.raises(ValueError, match="means_init"):
        model.save(io.BytesIO())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_pickle_round_trip_still_works(blobs, covariance_type, dtype):
    X = blobs.astype(dtype)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    assert_same_model(pickle.loads(pickle.dumps(model)), model, X)
    loaded = load_bytes(saved_bytes(model))
    assert_same_model(pickle.loads(pickle.dumps(loaded)), model, X)


# ---------------------------------------------------------------------------
# Bad files


def rewrite(data: bytes, *, metadata=None, members=None, drop=(), compression=zipfile.ZIP_STORED) -> bytes:
    """A copy of the model file ``data`` with metadata edited, members replaced or dropped.

    ``metadata`` is a function editing the parsed JSON in place, or bytes for
    the raw member; ``members`` maps member names to new bytes.
    """
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", compression=compression) as target:
        for name in source.namelist():
            if name in drop:
                continue
            content = source.read(name)
            if name == "metadata.json" and metadata is not None:
                if callable(metadata):
                    parsed = json.loads(content)
                    metadata(parsed)
                    content = json.dumps(parsed).encode()
                else:
                    content = metadata
            if members and name in members:
                content = members[name]
            target.writestr(name, content)
        for name, content in (members or {}).items():
            if name not in source.namelist():
                target.writestr(name, content)
    return out.getvalue()


def npy_bytes(array, allow_pickle=False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def assert_rejected(data: bytes, message: str):
    with pytest.raises(ModelFileError, match=message):
        load_bytes(data)


def test_model_file_error_is_a_value_error():
    assert issubclass(ModelFileError, ValueError)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a readable zip"),
        (b"hello, I am a text file\n" * 10, "not a readable zip"),
        (pickle.dumps({"weights_": [1.0]}), "not a readable zip"),
    ],
    ids=["empty", "text", "pickle"],
)
def test_files_that_are_not_zip_archives(data, message):
    assert_rejected(data, message)


def test_other_npz_files_are_not_models():
    buffer = io.BytesIO()
    np.savez(buffer, weights_=np.ones(3))
    assert_rejected(buffer.getvalue(), "no 'metadata.json' member")


def test_every_truncation_is_rejected(good_file):
    for length in np.linspace(1, len(good_file) - 1, 40).astype(int):
        with pytest.raises(ModelFileError):
            load_bytes(good_file[:length])


def test_every_flipped_byte_is_rejected_or_harmless(good_file, fitted, blobs):
    """Each single-byte corruption either raises ModelFileError or changes nothing that matters."""
    rejected = 0
    for position in range(0, len(good_file), 7):
        corrupted = bytearray(good_file)
        corrupted[position] ^= 0xFF
        try:
            loaded = load_bytes(bytes(corrupted))
        except ModelFileError:
            rejected += 1
            continue
        # Accepted: the byte was in a field that carries no model data (a zip
        # timestamp, say), so the model must be the same.
        assert_same_model(loaded, fitted, blobs)
    assert rejected > 0.8 * len(range(0, len(good_file), 7))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(format_version=2), "Unsupported model file format version 2.*newer fastem"),
        (lambda m: m.update(format_version=0), "Unsupported model file format version 0"),
        (lambda m: m.update(format_version="1"), "format_version must be an integer"),
        (lambda m: m.pop("format_version"), "format_version must be an integer"),
        (lambda m: m.update(format="sklearn.GaussianMixture"), "Not a fastem GaussianMixture file"),
        (lambda m: m.update(dtype="float16"), "dtype must be float32 or float64"),
        (lambda m: m.pop("params"), "'params' is missing"),
        (lambda m: m["params"].pop("tol"), r"parameters \['tol'\] are missing"),
        (lambda m: m["params"].update(n_clusters=3), "unknown parameters"),
        (lambda m: m["params"].update(covariance_type="banana"), "invalid parameter.*covariance_type"),
        (lambda m: m["params"].update(n_components=2), "shape"),
        (lambda m: m["attributes"].update(n_iter_=-1), "n_iter_"),
        (lambda m: m["attributes"].update(converged_="yes"), "converged_"),
        (lambda m: m["attributes"].pop("n_features_in_"), "n_features_in_"),
        (lambda m: m["arrays"].pop("means_"), "array 'means_' is missing"),
        (lambda m: m["arrays"].update(evil_=[1]), "unknown arrays"),
        (lambda m: m["arrays"].update(lower_bounds_=[10**6]), "lower_bounds_"),
        (lambda m: m["random_state"].update(kind="Generator"), "unknown kind"),
        (lambda m: m["random_state"].update(value=-1), "invalid seed"),
    ],
)
def test_bad_metadata_is_rejected(good_file, edit, message):
    assert_rejected(rewrite(good_file, metadata=edit), message)


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "JSON object"),
        (b'{"format": NaN}', "not portable JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply|too deep|more than"),
        (b" " * (2 << 20), "more than"),
    ],
    ids=["syntax", "list", "nan", "binary", "deep", "huge"],
)
def test_malformed_metadata_is_rejected(good_file, raw, message):
    assert_rejected(rewrite(good_file, metadata=raw), message)


def test_missing_array_member_is_rejected(good_file):
    assert_rejected(rewrite(good_file, drop=["covariances_.npy"]), "no 'covariances_.npy' member")


@pytest.mark.parametrize(
    "array, message",
    [
        (np.ones((2, 3)), r"shape \(2, 3\), expected \(3, 3\)"),
        (np.ones((3, 3), dtype=np.int64), "dtype int64"),
        (np.ones((3, 3), dtype=np.complex128), "only real numeric"),
        (np.ones((3, 3), dtype=np.float32), "dtype float32, expected float64"),
        (np.zeros(3, dtype=[("a", "f8"), ("b", "f8"), ("c", "f8")]), "only real numeric"),
        (np.full((3, 3), np.nan), "NaN or infinity"),
    ],
    ids=["shape", "int", "complex", "other-float", "structured", "nan"],
)
def test_bad_arrays_are_rejected(good_file, array, message):
    assert_rejected(rewrite(good_file, members={"means_.npy": npy_bytes(array)}), message)


def test_big_endian_arrays_are_accepted(good_file, fitted, blobs):
    swapped = fitted.means_.astype(">f8")
    assert_same_model(load_bytes(rewrite(good_file, members={"means_.npy": npy_bytes(swapped)})), fitted, blobs)


class _Payload:
    """Unpickling this sets a flag: the proof that a loader executed code from the file."""

    def __reduce__(self):
        return (exec, ("import builtins; builtins._fastem_model_file_payload_ran = True",))


def test_pickled_object_arrays_are_never_unpickled(good_file):
    hostile = npy_bytes(np.array([_Payload()] * 9, dtype=object).reshape(3, 3), allow_pickle=True)
    assert_rejected(rewrite(good_file, members={"means_.npy": hostile}), "only real numeric")
    assert not hasattr(builtins, "_fastem_model_file_payload_ran")


def test_hostile_headers_and_sizes_are_rejected_before_allocating(good_file):
    # A header claiming a huge array over a few bytes of data.
    header_only = npy_bytes(np.ones((3, 3)))
    huge_header = header_only.replace(b"(3, 3)", b"(10000000000, 3)")
    assert_rejected(rewrite(good_file, members={"means_.npy": huge_header}), "shape")
    # Metadata claiming a billion components: the arrays on disk cannot match.
    def billions(metadata):
        metadata["params"]["n_components"] = 10**9
        for name in ("weights_", "precisions_", "precisions_cholesky_", "covariances_", "means_"):
            metadata["arrays"][name] = [10**9] + metadata["arrays"][name][1:]
    assert_rejected(rewrite(good_file, metadata=billions), "shape|bytes")
    # A compressed member that would expand far beyond its expected size (a zip bomb).
    bomb = rewrite(good_file, members={"means_.npy": b"\0" * (50 << 20)}, compression=zipfile.ZIP_DEFLATED)
    assert len(bomb) < 1 << 20
    assert_rejected(bomb, "more than the .* expected")
    # A header that is not a Python literal, and an unknown .npy version.
    assert_rejected(rewrite(good_file, members={"means_.npy": header_only.replace(b"'descr'", b"'descr__'")}), "not a valid .npy")
    assert_rejected(rewrite(good_file, members={"means_.npy": b"\x93NUMPY\x09\x00" + header_only[8:]}), "not a valid .npy")
    # Thousands of members.
    crowd = {f"extra{i}.npy": b"" for i in range(100)}
    assert_rejected(rewrite(good_file, members=crowd), "too many members")


def test_truncated_array_data_is_rejected(good_file):
    data = npy_bytes(np.ones((3, 3)))
    assert_rejected(rewrite(good_file, members={"means_.npy": data[:-8]}), "truncated")
    assert_rejected(rewrite(good_file, members={"means_.npy": data + b"\0" * 8}), "bytes of data")


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("weights_", lambda m: m.weights_ * 2, "weights_ must"),
        ("weights_", lambda m: m.weights_ - m.weights_.max(), "weights_ must"),
        ("covariances_", lambda m: -m.covariances_, "not positive-definite"),
        ("covariances_", lambda m: m.covariances_ + np.triu(np.ones(3), 1), "not symmetric"),
        ("precisions_cholesky_", lambda m: np.swapaxes(m.precisions_cholesky_, 1, 2), "upper-triangular"),
        ("precisions_cholesky_", lambda m: -m.precisions_cholesky_, "diagonal"),
        ("precisions_", lambda m: m.precisions_ * 1.01, "does not match"),
        ("lower_bound_", lambda m: np.float64(np.nan), "lower_bound_"),
        ("lower_bounds_", lambda m: np.array(m.lower_bounds_) * np.inf, "lower_bounds_"),
    ],
)
def test_inconsistent_values_are_rejected(good_file, fitted, name, make, message):
    assert_rejected(rewrite(good_file, members={f"{name}.npy": npy_bytes(np.asarray(make(fitted)))}), message)


def test_bad_random_state_key_is_rejected(blobs):
    data = saved_bytes(GaussianMixture(2, random_state=np.random.RandomState(0)).fit(blobs))
    assert_rejected(rewrite(data, members={"random_state_key.npy": npy_bytes(np.ones(624))}), "dtype float64, expected uint32")
    assert_rejected(rewrite(data, metadata=lambda m: m["random_state"].update(position=10**6)), "invalid position")


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        GaussianMixture.load(tmp_path / "nothing.npz")
