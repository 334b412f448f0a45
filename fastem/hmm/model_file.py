"""The GaussianHMM model file: which arrays and values it holds, and their checks.

The container is the generic format of ``fastem._core.model_files`` (a zip
of ``.npy`` members plus ``metadata.json``, read without unpickling). A
Gaussian HMM stores its four parameter arrays (``covars`` in the per-type
layout), the monitor's history, and its priors: as JSON numbers when they
are scalars, as arrays of a shape the model accepts otherwise.
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
from fastem.exceptions import ModelFileError
from fastem.hmm.parameters import prior_shapes

FORMAT_NAME = "fastem.GaussianHMM"
FORMAT_VERSION = 1

FITTED_ARRAYS = ("startprob_", "transmat_", "means_", "covars")
PRIORS = ("startprob_prior", "transmat_prior", "means_prior", "means_weight", "covars_prior", "covars_weight")
PLAIN_PARAMS = (
    "n_components",
    "covariance_type",
    "min_covar",
    "algorithm",
    "n_iter",
    "tol",
    "verbose",
    "params",
    "init_params",
    "implementation",
    "n_jobs",
)


def save_model(model, file) -> None:
    """Write the fitted GaussianHMM ``model`` to ``file`` (a path or a writable binary file object)."""
    model._check_is_fitted()
    model._check_parameters()
    n_features = model._n_features()
    params = model._checked_params(n_features)
    arrays = {
        "startprob_": params.startprob,
        "transmat_": params.transmat,
        "means_": params.means,
        "covars": params.covars,
        "history": np.asarray(list(model.monitor_.history), dtype=np.float64).reshape(-1),
    }
    plain = {name: plain_value(getattr(model, name), name) for name in PLAIN_PARAMS}
    priors = {}
    for name in PRIORS:
        value = np.asarray(getattr(model, name), dtype=np.float64)
        if value.ndim == 0:
            priors[name] = plain_value(float(value), name)
        else:
            arrays[name] = value
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fastem_version": fastem_version(),
        "dtype": "float64",
        "params": plain,
        "priors": priors,
        "random_state": random_state_entry(model.random_state, arrays),
        "attributes": {"n_features": int(n_features), "monitor_iter": int(model.monitor_.iter),
                       **feature_names_entry(model)},
    }
    write_archive(file, metadata, arrays)


def load_model(file, estimator_class):
    """Read a model written by :func:`save_model`; returns a fitted ``estimator_class``."""

    def read_content(archive, metadata):
        model = build_estimator(metadata, estimator_class, PLAIN_PARAMS)
        attributes = metadata["attributes"]
        n_features = attributes.get("n_features")
        monitor_iter = attributes.get("monitor_iter")
        expect(is_int(n_features) and n_features >= 1, f"n_features must be a positive integer, got {n_features!r}.")
        feature_names = read_feature_names(attributes, n_features)
        expect(is_int(monitor_iter) and 0 <= monitor_iter <= model.n_iter, f"invalid monitor_iter {monitor_iter!r}.")
        priors = metadata.get("priors")
        expect(isinstance(priors, dict), "metadata.json: 'priors' is missing or not a JSON object.")
        k, d = model.n_components, n_features
        covars_shape = {"spherical": (k,), "diag": (k, d), "full": (k, d, d), "tied": (d, d)}[model.covariance_type]
        key_name, key_spec = RANDOM_STATE_KEY
        expected = {
            "startprob_": ((k,), (np.float64,)),
            "transmat_": ((k, k), (np.float64,)),
            "means_": ((k, d), (np.float64,)),
            "covars": (covars_shape, (np.float64,)),
            "history": (model.n_iter, (np.float64,)),
            key_name: key_spec,
        }
        declared = metadata["arrays"]
        for name in PRIORS:
            if name in priors:
                value = priors[name]
                expect(isinstance(value, (int, float)) and not isinstance(value, bool), f"prior {name} must be a number.")
                expect(name not in declared, f"prior {name} is stored twice.")
                continue
            shape = tuple(declared.get(name, ()))
            expect(shape in prior_shapes(name, model.covariance_type, k, d),
                   f"prior {name} is missing or has an invalid shape {list(shape)}.")
            expected[name] = (shape, (np.float64,))
        arrays = read_arrays(archive, declared, expected, set(FITTED_ARRAYS) | {"history"})
        return metadata, model, priors, arrays, monitor_iter, feature_names

    metadata, model, priors, arrays, monitor_iter, feature_names = read_archive(file, FORMAT_NAME, FORMAT_VERSION, read_content)
    for name in PRIORS:
        setattr(model, name, priors[name] if name in priors else arrays[name])
    try:
        model._check_parameters()
        model.startprob_ = arrays["startprob_"]
        model.transmat_ = arrays["transmat_"]
        model.means_ = arrays["means_"]
        model.covars_ = arrays["covars"]
        model._checked_params(arrays["means_"].shape[1])
    except ValueError as exc:
        raise ModelFileError(f"The model file holds an invalid parameter: {exc}") from None
    model.n_features = model.n_features_in_ = arrays["means_"].shape[1]
    if feature_names is not None:
        model.feature_names_in_ = feature_names
    history = arrays["history"]
    expect(np.isfinite(history).all(), "history contains NaN or infinity.")
    model.monitor_.history.extend(float(value) for value in history)
    model.monitor_.iter = monitor_iter
    model.random_state = restore_random_state(metadata["random_state"], arrays.get("random_state_key"))
    return model
