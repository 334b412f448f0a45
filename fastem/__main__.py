"""Command line: ``fastem demo``, ``fit FILE``, ``select FILE``, ``predict MODEL FILE``, ``fit-hmm FILE``, ``compile``.

Also ``python -m fastem ...``. Every command that reads data reads it with
:func:`fastem.tables.read_table` and the same options (``--columns``,
``--header``/``--no-header``, ``--delimiter``). Errors print one line,
``fastem: error: ...``, and exit with status 2; warnings raised during a
command print one line each, ``fastem: warning: <Category>: <message>``.
"""

from __future__ import annotations

import argparse
import lzma
import os
import sys
import time
import warnings
import zlib

import numpy as np

from fastem._core.compilation import announce_compilation, compile_ahead
from fastem._core.feature_names import record_feature_names
from fastem.hmm.estimator import GaussianHMM
from fastem.hmm.parameters import COVARIANCE_TYPES as HMM_COVARIANCE_TYPES
from fastem.mixture.covariance_models import COVARIANCE_MODELS, MCLUST_MODELS, SKLEARN_TYPES, kernel_layout
from fastem.mixture.estimator import GaussianMixture
from fastem.mixture.parameters import COVARIANCE_TYPES, INIT_METHODS
from fastem.mixture.selection import CRITERIA, GaussianMixtureIC
from fastem.table_columns import MISSING_MARKERS
from fastem.tables import PARQUET_EXTRA, WHITESPACE, Table, read_table


def _describe(model: GaussianMixture) -> str:
    """A readable table of a fitted mixture."""
    lines = [
        f"converged: {model.converged_} after {model.n_iter_} iterations; "
        f"mean log-likelihood {model.lower_bound_:.6f}",
        f"{'component':>9}  {'weight':>8}  mean",
    ]
    order = np.argsort(-model.weights_)
    for j in order:
        mean = np.array2string(model.means_[j], precision=4, suppress_small=True, separator=", ")
        lines.append(f"{j:>9}  {model.weights_[j]:8.4f}  {mean}")
        cov = model.covariances_ if kernel_layout(model.covariance_type) == "tied" else model.covariances_[j]
        text = np.array2string(np.asarray(cov), precision=4, suppress_small=True, separator=", ")
        lines.append(f"{'':>9}  {'cov':>8}  " + text.replace("\n", "\n" + " " * 21))
    return "\n".join(lines)


def _read(args, feature_names=None, sequence_column=None) -> Table:
    """The data file of ``args.path`` with the command's data options; notes go to stderr."""
    table = read_table(args.path, args.columns, header=args.header, delimiter=args.delimiter,
                       sequence_column=sequence_column, feature_names=feature_names)
    for note in table.notes:
        print(f"fastem: note: {note}", file=sys.stderr)
    return table


def _columns_line(table: Table) -> str:
    return "" if table.names is None else "\ncolumns: " + ", ".join(table.names)


def _save_with_columns(model, names, path: str) -> None:
    """Save ``model``, with scikit-learn's ``feature_names_in_`` when the columns have distinct names.

    Set only now, after every call on a plain array (bic, plot): an estimator
    that knows names warns when later given an array without them. Model files
    that store the attribute let ``predict`` pick and order a file's columns.
    """
    if names and all(names) and len(set(names)) == len(names):
        record_feature_names(model, np.asarray(names, dtype=object))
    model.save(path)
    print(f"model saved to {path}")


def _model_from(args) -> GaussianMixture:
    return GaussianMixture(
        n_components=args.n_components,
        covariance_type=args.covariance_type,
        max_iter=args.max_iter,
        tol=args.tol,
        n_init=args.n_init,
        init_params=args.init_params,
        random_state=args.random_state,
        n_jobs=args.n_jobs,
    )


def _add_model_options(parser: argparse.ArgumentParser, n_components: int) -> None:
    parser.add_argument("-k", "--n-components", type=int, default=n_components,
                        help="number of mixture components (default: %(default)s)")
    parser.add_argument("--covariance-type", choices=COVARIANCE_MODELS, default="full", metavar="TYPE",
                        help="full, tied, diag, spherical, or an mclust model such as VEV (default: %(default)s)")
    parser.add_argument("--init-params", choices=INIT_METHODS, default="kmeans",
                        help="how EM starts: %(choices)s (default: %(default)s)")
    parser.add_argument("--max-iter", type=int, default=100, help="most EM iterations per start (default: %(default)s)")
    parser.add_argument("--tol", type=float, default=1e-3,
                        help="stop when the mean log-likelihood changes less than this (default: %(default)s)")
    parser.add_argument("--n-init", type=int, default=1, help="starts; the best is kept (default: %(default)s)")
    parser.add_argument("--random-state", type=int, default=0, help="seed of the starts (default: %(default)s)")
    parser.add_argument("--n-jobs", type=int, default=None, help="threads (default: the CPUs this process may use; one for small data)")


DATA_FILES = (
    "Data files: .csv, .tsv, .txt or any delimited text (also .gz, .bz2, .xz), .npy, or .parquet (needs "
    f"pyarrow: {PARQUET_EXTRA}). A first line with no number and some text is a header of column names. An "
    "unnamed first column (the row index of pandas' to_csv and R's write.csv) and text columns are left out, "
    "with a note on stderr. Empty fields and " + ", ".join(MISSING_MARKERS[1:]) + " are missing values (NaN; "
    "mixtures fit and predict with them). Lines are numbered from 1, counting the header, and columns from 1."
)


def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "whitespace": WHITESPACE, "space": WHITESPACE, " ": WHITESPACE}
    value = named.get(text.lower(), text)
    if value != WHITESPACE and (len(value) != 1 or value in "\"\r\n"):
        raise argparse.ArgumentTypeError(f"expected one character, 'tab' or 'whitespace', got {text!r}")
    return value


def _add_data_options(parser: argparse.ArgumentParser, columns_default: str = None) -> None:
    parser.add_argument(
        "--columns", metavar="LIST",
        help="the columns to use, in this order: comma-separated names or positions, ranges like 2-5; positions "
        "are 1-based (the first column of the file is 1) and count every column, a row index too (default: "
        + (columns_default or "every numeric column; an unnamed row index and text columns are left out") + ")",
    )
    header = parser.add_mutually_exclusive_group()
    header.add_argument("--header", dest="header", action="store_true", default=None,
                        help="the first line holds the column names (default: detected: a first line is a header "
                        "when it holds no number and some text, so names that are numbers, like 2019, need "
                        "--header)")
    header.add_argument("--no-header", dest="header", action="store_false",
                        help="the first line is data (default: detected, see --header)")
    parser.add_argument("--delimiter", type=_delimiter, default=None, metavar="CHAR",
                        help="field separator: one character such as , ; or |, 'tab', or 'whitespace' (runs of "
                        "spaces and tabs) (default: the first of tab ; , and whitespace that splits the first "
                        "lines evenly; tab for .tsv)")


def _compiling_message(model: GaussianMixture, X) -> str:
    return (
        f"compiling kernels for {model.covariance_type} covariance, {np.asarray(X).dtype}, {np.shape(X)[1]} features "
        "(first run only: cached for later runs; `python -m fastem compile` does it ahead of time) ..."
    )


def run_demo(args) -> int:
    from fastem.datasets import DEMO_MEANS, DEMO_WEIGHTS, demo_data

    X, _ = demo_data(args.n_samples, random_state=args.random_state)
    print(f"fastem demo: {X.shape[0]} points from a known 3-component 2-D mixture")
    print("true weights:", np.array2string(DEMO_WEIGHTS, precision=4))
    print("true means:  ", np.array2string(DEMO_MEANS, precision=4).replace("\n", "\n" + " " * 14))
    model = _model_from(args)
    start = time.perf_counter()
    with announce_compilation(_compiling_message(model, X)):
        model.fit(X)
    elapsed = time.perf_counter() - start
    print(f"fitted in {elapsed:.3f} s (includes Numba compilation on a first run)")
    print(_describe(model))
    return 0


def run_fit(args) -> int:
    table = _read(args)
    X = table.data
    model = _model_from(args)
    with announce_compilation(_compiling_message(model, X)):
        labels = model.fit_predict(X)
    print(f"fitted {X.shape[0]} x {X.shape[1]} data from {args.path}" + _columns_line(table))
    print(_describe(model))
    print(f"BIC {model.bic(X):.4f}  AIC {model.aic(X):.4f}")
    if args.labels:
        np.savetxt(args.labels, labels, fmt="%d")
        print(f"labels written to {args.labels}")
    if args.plot:
        _save_plot(args.plot, lambda: _plot().mixture(model, X))
        print(f"picture of the fitted mixture written to {args.plot}")
    if args.save:
        _save_with_columns(model, table.names, args.save)
    return 0


def run_predict(args) -> int:
    model = GaussianMixture.load(args.model)
    fitted_names = getattr(model, "feature_names_in_", None)
    table = _read(args, feature_names=fitted_names)
    if fitted_names is not None and table.names is None and args.columns is None:
        print(f"fastem: note: {args.path} has no header: its numeric columns are taken in order for the model's "
              f"columns {', '.join(map(str, fitted_names))}.", file=sys.stderr)
    # The columns are chosen by name above; predict gets a plain array, on which an
    # estimator that knows names would warn that X has none.
    record_feature_names(model, None)
    X = table.data
    if X.shape[1] != model.n_features_in_:
        chosen = "" if table.names is None else f" ({', '.join(table.names)})"
        raise ValueError(f"{X.shape[1]} columns of {args.path}{chosen} for a model fitted on "
                         f"{model.n_features_in_}: --columns chooses them.")
    message = (f"compiling kernels for {model.covariance_type} covariance, {X.shape[1]} features (first run only: "
               "cached for later runs; `fastem compile` does it ahead of time) ...")
    with announce_compilation(message):
        result = model.predict_proba(X) if args.proba else model.predict(X)
    output = args.output or sys.stdout
    if args.proba:
        header = ",".join(f"p{j}" for j in range(result.shape[1]))
        np.savetxt(output, result, fmt="%.8g", delimiter=",", header=header, comments="")
    else:
        np.savetxt(output, result, fmt="%d")
    if args.output:
        what = "probabilities" if args.proba else "labels"
        print(f"{what} of {X.shape[0]} rows written to {args.output}")
    return 0


def _plot():
    """``fastem.plot`` on matplotlib's file-only backend (the CLI never opens a window)."""
    import matplotlib

    matplotlib.use("Agg")
    from fastem import plot

    return plot


def _save_plot(path: str, draw) -> None:
    import matplotlib.pyplot as plt

    axes = draw()
    figure = np.ravel(axes)[0].figure
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _component_range(text: str) -> list:
    """'1-9' -> 1..9; '2,4,6' -> those; '5' -> 1..5."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            values = list(range(low, high + 1))
        elif "," in text:
            values = [int(part) for part in text.split(",") if part.strip()]
        else:
            values = list(range(1, int(text) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N, LOW-HIGH or a comma-separated list, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"numbers of components must be positive integers, got {text!r}")
    return values


def _models_option(text: str) -> list:
    if text in ("all", "mclust"):
        return list(SKLEARN_TYPES) if text == "all" else list(MCLUST_MODELS)
    return list(_comma_list(str, COVARIANCE_MODELS)(text))


def _criterion_table(ic: GaussianMixtureIC) -> str:
    """Models as rows, numbers of components as columns; 'failed' where a cell could not be fitted."""
    table = ic.results_
    counts = sorted(set(int(k) for k in table["n_components"]))
    models = list(dict.fromkeys(table["covariance_type"]))
    values = {(m, int(k)): (v, e) for m, k, v, e in zip(table["covariance_type"], table["n_components"],
                                                         table[ic.criterion], table["error"])}
    lines = [f"{ic.criterion.upper()} (lower is better)", f"{'model':>9} " + "".join(f"{k:>12}" for k in counts)]
    for model in models:
        cells = []
        for k in counts:
            value, error = values[(model, k)]
            text = "failed" if error else f"{value:.2f}"
            if model == ic.covariance_type_ and k == ic.n_components_:
                text += "*"
            cells.append(f"{text:>12}")
        lines.append(f"{model:>9} " + "".join(cells))
    return "\n".join(lines)


def run_select(args) -> int:
    table = _read(args)
    X = table.data
    ic = GaussianMixtureIC(
        args.n_components, covariance_type=args.models, criterion=args.criterion, n_init=args.n_init,
        random_state=args.random_state, n_jobs=args.n_jobs,
    )
    message = (f"compiling kernels for {X.shape[1]} features (first run only: cached for later runs; "
               "`python -m fastem compile` does it ahead of time) ...")
    start = time.perf_counter()
    with announce_compilation(message):
        ic.fit(X)
    elapsed = time.perf_counter() - start
    print(f"fitted {len(ic.results_['error'])} models to {X.shape[0]} x {X.shape[1]} data from {args.path} "
          f"in {elapsed:.2f} s" + _columns_line(table))
    print(_criterion_table(ic))
    failed = [(m, k, e) for m, k, e in zip(ic.results_["covariance_type"], ic.results_["n_components"],
                                            ic.results_["error"]) if e]
    for model, k, error in failed[:5]:
        print(f"  failed: {model}, {k} components: {error}")
    if len(failed) > 5:
        print(f"  ... and {len(failed) - 5} more failed cells")
    print(f"chosen: {ic.covariance_type_} with {ic.n_components_} components, "
          f"{ic.criterion.upper()} {ic.criterion_:.4f}")
    print(_describe(ic.best_estimator_))
    if args.plot:
        plot = _plot()
        _save_plot(args.plot, lambda: plot.bic(ic))
        stem, dot, suffix = args.plot.rpartition(".")
        mixture_path = f"{stem}-mixture.{suffix}" if dot else f"{args.plot}-mixture"
        _save_plot(mixture_path, lambda: plot.mixture(ic.best_estimator_, X))
        print(f"criterion curves written to {args.plot}, the chosen mixture to {mixture_path}")
    if args.save:
        _save_with_columns(ic.best_estimator_, table.names, args.save)
    return 0


def _sequence_lengths(ids: np.ndarray) -> np.ndarray:
    """Consecutive rows sharing a value form one sequence (a repeated id later starts a new one)."""
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    return np.diff(np.append(starts, len(ids)))


def _describe_hmm(model: GaussianHMM, log_likelihood: float) -> str:
    """A readable summary of a fitted HMM."""
    lines = [
        f"converged: {model.monitor_.converged} after {model.monitor_.iter} iterations; log-likelihood {log_likelihood:.6f}",
        "start probabilities: " + np.array2string(model.startprob_, precision=4, suppress_small=True, separator=", "),
        "transition matrix:",
        "  " + np.array2string(model.transmat_, precision=4, suppress_small=True, separator=", ").replace("\n", "\n  "),
        f"{'state':>5}  mean",
    ]
    for j in range(model.n_components):
        lines.append(f"{j:>5}  " + np.array2string(model.means_[j], precision=4, suppress_small=True, separator=", "))
    return "\n".join(lines)


def run_fit_hmm(args) -> int:
    table = _read(args, sequence_column=args.sequence_column)
    X = table.data
    lengths = None if table.sequence is None else _sequence_lengths(table.sequence)
    model = GaussianHMM(
        args.n_components, covariance_type=args.covariance_type, n_iter=args.n_iter, tol=args.tol,
        random_state=args.random_state, n_jobs=args.n_jobs,
    )
    message = (f"compiling kernels for a {args.covariance_type} GaussianHMM, {X.shape[1]} features (first run only: "
               "cached for later runs; `python -m fastem compile` does it ahead of time) ...")
    with announce_compilation(message):
        model.fit(X, lengths)
        log_likelihood, states = model.decode(X, lengths)
    n_sequences = 1 if lengths is None else len(lengths)
    print(f"fitted {X.shape[0]} x {X.shape[1]} data in {n_sequences} sequence(s) from {args.path}"
          + _columns_line(table))
    print(_describe_hmm(model, model.score(X, lengths)))
    print(f"Viterbi log-probability {log_likelihood:.4f}; BIC {model.bic(X, lengths):.4f}  AIC {model.aic(X, lengths):.4f}")
    if args.states:
        np.savetxt(args.states, states, fmt="%d")
        print(f"Viterbi states written to {args.states}")
    if args.save:
        _save_with_columns(model, table.names, args.save)
    return 0


def _comma_list(kind, choices=None):
    def parse(text: str) -> tuple:
        values = tuple(kind(item) for item in text.split(",") if item.strip())
        if not values:
            raise argparse.ArgumentTypeError("expected a comma-separated list")
        bad = [value for value in values if choices is not None and value not in choices]
        if bad:
            raise argparse.ArgumentTypeError(f"invalid choice {bad[0]!r} (choose from {', '.join(choices)})")
        if kind is int and min(values) < 1:
            raise argparse.ArgumentTypeError("feature counts must be positive integers")
        return values

    return parse


def run_compile(args) -> int:
    from fastem.hmm.precompile import compile_tasks as hmm_tasks
    from fastem.mixture.precompile import compile_tasks as mixture_tasks
    from fastem.mixture.precompile import missing_value_compile_tasks
    from fastem.topics.precompile import compile_tasks as topic_tasks

    tasks = []
    if "mixture" in args.models:
        tasks += mixture_tasks(args.dtypes, args.covariance_types, args.features)
    if "missing" in args.models:
        tasks += missing_value_compile_tasks(args.dtypes)
    if "hmm" in args.models:
        if "mixture" not in args.models or "float64" not in args.dtypes:
            # HMM emissions use the mixture's float64 log-probability kernels.
            tasks += mixture_tasks(("float64",), args.covariance_types, args.features)
        tasks += hmm_tasks(args.covariance_types)
    if "topics" in args.models:
        tasks += topic_tasks()
    print(f"compiling {len(tasks)} kernel specialisations into Numba's cache (see the README for where it lives)")
    start = time.perf_counter()
    done = compile_ahead(tasks)
    n_kernels = sum(len(compiled) for _, compiled, _ in done)
    print(f"done in {time.perf_counter() - start:.1f} s: {n_kernels} kernels compiled, "
          f"{sum(not compiled for _, compiled, _ in done)} specialisations already cached")
    return 0


# "missing": mixtures on data with NaN, whose kernels are separate from the complete-data ones;
# "topics": LatentDirichletAllocation (one set of kernels for every dtype).
MODELS = ("mixture", "missing", "hmm", "topics")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("fastem")
    except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
        import fastem

        return getattr(fastem, "__version__", "unknown")


def _data_command(commands, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=summary, description=description, epilog=DATA_FILES)
    parser.add_argument("path", help="the data file: one row per observation, one column per feature")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastem", description="Fit Gaussian mixtures and HMMs with fastem, and predict with saved models.",
        epilog="`fastem COMMAND --help` describes a command. " + DATA_FILES,
    )
    parser.add_argument("--version", action="version", version=f"fastem {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="fit the built-in demo data set and print the fitted mixture",
                               description="Draw points from a known 3-component 2-D mixture, fit it, and print "
                               "the true and the fitted parameters.")
    demo.add_argument("--n-samples", type=int, default=100_000, help="points drawn (default: %(default)s)")
    _add_model_options(demo, n_components=3)

    fit = _data_command(commands, "fit", summary="fit a Gaussian mixture to a data file",
                        description="Fit a GaussianMixture to the rows of a data file and print it; --save keeps "
                        "it for `fastem predict`.")
    _add_data_options(fit)
    fit.add_argument("--labels", metavar="FILE",
                     help="write the predicted component of each row to this file, one per line (default: not written)")
    fit.add_argument("--save", metavar="MODEL",
                     help="save the fitted model to this file, with the column names when the file has a header "
                     "(.npz; read by `fastem predict` and GaussianMixture.load) (default: not saved)")
    fit.add_argument("--plot", metavar="IMAGE", help="draw the data and the fitted components to this image file "
                     "(needs matplotlib) (default: no picture)")
    _add_model_options(fit, n_components=2)

    select = _data_command(
        commands, "select",
        summary="choose the covariance model and number of components of a mixture by BIC, AIC or ICL",
        description="Fit every (covariance model, number of components) of a grid to a data file "
        "(fastem.GaussianMixtureIC), print the criterion table and the chosen mixture.",
    )
    _add_data_options(select)
    select.add_argument("-k", "--n-components", type=_component_range, default=list(range(1, 10)),
                        help="numbers of components: N (1..N), LOW-HIGH, or a comma-separated list (default: 1-9)")
    select.add_argument("--models", type=_models_option, default=list(SKLEARN_TYPES),
                        help="'all' (scikit-learn's four, the default), 'mclust' (mclust's fourteen), "
                        "or a comma-separated list such as full,VEV,EII")
    select.add_argument("--criterion", choices=CRITERIA, default="bic",
                        help="%(choices)s; lower is better (default: %(default)s)")
    select.add_argument("--n-init", type=int, default=5, help="starts per cell (default: %(default)s)")
    select.add_argument("--random-state", type=int, default=0, help="seed of the starts (default: %(default)s)")
    select.add_argument("--n-jobs", type=int, default=None, help="cells fitted at once (default: all CPUs)")
    select.add_argument("--save", metavar="MODEL", help="save the chosen mixture to this file, as fit --save does "
                        "(default: not saved)")
    select.add_argument("--plot", metavar="IMAGE", help="draw the criterion curves to this image file, and the "
                        "chosen mixture to the same name with '-mixture' before the extension (needs matplotlib) "
                        "(default: no picture)")

    predict = commands.add_parser(
        "predict", help="label the rows of a data file with a saved mixture",
        description="Load a mixture saved by `fastem fit --save` (or GaussianMixture.save) and write, for each row "
        "of the data file, its most probable component (0 to k-1, one per line), or with --proba a CSV whose "
        "header line is p0,p1,... and whose columns are the probabilities of each component. When the model "
        "was saved with column names and the file has a header, the file's columns of those names are used, "
        "in the model's order.",
        epilog=DATA_FILES,
    )
    predict.add_argument("model", help="a model file written by `fastem fit --save` or `fastem select --save`")
    predict.add_argument("path", help="the data file, with the columns the model was fitted on")
    _add_data_options(predict, columns_default="the model's columns by name when the model and the file have "
                      "names, else every numeric column but a row index")
    predict.add_argument("--proba", action="store_true",
                         help="write the probability of each component (a CSV with a header line p0,p1,...) "
                         "(default: off: the most probable component of each row)")
    predict.add_argument("-o", "--output", metavar="FILE", help="write to this file (default: standard output)")

    fit_hmm = _data_command(
        commands, "fit-hmm", summary="fit a Gaussian HMM to a data file",
        description="Fit a GaussianHMM to the rows of a data file: one sequence, or with --sequence-column, one "
        "sequence per run of consecutive rows sharing that column's value (the column is not a feature).",
    )
    _add_data_options(fit_hmm, columns_default="every numeric column but a row index and the sequence column")
    fit_hmm.add_argument("--sequence-column", metavar="COLUMN",
                         help="name or 1-based position of a column of sequence ids, numbers or text (default: "
                         "none: the rows are one sequence)")
    fit_hmm.add_argument("-k", "--n-components", type=int, default=2, help="hidden states (default: %(default)s)")
    fit_hmm.add_argument("--covariance-type", choices=HMM_COVARIANCE_TYPES, default="diag",
                         help="%(choices)s (default: %(default)s)")
    fit_hmm.add_argument("--n-iter", type=int, default=100, help="most EM iterations (default: %(default)s)")
    fit_hmm.add_argument("--tol", type=float, default=1e-2,
                         help="stop when the log-likelihood changes less than this (default: %(default)s)")
    fit_hmm.add_argument("--random-state", type=int, default=0, help="seed of the start (default: %(default)s)")
    fit_hmm.add_argument("--n-jobs", type=int, default=None, help="threads (default: the CPUs this process may use; one for small data)")
    fit_hmm.add_argument("--states", metavar="FILE", help="write the Viterbi state of each row to this file, one "
                         "per line (default: not written)")
    fit_hmm.add_argument("--save", metavar="MODEL", help="save the fitted model to this file (GaussianHMM.load "
                         "reads it) (default: not saved)")
    from fastem.mixture.precompile import DEFAULT_FEATURES, DTYPES

    compile_ = commands.add_parser(
        "compile",
        help="compile kernels ahead of time into Numba's on-disk cache (for container images and CI caches)",
        description="Compile the kernels that fits of the chosen dtypes, covariance types and feature counts "
        "need, and store them in Numba's cache, so that the first fit in a new process does not wait on the "
        "compiler. Full covariances have one specialisation per feature count from 2 to 8, one shared by 1 "
        "and 9 to 31 features, and one for 32 or more (BLAS); the other types one per dtype.",
    )
    compile_.add_argument("--models", type=_comma_list(str, MODELS), default=MODELS,
                          help=f"comma-separated (default: {','.join(MODELS)})")
    compile_.add_argument("--dtypes", type=_comma_list(str, DTYPES), default=DTYPES,
                          help=f"comma-separated (default: {','.join(DTYPES)})")
    compile_.add_argument("--covariance-types", type=_comma_list(str, COVARIANCE_TYPES), default=COVARIANCE_TYPES,
                          help="comma-separated (default: all four)")
    compile_.add_argument("--features", type=_comma_list(int), default=DEFAULT_FEATURES,
                          help="comma-separated feature counts (default: 1 to 9, which covers every count below 32)")
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """One line per warning, without the source line of fastem's internals that raised it."""
    text = " ".join(str(message).split())
    print(f"fastem: warning: {category.__name__}: {text}", file=sys.stderr)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"no such file: {exc.filename}"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"permission denied: {exc.filename}"
    if isinstance(exc, MemoryError):
        return f"out of memory {exc}".strip()
    if isinstance(exc, (EOFError, lzma.LZMAError, zlib.error)):
        return f"the compressed data file is truncated or corrupted ({exc})"
    return str(exc)


RUNNERS = {"demo": run_demo, "fit": run_fit, "select": run_select, "predict": run_predict, "fit-hmm": run_fit_hmm,
           "compile": run_compile}


def main(argv=None) -> int:
    """Run one command; returns the exit status (0, or 2 for bad input)."""
    args = build_parser().parse_args(argv)
    shown = warnings.showwarning
    warnings.showwarning = _show_warning  # only while the command runs: main is also called in-process
    try:
        return RUNNERS[args.command](args)
    except BrokenPipeError:
        # The reader of the output left (`fastem predict m.npz data.csv | head`): Python's documented
        # recipe, so that the interpreter's final flush of stdout does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError, ImportError, MemoryError, EOFError, lzma.LZMAError, zlib.error) as exc:
        # EOFError, LZMAError, zlib.error: a truncated or corrupted .gz, .bz2 or .xz file.
        print(f"fastem: error: {_error_text(exc)}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
