"""The kernels LatentDirichletAllocation needs, for compiling them ahead of time (``python -m fastem compile``).

The LDA kernels read counts as float64 and indices as int64 whatever the
input, so one set serves every dtype, size and learning method: one tiny fit
(batch), a ``partial_fit`` of two mini-batches (the second computes
exp(E[log beta]) at its own words only), a ``transform`` and a ``score``
compile them all.
"""

from __future__ import annotations

import numpy as np


def _tiny_fit() -> None:
    from fastem.topics.estimator import LatentDirichletAllocation

    X = np.random.default_rng(0).poisson(1.0, size=(16, 8)).astype(np.float64)
    model = LatentDirichletAllocation(2, max_iter=2, evaluate_every=1, batch_size=8, random_state=0).fit(X)
    model.partial_fit(X)
    model.transform(X)
    model.score(X)


def compile_tasks() -> list:
    """``(label, function)`` for ``fastem._core.compilation.compile_ahead``: one task, every LDA kernel."""
    return [("LatentDirichletAllocation (every dtype and learning method)", _tiny_fit)]
