"""Saving and loading fitted models in a portable file that loads without executing code.

The file is a zip archive (the layout of NumPy's ``.npz``, so ``np.load`` can
read it too) holding

* ``metadata.json``: UTF-8 JSON with the format name and version, the fastem
  version that wrote it, the constructor parameters that are plain values, the
  scalar fitted attributes and, for every array member, its expected shape;
* one ``<name>.npy`` member per array (fitted arrays, the optional initial
  parameters, a saved ``RandomState``), float32/float64 (uint32 for the random
  state's key), never object arrays.

Nothing is unpickled: array members are parsed with NumPy's header reader and
``np.frombuffer``, after their dtype and shape have been checked against the
metadata. Every value is validated (shapes, dtypes, finiteness, weights that
sum to one, positive-definite covariances, triangular Cholesky factors), so a
corrupted, truncated, foreign or hostile file gives a ``ModelFileError`` (a
``ValueError``) that names the problem instead of a broken model.
"""

from __future__ import annotations

import io
import json
import math
import os
import uuid
import zipfile

import numpy as np

from fastem.exceptions import ModelFileError

FORMAT_NAME = "fastem.GaussianMixture"
FORMAT_VERSION = 1

_METADATA_MEMBER = "metadata.json"
FITTED_ARRAYS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
INIT_ARRAYS = ("weights_init", "means_init", "precisions_init")
# Constructor parameters that are plain JSON values (the init arrays and the
# random state are stored separately).
PLAIN_PARAMS = (
    "n_components",
    "covariance_type",
    "tol",
    "reg_covar",
    "max_iter",
    "n_init",
    "init_params",
    "warm_start",
    "verbose",
    "verbose_interval",
    "n_jobs",
)

# Limits that keep a hostile file from exhausting memory before it is rejected.
_MAX_METADATA_BYTES = 1 << 20
_MAX_MEMBERS = 64
_MAX_NPY_HEADER_BYTES = 10_000
_MT19937_KEY_LENGTH = 624


# ---------------------------------------------------------------------------
# Writing


def _plain(value, name: str):
    """``value`` as a JSON scalar (numpy scalars unwrapped), or raise naming the parameter."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"Cannot save parameter {name}={value!r}: only finite numbers are portable.")
        return value
    raise ValueError(f"Cannot save parameter {name}={value!r} of type {type(value).__name__}: not a plain value.")


def _random_state_entry(random_state, arrays: dict) -> dict:
    """JSON description of ``random_state``; a RandomState's key goes into ``arrays``."""
    if isinstance(random_state, np.random.RandomState):
        kind, key, position, has_gauss, cached_gaussian = random_state.get_state(legacy=True)
        if kind != "MT19937":  # pragma: no cover - legacy RandomState is always MT19937
            raise ValueError(f"Cannot save a RandomState with bit generator {kind!r}.")
        arrays["random_state_key"] = np.asarray(key, dtype="<u4")
        return {
            "kind": "RandomState",
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        }
    if random_state is None:
        return {"kind": "none"}
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, (bool, np.bool_)):
        return {"kind": "int", "value": int(random_state)}
    raise ValueError(
        f"Cannot save random_state={random_state!r}: only None, an int or a numpy RandomState can be saved."
    )


def save_model(model, file) -> None:
    """Write the fitted ``model`` to ``file`` (a path or a writable binary file object).

    A path is written atomically (a temporary file in the same folder, then a
    rename), so an interrupted save never leaves a truncated model behind.
    """
    model._check_is_fitted()
    # Refuse to write what load_model would refuse to read (parameters changed
    # with set_params after fitting, for instance).
    model._check_parameters()
    init_arrays = model._checked_init_arrays(model.n_features_in_, np.float64)
    dtype = model.means_.dtype
    arrays = {name: np.asarray(getattr(model, name)) for name in FITTED_ARRAYS}
    arrays["lower_bound_"] = np.asarray(model.lower_bound_, dtype=np.float64)
    arrays["lower_bounds_"] = np.asarray(model.lower_bounds_, dtype=np.float64).reshape(-1)
    params = {name: _plain(getattr(model, name), name) for name in PLAIN_PARAMS}
    for name, value in zip(INIT_ARRAYS, init_arrays):
        if value is not None:
            arrays[name] = value
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastem_version": _fastem_version(),
        "dtype": np.dtype(dtype).name,
        "params": params,
        "random_state": _random_state_entry(model.random_state, arrays),
        "attributes": {
            "converged_": bool(model.converged_),
            "n_iter_": int(model.n_iter_),
            "n_features_in_": int(model.n_features_in_),
        },
        "arrays": {name: list(array.shape) for name, array in arrays.items()},
    }
    text = json.dumps(metadata, allow_nan=False, indent=1, sort_keys=True)

    def write(target) -> None:
        # ZIP_STORED, like np.savez: model files are small, and uncompressed
        # members are what np.load reads fastest.
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(_METADATA_MEMBER, text.encode("utf-8"))
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w") as member:
                    # Native little-endian, C order; allow_pickle=False refuses object arrays.
                    np.lib.format.write_array(member, np.array(array, order="C"), allow_pickle=False)

    if hasattr(file, "write"):
        write(file)
        return
    path = os.fspath(file)
    # A unique name beside the target (same file system, so the rename is
    # atomic), created with the usual permissions (mkstemp would make it 0600).
    temporary = f"{path}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
    try:
        with open(temporary, "xb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _fastem_version() -> str:
    import fastem

    return fastem.__version__


# ---------------------------------------------------------------------------
# Reading


def _reject_constant(token: str):
    raise ModelFileError(f"metadata.json contains {token}, which is not portable JSON.")


def _read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The bytes of member ``name``, refusing members that would expand beyond ``limit`` bytes."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ModelFileError(f"The model file has no {name!r} member.") from None
    if info.file_size > limit:
        raise ModelFileError(f"Member {name!r} is {info.file_size} bytes, more than the {limit} expected.")
    try:
        with archive.open(info) as member:
            data = member.read(limit + 1)
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib raise many types on corrupt input
        # (BadZipFile for a bad CRC, NotImplementedError for an unknown method,
        # RuntimeError for an encrypted member, zlib.error, EOFError, ...)
        raise ModelFileError(f"Member {name!r} of the model file is corrupted: {type(exc).__name__}: {exc}") from None
    if len(data) > limit:
        raise ModelFileError(f"Member {name!r} expands beyond the {limit} bytes expected.")
    return data


def _parse_npy(data: bytes, name: str, shape: tuple, allowed_dtypes: tuple) -> np.ndarray:
    """Parse a ``.npy`` member without unpickling: check magic, header, dtype, shape and length."""
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_NPY_HEADER_BYTES)
        elif version == (2, 0):
            header = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_NPY_HEADER_BYTES)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, SyntaxError, TypeError, EOFError) as exc:
        raise ModelFileError(f"Array {name!r} is not a valid .npy array: {exc}") from None
    found_shape, fortran_order, dtype = header
    if dtype.hasobject or dtype.kind not in "fu" or dtype.fields is not None or dtype.subdtype is not None:
        raise ModelFileError(f"Array {name!r} has dtype {dtype}; only real numeric arrays are accepted.")
    if not any(dtype == np.dtype(allowed).newbyteorder(order) for allowed in allowed_dtypes for order in "<>"):
        names = " or ".join(np.dtype(allowed).name for allowed in allowed_dtypes)
        raise ModelFileError(f"Array {name!r} has dtype {dtype.name}, expected {names}.")
    if tuple(found_shape) != tuple(shape):
        raise ModelFileError(f"Array {name!r} has shape {tuple(found_shape)}, expected {tuple(shape)}.")
    payload = data[stream.tell():]
    expected = math.prod(shape) * dtype.itemsize
    if len(payload) != expected:
        raise ModelFileError(f"Array {name!r} holds {len(payload)} bytes of data, expected {expected} (truncated?).")
    array = np.frombuffer(payload, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    # A native, C-contiguous, writeable copy: never a view of the file's buffer.
    return np.array(array, dtype=dtype.newbyteorder("="), order="C", copy=True)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ModelFileError(message)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_metadata(archive: zipfile.ZipFile) -> dict:
    data = _read_member(archive, _METADATA_MEMBER, _MAX_METADATA_BYTES)
    try:
        metadata = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"metadata.json is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"metadata.json is not valid JSON: {exc}") from None
    except RecursionError:
        raise ModelFileError("metadata.json is nested too deeply to be a fastem model file.") from None
    _expect(isinstance(metadata, dict), "metadata.json must hold a JSON object.")
    _expect(
        metadata.get("format") == FORMAT_NAME,
        f"Not a fastem GaussianMixture file: its format is {metadata.get('format')!r}, expected {FORMAT_NAME!r}.",
    )
    version = metadata.get("format_version")
    _expect(_is_int(version), f"The model file's format_version must be an integer, got {version!r}.")
    _expect(
        version == FORMAT_VERSION,
        f"Unsupported model file format version {version}: this fastem reads version {FORMAT_VERSION}"
        + (" (the file was written by a newer fastem; upgrade fastem to load it)." if version > FORMAT_VERSION else "."),
    )
    for key, kind in (("params", dict), ("attributes", dict), ("random_state", dict), ("arrays", dict), ("dtype", str)):
        _expect(isinstance(metadata.get(key), kind), f"metadata.json: {key!r} is missing or not a JSON {kind.__name__}.")
    _expect(metadata["dtype"] in ("float32", "float64"), f"metadata.json: dtype must be float32 or float64, got {metadata['dtype']!r}.")
    return metadata


def _build_estimator(metadata: dict, estimator_class):
    params = metadata["params"]
    missing = sorted(set(PLAIN_PARAMS) - set(params))
    unknown = sorted(set(params) - set(PLAIN_PARAMS))
    _expect(not missing, f"metadata.json: parameters {missing} are missing.")
    _expect(not unknown, f"metadata.json: unknown parameters {unknown}.")
    model = estimator_class(**params)
    try:
        model._check_parameters()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"The model file holds an invalid parameter: {exc}") from None
    return model


def _restore_random_state(entry: dict, key):
    kind = entry.get("kind")
    if kind == "none":
        return None
    if kind == "int":
        value = entry.get("value")
        _expect(_is_int(value) and 0 <= value < 2**32, f"random_state: invalid seed {value!r}.")
        return value
    if kind == "RandomState":
        position, has_gauss, cached = entry.get("position"), entry.get("has_gauss"), entry.get("cached_gaussian")
        _expect(key is not None, "random_state: the RandomState key array is missing.")
        _expect(_is_int(position) and 0 <= position <= _MT19937_KEY_LENGTH, f"random_state: invalid position {position!r}.")
        _expect(has_gauss in (0, 1), f"random_state: invalid has_gauss {has_gauss!r}.")
        _expect(isinstance(cached, (int, float)) and not isinstance(cached, bool), "random_state: invalid cached_gaussian.")
        state = np.random.RandomState()
        state.set_state(("MT19937", key, position, has_gauss, float(cached)))
        return state
    raise ModelFileError(f"random_state: unknown kind {kind!r}.")


def _check_fitted_values(arrays: dict, covariance_type: str, dtype) -> None:
    """Reject fitted parameters that no fit could produce (and that would give wrong answers)."""
    from fastem.gaussian_mixture import precisions_from_cholesky

    for name in FITTED_ARRAYS:
        _expect(np.isfinite(arrays[name]).all(), f"Array {name!r} contains NaN or infinity.")
    weights = arrays["weights_"].astype(np.float64)
    sum_tolerance = 1e-4 if dtype == np.float32 else 1e-9
    _expect((weights >= 0).all() and (weights <= 1).all(), "weights_ must lie in [0, 1].")
    _expect(abs(weights.sum() - 1.0) <= sum_tolerance, f"weights_ must sum to 1, got {weights.sum()!r}.")
    covariances = arrays["covariances_"].astype(np.float64)
    prec_chol = arrays["precisions_cholesky_"].astype(np.float64)
    if covariance_type in ("diag", "spherical"):
        _expect((covariances > 0).all(), "covariances_ must be positive.")
        _expect((prec_chol > 0).all(), "precisions_cholesky_ must be positive.")
    else:
        matrices = covariances if covariance_type == "full" else covariances[None]
        factors = prec_chol if covariance_type == "full" else prec_chol[None]
        for j, (matrix, factor) in enumerate(zip(matrices, factors)):
            which = f" (component {j})" if covariance_type == "full" else ""
            _expect(np.allclose(matrix, matrix.T, rtol=1e-5, atol=1e-8 * np.abs(matrix).max()), f"covariances_{which} is not symmetric.")
            try:
                np.linalg.cholesky(matrix)
            except np.linalg.LinAlgError:
                raise ModelFileError(f"covariances_{which} is not positive-definite.") from None
            _expect(not np.tril(factor, -1).any(), f"precisions_cholesky_{which} is not upper-triangular.")
            _expect((np.diag(factor) > 0).all(), f"precisions_cholesky_{which} has a non-positive diagonal.")
    # precisions_ is derived from precisions_cholesky_; an inconsistent pair
    # means the file was altered.
    expected = precisions_from_cholesky(prec_chol, covariance_type)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(expected).max()
    _expect(
        np.allclose(arrays["precisions_"], expected, rtol=rtol, atol=rtol * scale),
        "precisions_ does not match precisions_cholesky_.",
    )


def load_model(file, estimator_class=None):
    """Read a model written by :func:`save_model` from a path or a readable binary file object.

    Returns a fitted instance of ``estimator_class`` (default ``GaussianMixture``).
    """
    from fastem.gaussian_mixture import GaussianMixture

    # A path is opened here, so that a missing file or a permission problem
    # stays the usual OSError; whatever zipfile raises after that is about the
    # content.
    stream = file if hasattr(file, "read") else open(os.fspath(file), "rb")
    try:
        try:
            archive = zipfile.ZipFile(stream, "r")
        except Exception as exc:  # noqa: BLE001 - BadZipFile, NotImplementedError, EOFError, OSError, ...
            raise ModelFileError(
                f"Not a fastem model file (not a readable zip archive; truncated?): {type(exc).__name__}: {exc}"
            ) from None
        with archive:
            _expect(len(archive.infolist()) <= _MAX_MEMBERS, "The model file has too many members to be a fastem model.")
            metadata = _read_metadata(archive)
            model = _build_estimator(metadata, estimator_class or GaussianMixture)
            attributes = _read_attributes(metadata)
            arrays = _read_arrays(archive, metadata, model, attributes["n_features_in_"], attributes["n_iter_"])
    finally:
        if stream is not file:
            stream.close()
    _check_fitted_values(arrays, model.covariance_type, np.dtype(metadata["dtype"]))
    _restore_init_arrays(model, arrays, attributes["n_features_in_"])
    model.random_state = _restore_random_state(metadata["random_state"], arrays.get("random_state_key"))
    for name in FITTED_ARRAYS:
        setattr(model, name, arrays[name])
    model.lower_bound_ = float(arrays["lower_bound_"])
    model.lower_bounds_ = [float(value) for value in arrays["lower_bounds_"]]
    for name, value in attributes.items():
        setattr(model, name, value)
    return model


def _read_attributes(metadata: dict) -> dict:
    """converged_, n_iter_, n_features_in_ from the metadata, type-checked."""
    attributes = metadata["attributes"]
    for key in ("converged_", "n_iter_", "n_features_in_"):
        _expect(key in attributes, f"metadata.json: attribute {key!r} is missing.")
    converged, n_iter, n_features = attributes["converged_"], attributes["n_iter_"], attributes["n_features_in_"]
    _expect(isinstance(converged, bool), f"converged_ must be true or false, got {converged!r}.")
    _expect(_is_int(n_iter) and n_iter >= 0, f"n_iter_ must be a non-negative integer, got {n_iter!r}.")
    _expect(_is_int(n_features) and n_features >= 1, f"n_features_in_ must be a positive integer, got {n_features!r}.")
    return {"converged_": converged, "n_iter_": n_iter, "n_features_in_": n_features}


def _read_arrays(archive: zipfile.ZipFile, metadata: dict, model, n_features: int, n_iter: int) -> dict:
    """Every array member, its shape and dtype checked against what ``model`` needs."""
    from fastem.gaussian_mixture import precisions_shape

    dtype = np.dtype(metadata["dtype"])
    n_components = model.n_components
    covariance_shape = precisions_shape(model.covariance_type, n_components, n_features)
    expected = {
        "weights_": ((n_components,), (dtype,)),
        "means_": ((n_components, n_features), (dtype,)),
        "covariances_": (covariance_shape, (dtype,)),
        "precisions_": (covariance_shape, (dtype,)),
        "precisions_cholesky_": (covariance_shape, (dtype,)),
        "lower_bound_": ((), (np.float64,)),
        "lower_bounds_": (None, (np.float64,)),  # one entry per iteration: length from the metadata
        "weights_init": ((n_components,), (np.float64,)),
        "means_init": ((n_components, n_features), (np.float64,)),
        "precisions_init": (covariance_shape, (np.float64,)),
        "random_state_key": ((_MT19937_KEY_LENGTH,), (np.uint32,)),
    }
    required = set(FITTED_ARRAYS) | {"lower_bound_", "lower_bounds_"}
    declared = metadata["arrays"]
    unknown = sorted(set(declared) - set(expected))
    _expect(not unknown, f"metadata.json: unknown arrays {unknown}.")
    arrays = {}
    for name, (shape, dtypes) in expected.items():
        if name not in declared:
            _expect(name not in required, f"metadata.json: array {name!r} is missing.")
            continue
        if shape is None:
            length = declared[name]
            _expect(
                isinstance(length, list) and len(length) == 1 and _is_int(length[0]) and 0 <= length[0] <= n_iter,
                f"metadata.json: invalid shape {length!r} for {name!r} (at most n_iter_ = {n_iter} entries).",
            )
            shape = (length[0],)
        # The largest legitimate member: 8 bytes per entry plus the .npy header.
        limit = math.prod(shape) * 8 + _MAX_NPY_HEADER_BYTES + 16  # Python ints: no overflow
        arrays[name] = _parse_npy(_read_member(archive, f"{name}.npy", limit), name, shape, dtypes)
    lower_bound = float(arrays["lower_bound_"])
    _expect(not np.isnan(lower_bound) and lower_bound != np.inf, f"lower_bound_ must be a number or -inf, got {lower_bound!r}.")
    _expect(np.isfinite(arrays["lower_bounds_"]).all(), "lower_bounds_ contains NaN or infinity.")
    return arrays


def _restore_init_arrays(model, arrays: dict, n_features: int) -> None:
    from fastem.gaussian_mixture import check_means_init, check_precisions_init, check_weights_init

    n_components, covariance_type = model.n_components, model.covariance_type
    try:
        if "weights_init" in arrays:
            model.weights_init = check_weights_init(arrays["weights_init"], n_components)
        if "means_init" in arrays:
            model.means_init = check_means_init(arrays["means_init"], n_components, n_features)
        if "precisions_init" in arrays:
            model.precisions_init = check_precisions_init(arrays["precisions_init"], covariance_type, n_components, n_features)
    except ValueError as exc:
        raise ModelFileError(f"The model file holds an invalid initial parameter: {exc}") from None
