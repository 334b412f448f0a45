"""Command line of ``python -m fastem.bench``: choose the cases and settings, run them, print the report.

scikit-learn and threadpoolctl (the ``bench`` extra) are checked for in
:func:`main`, not imported with this module.
"""

from __future__ import annotations

import argparse
import gc
import shlex
import sys
from dataclasses import replace

from fastem.bench.cases import CASES, QUICK, Settings
from fastem.bench.comparisons import run_dtype_case, run_em_case, run_threads_case
from fastem.bench.first_fit import run_first_fit_case, run_first_fit_targets_case
from fastem.bench.hmm import HMM_CASES, run_hmm_case, run_hmm_first_fit_case, run_hmm_threads_case
from fastem.bench.missing import (
    MISSING_CASES,
    run_missing_case,
    run_missing_first_fit_case,
    run_missing_impute_case,
)
from fastem.bench.topics import (
    TOPIC_CASES,
    run_topics_case,
    run_topics_first_fit_case,
    run_topics_threads_case,
)
from fastem.bench.scale import SCALE_CASES, run_scale_dask_case, run_scale_memmap_case
from fastem.bench.selection import SELECTION_CASES, run_selection_case
from fastem.bench.default_fit import DEFAULT_FIT_CASES, run_default_fit_case
from fastem.bench.inference import INFERENCE_CASES, run_inference_case
from fastem.bench.shared_cpus import SHARED_CPUS_CASES, run_shared_cpus_case
from fastem.bench.report import Report, _log, render, write_report
from fastem.bench.timing import gemm_gflops


RUNNERS = {
    "em": run_em_case,
    "dtype": run_dtype_case,
    "threads": run_threads_case,
    "first_fit": run_first_fit_case,
    "first_fit_targets": run_first_fit_targets_case,
    "hmm": run_hmm_case,
    "hmm_threads": run_hmm_threads_case,
    "hmm_first_fit": run_hmm_first_fit_case,
    "missing": run_missing_case,
    "missing_impute": run_missing_impute_case,
    "missing_first_fit": run_missing_first_fit_case,
    "topics": run_topics_case,
    "topics_threads": run_topics_threads_case,
    "topics_first_fit": run_topics_first_fit_case,
    "scale_memmap": run_scale_memmap_case,
    "scale_dask": run_scale_dask_case,
    "selection": run_selection_case,
    "default_fit": run_default_fit_case,
    "inference": run_inference_case,
    "shared_cpus": run_shared_cpus_case,
}
ALL_CASES = {
    **CASES, **HMM_CASES, **MISSING_CASES, **TOPIC_CASES, **SCALE_CASES, **SELECTION_CASES, **DEFAULT_FIT_CASES,
    **INFERENCE_CASES, **SHARED_CPUS_CASES,
}


def _parse_cases(text: str) -> list:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in ALL_CASES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown case(s) {unknown}; choose from {', '.join(ALL_CASES)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastem.bench",
        description="Time fastem against scikit-learn, hmmlearn and the naive EM from the same start; print markdown.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (smoke test)")
    parser.add_argument(
        "--cases", type=_parse_cases, default=list(ALL_CASES), help=f"comma-separated subset of: {', '.join(ALL_CASES)}"
    )
    parser.add_argument("--output", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument("--n-samples", type=int, help="rows of every case (overrides the case sizes)")
    parser.add_argument("--iterations", type=int, help="m: iterations timed beyond the first (default 5, quick 2)")
    parser.add_argument("--repeats", type=int, help="repeats per timing (default 5, quick 3)")
    parser.add_argument("--budget", type=float, help="seconds per implementation per case (default 30, quick 5)")
    parser.add_argument("--naive-limit", type=float, help="skip the naive EM above this many s/iteration (default 60)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    parser.add_argument("--seed", type=int, help="seed of the data and initial parameters (default 0)")
    return parser


def _settings_from(args) -> Settings:
    settings = QUICK if args.quick else Settings()
    overrides = {
        "n_samples": args.n_samples,
        "iterations": args.iterations,
        "repeats": args.repeats,
        "budget": args.budget,
        "naive_limit": args.naive_limit,
        "seed": args.seed,
    }
    settings = replace(settings, **{key: value for key, value in overrides.items() if value is not None})
    if args.no_memory:
        settings = replace(settings, memory=False)
    return settings


def main(argv=None) -> int:
    """Run the cases, print the markdown report, optionally write it to ``--output``.

    Returns
    -------
    status : int
        0 on success.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        import hmmlearn  # noqa: F401
        import sklearn  # noqa: F401
        import threadpoolctl  # noqa: F401
    except ImportError as error:
        print(f"fastem.bench needs the 'bench' extra: python -m pip install -e '.[bench]' ({error})", file=sys.stderr)
        return 2
    settings = _settings_from(args)
    command = " ".join(["python -m fastem.bench", *map(shlex.quote, argv)])
    _log(f"float64 GEMM reference ({settings.gemm_size}x{settings.gemm_size})")
    report = Report(settings=settings, command=command, gemm=gemm_gflops(settings.gemm_size))
    for name in args.cases:
        case = ALL_CASES[name]
        RUNNERS[case.kind](case, settings, report)
        gc.collect()
    text = render(report)
    print(text, end="")
    if args.output:
        write_report(args.output, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
