"""LatentDirichletAllocation: two batch EM iterations and an online pass, fastem against scikit-learn.

The corpus and the timed iterations come from :mod:`fastem.bench.topics`,
so asv and ``python -m fastem.bench`` time the same work: both estimators
start from the same ``random_state``. By default the corpus has 10x fewer
documents than the benchmark case's; ``FASTEM_BENCH_LARGE=1`` uses the full
size (scikit-learn then takes about 20 s per iteration).
"""

from __future__ import annotations

from dataclasses import replace

from fastem.bench.cases import Settings
from fastem.bench.topics import TOPIC_CASES, _iterations, corpus_for

from .common import LARGE


def _case(name: str):
    case = TOPIC_CASES[name]
    return case if LARGE else replace(case, n_docs=case.n_docs // 10)


class LDAIteration:
    """The first two batch iterations, or one online pass of mini-batches, from the same start."""

    params = [["fastem", "sklearn"], ["topics_batch", "topics_online"]]
    param_names = ["implementation", "case"]
    number = 1
    warmup_time = 0.0
    timeout = 1200.0

    def setup(self, implementation, name):
        import fastem

        self.case = _case(name)
        self.X = corpus_for(self.case, Settings())
        if implementation == "fastem":
            self.model_class, self.n_jobs = fastem.LatentDirichletAllocation, None
            _iterations(self.model_class, self.case, self.X[:200], None, 0)  # compile outside the timing
        else:
            from sklearn.decomposition import LatentDirichletAllocation

            self.model_class, self.n_jobs = LatentDirichletAllocation, 1

    def time_iteration(self, implementation, name):
        _iterations(self.model_class, self.case, self.X, self.n_jobs, 0)
