"""Pictures of fitted Gaussian mixtures: criterion curves, clusters with covariance ellipses, convergence.

matplotlib is an optional extra (``pip install 'fastem[plot]'``). This module
imports it only inside its functions, so ``import fastem`` (and even
``import fastem.plot``) never pays for it nor needs it.

Every function takes an optional ``ax`` and returns what it drew on, so a
picture can be placed in a figure of the caller's and styled afterwards:

* :func:`bic`: one criterion curve per covariance model over the numbers of
  components of a fitted :class:`fastem.GaussianMixtureIC`, as mclust's
  ``plot(Mclust(...), what = "BIC")``, with the chosen cell circled.
* :func:`mixture`: the rows coloured by their most probable component, with
  each component's 1- and 2-sigma ellipse and its mean.
* :func:`convergence`: the mean log-likelihood at each EM iteration.
"""

from __future__ import annotations

import numpy as np

from fastem.exceptions import NotFittedError, compatible
from fastem.mixture.covariance_models import kernel_layout

_MISSING_MATPLOTLIB = "fastem.plot needs matplotlib: pip install 'fastem[plot]'"

_CRITERIA = ("bic", "aic", "icl")

# Markers told apart in print and by colour-blind readers too: with mclust's
# fourteen models colour alone does not separate the curves.
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "h", "<", ">", "p", "d", "8")

# Ellipses drawn per component: the contours at 1 and 2 standard deviations.
_SIGMAS = (1.0, 2.0)


# -- helpers ------------------------------------------------------------------


def _pyplot():
    """``matplotlib.pyplot``, or an ImportError that says how to install it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError(_MISSING_MATPLOTLIB) from error
    return plt


def _colours(n_colours: int) -> list:
    """``n_colours`` distinct colours: the qualitative tab10/tab20 palettes while they last."""
    import matplotlib

    if n_colours <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n_colours)]
    if n_colours <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n_colours)]
    cmap = matplotlib.colormaps["turbo"]
    return [cmap(i / (n_colours - 1)) for i in range(n_colours)]


def _not_fitted(function: str, expected: str, obj) -> Exception:
    # compatible(): code written for scikit-learn catches sklearn's NotFittedError.
    return compatible(NotFittedError)(
        f"fastem.plot.{function} needs a fitted {expected}: this {type(obj).__name__} instance is not "
        "fitted yet; call 'fit' first."
    )


def _full_covariances(gm) -> np.ndarray:
    """The fitted covariances of any covariance model as (n_components, n_features, n_features)."""
    # Imported here: fastem.reference loads scipy.stats, which `import fastem.plot` need not pay for.
    from fastem.reference import full_covariances

    n_components, n_features = np.shape(gm.means_)
    # mclust's models are stored in the layout of the kernel that evaluates them ('VEV' as 'full').
    layout = kernel_layout(gm.covariance_type)
    return full_covariances(gm.covariances_, layout, n_components, n_features)


def _feature_names(X, n_features: int) -> list:
    """Column names of a DataFrame, else 'feature 0', 'feature 1', ..."""
    columns = getattr(X, "columns", None)
    if columns is not None and len(columns) == n_features:
        return [str(name) for name in columns]
    return [f"feature {i}" for i in range(n_features)]


def _checked_features(features, n_features: int) -> list:
    if features is None:
        return list(range(n_features))
    try:
        chosen = [int(i) for i in features]
    except TypeError:
        raise TypeError(f"features must be a list of column indices, got {type(features).__name__}.") from None
    if not chosen:
        raise ValueError("features is empty: give at least one column index.")
    if any(not -n_features <= i < n_features for i in chosen):
        raise ValueError(f"features {list(features)} has an index out of range for X with {n_features} columns.")
    chosen = [i % n_features for i in chosen]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"features {list(features)} names a column more than once.")
    return chosen


def _ellipse_geometry(covariance_2x2: np.ndarray, n_sigma: float) -> tuple:
    """(width, height, angle in degrees) of the ``n_sigma`` contour of a 2-D Gaussian.

    The axes are the eigenvectors of the covariance, with half-lengths
    ``n_sigma * sqrt(eigenvalue)``; eigh sorts eigenvalues ascending, so the
    last eigenvector is the long axis, whose direction gives the angle.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(covariance_2x2)
    # A singular or numerically negative direction is a flat ellipse, not a NaN.
    half_small, half_large = n_sigma * np.sqrt(np.clip(eigenvalues, 0.0, None))
    angle = np.degrees(np.arctan2(eigenvectors[1, -1], eigenvectors[0, -1]))
    return 2.0 * half_large, 2.0 * half_small, angle


def _draw_pair(ax, X, labels, gm, full, colours, column_x: int, column_y: int) -> None:
    """One scatter panel: rows coloured by component, 1- and 2-sigma ellipses, means."""
    from matplotlib.patches import Ellipse

    point_colours = np.asarray(colours)[labels]
    # Many rows: small markers without edges keep the ellipses visible.
    size = 12.0 if X.shape[0] <= 2000 else 3.0
    ax.scatter(X[:, column_x], X[:, column_y], c=point_colours, s=size, linewidths=0, alpha=0.6)
    pair = [column_x, column_y]
    for component, colour in enumerate(colours):
        covariance = full[component][np.ix_(pair, pair)]
        centre = (gm.means_[component, column_x], gm.means_[component, column_y])
        for n_sigma in _SIGMAS:
            width, height, angle = _ellipse_geometry(covariance, n_sigma)
            ax.add_patch(
                Ellipse(
                    centre, width, height, angle=angle, fill=False, edgecolor=colour,
                    linewidth=1.5 if n_sigma == 1.0 else 1.0, linestyle="-" if n_sigma == 1.0 else "--",
                )
            )
    ax.scatter(
        gm.means_[:, column_x], gm.means_[:, column_y], c=np.asarray(colours), marker="X", s=90,
        edgecolors="black", linewidths=1.0, zorder=3,
    )


def _draw_marginal(ax, values, gm, full, colours, column: int) -> None:
    """Histogram of one feature with the mixture's marginal density and its weighted components."""
    values = values[np.isfinite(values)]  # np.histogram rejects NaN (rows with missing values)
    ax.hist(values, bins="auto", density=True, color="0.8", edgecolor="white")
    means = gm.means_[:, column].astype(np.float64)
    stds = np.sqrt(full[:, column, column])
    low = min(values.min(), (means - 3 * stds).min())
    high = max(values.max(), (means + 3 * stds).max())
    grid = np.linspace(low, high, 400)
    # The marginal of a Gaussian mixture along one axis is the mixture of the components' marginals.
    components = gm.weights_[:, None] * np.exp(-0.5 * ((grid - means[:, None]) / stds[:, None]) ** 2) / (
        stds[:, None] * np.sqrt(2 * np.pi)
    )
    for component, colour in enumerate(colours):
        ax.plot(grid, components[component], color=colour, linewidth=1.0, linestyle="--")
    ax.plot(grid, components.sum(axis=0), color="black", linewidth=1.5, label="mixture density")


# -- public functions -----------------------------------------------------------


def bic(ic, ax=None, criterion=None):
    """Criterion curves of a fitted :class:`fastem.GaussianMixtureIC`, one per covariance model.

    mclust's BIC plot, in scikit-learn's sign: lower is better. Each
    covariance model is a line with markers over the numbers of components;
    a failed cell (NaN) leaves a gap, and a model whose cells all failed is
    left out. The chosen cell (``ic.covariance_type_``, ``ic.n_components_``)
    is circled.

    Parameters
    ----------
    ic : GaussianMixtureIC
        A fitted model selection (it has ``results_``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.
    criterion : {'bic', 'aic', 'icl'}, optional
        The curve to draw; ``ic.criterion`` (what chose the model) when None.
        The circle marks the cell ``ic`` chose, whatever is drawn.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    NotFittedError
        If ``ic`` is not fitted.
    ValueError
        If ``criterion`` is not one of 'bic', 'aic', 'icl'.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    results = getattr(ic, "results_", None)
    if results is None:
        raise _not_fitted("bic", "GaussianMixtureIC", ic)
    criterion = ic.criterion if criterion is None else criterion
    if criterion not in _CRITERIA:
        raise ValueError(f"criterion must be one of {_CRITERIA}, got {criterion!r}.")
    if ax is None:
        _, ax = plt.subplots()

    model_column = list(results["covariance_type"])
    counts = np.asarray(results["n_components"])
    values = np.asarray(results[criterion], dtype=np.float64)
    models = list(dict.fromkeys(model_column))  # the grid's order, each model once
    colours = _colours(len(models))
    for index, model in enumerate(models):
        rows = np.flatnonzero([name == model for name in model_column])
        rows = rows[np.argsort(counts[rows], kind="stable")]
        if not np.isfinite(values[rows]).any():
            continue  # every cell failed: an empty legend entry would only mislead
        # NaN stays in the data: matplotlib breaks the line there, which is the gap we want.
        ax.plot(
            counts[rows], values[rows], marker=_MARKERS[index % len(_MARKERS)], color=colours[index],
            linewidth=1.2, markersize=5, label=model,
        )

    chosen = np.flatnonzero(
        [name == ic.covariance_type_ and count == ic.n_components_ for name, count in zip(model_column, counts)]
    )
    if chosen.size:
        # A scatter (not a Line2D) so that ax.lines holds exactly one curve per model.
        ax.scatter(
            [counts[chosen[0]]], [values[chosen[0]]], s=260, facecolors="none", edgecolors="black",
            linewidths=1.5, zorder=3, label=f"chosen: {ic.covariance_type_}, {ic.n_components_} components",
        )

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of components")
    ax.set_ylabel(f"{criterion.upper()} (lower is better)")
    # Two legend columns once mclust's fourteen models would make one column taller than the plot.
    ax.legend(fontsize="small", ncol=2 if len(models) > 7 else 1)
    return ax


def mixture(gm, X, ax=None, features=None):
    """The rows of ``X`` coloured by component, with each component's covariance ellipses and mean.

    Each component gets two ellipses, the contours at 1 sigma (solid) and
    2 sigma (dashed) of its marginal covariance on the plotted pair of
    features, and its mean marked by a cross.

    Parameters
    ----------
    gm : GaussianMixture
        A fitted mixture, of any covariance type.
    X : array-like of shape (n_samples, n_features)
        Rows to draw, with the columns ``gm`` was fitted on; a DataFrame's
        column names label the axes.
    ax : matplotlib.axes.Axes or ndarray of Axes, optional
        Where to draw; a new figure when None. For more than two features,
        an array of shape (n_plotted, n_plotted).
    features : list of int, optional
        The columns to draw, in this order; all of them when None.

    Returns
    -------
    matplotlib.axes.Axes or ndarray of Axes
        With one plotted feature, one Axes holding a histogram and the
        mixture's density (no ellipses); with two, one Axes; with more, a
        (n_plotted, n_plotted) array of Axes: panel [i, j] for i > j plots
        feature j (x) against feature i (y), panel [i, i] is feature i's
        histogram and marginal density, and the upper panels are hidden.

    Raises
    ------
    NotFittedError
        If ``gm`` is not fitted.
    ValueError
        If ``X`` is not 2-D with ``gm.n_features_in_`` columns, or
        ``features`` or ``ax`` do not fit.
    """
    plt = _pyplot()

    if getattr(gm, "means_", None) is None:
        raise _not_fitted("mixture", "GaussianMixture", gm)
    names_source = X
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D of shape (n_samples, n_features), got an array of shape {X.shape}.")
    if X.shape[1] != gm.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} columns, but the mixture was fitted on {gm.n_features_in_} features."
        )
    columns = _checked_features(features, X.shape[1])
    names = _feature_names(names_source, X.shape[1])
    full = _full_covariances(gm)
    colours = _colours(gm.means_.shape[0])
    title = f"{gm.covariance_type}, {gm.means_.shape[0]} components"

    if len(columns) == 1:
        if ax is None:
            _, ax = plt.subplots()
        _draw_marginal(ax, X[:, columns[0]], gm, full, colours, columns[0])
        ax.set_xlabel(names[columns[0]])
        ax.set_ylabel("density")
        ax.set_title(title)
        return ax

    labels = gm.predict(X)
    if len(columns) == 2:
        if ax is None:
            _, ax = plt.subplots()
        _draw_pair(ax, X, labels, gm, full, colours, columns[0], columns[1])
        ax.set_xlabel(names[columns[0]])
        ax.set_ylabel(names[columns[1]])
        ax.set_title(title)
        return ax

    n_plotted = len(columns)
    if ax is None:
        # sharex by column: every panel of a column shows the same feature on x.
        figure, axes = plt.subplots(
            n_plotted, n_plotted, figsize=(2.4 * n_plotted, 2.4 * n_plotted), sharex="col", squeeze=False
        )
        figure.suptitle(title)
    else:
        axes = np.asarray(ax, dtype=object)
        if axes.shape != (n_plotted, n_plotted):
            raise ValueError(
                f"ax must be an array of Axes of shape ({n_plotted}, {n_plotted}) for {n_plotted} features, "
                f"got shape {axes.shape}."
            )
    for row in range(n_plotted):
        for col in range(n_plotted):
            panel = axes[row, col]
            if row < col:
                panel.set_visible(False)
                continue
            if row == col:
                _draw_marginal(panel, X[:, columns[row]], gm, full, colours, columns[row])
            else:
                _draw_pair(panel, X, labels, gm, full, colours, columns[col], columns[row])
            # Labels on the outer edge only: inner ones repeat them and crowd the grid.
            if row == n_plotted - 1:
                panel.set_xlabel(names[columns[col]])
            if col == 0 and row > 0:
                panel.set_ylabel(names[columns[row]])
    return axes


def convergence(gm, ax=None):
    """The mean log-likelihood at each EM iteration of a fitted mixture's best initialisation.

    Parameters
    ----------
    gm : GaussianMixture
        A fitted mixture (it has ``lower_bounds_``).
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        One line: ``gm.lower_bounds_`` against iterations 1, 2, ...; the
        title says whether EM converged and after how many iterations.

    Raises
    ------
    NotFittedError
        If ``gm`` is not fitted.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    lower_bounds = getattr(gm, "lower_bounds_", None)
    if lower_bounds is None:
        raise _not_fitted("convergence", "GaussianMixture", gm)
    if ax is None:
        _, ax = plt.subplots()
    iterations = np.arange(1, len(lower_bounds) + 1)
    ax.plot(iterations, np.asarray(lower_bounds, dtype=np.float64), marker="o", markersize=3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.set_ylabel("mean log-likelihood")
    if gm.converged_:
        ax.set_title(f"converged after {gm.n_iter_} iterations")
    else:
        ax.set_title(f"not converged after {gm.n_iter_} iterations (max_iter={gm.max_iter})")
    return ax
