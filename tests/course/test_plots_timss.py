"""Figures of lecture 4 ("Example: TIMSS Data"): level-1/level-2 variables, caterpillar plot, residual checks."""

import numpy as np
import pytest
from scipy import stats

import lmmteach as lt
from lmmteach import plots
import _shared as shared


@pytest.fixture(scope="module")
def timss():
    return lt.load_timss(center=True)


@pytest.fixture(scope="module")
def slopes_fit():
    """A small random-slopes fit (sleepstudy: 18 subjects, intercept and Days)."""
    return lt.lmer("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy(), reml=False)


def test_school_means_histograms_count_every_school_once(timss):
    fig, axes = plots.plot_school_means(timss, variables=("math", "hoursTV"), bins=15)
    assert len(axes) == 2
    for ax, var in zip(axes, ("math", "hoursTV")):
        assert sum(p.get_height() for p in ax.patches) == timss["idschool"].nunique()
        assert var in ax.get_xlabel() and ax.get_ylabel() == "number of schools"


def test_within_between_slopes_are_the_least_squares_slopes(timss):
    fig, (within, between) = plots.plot_within_between(timss, y="science", x="math")
    means = timss.groupby("idschool", observed=True)[["math", "science"]].mean()
    b_between = np.polyfit(means["math"], means["science"], 1)[0]
    b_within = np.polyfit(timss["grpCmath"], timss["science"] - timss.groupby("idschool", observed=True)[
        "science"].transform("mean"), 1)[0]
    assert f"{b_between:.3f}" in between.get_legend().get_texts()[0].get_text()
    assert f"{b_within:.3f}" in within.get_legend().get_texts()[0].get_text()
    assert len(within.collections[0].get_offsets()) == len(timss)
    assert len(between.collections[0].get_offsets()) == timss["idschool"].nunique()


def test_caterpillar_draws_sorted_blups_with_conditional_intervals(slopes_fit):
    fig, axes = plots.plot_caterpillar(slopes_fit, level=0.95)
    re, se = slopes_fit.ranef["Subject"], slopes_fit.ranef_se["Subject"]
    assert len(axes) == re.shape[1] == 2
    z = stats.norm.ppf(0.975)
    for ax, term in zip(axes, re.columns):
        points = ax.lines[0].get_xdata()
        np.testing.assert_allclose(points, np.sort(re[term].to_numpy()))
        segments = ax.collections[0].get_segments()  # the error bars, in the same order
        order = np.argsort(re[term].to_numpy(), kind="stable")
        half = np.array([(s[1, 0] - s[0, 0]) / 2 for s in segments])
        np.testing.assert_allclose(half, z * se[term].to_numpy()[order], rtol=shared.ROUNDING_RTOL)
        assert term in ax.get_xlabel()


def test_caterpillar_one_term(slopes_fit):
    fig, axes = plots.plot_caterpillar(slopes_fit, terms=["Days"], level=0.9)
    assert len(axes) == 1 and "90%" in axes[0].get_title()


def test_residuals_fitted_plots_every_observation(slopes_fit):
    ax = plots.plot_residuals_fitted(slopes_fit)
    xy = ax.collections[0].get_offsets()
    np.testing.assert_allclose(xy[:, 0], slopes_fit.fitted.to_numpy())
    np.testing.assert_allclose(xy[:, 1], slopes_fit.residuals.to_numpy())
    assert ax.get_xlabel() == "fitted value" and ax.get_ylabel() == "residual"


def test_normal_qq_uses_r_ppoints_and_the_quartile_line():
    rng = np.random.default_rng(4)
    v = rng.normal(10, 2, size=50)
    ax = plots.plot_normal_qq(v)
    xy = ax.collections[0].get_offsets()
    n = len(v)
    np.testing.assert_allclose(xy[:, 0], stats.norm.ppf((np.arange(1, n + 1) - 0.5) / n))
    np.testing.assert_allclose(xy[:, 1], np.sort(v))
    line_x, line_y = ax.lines[0].get_data()
    q1, q3 = np.quantile(v, [0.25, 0.75])
    slope = (q3 - q1) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    np.testing.assert_allclose(np.diff(line_y) / np.diff(line_x), slope)


def test_ranef_qq_one_panel_per_term(slopes_fit):
    fig, axes = plots.plot_ranef_qq(slopes_fit)
    assert [ax.get_title() for ax in axes] == ["BLUPs: (Intercept)", "BLUPs: Days"]
    for ax in axes:
        assert len(ax.collections[0].get_offsets()) == 18
