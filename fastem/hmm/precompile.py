"""The kernels a Gaussian HMM needs, for compiling them ahead of time (``python -m fastem compile``).

An HMM works in float64. Its own kernels (forward-backward, Viterbi, the
two-thread forward-backward of long sequences, the log-space
forward-backward) depend on nothing else; its emissions use the
mixture's float64 log-probability kernels (one specialisation per
full-covariance feature-count variant, compiled by the mixture's tasks) and
the posterior-statistics kernels, one for full and tied covariances and one
for diagonal and spherical ones. So two tiny fits cover every HMM.
"""

from __future__ import annotations

import numpy as np

# The covariance types whose kernels differ: full and tied share the full
# statistics kernel, diag and spherical the diagonal one.
_REPRESENTATIVES = {"full": "full", "tied": "full", "diag": "diag", "spherical": "diag"}


def _tiny_fit(covariance_type: str) -> None:
    """Fit, decode and score a small model, and run one sequence through the log-space path."""
    from fastem.hmm.estimator import GaussianHMM

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 2))
    X[32:] += 4.0
    model = GaussianHMM(2, covariance_type=covariance_type, n_iter=2, random_state=0)
    model.fit(X, [32, 32], sample_weight=[1.0, 1.0])
    model.decode(X, [32, 32])
    model.predict_proba(X)
    from fastem.hmm.sequences import LONG_SEQUENCE_ROWS

    model.predict_proba(np.resize(X, (LONG_SEQUENCE_ROWS, 2)))  # a long sequence: forward and backward meet
    # A left-right model whose data run ahead of it: scaling cannot hold the
    # first state's tiny mass, so the sequence goes to the log-space kernel.
    left_right = GaussianHMM(2, covariance_type=covariance_type, init_params="")
    left_right.startprob_ = np.array([1.0, 0.0])
    left_right.transmat_ = np.array([[0.5, 0.5], [0.0, 1.0]])
    left_right.means_ = np.array([[0.0, 0.0], [40.0, 40.0]])
    left_right.covars_ = {"full": np.tile(np.eye(2), (2, 1, 1)), "tied": np.eye(2), "diag": np.ones((2, 2)),
                          "spherical": np.ones(2)}[covariance_type]
    left_right.score_samples(np.array([[40.0, 40.0], [0.0, 0.0], [0.0, 0.0]]))


def compile_tasks(covariance_types) -> list:
    """``(label, function)`` per distinct HMM specialisation, for ``fastem._core.compilation.compile_ahead``."""
    tasks, seen = [], set()
    for covariance_type in covariance_types:
        kind = _REPRESENTATIVES[covariance_type]
        if kind in seen:
            continue
        seen.add(kind)
        label = "GaussianHMM full and tied" if kind == "full" else "GaussianHMM diag and spherical"
        tasks.append((label, lambda c=covariance_type: _tiny_fit(c)))
    return tasks
