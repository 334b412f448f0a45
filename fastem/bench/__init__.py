"""Compare fastem with scikit-learn and the naive EM: ``python -m fastem.bench``.

Every implementation starts from the *same* initial parameters (weights,
means and precisions; the naive EM gets the equivalent covariances) and runs a
fixed number of EM iterations (``tol=0``), so each does the same work and the
answers can be compared as well as the speed.

What is measured, per case:

* milliseconds per EM iteration: ``(t(max_iter=1+m) - t(max_iter=1)) / m``,
  the median over repeats. The difference cancels everything a fit does once
  (validation, copies, scikit-learn's initial M-step and final E-step, Numba
  dispatch), leaving the cost of one E-step plus one M-step;
* scikit-learn with its BLAS limited to 1 thread and with all threads
  (threadpoolctl); the speed-up is taken against its faster setting;
* fastem's effective GFLOP/s, counting ``3 n k d^2`` flops per iteration
  (full/tied), next to the machine's float64 GEMM rate;
* peak memory of a fit, as the increase of the peak resident set size (RSS)
  of a child process during the fit (Numba allocations are invisible to
  tracemalloc, so only the OS view is honest);
* the largest relative parameter difference between fastem and scikit-learn:
  a speed-up only counts if the answers agree.

Plus float32 against float64, 1 thread against all, the latency of the
first fit in a fresh process with a cold and a warm Numba cache, the
first-fit figures of issue 12 next to their targets, the Gaussian HMM
against hmmlearn (``hmm``), and LDA against scikit-learn's (``topics``).

scikit-learn, threadpoolctl and psutil (the ``bench`` extra) are imported
inside functions, so ``import fastem`` never imports them. The data builders
and the ``fit`` helper are shared with the asv suite in ``asv_bench/``.

One module per concern; this one re-exports their public names:

* ``cases``: the cases, the settings, the data and the common start;
* ``fits``: one fit by each implementation, and how far two fits differ;
* ``timing``: per-iteration timing, the compute-bound speed-up, the GEMM rate;
* ``child_process``: fresh interpreters for what needs one;
* ``memory``: peak memory of a fit, in a child process;
* ``first_fit``: first fit in fresh processes, cold and warm cache, and the
  targets of issue 12;
* ``comparisons``: the em, float32 and threads cases;
* ``hmm``: the Gaussian HMM cases against hmmlearn, threads and first fit;
* ``missing``: data with missing values against the same rows complete,
  imputation, first fit;
* ``topics``: LatentDirichletAllocation against scikit-learn's, threads,
  first fit;
* ``scale``: a memmap larger than the fit's memory, and Dask's cost per
  iteration against in memory;
* ``selection``: a whole model-selection sweep (``GaussianMixtureIC``)
  against the same sweep as a loop of scikit-learn fits;
* ``default_fit``: the whole default fit, initialisation included, against
  scikit-learn's;
* ``inference``: predict_proba, score_samples and predict on many rows
  against scikit-learn's, with fastem's peak memory beyond the output;
* ``shared_cpus``: fastem's default threads against ``n_jobs=1`` and
  scikit-learn, quiet and beside a busy-loop process, on small real data sets
  and a large fit;
* ``report``: the tables, cell formatting, the markdown, writing the file;
* ``cli``: the command line.
"""

from fastem.bench.cases import (
    CASES,
    FLOPS_PER_ITERATION_FACTOR,
    NAIVE_PILOT_ROWS,
    QUICK,
    Case,
    InitialParameters,
    Settings,
    initial_parameters,
    make_data,
)
from fastem.bench.child_process import cold_then_warm
from fastem.bench.cli import ALL_CASES, RUNNERS, build_parser, main
from fastem.bench.comparisons import run_dtype_case, run_em_case, run_threads_case
from fastem.bench.first_fit import (
    FIRST_FIT_TARGETS,
    FirstFitTarget,
    first_fit_latency,
    first_fit_target_rows,
    first_fit_targets,
    run_first_fit_case,
    run_first_fit_targets_case,
)
from fastem.bench.fits import IMPLEMENTATIONS, FitResult, fit, max_relative_difference
from fastem.bench.hmm import (
    HMM_CASES,
    HMM_COLUMNS,
    HMM_FIRST_FIT_COLUMNS,
    HMM_THREAD_COLUMNS,
    HMMCase,
    hmm_data,
    run_hmm_case,
    run_hmm_first_fit_case,
    run_hmm_threads_case,
    time_pairs,
)
from fastem.bench.missing import (
    MISSING_CASES,
    MISSING_COLUMNS,
    MISSING_FIRST_FIT_COLUMNS,
    MISSING_IMPUTE_COLUMNS,
    MissingCase,
    missing_data,
    run_missing_case,
    run_missing_first_fit_case,
    run_missing_impute_case,
)
from fastem.bench.memory import peak_memory
from fastem.bench.topics import (
    TOPIC_CASES,
    TOPIC_COLUMNS,
    TOPIC_FIRST_FIT_COLUMNS,
    TOPIC_THREAD_COLUMNS,
    TopicCase,
    corpus_for,
    run_topics_case,
    run_topics_first_fit_case,
    run_topics_threads_case,
)
from fastem.bench.scale import SCALE_CASES, ScaleCase, run_scale_dask_case, run_scale_memmap_case
from fastem.bench.selection import SELECTION_CASES, SelectionCase, run_selection_case
from fastem.bench.default_fit import DEFAULT_FIT_CASES, DefaultFitCase, run_default_fit_case
from fastem.bench.inference import INFERENCE_CASES, InferenceCase, run_inference_case
from fastem.bench.shared_cpus import SHARED_CPUS_CASES, SharedCpusCase, competitor, run_shared_cpus_case
from fastem.bench.report import (
    DTYPE_COLUMNS,
    EM_COLUMNS,
    FIRST_FIT_COLUMNS,
    FIRST_FIT_TARGET_COLUMNS,
    HAND_WRITTEN_MARKER,
    MIB,
    THREAD_COLUMNS,
    Report,
    Section,
    markdown_table,
    render,
    write_report,
)
from fastem.bench.timing import (
    Timing,
    busy_tasks,
    compute_bound_speedup,
    gemm_gflops,
    time_alternating,
    time_calls_alternating,
    time_naive,
    time_per_iteration,
)

__all__ = [
    "ALL_CASES",
    "CASES",
    "DTYPE_COLUMNS",
    "EM_COLUMNS",
    "FIRST_FIT_COLUMNS",
    "FIRST_FIT_TARGETS",
    "FIRST_FIT_TARGET_COLUMNS",
    "FLOPS_PER_ITERATION_FACTOR",
    "HAND_WRITTEN_MARKER",
    "HMM_CASES",
    "HMM_COLUMNS",
    "HMM_FIRST_FIT_COLUMNS",
    "HMM_THREAD_COLUMNS",
    "IMPLEMENTATIONS",
    "MIB",
    "MISSING_CASES",
    "MISSING_COLUMNS",
    "MISSING_FIRST_FIT_COLUMNS",
    "MISSING_IMPUTE_COLUMNS",
    "NAIVE_PILOT_ROWS",
    "QUICK",
    "RUNNERS",
    "THREAD_COLUMNS",
    "SCALE_CASES",
    "ScaleCase",
    "run_scale_dask_case",
    "run_scale_memmap_case",
    "SELECTION_CASES",
    "DEFAULT_FIT_CASES",
    "DefaultFitCase",
    "INFERENCE_CASES",
    "InferenceCase",
    "run_default_fit_case",
    "run_inference_case",
    "SHARED_CPUS_CASES",
    "SharedCpusCase",
    "competitor",
    "run_shared_cpus_case",
    "SelectionCase",
    "run_selection_case",
    "TOPIC_CASES",
    "TOPIC_COLUMNS",
    "TOPIC_FIRST_FIT_COLUMNS",
    "TOPIC_THREAD_COLUMNS",
    "Case",
    "FirstFitTarget",
    "FitResult",
    "HMMCase",
    "InitialParameters",
    "MissingCase",
    "Report",
    "Section",
    "Settings",
    "Timing",
    "TopicCase",
    "build_parser",
    "busy_tasks",
    "cold_then_warm",
    "compute_bound_speedup",
    "corpus_for",
    "first_fit_latency",
    "first_fit_target_rows",
    "first_fit_targets",
    "fit",
    "gemm_gflops",
    "hmm_data",
    "initial_parameters",
    "main",
    "make_data",
    "markdown_table",
    "max_relative_difference",
    "missing_data",
    "peak_memory",
    "render",
    "run_dtype_case",
    "run_em_case",
    "run_first_fit_case",
    "run_first_fit_targets_case",
    "run_hmm_case",
    "run_hmm_first_fit_case",
    "run_hmm_threads_case",
    "run_missing_case",
    "run_missing_first_fit_case",
    "run_missing_impute_case",
    "run_threads_case",
    "run_topics_case",
    "run_topics_first_fit_case",
    "run_topics_threads_case",
    "time_alternating",
    "time_calls_alternating",
    "time_naive",
    "time_pairs",
    "time_per_iteration",
    "write_report",
]
