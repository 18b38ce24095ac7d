"""Figures of lecture 3 ("Linear Mixed-Effects Model"): they draw what they say, on labelled axes."""

import numpy as np

import pytest
from scipy import stats

import lmmteach as lm
from lmmteach import plots
from lmmteach.lmm.covariance import make_structure


@pytest.fixture(scope="module")
def sleep_ris():
    return lm.lmer("Reaction ~ Days + (Days | Subject)", lm.load_sleepstudy())


def test_heatmap_shows_the_matrix_with_symmetric_colours():
    S = make_structure("ar1", 4).relcov(np.array([2.0, -0.5]))  # negative correlations
    ax = plots.plot_covariance_heatmap(S, labels=list("ABCD"), title="AR(1)")
    img = ax.images[0]
    np.testing.assert_allclose(img.get_array(), S)
    lo, hi = img.get_clim()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(np.abs(S).max())
    assert [t.get_text() for t in ax.get_xticklabels()] == list("ABCD")
    assert ax.get_title() == "AR(1)"
    assert len(ax.texts) == 16 and ax.texts[1].get_text() == f"{S[0, 1]:.0f}"


def test_heatmap_of_a_nonnegative_matrix_starts_at_zero():
    S = make_structure("cs", 3).relcov(np.array([1.5, 0.4]))
    ax = plots.plot_covariance_heatmap(S, fmt=".2f")
    assert ax.images[0].get_clim() == pytest.approx((0.0, S.max()))
    assert ax.texts[0].get_text() == f"{S[0, 0]:.2f}"
    ax = plots.plot_covariance_heatmap(np.eye(12))
    assert len(ax.texts) == 0  # too many cells to annotate


def test_heatmap_rejects_a_non_square_matrix():
    with pytest.raises(ValueError, match="square"):
        plots.plot_covariance_heatmap(np.ones((2, 3)))


def test_structure_covariance_draws_sigma_and_the_implied_cov_of_y(sleep_ris):
    Z_i = np.column_stack([np.ones(10), np.arange(10.0)])
    fig, (a1, a2) = plots.plot_structure_covariance(sleep_ris.Sigma, Z_i, sleep_ris.sigma**2)
    np.testing.assert_allclose(a1.images[0].get_array(), sleep_ris.Sigma)
    expected = Z_i @ sleep_ris.Sigma @ Z_i.T + sleep_ris.sigma**2 * np.eye(10)
    np.testing.assert_allclose(a2.images[0].get_array(), expected)
    assert a2.images[0].get_clim() == pytest.approx((0.0, expected.max()))  # its own colour scale
    fig, (a1, a2) = plots.plot_structure_covariance(sleep_ris.Sigma, Z_i, sleep_ris.sigma**2, shared_scale=True)
    assert a1.images[0].get_clim() == a2.images[0].get_clim()
    with pytest.raises(ValueError, match="columns"):
        plots.plot_structure_covariance(sleep_ris.Sigma, np.ones((10, 3)), 1.0)


def test_fitted_lines_one_line_per_group_plus_population(sleep_ris):
    ax = plots.plot_fitted_lines(sleep_ris, "Days")
    assert len(ax.lines) == 18 + 1
    assert ax.get_xlabel() == "Days" and ax.get_ylabel() == "Reaction"
    x, y = ax.lines[-1].get_data()
    np.testing.assert_allclose(y, sleep_ris.fixef.iloc[0] + sleep_ris.fixef.iloc[1] * x)


def test_sampling_distributions_mark_means_and_truth():
    rng = np.random.default_rng(0)
    est = {"ML": rng.normal(3, 1, 50), "REML": rng.normal(4, 1, 50)}
    ax = plots.plot_sampling_distributions(est, truth=4.0, xlabel="sigma_v^2")
    xs = sorted(line.get_xdata()[0] for line in ax.lines)
    np.testing.assert_allclose(xs, sorted([est["ML"].mean(), est["REML"].mean(), 4.0]))
    assert ax.get_xlabel() == "sigma_v^2"
    assert any("ML" in t.get_text() for t in ax.get_legend().get_texts())


def test_shrinkage_ratio_and_curve():
    m = np.array([1, 2, 5, 10, 20])
    sv2, s2 = 4.0, 16.0
    lam = sv2 / (sv2 + s2 / m)
    raw = np.array([3.0, -2.0, 1.5, -4.0, 2.0])
    fig, (a1, a2) = plots.plot_shrinkage(raw, lam * raw, m, sigma_v2=sv2, sigma2=s2)
    np.testing.assert_allclose(a1.collections[0].get_offsets(), np.column_stack([raw, lam * raw]))
    np.testing.assert_allclose(a2.collections[0].get_offsets(), np.column_stack([m, lam]))
    grid, curve = a2.lines[0].get_data()
    np.testing.assert_allclose(curve, sv2 / (sv2 + s2 / grid))
    assert a2.get_xlabel() == "group size $m_i$"


def test_lrt_null_tail_probabilities():
    rng = np.random.default_rng(1)
    D = np.where(rng.random(400) < 0.5, 0.0, rng.chisquare(1, 400))
    fig, (a1, a2) = plots.plot_lrt_null(D, observed=3.0, df=1, mixture=((0.5, 0.5), (0, 1)))
    assert a1.get_title() == f"share of D = 0: {(D == 0).mean():.2f}"
    simulated, chi2, mixture = a2.lines[:3]
    x, p = simulated.get_data()
    np.testing.assert_allclose(p, [(D >= v).mean() for v in x])
    np.testing.assert_allclose(chi2.get_ydata(), stats.chi2.sf(chi2.get_xdata(), 1))
    np.testing.assert_allclose(mixture.get_ydata(), 0.5 * stats.chi2.sf(mixture.get_xdata(), 1) + 0.5 * (mixture.get_xdata() <= 0))
    assert a2.lines[3].get_xdata()[0] == 3.0
    assert a2.get_yscale() == "log"


def test_lrt_null_draws_the_point_mass_at_zero():
    D = np.r_[np.zeros(6), [0.5, 1.0, 2.0, 3.0]]
    fig, (a1, _) = plots.plot_lrt_null(D, df=1, mixture=((0.5, 0.5), (0, 1)))
    arrows = [t for t in a1.texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 1 and arrows[0].xy[0] == 0.0                    # an arrow standing on D = 0
    assert any("point mass at 0: 0.5 (mixture), 0.60 (simulated)" in t.get_text() for t in a1.texts)
    fig, (a1, _) = plots.plot_lrt_null(np.array([0.5, 1.0]), df=2, mixture=((0.5, 0.5), (1, 2)))
    assert not a1.texts                                                    # no point mass, no arrow


def test_structure_covariance_shared_scale_has_one_colour_bar(sleep_ris):
    Z_i = np.column_stack([np.ones(10), np.arange(10.0)])
    fig, (a1, a2) = plots.plot_structure_covariance(sleep_ris.Sigma, Z_i, sleep_ris.sigma**2, shared_scale=True)
    assert len(fig.axes) == 3                                              # two panels and one colour bar
    fig, _ = plots.plot_structure_covariance(sleep_ris.Sigma, Z_i, sleep_ris.sigma**2)
    assert len(fig.axes) == 4
