"""The portable model-file format: a zip of ``.npy`` arrays and JSON metadata, read without executing code.

The file is a zip archive (the layout of NumPy's ``.npz``, so ``np.load`` can
read it too) holding

* ``metadata.json``: UTF-8 JSON with the format name and version, the fastem
  version that wrote it, the constructor parameters that are plain values, the
  scalar fitted attributes and, for every array member, its expected shape;
* one ``<name>.npy`` member per array (fitted arrays, the optional initial
  parameters, a saved ``RandomState``), float32/float64 (uint32 for the random
  state's key), never object arrays.

Each model family declares its format name and version, its arrays (name,
shape, dtype) and its checks of the values (``fastem.mixture.model_file``);
this module knows no model. Nothing is unpickled: array members are parsed with NumPy's header reader and
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

from fastem._core.validation import plain
from fastem.exceptions import ModelFileError

METADATA_MEMBER = "metadata.json"

# Limits that keep a hostile file from exhausting memory before it is rejected.
_MAX_METADATA_BYTES = 1 << 20
_MAX_MEMBERS = 64
_MAX_NPY_HEADER_BYTES = 10_000
_MT19937_KEY_LENGTH = 624


# ---------------------------------------------------------------------------
# Writing


def plain_value(value, name: str):
    """``value`` as a JSON scalar (numpy scalars unwrapped), or raise naming the parameter."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ValueError(f"Cannot save parameter {name}={plain(value)!r}: only finite numbers are portable.")
        return value
    raise ValueError(f"Cannot save parameter {name}={plain(value)!r} of type {type(value).__name__}: not a plain value.")


def random_state_entry(random_state, arrays: dict) -> dict:
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


def write_archive(file, metadata: dict, arrays: dict) -> None:
    """Write ``metadata`` (JSON) and ``arrays`` (``.npy`` members) to a path or a writable binary file.

    A path is written atomically (a temporary file in the same folder, then a
    rename), so an interrupted save never leaves a truncated model behind.
    """
    metadata = dict(metadata, arrays={name: list(np.shape(array)) for name, array in arrays.items()})
    text = json.dumps(metadata, allow_nan=False, indent=1, sort_keys=True)

    def write(target) -> None:
        # ZIP_STORED, like np.savez: model files are small, and uncompressed
        # members are what np.load reads fastest.
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(METADATA_MEMBER, text.encode("utf-8"))
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


def fastem_version() -> str:
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


def feature_names_entry(model) -> dict:
    """The metadata entry of ``model.feature_names_in_`` (column names seen by fit), empty when it has none."""
    names = getattr(model, "feature_names_in_", None)
    return {} if names is None else {"feature_names_in_": [str(name) for name in names]}


def read_feature_names(attributes: dict, n_features: int) -> np.ndarray | None:
    """``feature_names_in_`` from a model file's attributes, checked; None when the file has none."""
    names = attributes.get("feature_names_in_")
    if names is None:
        return None
    expect(isinstance(names, list) and all(isinstance(name, str) for name in names),
           "feature_names_in_ must be a list of strings.")
    expect(len(names) == n_features, f"feature_names_in_ has {len(names)} names for {n_features} features.")
    return np.asarray(names, dtype=object)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ModelFileError(message)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_metadata(archive: zipfile.ZipFile, format_name: str, format_version: int) -> dict:
    data = _read_member(archive, METADATA_MEMBER, _MAX_METADATA_BYTES)
    try:
        metadata = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"metadata.json is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"metadata.json is not valid JSON: {exc}") from None
    except RecursionError:
        raise ModelFileError("metadata.json is nested too deeply to be a fastem model file.") from None
    expect(isinstance(metadata, dict), "metadata.json must hold a JSON object.")
    expect(
        metadata.get("format") == format_name,
        f"Not a {format_name.replace('.', ' ')} file: its format is {metadata.get('format')!r}, expected {format_name!r}.",
    )
    version = metadata.get("format_version")
    expect(is_int(version), f"The model file's format_version must be an integer, got {version!r}.")
    expect(
        version == format_version,
        f"Unsupported model file format version {version}: this fastem reads version {format_version}"
        + (" (the file was written by a newer fastem; upgrade fastem to load it)." if version > format_version else "."),
    )
    for key, kind in (("params", dict), ("attributes", dict), ("random_state", dict), ("arrays", dict), ("dtype", str)):
        expect(isinstance(metadata.get(key), kind), f"metadata.json: {key!r} is missing or not a JSON {kind.__name__}.")
    expect(metadata["dtype"] in ("float32", "float64"), f"metadata.json: dtype must be float32 or float64, got {metadata['dtype']!r}.")
    return metadata


def read_archive(file, format_name: str, format_version: int, read_content):
    """Open a model file, check its metadata header, and return ``read_content(archive, metadata)``.

    ``file`` is a path or a readable binary file object. A path is opened
    here, so a missing file or a permission problem stays the usual OSError;
    whatever zipfile raises after that is about the content and becomes a
    ``ModelFileError``.
    """
    stream = file if hasattr(file, "read") else open(os.fspath(file), "rb")
    try:
        try:
            archive = zipfile.ZipFile(stream, "r")
        except Exception as exc:  # noqa: BLE001 - BadZipFile, NotImplementedError, EOFError, OSError, ...
            raise ModelFileError(
                f"Not a fastem model file (not a readable zip archive; truncated?): {type(exc).__name__}: {exc}"
            ) from None
        with archive:
            expect(len(archive.infolist()) <= _MAX_MEMBERS, "The model file has too many members to be a fastem model.")
            metadata = _read_metadata(archive, format_name, format_version)
            return read_content(archive, metadata)
    finally:
        if stream is not file:
            stream.close()


def read_arrays(archive: zipfile.ZipFile, declared: dict, expected: dict, required: set) -> dict:
    """Every declared array member, its shape and dtype checked against ``expected``.

    ``expected`` maps a name to ``(shape, dtypes)``; a shape given as an int
    ``n`` instead of a tuple means a 1-d array whose length the metadata
    declares, at most ``n``. Names in ``required`` must be present; names not
    in ``expected`` are refused.
    """
    unknown = sorted(set(declared) - set(expected))
    expect(not unknown, f"metadata.json: unknown arrays {unknown}.")
    arrays = {}
    for name, (shape, dtypes) in expected.items():
        if name not in declared:
            expect(name not in required, f"metadata.json: array {name!r} is missing.")
            continue
        if isinstance(shape, int):
            length = declared[name]
            expect(
                isinstance(length, list) and len(length) == 1 and is_int(length[0]) and 0 <= length[0] <= shape,
                f"metadata.json: invalid shape {length!r} for {name!r} (at most {shape} entries).",
            )
            shape = (length[0],)
        # The largest legitimate member: 8 bytes per entry plus the .npy header.
        limit = math.prod(shape) * 8 + _MAX_NPY_HEADER_BYTES + 16  # Python ints: no overflow
        arrays[name] = _parse_npy(_read_member(archive, f"{name}.npy", limit), name, shape, dtypes)
    return arrays


def build_estimator(metadata: dict, estimator_class, plain_params: tuple):
    """An ``estimator_class`` with the file's constructor parameters, checked by the estimator itself."""
    params = metadata["params"]
    missing = sorted(set(plain_params) - set(params))
    unknown = sorted(set(params) - set(plain_params))
    expect(not missing, f"metadata.json: parameters {missing} are missing.")
    expect(not unknown, f"metadata.json: unknown parameters {unknown}.")
    model = estimator_class(**params)
    try:
        model._check_parameters()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"The model file holds an invalid parameter: {exc}") from None
    return model


RANDOM_STATE_KEY = ("random_state_key", ((_MT19937_KEY_LENGTH,), (np.uint32,)))


def restore_random_state(entry: dict, key):
    kind = entry.get("kind")
    if kind == "none":
        return None
    if kind == "int":
        value = entry.get("value")
        expect(is_int(value) and 0 <= value < 2**32, f"random_state: invalid seed {value!r}.")
        return value
    if kind == "RandomState":
        position, has_gauss, cached = entry.get("position"), entry.get("has_gauss"), entry.get("cached_gaussian")
        expect(key is not None, "random_state: the RandomState key array is missing.")
        expect(is_int(position) and 0 <= position <= _MT19937_KEY_LENGTH, f"random_state: invalid position {position!r}.")
        expect(has_gauss in (0, 1), f"random_state: invalid has_gauss {has_gauss!r}.")
        expect(isinstance(cached, (int, float)) and not isinstance(cached, bool), "random_state: invalid cached_gaussian.")
        state = np.random.RandomState()
        state.set_state(("MT19937", key, position, has_gauss, float(cached)))
        return state
    raise ModelFileError(f"random_state: unknown kind {kind!r}.")
