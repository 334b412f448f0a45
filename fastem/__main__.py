"""Command line: ``python -m fastem demo``, ``fit FILE``, ``select FILE``, ``fit-hmm FILE`` and ``compile``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fastem._core.compilation import announce_compilation, compile_ahead
from fastem.hmm.estimator import GaussianHMM
from fastem.hmm.parameters import COVARIANCE_TYPES as HMM_COVARIANCE_TYPES
from fastem.mixture.covariance_models import COVARIANCE_MODELS, MCLUST_MODELS, SKLEARN_TYPES, kernel_layout
from fastem.mixture.estimator import GaussianMixture
from fastem.mixture.parameters import COVARIANCE_TYPES, INIT_METHODS
from fastem.mixture.selection import CRITERIA, GaussianMixtureIC


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


def _load(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    delimiter = "," if path.endswith(".csv") else None
    return np.loadtxt(path, delimiter=delimiter, ndmin=2, skiprows=1 if _has_header(path, delimiter) else 0)


def _has_header(path: str, delimiter) -> bool:
    """Whether the first line is a header: none of its fields is a number (e.g. R's write.csv names)."""
    with open(path, encoding="utf-8-sig") as handle:  # -sig: Excel's "CSV UTF-8" starts with a BOM
        first = handle.readline()
    fields = [field.strip().strip('"') for field in first.split(delimiter)]
    # A header only when no field is a number: a data row with a missing or odd value must not vanish.
    for field in fields:
        try:
            float(field)
            return False
        except ValueError:
            pass
    return True


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
    parser.add_argument("-k", "--n-components", type=int, default=n_components)
    parser.add_argument("--covariance-type", choices=COVARIANCE_MODELS, default="full", metavar="TYPE",
                        help="full, tied, diag, spherical, or an mclust model such as VEV (default: %(default)s)")
    parser.add_argument("--init-params", choices=INIT_METHODS, default="kmeans")
    parser.add_argument("--max-iter", type=int, default=100)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--n-init", type=int, default=1)
    parser.add_argument("--random-state", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=None)


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
    X = _load(args.path)
    model = _model_from(args)
    with announce_compilation(_compiling_message(model, X)):
        labels = model.fit_predict(X)
    print(f"fitted {X.shape[0]} x {X.shape[1]} data from {args.path}")
    print(_describe(model))
    print(f"BIC {model.bic(X):.4f}  AIC {model.aic(X):.4f}")
    if args.labels:
        np.savetxt(args.labels, labels, fmt="%d")
        print(f"labels written to {args.labels}")
    if args.plot:
        _save_plot(args.plot, lambda: _plot().mixture(model, X))
        print(f"picture of the fitted mixture written to {args.plot}")
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
    X = _load(args.path)
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
          f"in {elapsed:.2f} s")
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
    return 0


def _sequences_from(data: np.ndarray, column):
    """(X, lengths): with ``column``, consecutive rows sharing that column's value form one sequence."""
    if column is None:
        return data, None
    n_columns = data.shape[1]
    if not -n_columns <= column < n_columns:
        raise ValueError(f"--sequence-column {column} is outside the file's {n_columns} columns.")
    ids = data[:, column]
    if data.shape[0] == 0:
        raise ValueError("the file holds no rows.")
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    lengths = np.diff(np.append(starts, data.shape[0]))
    return np.delete(data, column % n_columns, axis=1), lengths


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
    X, lengths = _sequences_from(_load(args.path), args.sequence_column)
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
    print(f"fitted {X.shape[0]} x {X.shape[1]} data in {n_sequences} sequence(s) from {args.path}")
    print(_describe_hmm(model, model.score(X, lengths)))
    print(f"Viterbi log-probability {log_likelihood:.4f}; BIC {model.bic(X, lengths):.4f}  AIC {model.aic(X, lengths):.4f}")
    if args.states:
        np.savetxt(args.states, states, fmt="%d")
        print(f"Viterbi states written to {args.states}")
    if args.save:
        model.save(args.save)
        print(f"model saved to {args.save}")
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fastem", description="Fit Gaussian mixtures and HMMs with fastem.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit the built-in demo data set and print the fitted mixture")
    demo.add_argument("--n-samples", type=int, default=100_000)
    _add_model_options(demo, n_components=3)
    fit = commands.add_parser("fit", help="fit a mixture to a .csv, .txt (whitespace) or .npy file")
    fit.add_argument("path")
    fit.add_argument("--labels", help="write the predicted component of each row to this file")
    fit.add_argument("--plot", help="draw the data and the fitted components to this image file (needs matplotlib)")
    _add_model_options(fit, n_components=2)
    select = commands.add_parser(
        "select",
        help="choose the covariance model and number of components of a mixture by BIC, AIC or ICL",
        description="Fit every (covariance model, number of components) of a grid to a .csv, .txt or .npy file "
        "(fastem.GaussianMixtureIC), print the criterion table and the chosen mixture.",
    )
    select.add_argument("path")
    select.add_argument("-k", "--n-components", type=_component_range, default=list(range(1, 10)),
                        help="numbers of components: N (1..N), LOW-HIGH, or a comma-separated list (default: 1-9)")
    select.add_argument("--models", type=_models_option, default=list(SKLEARN_TYPES),
                        help="'all' (scikit-learn's four, the default), 'mclust' (mclust's fourteen), "
                        "or a comma-separated list such as full,VEV,EII")
    select.add_argument("--criterion", choices=CRITERIA, default="bic", help="(default: %(default)s)")
    select.add_argument("--n-init", type=int, default=5, help="starts per cell (default: %(default)s)")
    select.add_argument("--random-state", type=int, default=0, help="(default: %(default)s)")
    select.add_argument("--n-jobs", type=int, default=None, help="cells fitted at once (default: all CPUs)")
    select.add_argument("--plot", help="draw the criterion curves to this image file, and the chosen mixture to "
                        "the same name with '-mixture' before the extension (needs matplotlib)")
    fit_hmm = commands.add_parser(
        "fit-hmm",
        help="fit a Gaussian HMM to a .csv, .txt (whitespace) or .npy file",
        description="Fit a GaussianHMM to the rows of a file: one sequence, or with --sequence-column, one "
        "sequence per run of consecutive rows sharing that column's value (the column is not a feature).",
    )
    fit_hmm.add_argument("path")
    fit_hmm.add_argument("--sequence-column", type=int, help="index of a column of sequence ids (removed from the data)")
    fit_hmm.add_argument("-k", "--n-components", type=int, default=2)
    fit_hmm.add_argument("--covariance-type", choices=HMM_COVARIANCE_TYPES, default="diag")
    fit_hmm.add_argument("--n-iter", type=int, default=100)
    fit_hmm.add_argument("--tol", type=float, default=1e-2)
    fit_hmm.add_argument("--random-state", type=int, default=0)
    fit_hmm.add_argument("--n-jobs", type=int, default=None)
    fit_hmm.add_argument("--states", help="write the Viterbi state of each row to this file")
    fit_hmm.add_argument("--save", help="save the fitted model to this file (GaussianHMM.load reads it)")
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
                          help="comma-separated (default: %(default)s)")
    compile_.add_argument("--dtypes", type=_comma_list(str, DTYPES), default=DTYPES,
                          help="comma-separated (default: %(default)s)")
    compile_.add_argument("--covariance-types", type=_comma_list(str, COVARIANCE_TYPES), default=COVARIANCE_TYPES,
                          help="comma-separated (default: all four)")
    compile_.add_argument("--features", type=_comma_list(int), default=DEFAULT_FEATURES,
                          help="comma-separated feature counts (default: 1 to 9, which covers every count below 32)")
    args = parser.parse_args(argv)
    runners = {"demo": run_demo, "fit": run_fit, "select": run_select, "fit-hmm": run_fit_hmm, "compile": run_compile}
    try:
        return runners[args.command](args)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
