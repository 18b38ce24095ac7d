"""lmmteach.course.interactive: the computations behind the lectures' interactive figures, against closed forms."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from scipy import stats

import lmmteach as lt
from lmmteach.course import interactive
import _shared as shared

MC_SE_BAND = 4  # Monte Carlo tolerance: simulated coverage within 4 binomial SEs (plus the approximation's bias)


@pytest.mark.parametrize("icc, m", [(0.0, 10), (1 / 3, 10), (0.1, 50)])
def test_naive_ols_coverage_follows_the_design_effect(icc, m):
    n_rep = 4000
    simulated = interactive.naive_ols_coverage(icc, m, n_rep=n_rep, seed=11)
    approx = float(interactive.coverage_approximation(icc, m))
    # the approximation ignores that sigma^2-hat is slightly below sigma_Y^2 and the t vs normal quantile: 0.03
    assert abs(simulated - approx) <= MC_SE_BAND * np.sqrt(approx * (1 - approx) / n_rep) + 0.03


def test_naive_ols_coverage_rejects_bad_input():
    with pytest.raises(ValueError, match="icc"):
        interactive.naive_ols_coverage(1.0, 10)
    with pytest.raises(ValueError, match="m must be"):
        interactive.naive_ols_coverage(0.2, 2.5)


def test_ar1_sigma_is_positive_definite_and_spherical_only_when_independent():
    assert lt.box_epsilon(interactive.ar1_sigma(0.0)) == pytest.approx(1.0, abs=shared.ZERO_ATOL)
    for rho in (-0.5, 0.3, 0.95):
        for var_last in (0.5, 1.0, 9.0):
            S = interactive.ar1_sigma(rho, var_last)
            assert np.linalg.eigvalsh(S).min() > 0
            assert 1 / 3 - 1e-12 <= lt.box_epsilon(S) < 1
    with pytest.raises(ValueError, match="rho"):
        interactive.ar1_sigma(1.0)


def test_epsilon_estimates_gg_is_biased_down_hf_up_under_sphericity():
    eps_gg, eps_hf = interactive.epsilon_estimates(np.eye(4), n=10, n_rep=400, seed=3)
    assert np.all((eps_gg >= 1 / 3 - 1e-12) & (eps_gg <= 1 + 1e-12))
    assert eps_gg.mean() < 0.9 < 1 < np.nanmean(eps_hf)      # GG conservative, uncapped HF above 1 on average


def test_plots_draw_with_their_defaults():
    fig, axes = interactive.plot_naive_ols_coverage(n_rep=200)
    assert len(axes) == 2
    fig, axes = interactive.plot_sphericity_f_tails(n_rep=100)
    assert len(axes) == 3
    eps = lt.box_epsilon(interactive.ar1_sigma(0.8))
    f_crit = stats.f.ppf(0.95, 3, 27)
    assert f"{stats.f.sf(f_crit, 3 * eps, 27 * eps):.3f}" in axes[2].get_title()


def test_interact_if_available_draws_the_default_into_an_output_widget(capsys, monkeypatch):
    ipywidgets = pytest.importorskip("ipywidgets")
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda widget: shown.append(widget))
    assert interactive.interact_if_available(interactive.plot_naive_ols_coverage, icc=(0.0, 0.9, 0.05, 0.35),
                                             m=(2, 100, 1, 10)) is None
    (box,) = shown
    sliders, out = box.children
    assert [s.description for s in sliders.children] == ["icc", "m"]
    assert isinstance(sliders.children[1], ipywidgets.IntSlider)
    assert len(out.outputs) == 1 and "Figure" in out.outputs[0]["data"]["text/plain"]
    sliders.children[1].value = 20                                       # moving a slider redraws
    assert len(out.outputs) == 1
    with pytest.raises(TypeError, match="slider 'm'"):
        interactive.interact_if_available(interactive.plot_naive_ols_coverage, m=(2, 100))
