"""The GaussianMixture model file: which arrays and values it holds, and their checks.

The container (zip of ``.npy`` members plus ``metadata.json``, read without
unpickling) is the generic format of ``fastem._core.model_files``; this module
declares what a Gaussian mixture stores in it and rejects values no fit could
produce. Format version 1 is the one fastem has written since model files
exist; files of that version load unchanged.
"""

from __future__ import annotations

import numpy as np

from fastem._core.model_files import (
    RANDOM_STATE_KEY,
    build_estimator,
    expect,
    fastem_version,
    feature_names_entry,
    is_int,
    plain_value,
    random_state_entry,
    read_archive,
    read_arrays,
    read_feature_names,
    restore_random_state,
    write_archive,
)
from fastem._core.validation import plain
from fastem.exceptions import ModelFileError
from fastem.mixture.parameters import (
    check_means_init,
    check_precisions_init,
    check_weights_init,
    precisions_from_cholesky,
    precisions_shape,
)

FORMAT_NAME = "fastem.GaussianMixture"
FORMAT_VERSION = 1

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


def save_model(model, file) -> None:
    """Write the fitted GaussianMixture ``model`` to ``file`` (a path or a writable binary file object)."""
    model._check_is_fitted()
    # Refuse to write what load_model would refuse to read (parameters changed
    # with set_params after fitting, for instance).
    model._check_parameters()
    init_arrays = model._checked_init_arrays(model.n_features_in_, np.float64)
    dtype = model.means_.dtype
    arrays = {name: np.asarray(getattr(model, name)) for name in FITTED_ARRAYS}
    arrays["lower_bound_"] = np.asarray(model.lower_bound_, dtype=np.float64)
    arrays["lower_bounds_"] = np.asarray(model.lower_bounds_, dtype=np.float64).reshape(-1)
    params = {name: plain_value(getattr(model, name), name) for name in PLAIN_PARAMS}
    for name, value in zip(INIT_ARRAYS, init_arrays):
        if value is not None:
            arrays[name] = value
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastem_version": fastem_version(),
        "dtype": np.dtype(dtype).name,
        "params": params,
        "random_state": random_state_entry(model.random_state, arrays),
        "attributes": {
            "converged_": bool(model.converged_),
            "n_iter_": int(model.n_iter_),
            "n_features_in_": int(model.n_features_in_),
            **feature_names_entry(model),
        },
    }
    write_archive(file, metadata, arrays)


def load_model(file, estimator_class):
    """Read a model written by :func:`save_model` from a path or a readable binary file object.

    Returns a fitted instance of ``estimator_class``.
    """

    def read_content(archive, metadata):
        model = build_estimator(metadata, estimator_class, PLAIN_PARAMS)
        attributes = _read_attributes(metadata)
        arrays = _read_arrays(archive, metadata, model, attributes["n_features_in_"], attributes["n_iter_"])
        return metadata, model, attributes, arrays

    metadata, model, attributes, arrays = read_archive(file, FORMAT_NAME, FORMAT_VERSION, read_content)
    _check_fitted_values(arrays, model._layout, np.dtype(metadata["dtype"]))
    _restore_init_arrays(model, arrays, attributes["n_features_in_"])
    model.random_state = restore_random_state(metadata["random_state"], arrays.get("random_state_key"))
    for name in FITTED_ARRAYS:
        setattr(model, name, arrays[name])
    model.lower_bound_ = float(arrays["lower_bound_"])
    model.lower_bounds_ = [float(value) for value in arrays["lower_bounds_"]]
    for name, value in attributes.items():
        if value is not None:
            setattr(model, name, value)
    model._fitted_for = (model.n_components, model.covariance_type)
    return model


def _check_fitted_values(arrays: dict, covariance_type: str, dtype) -> None:
    """Reject fitted parameters that no fit could produce (and that would give wrong answers)."""
    for name in FITTED_ARRAYS:
        expect(np.isfinite(arrays[name]).all(), f"Array {name!r} contains NaN or infinity.")
    weights = arrays["weights_"].astype(np.float64)
    sum_tolerance = 1e-4 if dtype == np.float32 else 1e-9
    expect((weights >= 0).all() and (weights <= 1).all(), "weights_ must lie in [0, 1].")
    expect(abs(weights.sum() - 1.0) <= sum_tolerance, f"weights_ must sum to 1, got {plain(weights.sum())!r}.")
    covariances = arrays["covariances_"].astype(np.float64)
    prec_chol = arrays["precisions_cholesky_"].astype(np.float64)
    if covariance_type in ("diag", "spherical"):
        expect((covariances > 0).all(), "covariances_ must be positive.")
        expect((prec_chol > 0).all(), "precisions_cholesky_ must be positive.")
    else:
        matrices = covariances if covariance_type == "full" else covariances[None]
        factors = prec_chol if covariance_type == "full" else prec_chol[None]
        for j, (matrix, factor) in enumerate(zip(matrices, factors)):
            which = f" (component {j})" if covariance_type == "full" else ""
            expect(np.allclose(matrix, matrix.T, rtol=1e-5, atol=1e-8 * np.abs(matrix).max()), f"covariances_{which} is not symmetric.")
            try:
                np.linalg.cholesky(matrix)
            except np.linalg.LinAlgError:
                raise ModelFileError(f"covariances_{which} is not positive-definite.") from None
            expect(not np.tril(factor, -1).any(), f"precisions_cholesky_{which} is not upper-triangular.")
            expect((np.diag(factor) > 0).all(), f"precisions_cholesky_{which} has a non-positive diagonal.")
    # precisions_ is derived from precisions_cholesky_; an inconsistent pair
    # means the file was altered.
    expected = precisions_from_cholesky(prec_chol, covariance_type)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    scale = np.abs(expected).max()
    expect(
        np.allclose(arrays["precisions_"], expected, rtol=rtol, atol=rtol * scale),
        "precisions_ does not match precisions_cholesky_.",
    )


def _read_attributes(metadata: dict) -> dict:
    """converged_, n_iter_, n_features_in_ and feature_names_in_ (None if absent) from the metadata, type-checked."""
    attributes = metadata["attributes"]
    for key in ("converged_", "n_iter_", "n_features_in_"):
        expect(key in attributes, f"metadata.json: attribute {key!r} is missing.")
    converged, n_iter, n_features = attributes["converged_"], attributes["n_iter_"], attributes["n_features_in_"]
    expect(isinstance(converged, bool), f"converged_ must be true or false, got {converged!r}.")
    expect(is_int(n_iter) and n_iter >= 0, f"n_iter_ must be a non-negative integer, got {n_iter!r}.")
    expect(is_int(n_features) and n_features >= 1, f"n_features_in_ must be a positive integer, got {n_features!r}.")
    return {"converged_": converged, "n_iter_": n_iter, "n_features_in_": n_features,
            "feature_names_in_": read_feature_names(attributes, n_features)}


def _read_arrays(archive, metadata: dict, model, n_features: int, n_iter: int) -> dict:
    """Every array member, its shape and dtype checked against what ``model`` needs."""
    dtype = np.dtype(metadata["dtype"])
    n_components = model.n_components
    covariance_shape = precisions_shape(model._layout, n_components, n_features)
    key_name, key_spec = RANDOM_STATE_KEY
    expected = {
        "weights_": ((n_components,), (dtype,)),
        "means_": ((n_components, n_features), (dtype,)),
        "covariances_": (covariance_shape, (dtype,)),
        "precisions_": (covariance_shape, (dtype,)),
        "precisions_cholesky_": (covariance_shape, (dtype,)),
        "lower_bound_": ((), (np.float64,)),
        "lower_bounds_": (n_iter, (np.float64,)),  # one entry per iteration, at most n_iter_
        "weights_init": ((n_components,), (np.float64,)),
        "means_init": ((n_components, n_features), (np.float64,)),
        "precisions_init": (covariance_shape, (np.float64,)),
        key_name: key_spec,
    }
    required = set(FITTED_ARRAYS) | {"lower_bound_", "lower_bounds_"}
    arrays = read_arrays(archive, metadata["arrays"], expected, required)
    lower_bound = float(arrays["lower_bound_"])
    expect(not np.isnan(lower_bound) and lower_bound != np.inf, f"lower_bound_ must be a number or -inf, got {plain(lower_bound)!r}.")
    expect(np.isfinite(arrays["lower_bounds_"]).all(), "lower_bounds_ contains NaN or infinity.")
    return arrays


def _restore_init_arrays(model, arrays: dict, n_features: int) -> None:
    n_components, covariance_type = model.n_components, model._layout
    try:
        if "weights_init" in arrays:
            model.weights_init = check_weights_init(arrays["weights_init"], n_components)
        if "means_init" in arrays:
            model.means_init = check_means_init(arrays["means_init"], n_components, n_features)
        if "precisions_init" in arrays:
            model.precisions_init = check_precisions_init(
                arrays["precisions_init"], covariance_type, n_components, n_features, model_name=model.covariance_type
            )
    except ValueError as exc:
        raise ModelFileError(f"The model file holds an invalid initial parameter: {exc}") from None
