"""Smoke tests of the comparison script ``python -m fastem.bench``.

They check that the script runs end to end and reports what it promises (the
columns, agreement with scikit-learn, the first-fit targets table), never how
fast anything is: speed is measured by the script and by asv, not asserted
here. ``fastem.bench`` re-exports the public names of its modules; most tests
go through it, so they check that those names keep working.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys

import numpy as np
import pytest

from fastem import bench
from fastem._core.threads import max_threads
from fastem.bench import default_fit, first_fit, inference, memory
from fastem.bench.report import FIRST_FIT_TARGET_COLUMNS, Report, render


def cells(line: str) -> list:
    """The cells of a markdown table row (a pipe escaped as ``\\|`` is part of a cell)."""
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]


def number(cell: str) -> float:
    """A numeric table cell ('1,234' and '3.1e-14' included) as a float."""
    return float(cell.replace(",", ""))


def table_rows(markdown: str, first_column: str) -> tuple[list, list]:
    """The header and data rows of the first markdown table whose first column is ``first_column``."""
    lines = markdown.splitlines()
    for index, line in enumerate(lines[:-1]):
        if line.startswith("|") and cells(line)[0] == first_column and lines[index + 1].startswith("|---"):
            rows = []
            for row in lines[index + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            return cells(line), rows
    raise AssertionError(f"no table starting with column {first_column!r} in:\n{markdown}")


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    """One tiny run of the script, in process, written to a file as ``--output`` does."""
    path = tmp_path_factory.mktemp("bench") / "BENCHMARKS.md"
    # One repeat of one timed iteration: the table is checked, not the speed.
    # Peak memory needs child processes (about a second each to start);
    # test_peak_memory_is_measured_in_a_child_process covers it once.
    argv = ["--quick", "--n-samples", "300", "--repeats", "1", "--iterations", "1", "--no-memory"]
    argv += ["--cases", "full_d2_k3,float32,threads", "--output", str(path)]
    assert bench.main(argv) == 0
    return path.read_text(encoding="utf-8")


def test_em_table_has_the_promised_columns_and_one_row_per_case(quick_report):
    header, rows = table_rows(quick_report, "case")
    assert header == bench.EM_COLUMNS
    assert len(rows) == 1 and all(len(row) == len(header) for row in rows)
    row = dict(zip(header, rows[0]))
    assert row["case"].startswith("full, n=300 d=2 k=3")
    timed = ["fastem ms/iter", "sklearn ms/iter (BLAS 1 thread)", "sklearn ms/iter (BLAS all threads)", "naive ms/iter"]
    for column in timed:
        assert row[column] != "—"  # measured, not skipped, at this size
    assert number(row["GEMM GFLOP/s"]) > 0
    assert row["fastem peak MiB"] == row["sklearn peak MiB"] == "—"  # --no-memory


def test_fastem_and_sklearn_agree_in_the_report(quick_report):
    header, rows = table_rows(quick_report, "case")
    difference = number(dict(zip(header, rows[0]))["max rel. diff vs sklearn"])
    assert difference < 1e-6


def test_float32_table_reports_a_small_log_likelihood_difference(quick_report):
    float32_section = quick_report[quick_report.index("## float32") :]
    header, rows = table_rows(float32_section, "case")
    assert header == bench.DTYPE_COLUMNS and len(rows) == 1
    assert number(dict(zip(header, rows[0]))["rel. log-likelihood diff"]) < 1e-4


def test_threads_table_reports_the_speed_up_next_to_a_compute_bound_reference(quick_report):
    threads_section = quick_report[quick_report.index("## Threads") :]
    header, rows = table_rows(threads_section, "case")
    assert header == bench.THREAD_COLUMNS and len(rows) == 1
    row = dict(zip(header, rows[0]))
    # At 300 rows and one timed iteration, noise can exceed the iteration's
    # cost; the report then says so instead of printing a ratio.
    if "noise" in row["n_jobs=1 ms/iter"] + row["all threads ms/iter"]:
        assert row["speed-up"] == "—"
    else:
        assert number(row["speed-up"].rstrip("×")) > 0
    cell = row["compute-bound speed-up (range)"]
    median, low, high, pairs = re.fullmatch(r"(\S+)× \((\S+)× to (\S+)×; (\d+) pairs, 1-thread runs of about \d+ ms\)", cell).groups()
    assert 0 < number(low) <= number(median) <= number(high) and pairs == "10"


def test_alternating_timing_interleaves_the_variants_and_times_them_alike():
    calls = []

    def variant(label):
        def run(max_iter):
            calls.append((label, max_iter))
            return bench.FitResult(np.ones(1), np.ones((1, 1)), np.ones((1, 1, 1)), -1.0, max_iter)

        return run

    settings = bench.Settings(iterations=3, repeats=4, budget=60.0)
    timings = bench.time_alternating({"a": variant("a"), "b": variant("b")}, settings)
    timed = calls[4:]  # after a warm-up and a pilot run(1) of each
    assert calls[:4] == [("a", 1), ("a", 1), ("b", 1), ("b", 1)]
    assert timed == [("a", 1), ("a", 4), ("b", 1), ("b", 4), ("b", 1), ("b", 4), ("a", 1), ("a", 4)] * 2
    for label in "ab":
        assert (timings[label].iterations, timings[label].repeats) == (3, 4)
        assert timings[label].result.n_iter == 4 and timings[label].per_iteration is not None


def test_compute_bound_speedup_returns_one_positive_ratio_per_pair():
    ratios, seconds = bench.compute_bound_speedup(max_threads(), pairs=2)
    assert len(ratios) == 2 and all(np.isfinite(ratio) and ratio > 0 for ratio in ratios) and seconds > 0


def test_busy_tasks_computes_what_it_says():
    values = np.linspace(0.5, 1.0, 64 * 8)
    c = 1e-9 * np.arange(3)[:, None]
    want = (((values * values + c) * values + c) * values + c).sum()
    assert bench.busy_tasks(values, 3) == pytest.approx(want, rel=1e-12)


def test_report_records_the_machine_and_the_command(quick_report):
    assert "## Machine" in quick_report and "CPU:" in quick_report and "numba" in quick_report
    assert "python -m fastem.bench --quick --n-samples 300 --repeats 1" in quick_report
    assert "--cases full_d2_k3,float32,threads --output" in quick_report


def test_peak_memory_is_measured_in_a_child_process():
    case = bench.CASES["full_d2_k3"]
    increase, method = bench.peak_memory("fastem", case, 5000, bench.QUICK)
    assert increase >= 0
    assert "VmHWM" in method or "psutil" in method


def test_same_start_gives_the_same_parameters_in_all_three_implementations():
    X = bench.make_data(400, 3, 2, random_state=1)
    init = bench.initial_parameters(X, 2, "diag", random_state=1)
    fits = {name: bench.fit(name, X, init, "diag", 4) for name in bench.IMPLEMENTATIONS}
    assert all(result.n_iter == 4 for result in fits.values())
    assert bench.max_relative_difference(fits["fastem"], fits["sklearn"]) < 1e-10
    assert bench.max_relative_difference(fits["fastem"], fits["naive"]) < 1e-8
    np.testing.assert_allclose(fits["fastem"].lower_bound, fits["naive"].lower_bound, rtol=1e-10)


def test_unknown_case_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--cases", "no_such_case"])
    assert exit_info.value.code == 2
    assert "full_d8_k16" in capsys.readouterr().err  # the valid names are listed


def test_importing_fastem_imports_none_of_the_bench_extras():
    code = (
        "import sys, fastem, fastem.bench; "
        "print(sorted(m for m in ('sklearn', 'threadpoolctl', 'psutil', 'hmmlearn') if m in sys.modules))"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "[]"


def test_regenerating_a_report_keeps_its_hand_written_tail(tmp_path):
    from fastem.bench import HAND_WRITTEN_MARKER, write_report

    path = tmp_path / "BENCHMARKS.md"
    path.write_text("old table\n" + HAND_WRITTEN_MARKER + "\nwhat was tried\n")
    write_report(str(path), "new table\n")
    assert path.read_text() == "new table\n\n" + HAND_WRITTEN_MARKER + "\nwhat was tried\n"
    fresh = tmp_path / "fresh.md"
    write_report(str(fresh), "only the table\n")
    assert fresh.read_text() == "only the table\n"


def test_package_re_exports_the_public_names_of_its_modules():
    for module_info in pkgutil.iter_modules(bench.__path__):
        if module_info.name == "__main__":
            continue
        module = importlib.import_module(f"fastem.bench.{module_info.name}")
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", module.__name__) != module.__name__:
                continue
            if isinstance(value, type(sys)) or name == "annotations":
                continue
            assert getattr(bench, name, None) is value, f"fastem.bench.{name} (from {module.__name__})"
            assert name in bench.__all__, name


def test_child_process_code_imports_what_it_names():
    # The child programs run in fresh interpreters; a name they import that
    # moved would only fail there.
    for code in (first_fit._FIRST_FIT_CODE, first_fit._TARGET_FITS_CODE, memory._PEAK_MEMORY_CODE, inference._PEAK_CHILD):
        for module, names in re.findall(r"from (fastem[\w.]*) import ([\w, ]+)", code):
            imported = importlib.import_module(module)
            for name in names.split(","):
                assert hasattr(imported, name.strip()), f"{module}.{name.strip()}"


# What first_fit_targets returns, with made-up seconds: every kind of result.
FAKE_TARGETS = {
    "cold_fit": {"seconds": 7.25},
    "inference": {"seconds": 2.5},
    "cold_diag_float32": {"not_run": "not run with --quick (it compiles kernels of its own)"},
    "second_feature_count": {"seconds": 3.0},
    "warm": {"first": 0.75, "again": 0.5},
    "compile": {"failed": "compile command failed: usage: python -m fastem [-h] {demo,fit}\nerror: invalid choice: 'compile' | x"},
    "compiled_tied": {"not_run": "not run: the compile command failed"},
    # compiled_full_float32 left out: reported as not measured
}


def test_first_fit_targets_table_renders_each_figure_next_to_its_target():
    rows = bench.first_fit_target_rows(FAKE_TARGETS, 100_000, 3)
    report = Report(settings=bench.QUICK, command="python -m fastem.bench --cases first_fit_targets", gemm=1.0)
    report.first_fit_target_rows = rows
    markdown = render(report)
    section = markdown[markdown.index("## First fit: the targets\n") :]
    header, table = table_rows(section, "case")
    assert header == FIRST_FIT_TARGET_COLUMNS == ["case", "measured", "target", "met"]
    assert len(table) == len(bench.FIRST_FIT_TARGETS) and all(len(row) == 4 for row in table)
    by_key = {target.key: dict(zip(header, row)) for target, row in zip(bench.FIRST_FIT_TARGETS, table)}

    cold = by_key["cold_fit"]
    assert cold["case"].startswith("(a) empty cache: `GaussianMixture(3).fit(X)`, X 1e5 x 2 float64")
    assert (cold["measured"], cold["target"], cold["met"]) == ("7.25 s", "≤ 10 s", "yes")
    assert (by_key["inference"]["measured"], by_key["inference"]["target"], by_key["inference"]["met"]) == (
        "2.50 s", "≤ 2 s", "no"
    )
    assert by_key["second_feature_count"]["met"] == "yes"  # 3 s against 4 s
    warm = by_key["warm"]
    assert warm["measured"] == "+0.25 s (0.75 s first, 0.50 s again)"
    assert (warm["target"], warm["met"]) == ("≤ +0.5 s over a refit", "yes")

    # Failures and cases not run are said, never counted as met or missed.
    assert by_key["cold_diag_float32"]["measured"].startswith("not run with --quick")
    failed = by_key["compile"]
    assert failed["measured"].startswith("compile command failed: usage:") and "invalid choice" in failed["measured"]
    assert (failed["target"], failed["met"]) == ("—", "—")
    assert by_key["compiled_tied"]["met"] == by_key["compiled_full_float32"]["met"] == "—"
    assert by_key["compiled_full_float32"]["measured"] == "not measured"
    # The stderr tail's newline and pipe did not break the table.
    assert "\\| x" in section


def test_compile_command_failure_is_reported_not_raised(monkeypatch):
    def failing_run(command, **kwargs):
        assert command[1:] == ["-m", "fastem", "compile"] and kwargs["env"]["NUMBA_CACHE_DIR"] == "/nowhere"
        return subprocess.CompletedProcess(command, 2, "", "usage: python -m fastem\nerror: invalid choice: 'compile'\n")

    monkeypatch.setattr(first_fit.subprocess, "run", failing_run)
    result = first_fit._compile_ahead({"NUMBA_CACHE_DIR": "/nowhere"})
    assert result == {"failed": "compile command failed: usage: python -m fastem error: invalid choice: 'compile'"}


def test_first_fit_targets_is_a_case_of_its_own():
    case = bench.CASES["first_fit_targets"]
    assert (case.kind, case.n_samples, case.n_features, case.n_components, case.covariance_type) == (
        "first_fit_targets", 100_000, 2, 3, "full"
    )
    assert bench.RUNNERS[case.kind] is bench.run_first_fit_targets_case
    assert bench.build_parser().parse_args(["--cases", "first_fit_targets"]).cases == ["first_fit_targets"]
    # --quick measures (a), (b) and (e) only; the table says so for the others.
    quick = [target.key for target in bench.FIRST_FIT_TARGETS if target.quick]
    assert quick == ["cold_fit", "inference", "warm"] and not bench.QUICK.all_first_fit_targets


def test_hmm_cases_report_speed_up_target_and_agreement_with_hmmlearn(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--n-samples", "400", "--repeats", "1", "--iterations", "1", "--no-memory",
            "--cases", "hmm_diag_100x10000_d4_k8,hmm_full_1x1000000_d2_k4,hmm_threads", "--output", str(path)]
    assert bench.main(argv) == 0
    text = path.read_text(encoding="utf-8")
    header, rows = table_rows(text, "case")
    assert header == bench.HMM_COLUMNS
    assert [row[0] for row in rows] == ["diag, 4 x 100 rows, d=4, k=8", "full, 1 x 400 rows, d=2, k=4"]
    for row in rows:
        assert row[4] == ">= 20x" and row[5] in ("yes", "no")
        assert number(row[6]) < 1e-8  # the same start gives hmmlearn's answers
    assert "## Gaussian HMM: threads (fastem `n_jobs`)" in text


def test_hmm_first_fit_child_fits_predicts_and_refits():
    from fastem.bench import hmm
    from fastem.bench.child_process import _run_child

    spec = dict(n_samples=300, n_features=2, n_components=2, covariance_type="diag")
    result = _run_child(hmm._HMM_FIRST_FIT_CODE, spec)
    assert set(result) == {"first", "predict", "again"}
    assert all(seconds > 0 for seconds in result.values())


def test_missing_value_cases_report_the_ratio_to_complete_data_and_per_row_figures(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--n-samples", "600", "--repeats", "1", "--iterations", "1", "--no-memory",
            "--cases", "missing_full_100000_d8_k8,missing_impute", "--output", str(path)]
    assert bench.main(argv) == 0
    text = path.read_text(encoding="utf-8")
    header, rows = table_rows(text, "case")
    assert header == bench.MISSING_COLUMNS
    assert [row[0] for row in rows] == ["full, 600 x 8, k=8, 20% missing"]
    complete, with_nan, ratio = number(rows[0][1]), number(rows[0][2]), number(rows[0][3].rstrip("×"))
    assert complete > 0 and with_nan > 0 and ratio == pytest.approx(with_nan / complete, rel=0.1)
    assert rows[0][4] == "<= 3x" and rows[0][5] in ("yes", "no") and number(rows[0][6]) > 1
    assert "## Missing values: imputation and scoring per row" in text


def test_missing_value_first_fit_child_fits_imputes_and_refits():
    from fastem.bench import missing
    from fastem.bench.child_process import _run_child

    spec = dict(n_samples=300, n_features=3, n_components=2, covariance_type="diag", missing_fraction=0.2)
    result = _run_child(missing._FIRST_FIT_CODE, spec)
    assert set(result) == {"first", "impute", "again"}
    assert all(seconds > 0 for seconds in result.values())


def test_scale_cases_report_memmap_memory_and_dask_ratios(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--n-samples", "20000", "--repeats", "1", "--cases",
            "scale_memmap_20000000_d8_k4,scale_dask_2000000_d8_k4", "--output", str(path)]
    assert bench.main(argv) == 0
    text = path.read_text(encoding="utf-8")
    header, rows = table_rows(text, "case")
    assert header[:3] == ["case", "data MiB", "peak RSS increase MiB"]
    memmap = dict(zip(header, rows[0]))
    assert memmap["case"] == "full, 20,000 x 8, k=4" and memmap["same"] == "yes"
    assert number(memmap["memmap ms/iter"]) > 0 and number(memmap["in-memory ms/iter"]) > 0
    dask_header, dask_rows = table_rows(text[text.index("## Dask"):], "case")
    row = dict(zip(dask_header, dask_rows[0]))
    assert row["target"] == "<= 1.3x" and row["met"] in ("yes", "no")
    assert number(row["threaded ms/iter"]) > 0 and number(row["cluster ms/iter"]) > 0


def test_default_fit_and_inference_cases_report_speed_ups_shares_and_agreement(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--n-samples", "3000", "--repeats", "1", "--cases", "default_fit_k4,inference_full_d8_k16",
            "--output", str(path)]
    assert bench.main(argv) == 0
    text = path.read_text(encoding="utf-8")
    header, rows = table_rows(text[text.index("## The whole default fit"):], "case")
    assert [row[1] for row in rows] == list(default_fit._TYPES)
    for row in map(lambda r: dict(zip(header, r)), rows):
        assert row["case"] == "3,000 x 10, k=4"
        assert 0 < number(row["init s"]) and row["init share"].endswith("%")
        assert number(row["fastem s"]) > 0 and number(row["sklearn s"]) > 0
        assert abs(number(row["rel. diff"])) < 1e-3  # the same optimum of well-separated blobs
    header, rows = table_rows(text[text.index("## Inference"):], "case")
    assert [row[1] for row in rows] == ["predict_proba", "score_samples", "predict"]
    by_method = {row[1]: dict(zip(header, row)) for row in rows}
    assert number(by_method["predict_proba"]["largest difference"]) < 1e-8  # the same parameters both sides
    assert number(by_method["score_samples"]["largest difference"]) < 1e-8
    assert by_method["predict"]["largest difference"] == "0 labels differ"
    for row in by_method.values():
        assert number(row["fastem peak beyond output MiB"]) < 64


def test_shared_cpus_competitor_runs_only_inside_its_block():
    import psutil

    from fastem.bench.shared_cpus import competitor

    before = {child.pid for child in psutil.Process().children()}
    with competitor(True):
        busy = [child for child in psutil.Process().children() if child.pid not in before]
        assert len(busy) == 1 and busy[0].is_running()
        assert busy[0].cpu_times().user > 0.1  # it is really spinning
    assert not busy[0].is_running() or busy[0].status() == psutil.STATUS_ZOMBIE
    with competitor(False):
        assert {child.pid for child in psutil.Process().children()} == before


def test_shared_cpus_grid_times_every_cell_on_each_side(monkeypatch):
    from fastem.bench import shared_cpus
    from fastem.datasets import load_faithful

    monkeypatch.setattr(shared_cpus, "_TYPES", ("full",))
    cells = shared_cpus._grid({"Old Faithful": load_faithful()[0]}, repeats=1, seed=0)
    assert [(cell[0], cell[1], cell[2]) for cell in cells] == [("Old Faithful", "full", k) for k in range(1, 9)]
    for *_, seconds in cells:
        assert set(seconds) == {"fastem defaults", "fastem n_jobs=1", "sklearn"}
        assert all(value > 0 for value in seconds.values())


def test_load_faithful_is_the_classic_data_set():
    from fastem.datasets import load_faithful

    X, names = load_faithful()
    assert X.shape == (272, 2) and names == ["eruptions", "waiting"]
    np.testing.assert_allclose(X.mean(axis=0), [3.4878, 70.8971], atol=1e-4)
