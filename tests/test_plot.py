"""fastem.plot: the artists drawn (lines, ellipses, scatter points, markers), not the pixels."""

from __future__ import annotations

import copy
import re
import subprocess
import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")  # no display in CI; set before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

import fastem  # noqa: E402
from fastem import plot  # noqa: E402
from fastem.datasets import make_blobs  # noqa: E402
from fastem.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from fastem.mixture.covariance_models import kernel_layout  # noqa: E402
from fastem.reference import full_covariances  # noqa: E402

N_COMPONENTS = 3


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def X2():
    X, _ = make_blobs(300, 2, N_COMPONENTS, separation=4.0, random_state=0)
    return X


@pytest.fixture(scope="module")
def X4():
    X, _ = make_blobs(300, 4, N_COMPONENTS, separation=4.0, random_state=1)
    return X


@pytest.fixture(scope="module")
def gm2(X2):
    return fastem.GaussianMixture(N_COMPONENTS, random_state=0).fit(X2)


@pytest.fixture(scope="module")
def gm4(X4):
    return fastem.GaussianMixture(N_COMPONENTS, random_state=0).fit(X4)


@pytest.fixture(scope="module")
def ic(X2):
    return fastem.GaussianMixtureIC(n_components=4, random_state=0).fit(X2)


def ellipses(ax) -> list:
    return [patch for patch in ax.patches if isinstance(patch, Ellipse)]


def scatters(ax) -> list:
    return [collection for collection in ax.collections if isinstance(collection, PathCollection)]


# -- matplotlib is optional -----------------------------------------------------


def test_importing_fastem_and_fastem_plot_does_not_import_matplotlib():
    code = "import sys, fastem, fastem.plot; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("function", ["bic", "mixture", "convergence"])
def test_missing_matplotlib_raises_import_error_saying_how_to_install(function, monkeypatch, ic, gm2, X2):
    # None in sys.modules makes `import matplotlib` (and its submodules) raise ImportError.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    call = {"bic": lambda: plot.bic(ic), "mixture": lambda: plot.mixture(gm2, X2),
            "convergence": lambda: plot.convergence(gm2)}[function]
    with pytest.raises(ImportError, match=re.escape("fastem.plot needs matplotlib: pip install 'fastem[plot]'")):
        call()


# -- bic --------------------------------------------------------------------------


@pytest.mark.parametrize("criterion", [None, "bic", "aic", "icl"])
def test_bic_draws_one_curve_per_model_with_the_criterion_values(ic, criterion):
    ax = plot.bic(ic, criterion=criterion)
    shown = ic.criterion if criterion is None else criterion
    results = ic.results_
    models = list(dict.fromkeys(results["covariance_type"]))
    assert [line.get_label() for line in ax.lines] == models
    for line, model in zip(ax.lines, models):
        rows = [i for i, name in enumerate(results["covariance_type"]) if name == model]
        np.testing.assert_array_equal(line.get_xdata(), results["n_components"][rows])
        np.testing.assert_array_equal(line.get_ydata(), results[shown][rows])
        assert line.get_marker() not in (None, "None", "")
    assert ax.get_ylabel() == f"{shown.upper()} (lower is better)"
    legend_texts = [text.get_text() for text in ax.get_legend().get_texts()]
    assert set(models) <= set(legend_texts)
    assert all(float(tick).is_integer() for tick in ax.get_xticks())


def test_bic_circles_the_chosen_cell(ic):
    ax = plot.bic(ic, criterion="aic")  # a circle at the chosen cell's height on the drawn curve
    (marker,) = scatters(ax)
    chosen = [i for i, (name, count) in enumerate(zip(ic.results_["covariance_type"], ic.results_["n_components"]))
              if name == ic.covariance_type_ and count == ic.n_components_]
    np.testing.assert_array_equal(marker.get_offsets(), [[ic.n_components_, ic.results_["aic"][chosen[0]]]])
    assert len(marker.get_facecolors()) == 0 or marker.get_facecolors()[0][3] == 0  # unfilled


def test_bic_leaves_gaps_for_failed_cells_and_skips_models_that_all_failed(ic):
    # The same fit with failures written in: a 'tied' cell failed, every 'spherical' cell failed.
    failed = copy.copy(ic)
    failed.results_ = {name: (column.copy() if isinstance(column, np.ndarray) else list(column))
                       for name, column in ic.results_.items()}
    models = failed.results_["covariance_type"]
    tied_rows = [i for i, name in enumerate(models) if name == "tied"]
    gap = tied_rows[1]
    for row in [gap] + [i for i, name in enumerate(models) if name == "spherical"]:
        failed.results_["bic"][row] = np.nan
        failed.results_["error"][row] = "singular fit"
    ax = plot.bic(failed, criterion="bic")
    finite_models = [m for m in dict.fromkeys(models)
                     if np.isfinite(failed.results_["bic"][[i for i, n in enumerate(models) if n == m]]).any()]
    assert [line.get_label() for line in ax.lines] == finite_models == ["full", "tied", "diag"]
    tied_line = ax.lines[1]
    assert np.isnan(tied_line.get_ydata()[1])  # NaN left in: matplotlib breaks the line there
    np.testing.assert_array_equal(tied_line.get_ydata(), failed.results_["bic"][tied_rows])


def test_bic_draws_on_a_given_axes(ic):
    _, ax = plt.subplots()
    assert plot.bic(ic, ax=ax) is ax
    assert len(ax.lines) == 4


def test_bic_of_an_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError, match="GaussianMixtureIC"):
        plot.bic(fastem.GaussianMixtureIC())


def test_bic_rejects_an_unknown_criterion(ic):
    with pytest.raises(ValueError, match="criterion"):
        plot.bic(ic, criterion="likelihood")


# -- mixture ----------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical", "VEV", "EEI"])
def test_mixture_two_features_draws_points_means_and_two_ellipses_per_component(X2, covariance_type):
    gm = fastem.GaussianMixture(N_COMPONENTS, covariance_type=covariance_type, random_state=0).fit(X2)
    ax = plot.mixture(gm, X2)
    points, means = scatters(ax)
    np.testing.assert_array_equal(points.get_offsets(), X2)
    np.testing.assert_array_equal(means.get_offsets(), gm.means_)
    # Rows of one predicted component share a colour, and different components differ.
    labels = gm.predict(X2)
    colours = points.get_facecolors()
    for component in range(N_COMPONENTS):
        assert len(np.unique(colours[labels == component], axis=0)) == 1
    assert len(np.unique(colours, axis=0)) == len(np.unique(labels))

    drawn = ellipses(ax)
    assert len(drawn) == 2 * N_COMPONENTS
    full = full_covariances(gm.covariances_, kernel_layout(covariance_type), N_COMPONENTS, 2)
    for component in range(N_COMPONENTS):
        one_sigma, two_sigma = drawn[2 * component], drawn[2 * component + 1]
        np.testing.assert_allclose(one_sigma.center, gm.means_[component])
        # Semi-axes sqrt(eigenvalues): the area is pi * sqrt(det(covariance)), doubled axes at 2 sigma.
        semi_axes = np.sort(np.sqrt(np.linalg.eigvalsh(full[component])))
        np.testing.assert_allclose(np.sort([one_sigma.width, one_sigma.height]) / 2, semi_axes, rtol=1e-10)
        np.testing.assert_allclose(np.sort([two_sigma.width, two_sigma.height]) / 4, semi_axes, rtol=1e-10)


def test_mixture_ellipse_is_oriented_along_the_covariance(X2, gm2):
    ax = plot.mixture(gm2, X2)
    for covariance, one_sigma in zip(gm2.covariances_, ellipses(ax)[::2]):
        # The ellipse's long axis, turned by its angle, is an eigenvector of the largest eigenvalue.
        angle = np.radians(one_sigma.angle)
        long_axis = np.array([np.cos(angle), np.sin(angle)])
        if one_sigma.height > one_sigma.width:
            long_axis = np.array([-np.sin(angle), np.cos(angle)])
        largest = np.linalg.eigvalsh(covariance)[-1]
        np.testing.assert_allclose(covariance @ long_axis, largest * long_axis, atol=1e-10)


def test_mixture_more_than_two_features_draws_a_lower_triangle_grid(X4, gm4):
    axes = plot.mixture(gm4, X4)
    assert isinstance(axes, np.ndarray) and axes.shape == (4, 4)
    for row in range(4):
        for col in range(4):
            panel = axes[row, col]
            if row < col:
                assert not panel.get_visible()
            elif row == col:
                assert panel.get_visible() and not ellipses(panel) and not scatters(panel)
                assert len(panel.patches) > 0  # the histogram's bars
            else:
                assert len(ellipses(panel)) == 2 * N_COMPONENTS
                points, means = scatters(panel)
                np.testing.assert_array_equal(points.get_offsets(), X4[:, [col, row]])
                np.testing.assert_array_equal(means.get_offsets(), gm4.means_[:, [col, row]])


def test_mixture_features_select_and_order_the_columns(X4, gm4):
    axes = plot.mixture(gm4, X4, features=[3, 1, 0])
    assert axes.shape == (3, 3)
    points, _ = scatters(axes[1, 0])
    np.testing.assert_array_equal(points.get_offsets(), X4[:, [3, 1]])
    points, _ = scatters(axes[2, 1])
    np.testing.assert_array_equal(points.get_offsets(), X4[:, [1, 0]])

    ax = plot.mixture(gm4, X4, features=[2, 0])  # two features: one Axes
    points, _ = scatters(ax)
    np.testing.assert_array_equal(points.get_offsets(), X4[:, [2, 0]])
    assert len(ellipses(ax)) == 2 * N_COMPONENTS


def test_mixture_one_feature_draws_a_histogram_and_the_density(X2):
    X1 = X2[:, :1]
    gm = fastem.GaussianMixture(2, random_state=0).fit(X1)
    ax = plot.mixture(gm, X1)
    assert not ellipses(ax) and len(ax.patches) > 0
    (density,) = [line for line in ax.lines if line.get_label() == "mixture density"]
    grid = np.asarray(density.get_xdata())
    np.testing.assert_allclose(density.get_ydata(), np.exp(gm.score_samples(grid[:, None])), rtol=1e-8)


def test_mixture_draws_on_given_axes(X2, X4, gm2, gm4):
    _, ax = plt.subplots()
    assert plot.mixture(gm2, X2, ax=ax) is ax
    _, grid = plt.subplots(3, 3)
    drawn = plot.mixture(gm4, X4, ax=grid, features=[0, 1, 2])
    assert all(a is b for a, b in zip(drawn.ravel(), grid.ravel()))
    assert len(ellipses(grid[2, 0])) == 2 * N_COMPONENTS
    _, small_grid = plt.subplots(2, 2)
    with pytest.raises(ValueError, match="shape"):
        plot.mixture(gm4, X4, ax=small_grid, features=[0, 1, 2])


def test_mixture_rejects_x_of_the_wrong_width(gm2, X4):
    with pytest.raises(ValueError, match="X has 4 columns"):
        plot.mixture(gm2, X4)


def test_mixture_of_an_unfitted_model_raises_not_fitted(X2):
    with pytest.raises(NotFittedError, match="GaussianMixture"):
        plot.mixture(fastem.GaussianMixture(2), X2)


# -- convergence ------------------------------------------------------------------


def test_convergence_draws_the_lower_bound_trace(gm2):
    ax = plot.convergence(gm2)
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_ydata(), gm2.lower_bounds_)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, len(gm2.lower_bounds_) + 1))
    assert gm2.converged_ and ax.get_title() == f"converged after {gm2.n_iter_} iterations"


def test_convergence_title_says_when_em_did_not_converge(X2):
    with pytest.warns(ConvergenceWarning):
        gm = fastem.GaussianMixture(N_COMPONENTS, max_iter=1, init_params="random", random_state=0).fit(X2)
    ax = plot.convergence(gm)
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), gm.lower_bounds_)
    assert ax.get_title().startswith("not converged after 1 iteration")


def test_convergence_of_an_unfitted_model_raises_not_fitted():
    with pytest.raises(NotFittedError, match="GaussianMixture"):
        plot.convergence(fastem.GaussianMixture(2))
