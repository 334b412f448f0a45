"""Input and parameter checks. Everything here runs in Python before a kernel is called.

Policy (the same for every public method):

* float64 and float32 input keep their dtype (in either byte order); every
  other real numeric dtype (integers, booleans, float16) and object arrays
  holding real numbers become float64.
* Complex, string and ragged input is rejected with a ``ValueError`` that
  names the argument; object arrays holding something that is not a real
  number raise the ``TypeError``/``ValueError`` numpy raises, with the name.
* Arrays handed to kernels are C-contiguous and native-endian. A copy is made
  only when the input is not already so; inputs are never written to.
"""

from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse

def _from_nullable_pandas(value) -> np.ndarray | None:
    """A pandas DataFrame or Series with nullable numeric columns (Int64, Float64, boolean) as floats, or None.

    ``pd.NA`` becomes NaN, a missing value where the estimator takes them.
    float32 when every column is 32-bit float, float64 otherwise. None for
    anything else (plain NumPy columns take the usual path, and text or
    categorical extension columns are rejected there).
    """
    if isinstance(value, np.ndarray) or not hasattr(value, "to_numpy"):
        return None
    dtypes = getattr(value, "dtypes", None)
    if dtypes is None:
        return None
    dtypes = list(dtypes) if hasattr(value, "columns") else [dtypes]
    if all(isinstance(dtype, np.dtype) for dtype in dtypes):
        return None
    if any(getattr(dtype, "kind", "O") not in "biuf" for dtype in dtypes):
        return None
    single = all(dtype.kind == "f" and getattr(dtype, "itemsize", 8) == 4 for dtype in dtypes)
    return value.to_numpy(dtype=np.float32 if single else np.float64, na_value=np.nan)


def _as_float_array(value, name: str) -> np.ndarray:
    """Convert array-like ``value`` to a native-endian float32/float64 ndarray, or raise naming ``name``."""
    if scipy.sparse.issparse(value):
        raise TypeError(
            f"Sparse data was passed for {name}, but fastem needs dense data. Convert it with {name}.toarray()."
        )
    nullable = _from_nullable_pandas(value)
    if nullable is not None:
        return nullable
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from None
    kind = array.dtype.kind
    if kind == "c":
        raise ValueError(f"Complex data not supported in {name}; got dtype {array.dtype}.")
    if kind in "US":
        # As scikit-learn: text is not silently parsed as numbers, even when it could be.
        raise ValueError(
            f"{name} must contain real numbers, got an array of strings (dtype {array.dtype}). "
            "Convert it to numbers explicitly, e.g. with .astype(float)."
        )
    if kind in "OV":
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError) as exc:
            # Keep the exception type numpy chose (TypeError for e.g. dicts,
            # ValueError for ragged rows or non-numeric strings) and its text,
            # which names the culprit.
            raise type(exc)(
                f"{name} must contain real numbers; an element of dtype {array.dtype} could not be converted: {exc}"
            ) from None
    elif kind not in "biuf":
        raise ValueError(f"{name} must be numeric; got dtype {array.dtype}.")
    if kind == "f" and array.dtype.itemsize in (4, 8):
        # float32 and float64 keep their precision whatever their byte order;
        # non-native byte order is swapped once here (kernels need native).
        if not array.dtype.isnative:
            array = array.astype(array.dtype.newbyteorder("="))
    else:
        array = array.astype(np.float64)
    return array


def plain(value):
    """``value`` for a message: NumPy scalars as Python numbers (-1.0, not np.float64(-1.0)), the rest unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def check_finite(array: np.ndarray, name: str, *, allow_nan: bool = False, estimator_name: str | None = None) -> bool:
    """Raise a ValueError if ``array`` holds infinity, or NaN unless ``allow_nan``; return whether it holds NaN.

    ``estimator_name``, if given, is named in the NaN message as not supporting missing values.
    """
    # np.isfinite(...).all() allocates a boolean array; summing first costs one
    # pass and no memory, and only on failure do we find which value is bad.
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.sum(array, dtype=np.float64) if array.size else 0.0
    if np.isfinite(total):
        return False
    has_nan = bool(np.isnan(array).any())
    if has_nan and not allow_nan:
        who = f" {estimator_name} does not support missing values." if estimator_name else ""
        raise ValueError(f"Input {name} contains NaN.{who}")
    if np.isinf(array).any():
        raise ValueError(f"Input {name} contains infinity.")
    # Otherwise the sum overflowed although every value is finite.
    return has_nan


def check_data(
    X,
    *,
    name: str = "X",
    min_samples: int = 1,
    n_features: int | None = None,
    estimator_name: str = "GaussianMixture",
) -> np.ndarray:
    """Validate a data matrix and return it as a C-contiguous float32/float64 array.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    name : str
        Name used in error messages.
    min_samples : int
        Fewest rows accepted.
    n_features : int or None
        If given, the number of columns ``X`` must have (the fitted model's).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float32 or float64
        ``X`` itself when it already qualifies, otherwise a converted copy.
    """
    return _checked_data(X, name, min_samples, n_features, estimator_name, allow_nan=False)[0]


def check_data_with_missing(
    X,
    *,
    name: str = "X",
    min_samples: int = 1,
    n_features: int | None = None,
    estimator_name: str = "GaussianMixture",
) -> tuple[np.ndarray, bool]:
    """:func:`check_data` for estimators that take NaN as missing values: returns (X, whether X holds NaN).

    Infinity is still rejected. Finding out costs nothing extra when X holds
    no NaN: the one sum that checks finiteness says so.
    """
    return _checked_data(X, name, min_samples, n_features, estimator_name, allow_nan=True)


def _checked_data(X, name, min_samples, n_features, estimator_name, *, allow_nan) -> tuple[np.ndarray, bool]:
    array = _as_float_array(X, name)
    if array.ndim != 2:
        kind = {0: "scalar", 1: "1D"}.get(array.ndim, f"{array.ndim}D")
        raise ValueError(
            f"Expected a 2D array for {name}, got a {kind} array instead (shape={array.shape}). "
            "Reshape your data with array.reshape(-1, 1) if it has a single feature "
            "or array.reshape(1, -1) if it contains a single sample."
        )
    n_samples, n_columns = array.shape
    if n_samples < min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={array.shape}) while a minimum of "
            f"{min_samples} is required for {name}."
        )
    if n_columns < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required."
        )
    if n_features is not None and n_columns != n_features:
        raise ValueError(
            f"X has {n_columns} features, but {estimator_name} is expecting {n_features} features as input."
        )
    has_nan = check_finite(array, name, allow_nan=allow_nan, estimator_name=estimator_name)
    return np.ascontiguousarray(array), has_nan


def check_sample_weight(sample_weight, n_samples: int, *, allow_zero_total: bool = False) -> np.ndarray | None:
    """Validate per-row weights; returns a float64 array or None for unit weights.

    ``allow_zero_total`` accepts weights that are all 0 (a part of a data set
    whose statistics are computed, not a data set to fit).
    """
    if sample_weight is None:
        return None
    weights = _as_float_array(sample_weight, "sample_weight")
    if weights.ndim == 0:
        weights = np.full(n_samples, float(weights))
    if weights.ndim != 1 or weights.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) to match X, got shape {weights.shape}."
        )
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    if not np.isfinite(weights).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (weights < 0).any():
        raise ValueError(f"sample_weight must be non-negative; found minimum {plain(weights.min())!r}.")
    with np.errstate(over="ignore"):  # an overflowing sum is reported just below
        total = weights.sum()
    if not total > 0 and not allow_zero_total:
        raise ValueError("sample_weight sums to zero: at least one row needs a positive weight.")
    if not np.isfinite(total):
        raise ValueError(
            "sample_weight sums to infinity (float64 overflow). Only the ratios of the weights matter: "
            "divide them all by a constant."
        )
    return weights


def check_int(value, name: str, minimum: int) -> int:
    """Return ``value`` as int, or raise naming the parameter."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {plain(value)!r} of type {type(value).__name__}.")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {plain(value)!r}.")
    return int(value)


def check_real(value, name: str, minimum: float) -> float:
    """Return ``value`` as float, or raise naming the parameter (``value >= minimum``, finite)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number >= {minimum}, got {plain(value)!r} of type {type(value).__name__}.")
    value = float(value)
    if not (np.isfinite(value) and value >= minimum):
        raise ValueError(f"{name} must be a finite number >= {minimum}, got {plain(value)!r}.")
    return value


def check_choice(value, name: str, choices) -> str:
    """Return ``value`` if it is one of ``choices``, or raise listing them."""
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(choice) for choice in sorted(choices))
        raise ValueError(f"{name} must be one of {options}; got {plain(value)!r}.")
    return value


def check_random_state(seed) -> np.random.RandomState:
    """Turn ``seed`` into a ``np.random.RandomState`` (the same rules as scikit-learn)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, (bool, np.bool_)):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a numpy RandomState; got {plain(seed)!r}.")


def check_init_array(value, name: str, shape: tuple, anchor_name: str | None = None) -> np.ndarray:
    """Validate a user-supplied initial parameter array: real, finite, of ``shape``.

    ``anchor_name`` is what scikit-learn calls the parameter in its shape
    message ('weights', 'full precision'...): the message keeps scikit-learn's
    sentence, so code matching it still works, and then names ``name``.
    Always returns a new float64 array, so fitted state never aliases user data.
    """
    array = _as_float_array(value, name)
    if array.shape != shape:
        suffix = "." if anchor_name is None else f" for {name}."
        raise ValueError(
            f"The parameter '{anchor_name or name}' should have the shape of {shape}, but got {array.shape}{suffix}"
        )
    check_finite(array, name)
    return np.array(array, dtype=np.float64, order="C", copy=True)
