"""lmmteach.course.interactive_lmm: the pooling figure draws the notes' BLUP, checked against lmer."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import lmmteach as lt
from lmmteach.course import interactive_lmm as il


def test_partial_pooling_is_the_blup_of_a_random_intercept_fit_at_its_own_variances():
    # an lmer fit estimates (σ_v², σ²); at those values, b̂_0 + λ_i(ȳ_i − b̂_0) must be its fixef + ranef
    m_i, ybar, _ = il.pooling_data(4.0, 16.0, 5)
    rng = np.random.default_rng(3)
    rows = [(g, y) for g, k in enumerate(m_i) for y in ybar[g] + rng.normal(0, 4, k)]
    data = pd.DataFrame(rows, columns=["group", "y"]).astype({"group": "category"})
    fit = lt.lmer("y ~ 1 + (1 | group)", data)
    means = data.groupby("group", observed=True)["y"].mean().to_numpy()
    est = il.pooling_estimates(means, m_i, fit.Sigma[0, 0], fit.sigma**2)
    np.testing.assert_allclose(est["b0"], fit.fixef.iloc[0], rtol=1e-8)
    np.testing.assert_allclose(est["partial pooling"], fit.coef["group"]["(Intercept)"], rtol=1e-8)
    np.testing.assert_allclose(est["complete pooling"], data.y.mean())
    np.testing.assert_allclose(est["no pooling"], means)


def test_pooling_limits():
    ybar, m_i = np.array([1.0, 5.0, 9.0]), np.array([1, 4, 10])
    none = il.pooling_estimates(ybar, m_i, sigma_v2=0.0, sigma2=1.0)       # no group variance: all at b̂_0
    np.testing.assert_allclose(none["partial pooling"], np.average(ybar, weights=m_i))
    wide = il.pooling_estimates(ybar, m_i, sigma_v2=1e9, sigma2=1.0)      # huge group variance: ȳ_i kept
    np.testing.assert_allclose(wide["partial pooling"], ybar, rtol=1e-6)


def test_plot_pooling_draws_the_estimates_and_the_lambda_curve():
    fig, (a1, a2) = il.plot_pooling(4.0, 16.0, 5)
    m_i, ybar, truth = il.pooling_data(4.0, 16.0, 5)
    est = il.pooling_estimates(ybar, m_i, 4.0, 16.0)
    np.testing.assert_allclose(a1.collections[0].get_offsets()[:, 1], ybar)
    np.testing.assert_allclose(a1.collections[1].get_offsets()[:, 1], est["partial pooling"])
    grid, curve = a2.lines[0].get_data()
    np.testing.assert_allclose(curve, 4.0 / (4.0 + 16.0 / grid))
    np.testing.assert_allclose(a2.collections[0].get_offsets(), np.column_stack([m_i, est["lambda"]]))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="sigma2"):
        il.pooling_data(4.0, 0.0, 5)
    with pytest.raises(ValueError, match="group size"):
        il.pooling_data(4.0, 1.0, 0)
