"""lmmteach.course.interactive_glmm: the marginal curve is the integral it claims, against scipy and R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

from lmmteach.course import interactive_glmm as ig

REFERENCE = Path(__file__).parents[1] / "reference" / "lecture07_reference.json"


@pytest.mark.parametrize(("sigma", "rtol"), [(0.3, 1e-12), (1.0, 1e-12), (2.5, 1e-11), (4.0, 1e-7)])
def test_marginal_probability_is_the_integral(sigma, rtol):
    eta = np.array([-3.0, -1.0, 0.5, 2.0])
    exact = [integrate.quad(lambda u, e=e: special.expit(e + sigma * u) * stats.norm.pdf(u), -np.inf, np.inf,
                            epsabs=0, epsrel=1e-12)[0] for e in eta]
    np.testing.assert_allclose(ig.marginal_probability(eta, sigma), exact, rtol=rtol)


def test_marginal_probability_of_cbpp_periods_against_r():
    """lme4's cbpp estimates: R's integrate() of plogis(η + θu) φ(u) for each period's η."""
    ref = json.loads(REFERENCE.read_text())
    theta = ref["laplace"]["theta"][0] if isinstance(ref["laplace"]["theta"], list) else ref["laplace"]["theta"]
    got = ig.marginal_probability(np.array(ref["marginal"]["eta"]), theta)
    np.testing.assert_allclose(got, ref["marginal"]["marginal"], rtol=1e-9)


def test_limits_and_symmetry():
    eta = np.linspace(-4, 4, 9)
    np.testing.assert_allclose(ig.marginal_probability(eta, 0.0), special.expit(eta), rtol=1e-14)
    p = ig.marginal_probability(eta, 1.5)
    np.testing.assert_allclose(p + p[::-1], 1.0, rtol=1e-12)           # p̄(−η) = 1 − p̄(η)
    assert np.all(np.abs(p - 0.5) < np.abs(special.expit(eta) - 0.5) + 1e-15)  # pulled towards 1/2


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 4.0])
def test_zeger_attenuation_approximates_the_marginal_curve(sigma):
    eta = np.linspace(-6, 6, 121)
    approx = special.expit(eta * ig.attenuation(sigma))
    assert np.max(np.abs(ig.marginal_probability(eta, sigma) - approx)) < 0.012
    assert ig.attenuation(0.0) == 1.0


@pytest.mark.parametrize("bad", [-0.1, np.nan, np.inf, "1", True])
def test_bad_sigma_is_named(bad):
    with pytest.raises(ValueError, match="sigma"):
        ig.marginal_probability(0.0, bad)
    with pytest.raises(ValueError, match="sigma"):
        ig.attenuation(bad)


def test_plot_marginal_curve_draws_both_curves():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = ig.plot_marginal_curve(sigma=2.0, beta0=0.0, beta1=1.0)
    red = [line for line in a1.get_lines() if line.get_color() == "tab:red"][0]
    np.testing.assert_allclose(red.get_ydata(), ig.marginal_probability(red.get_xdata(), 2.0))
    assert len(a2.get_lines()) == 3
    plt.close(fig)
