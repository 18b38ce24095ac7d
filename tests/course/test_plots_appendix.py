"""Figures of lecture 5 ("Appendix"): the profiled deviance along one θ and over two θ's."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import lmmteach as lt
from lmmteach import plots


@pytest.fixture(scope="module")
def grocery_devfun(grocery):
    return lt.mk_devfun(lt.lformula("price ~ store + (1 | item)", grocery), reml=False)


@pytest.fixture(scope="module")
def sleep_fit():
    return lt.lmer("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy())


def test_deviance_grid_holds_the_other_thetas_fixed(sleep_fit):
    f, theta = sleep_fit.devfun, sleep_fit.theta
    x, y = np.array([0.5, 1.0, 1.5]), np.array([0.1, 0.3])
    D = plots.deviance_grid(f, x, y, index=(0, 2), theta=theta)
    assert D.shape == (2, 3)
    assert D[1, 2] == pytest.approx(f([1.5, theta[1], 0.3]))
    assert D[0, 0] == pytest.approx(f([0.5, theta[1], 0.1]))


def test_curve_draws_the_deviance_and_marks_the_optimum(grocery_devfun):
    opt = lt.optimize_lmer(grocery_devfun)
    thetas = np.linspace(0, 20, 41)
    ax = plots.plot_deviance_curve(grocery_devfun, thetas, optimum=opt.theta, label="ML")
    curve, dot = ax.lines[0], ax.lines[1]
    np.testing.assert_allclose(curve.get_xdata(), thetas)
    assert curve.get_ydata()[10] == pytest.approx(grocery_devfun([thetas[10]]))
    assert dot.get_xdata()[0] == pytest.approx(opt.theta[0])
    assert dot.get_ydata()[0] == pytest.approx(opt.deviance)
    assert min(curve.get_ydata()) >= opt.deviance - 1e-8  # no grid point beats the optimum
    assert any(np.allclose(l.get_xdata(), 0.0) for l in ax.lines[2:])  # the boundary θ = 0
    assert ax.get_xlabel() and ax.get_ylabel()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ML"]


def test_curve_without_optimum_has_no_marker_or_boundary_off_grid(grocery_devfun):
    _, ax = plt.subplots()
    out = plots.plot_deviance_curve(grocery_devfun, np.linspace(2, 12, 11), theta=[5.0], ax=ax)
    assert out is ax
    assert len(ax.lines) == 1


def test_contour_marks_optimum_and_boundaries(sleep_fit):
    f, theta = sleep_fit.devfun, sleep_fit.theta
    ax = plots.plot_deviance_contour(f, np.linspace(0, 2, 21), np.linspace(0, 0.5, 11), index=(0, 2), theta=theta,
                                     names=["a", "b"])
    star = [l for l in ax.lines if l.get_label() == "optimum"]
    assert len(star) == 1
    assert star[0].get_xdata()[0] == pytest.approx(theta[0]) and star[0].get_ydata()[0] == pytest.approx(theta[2])
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    assert ax.get_xlim()[0] < 0 and ax.get_ylim()[0] < 0  # room for the hatched θ < 0 side
    assert len(ax.collections) >= 2  # filled bands and contour lines


def test_contour_over_an_unbounded_theta_draws_no_boundary(sleep_fit):
    f, theta = sleep_fit.devfun, sleep_fit.theta
    ax = plots.plot_deviance_contour(f, np.linspace(0.5, 1.5, 11), np.linspace(-0.1, 0.1, 11), index=(0, 1),
                                     theta=theta)
    assert ax.get_xlim()[0] == pytest.approx(0.5)  # θ_1 grid does not reach 0: no boundary strip
    assert ax.get_ylim()[0] == pytest.approx(-0.1)  # θ_2 (a covariance term) has no lower bound
    assert ax.get_xlabel() == r"$\theta_{1}$" and ax.get_ylabel() == r"$\theta_{2}$"
