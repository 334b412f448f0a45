"""Small seeded data and starting parameters for the Gaussian HMM tests."""

from __future__ import annotations

import numpy as np

HMM_COVARIANCE_TYPES = ["spherical", "diag", "full", "tied"]


def sequences(n_states=3, n_features=2, lengths=(60, 7, 45, 1, 30), seed=0):
    """Rows drawn from a sticky HMM with well separated states, and the lengths."""
    rng = np.random.RandomState(seed)
    centres = _centres(n_states, n_features)
    transmat = np.full((n_states, n_states), 0.15 / (n_states - 1))
    np.fill_diagonal(transmat, 0.85)
    rows = []
    for length in lengths:
        state = rng.randint(n_states)
        for _ in range(length):
            rows.append(centres[state] + rng.normal(size=n_features))
            state = rng.choice(n_states, p=transmat[state])
    return np.array(rows), np.array(lengths)


def _centres(n_states, n_features):
    """The states' emission centres, the same for every seed (so start_params lies near the data)."""
    return np.random.RandomState(100).normal(scale=3.0, size=(n_states, n_features))


def start_params(covariance_type, n_states=3, n_features=2, seed=1):
    """A valid (startprob, transmat, means, covars) of hmmlearn's per-type shapes."""
    rng = np.random.RandomState(seed)
    startprob = rng.dirichlet(np.ones(n_states))
    transmat = rng.dirichlet(np.ones(n_states), size=n_states)
    means = _centres(n_states, n_features) + rng.normal(scale=0.7, size=(n_states, n_features))
    if covariance_type == "spherical":
        covars = rng.uniform(0.5, 2.0, n_states)
    elif covariance_type == "diag":
        covars = rng.uniform(0.5, 2.0, (n_states, n_features))
    elif covariance_type == "full":
        a = rng.normal(size=(n_states, n_features, n_features))
        covars = np.einsum("kij,klj->kil", a, a) / n_features + np.eye(n_features)
    else:
        a = rng.normal(size=(n_features, n_features))
        covars = a @ a.T / n_features + np.eye(n_features)
    return startprob, transmat, means, covars


def with_params(model, params):
    """Set (startprob, transmat, means, covars) on a fastem or hmmlearn model; returns it."""
    model.startprob_, model.transmat_, model.means_, model.covars_ = (np.array(p, copy=True) for p in params)
    return model
