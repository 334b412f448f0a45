"""The report: its tables, how cells are formatted, the markdown, and writing it without losing the hand-written tail.

Progress messages go to stderr (:func:`_log`); the report itself is markdown
on stdout, ready for BENCHMARKS.md.
"""

from __future__ import annotations

import datetime
import os
import platform
import sys
from dataclasses import dataclass, field

import numpy as np

import fastem
from fastem.bench.cases import NAIVE_PILOT_ROWS, Case, Settings


MIB = 2**20


@dataclass
class Section:
    """A table that a model family's cases add to the report (see ``fastem.bench.hmm``)."""

    title: str
    intro: str
    columns: list
    rows: list = field(default_factory=list)


@dataclass
class Report:
    """Everything measured, ready to print."""

    settings: Settings
    command: str
    gemm: float
    em_rows: list = field(default_factory=list)
    dtype_rows: list = field(default_factory=list)
    thread_rows: list = field(default_factory=list)
    first_fit_rows: list = field(default_factory=list)
    first_fit_target_rows: list = field(default_factory=list)
    sections: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    memory_method: str = ""

    def section(self, title: str, intro: str, columns: list) -> Section:
        """The section titled ``title``, added (with ``intro`` and ``columns``) the first time it is asked for."""
        for section in self.sections:
            if section.title == title:
                return section
        section = Section(title, intro, columns)
        self.sections.append(section)
        return section


EM_COLUMNS = [
    "case",
    "fastem ms/iter",
    "sklearn ms/iter (BLAS 1 thread)",
    "sklearn ms/iter (BLAS all threads)",
    "naive ms/iter",
    "speed-up vs sklearn",
    "speed-up vs naive",
    "fastem GFLOP/s",
    "GEMM GFLOP/s",
    "fastem peak MiB",
    "sklearn peak MiB",
    "max rel. diff vs sklearn",
]
DTYPE_COLUMNS = [
    "case",
    "float64 ms/iter",
    "float32 ms/iter",
    "float32 speed-up",
    "rel. log-likelihood diff",
    "max rel. param diff",
]
THREAD_COLUMNS = ["case", "n_jobs=1 ms/iter", "all threads ms/iter", "threads", "speed-up", "compute-bound speed-up (range)"]
FIRST_FIT_COLUMNS = [
    "case",
    "import fastem s",
    "first fit s (cold cache)",
    "first fit s (warm cache)",
    "same fit again s",
    "cold / again",
    "warm / again",
]
FIRST_FIT_TARGET_COLUMNS = ["case", "measured", "target", "met"]


def _log(message: str) -> None:
    print(f"[fastem.bench] {message}", file=sys.stderr, flush=True)


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or numerator <= 0 or denominator <= 0:
        return None
    return numerator / denominator


def _count(n: int) -> str:
    """1000000 -> '1e6', 200000 -> '2e5', 2000 -> '2000'."""
    exponent = len(str(n)) - 1
    if n >= 100_000 and n % 10**exponent == 0:
        return f"{n // 10**exponent}e{exponent}"
    return str(n)


def _data_label(case: Case, n_samples: int, dtype) -> str:
    label = f"{case.covariance_type}, n={_count(n_samples)} d={case.n_features} k={case.n_components}"
    if dtype is not None:
        megabytes = n_samples * case.n_features * np.dtype(dtype).itemsize / MIB
        label += f" (X: {megabytes:.3g} MiB)"
    return label


def _ms(seconds) -> str:
    """Milliseconds: 3 significant digits, whole numbers with thousands separators from 1000 on.

    A per-iteration time at or below zero means the noise of the machine
    exceeded the cost of the iterations (tiny data, a busy machine, one
    repeat); it is shown as such rather than as a number.
    """
    if seconds is None:
        return "—"
    if seconds <= 0:
        return "≤0 (noise)"
    milliseconds = seconds * 1e3
    return f"{milliseconds:,.0f}" if milliseconds >= 1000 else f"{milliseconds:.3g}"


def _times(ratio) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:,.0f}×" if ratio >= 1000 else f"{ratio:.3g}×"


def _number(value) -> str:
    return "—" if value is None else f"{value:.3g}"


def _mib(value) -> str:
    # The RSS can shrink by a few pages between reading it and resetting the
    # high-water mark; a "negative peak" is zero.
    return "—" if value is None else f"{max(value, 0.0) / MIB:.0f}"


def markdown_table(columns: list, rows: list) -> str:
    """A markdown table with header ``columns`` and ``rows`` of already formatted cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> str:
    import numba
    import scipy

    versions = [
        f"Python {platform.python_version()}",
        f"fastem {fastem.__version__}",
        f"numpy {np.__version__}",
        f"scipy {scipy.__version__}",
        f"numba {numba.__version__}",
    ]
    try:
        import sklearn

        versions.append(f"scikit-learn {sklearn.__version__}")
    except ImportError:
        pass
    try:
        import threadpoolctl

        versions.append(f"threadpoolctl {threadpoolctl.__version__}")
    except ImportError:
        pass
    return ", ".join(versions)


def _blas_description() -> str:
    from threadpoolctl import threadpool_info

    seen = []
    for library in threadpool_info():
        if library.get("user_api") != "blas":
            continue
        text = f"{library.get('internal_api')} {library.get('version')}"
        if library.get("architecture"):
            text += f" ({library['architecture']})"
        text += f", {library.get('num_threads')} threads by default"
        if text not in seen:
            seen.append(text)
    return "; ".join(seen) or "unknown"


def _physical_cores() -> str:
    try:
        import psutil

        return str(psutil.cpu_count(logical=False))
    except ImportError:
        return "unknown"


def _threading_layer() -> str:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process
        return "not started"


def render(report: Report) -> str:
    """The report as BENCHMARKS.md-ready markdown."""
    from fastem._core.threads import max_threads

    settings = report.settings
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# fastem benchmarks",
        "",
        f"Generated {date} by:",
        "",
        "```bash",
        report.command,
        "```",
        "",
        "## Machine",
        "",
        f"- CPU: {_cpu_model()}; {os.cpu_count()} logical cores ({_physical_cores()} physical); "
        f"Numba threads: {max_threads()} (threading layer: {_threading_layer()})",
        f"- float64 GEMM: {report.gemm:.3g} GFLOP/s (numpy matmul of two {settings.gemm_size}x{settings.gemm_size} "
        "matrices, all threads, best of 5)",
        f"- BLAS: {_blas_description()}",
        f"- {_versions()}",
        "",
        "## Method",
        "",
        "Every implementation starts from the same parameters (equal weights, k-means++ rows as means, the "
        "data covariance for every component; the naive EM gets the covariances equivalent to the precisions the "
        "others get) and runs a fixed number of iterations (`tol=0`). "
        f"**ms/iter** is `(t(max_iter=1+m) - t(max_iter=1)) / m`, the median of up to {settings.repeats} repeats "
        f"with m = {settings.iterations} (fewer where one implementation would exceed {settings.budget:.0f} s on a "
        "case), so one-off work (validation, compilation, scikit-learn's initial M-step and final E-step) is "
        "excluded. The two fits compared in the float32 and threads tables alternate within every repeat, so that "
        "a slow change of the machine falls on both. The data are seeded blobs (`fastem.datasets.make_blobs`) in "
        "random row order, float64 unless stated.",
    ]
    if report.em_rows:
        memory = f"measured with {report.memory_method}" if settings.memory else "not measured (`--no-memory`)"
        parts += [
            "",
            "- **speed-up** = the other's ms/iter ÷ fastem's ms/iter (above 1: fastem is faster); against "
            "scikit-learn it uses the faster of its two BLAS settings.",
            "- **fastem GFLOP/s** counts `3 n k d^2` flops per iteration (full and tied only; for tied this "
            "conventional count exceeds the work fastem does, which is O(n (d^2 + k^2))).",
            "- **peak MiB**: increase of the peak resident set size of a fresh child process during one "
            "2-iteration fit, after a small warm-up fit (compilation and imports are not counted); it includes "
            f"the fit's copies and scratch but not X itself; {memory}.",
            "- **max rel. diff vs sklearn**: the largest absolute difference of weights, means and covariances "
            "after the same iterations, each relative to the largest entry of scikit-learn's array.",
            f"- The naive EM (`fastem.reference`) is skipped (—) where one iteration is estimated, from a run on "
            f"at most {NAIVE_PILOT_ROWS} rows, to take longer than {settings.naive_limit:.0f} s.",
            "",
            "## One EM iteration",
            "",
            markdown_table(EM_COLUMNS, report.em_rows),
        ]
    if report.dtype_rows:
        parts += [
            "",
            "## float32 against float64 (fastem)",
            "",
            "The same data and start; the log-likelihood and parameter differences are relative to the float64 fit.",
            "",
            markdown_table(DTYPE_COLUMNS, report.dtype_rows),
        ]
    if report.thread_rows:
        parts += [
            "",
            "## Threads (fastem `n_jobs`)",
            "",
            "**compute-bound speed-up**: the speed-up of a kernel built like fastem's whose tasks share nothing "
            "and stay in each core's L1 cache (`fastem.bench.compute_bound_speedup`), as the median (and range) of "
            "back-to-back pairs of 1-thread and all-thread runs, half just before and half just after the fits. "
            "It indicates how well compute-bound work scaled on this machine around the time the case ran; it is "
            "not an upper bound for fastem.",
            "",
            markdown_table(THREAD_COLUMNS, report.thread_rows),
        ]
    if report.first_fit_rows:
        parts += [
            "",
            "## First fit in a fresh process",
            "",
            "`import fastem` (numpy already imported) and the first `GaussianMixture(k).fit(X)` in a new Python "
            "process: with a cold Numba cache (an empty `NUMBA_CACHE_DIR`: everything is compiled) and a warm one "
            "(the same directory, now filled), against the same fit run again in that process.",
            "",
            markdown_table(FIRST_FIT_COLUMNS, report.first_fit_rows),
        ]
    if report.first_fit_target_rows:
        parts += [
            "",
            "## First fit: the targets",
            "",
            "Each figure comes from fresh Python processes whose `NUMBA_CACHE_DIR` is a temporary directory: "
            "(a), (b), (d) and (e) share one, empty before (a); (c) has an empty one of its own; in (f) "
            "`python -m fastem compile` fills an empty one, then each fit runs in a fresh process. The fits are "
            "written as a user writes them (default `max_iter`, `tol` and k-means initialisation) on seeded blobs; "
            "`import fastem` and building the data are not timed. **over a refit**: the first fit minus the same "
            "fit run again in that process. The targets are for a quiet machine.",
            "",
            markdown_table(FIRST_FIT_TARGET_COLUMNS, report.first_fit_target_rows),
        ]
    for section in report.sections:
        parts += ["", f"## {section.title}", "", section.intro, "", markdown_table(section.columns, section.rows)]
    if report.notes:
        parts += ["", "## Notes", ""] + [f"- {note}" for note in report.notes]
    return "\n".join(parts) + "\n"


# Everything from this line on in an existing report is hand-written (what was
# tried and what it bought) and survives regeneration.
HAND_WRITTEN_MARKER = "<!-- hand-written below: kept when the report is regenerated -->"


def write_report(path: str, text: str) -> None:
    """Write ``text`` to ``path``, keeping the hand-written tail of an existing report."""
    tail = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as existing:
            previous = existing.read()
        if HAND_WRITTEN_MARKER in previous:
            tail = "\n" + previous[previous.index(HAND_WRITTEN_MARKER):]
    with open(path, "w", encoding="utf-8") as output:
        output.write(text + tail)
