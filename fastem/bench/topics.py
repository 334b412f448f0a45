"""The topic-model cases: LatentDirichletAllocation against scikit-learn's, per EM iteration, from the same start.

Both estimators are built with the same ``random_state``, so their topic
initialisation and every document's starting values are the same draws.
An iteration is timed as each fit runs it (scikit-learn's ``_em_step``, and
fastem's ``_em_step`` for a batch iteration and ``_online_pass`` for a pass
of mini-batches): a batch iteration over the whole corpus, or an online
pass of mini-batches. The same iterations give
both sides' topics, so the table also shows how far apart they are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fastem.bench.cases import Settings
from fastem.bench.child_process import cold_then_warm
from fastem.bench.report import Report, _log, _ratio, _times


@dataclass(frozen=True)
class TopicCase:
    """One topic-model case; ``kind`` is ``"topics"``, ``"topics_threads"`` or ``"topics_first_fit"``."""

    name: str
    kind: str
    n_docs: int
    n_words: int
    n_topics: int
    learning_method: str = "batch"
    doc_length: float = 150.0


TOPIC_CASES = {
    case.name: case
    for case in [
        TopicCase("topics_batch", "topics", 20_000, 10_000, 50, "batch"),
        TopicCase("topics_online", "topics", 20_000, 10_000, 50, "online"),
        TopicCase("topics_threads", "topics_threads", 20_000, 10_000, 50, "batch"),
        TopicCase("topics_first_fit", "topics_first_fit", 2_000, 2_000, 10, "batch"),
    ]
}

_ITERATIONS = 2  # batch iterations timed per repeat (early ones: the documents need the most updates)


def _shape(case: TopicCase, settings: Settings) -> tuple[int, int]:
    """(documents, vocabulary): the case's, or at most ``--n-samples`` of each (``--quick``: 2000)."""
    if settings.n_samples is not None:
        return min(case.n_docs, settings.n_samples), min(case.n_words, settings.n_samples)
    return case.n_docs, case.n_words


def corpus_for(case: TopicCase, settings: Settings):
    """The case's synthetic corpus (CSR counts) from the LDA generative model."""
    from fastem.datasets import make_lda_corpus

    n_docs, n_words = _shape(case, settings)
    X, _, _ = make_lda_corpus(n_docs, n_words, case.n_topics, doc_length=case.doc_length, random_state=settings.seed)
    return X


def _label(case: TopicCase, settings: Settings) -> str:
    n_docs, n_words = _shape(case, settings)
    method = "batch" if case.learning_method == "batch" else "online, batch_size 128"
    return f"{n_docs:,} docs, vocabulary {n_words:,}, {case.n_topics} topics, {method}"


def _iterations(model_class, case: TopicCase, X, n_jobs, seed: int):
    """Seconds per iteration of ``model_class`` (each timed), and the model after them.

    Batch: ``_ITERATIONS`` EM steps over the corpus. Online: one pass of
    mini-batches of 128 documents (``total_samples`` = the corpus size).
    """
    import fastem

    model = model_class(case.n_topics, learning_method=case.learning_method, random_state=seed, n_jobs=n_jobs)
    ours = isinstance(model, fastem.LatentDirichletAllocation)
    if ours:
        from fastem._core.threads import numba_threads, resolve_n_jobs
        from fastem.topics.corpus import check_counts

        corpus = check_counts(X, whom="bench")
        exp_log_words = model._init_latent_vars(corpus.n_words, corpus.dtype)
        threads = numba_threads(resolve_n_jobs(n_jobs))
    else:
        import contextlib

        from sklearn.utils.parallel import Parallel

        model._init_latent_vars(X.shape[1], dtype=X.dtype)
        threads = contextlib.nullcontext()
    seconds = []
    n_docs = X.shape[0]
    with threads:
        parallel = None if ours else Parallel(n_jobs=n_jobs)
        rounds = _ITERATIONS if case.learning_method == "batch" else 1
        for _ in range(rounds):
            start = time.perf_counter()
            if case.learning_method == "batch":
                if ours:
                    exp_log_words = model._em_step(corpus, exp_log_words, n_docs, batch_update=True)
                else:
                    model._em_step(X, total_samples=n_docs, batch_update=True, parallel=parallel)
            else:
                if ours:
                    exp_log_words = model._online_pass(corpus, exp_log_words, n_docs)
                else:
                    for first in range(0, n_docs, model.batch_size):
                        last = min(first + model.batch_size, n_docs)
                        model._em_step(X[first:last], total_samples=n_docs, batch_update=False, parallel=parallel)
            seconds.append(time.perf_counter() - start)
    return seconds, model


TOPIC_COLUMNS = ["case", "fastem s/iter", "sklearn n_jobs=1 s/iter", "sklearn n_jobs=2 s/iter (wall)",
                 "speed-up vs n_jobs=1", "target", "speed-up vs n_jobs=2", "target", "max rel. diff of components_"]


def run_topics_case(case: TopicCase, settings: Settings, report: Report) -> None:
    """fastem (all threads) against scikit-learn at n_jobs=1 and 2, the same iterations, alternating."""
    import fastem
    from sklearn.decomposition import LatentDirichletAllocation as SklearnLDA

    X = corpus_for(case, settings)
    runs = {"fastem": (fastem.LatentDirichletAllocation, None), "sklearn1": (SklearnLDA, 1),
            "sklearn2": (SklearnLDA, 2)}
    _iterations(fastem.LatentDirichletAllocation, case, X[:200], None, settings.seed)  # compilation
    repeats = max(1, min(settings.repeats, 3))
    samples = {label: [] for label in runs}
    models = {}
    _log(f"{case.name}: fastem and scikit-learn (n_jobs=1, 2), {repeats} repeat(s), alternating")
    order = list(runs)
    for repeat in range(repeats):
        for label in order if repeat % 2 == 0 else order[::-1]:
            model_class, n_jobs = runs[label]
            seconds, models[label] = _iterations(model_class, case, X, n_jobs, settings.seed)
            samples[label].append(float(np.mean(seconds)))
    median = {label: float(np.median(values)) for label, values in samples.items()}
    difference = float(np.abs(models["fastem"].components_ - models["sklearn1"].components_).max()
                       / np.abs(models["sklearn1"].components_).max())
    vs_one = _ratio(median["sklearn1"], median["fastem"])
    vs_two = _ratio(median["sklearn2"], median["fastem"])
    iterations = (f"the mean of the first {_ITERATIONS} batch iterations" if case.learning_method == "batch"
                  else "one online pass (mini-batches of 128)")
    section = report.section(
        "Topic models: LatentDirichletAllocation, seconds per iteration",
        "A synthetic corpus from the LDA generative model (`fastem.datasets.make_lda_corpus`: about 150 words per "
        "document), both estimators built with the same `random_state` (the same topic and document starting "
        "values), timed over the same iterations as `fit` runs them: " + iterations + ", the median of "
        f"{repeats} repeat(s) in which the three alternate. fastem runs on all threads (its result does not depend "
        "on them); scikit-learn at `n_jobs=1` is the setting whose answer fastem reproduces, at `n_jobs=2` it runs "
        "two processes and its answer changes. **max rel. diff**: fastem's topics against scikit-learn's "
        "`n_jobs=1` after those iterations.", TOPIC_COLUMNS)
    section.rows.append([
        _label(case, settings), f"{median['fastem']:.2f}", f"{median['sklearn1']:.2f}", f"{median['sklearn2']:.2f}",
        _times(vs_one), ">= 10x", _times(vs_two), ">= 3x" if case.learning_method == "batch" else "",
        f"{difference:.1e}",
    ])


TOPIC_THREAD_COLUMNS = ["case", "1 thread s/iter", "2 threads s/iter", "speed-up", "target", "bit-identical topics"]


def run_topics_threads_case(case: TopicCase, settings: Settings, report: Report) -> None:
    """fastem on 1 and on 2 threads, alternating: the first batch iteration from the same start."""
    import fastem

    X = corpus_for(case, settings)
    _iterations(fastem.LatentDirichletAllocation, case, X[:200], None, settings.seed)  # compilation
    repeats = max(settings.repeats, 5)
    samples = {1: [], 2: []}
    models = {}
    _log(f"{case.name}: 1 and 2 threads, {repeats} repeats, alternating")
    for repeat in range(repeats):
        for n_jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
            seconds, models[n_jobs] = _iterations(fastem.LatentDirichletAllocation, case, X, n_jobs, settings.seed)
            samples[n_jobs].append(seconds[0])
    one, two = float(np.median(samples[1])), float(np.median(samples[2]))
    identical = bool(np.array_equal(models[1].components_, models[2].components_))
    section = report.section(
        "Topic models: threads",
        f"The first batch iteration of fastem's LDA on 1 and on 2 threads, the median of {repeats} repeats in which "
        "the two alternate; the topics after the iterations are compared bit for bit.", TOPIC_THREAD_COLUMNS)
    section.rows.append([_label(case, settings), f"{one:.2f}", f"{two:.2f}", _times(_ratio(one, two)), ">= 1.8x",
                         "yes" if identical else "no"])


# Runs in a fresh interpreter: the fit a user writes, then the same fit again.
_FIRST_FIT_CODE = """
import json, sys, time
spec = json.loads(sys.stdin.read())
from fastem.datasets import make_lda_corpus
X, _, _ = make_lda_corpus(spec["n_docs"], spec["n_words"], spec["n_topics"], random_state=0)
import fastem
def timed(function):
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value
fit = lambda: fastem.LatentDirichletAllocation(spec["n_topics"], random_state=0).fit(X)
result = {}
result["first"], model = timed(fit)
result["transform"], _ = timed(lambda: model.transform(X))
result["again"], _ = timed(fit)
print(json.dumps(result))
"""

TOPIC_FIRST_FIT_COLUMNS = ["case", "first fit s (cold cache)", "first fit s (warm cache)", "same fit again s",
                     "transform after the first fit s (cold)"]


def run_topics_first_fit_case(case: TopicCase, settings: Settings, report: Report) -> None:
    """The first LDA fit in fresh processes, with an empty and then a warm Numba cache."""
    n_docs, n_words = _shape(case, settings)
    spec = dict(n_docs=n_docs, n_words=n_words, n_topics=case.n_topics)
    _log(f"{case.name}: fresh processes, cold then warm Numba cache")
    cold, warm = cold_then_warm(_FIRST_FIT_CODE, spec)
    section = report.section(
        "Topic models: first fit in a fresh process",
        "`LatentDirichletAllocation(k, random_state=0).fit(X)` with the defaults (batch, 10 iterations) in a new "
        "Python process, with an empty `NUMBA_CACHE_DIR` (everything compiled) and then the same directory (warm); "
        "`import fastem` and building X are not timed. The kernels compile once for every dtype and size: the "
        "counts are read as float64.", TOPIC_FIRST_FIT_COLUMNS)
    section.rows.append([
        f"{n_docs:,} docs, vocabulary {n_words:,}, {case.n_topics} topics", f"{cold['first']:.2f}",
        f"{warm['first']:.2f}", f"{warm['again']:.3f}", f"{cold['transform']:.2f}",
    ])
