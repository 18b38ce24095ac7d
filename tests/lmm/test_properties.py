"""Property tests (hypothesis, derandomised so the suite stays deterministic)."""


import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import _shared as shared
import lmmteach as lt
from lmmteach import textbook as tb

SETTINGS = settings(derandomize=True, max_examples=20, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


fit = shared.fit


@st.composite
def clustered_data(draw, min_groups=4, max_groups=9):
    """A random unbalanced clustered data set: y, a numeric x, a 3-level factor f, groups g."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    G = draw(st.integers(min_groups, max_groups))
    sizes = rng.integers(3, 9, size=G)
    g = np.repeat(np.arange(G), sizes)
    n = len(g)
    x = rng.normal(size=n) * draw(st.sampled_from([1.0, 10.0, 0.1]))
    f = rng.choice(["a", "b", "c"], size=n)
    u0, u1 = rng.normal(scale=1.0, size=G), rng.normal(scale=0.5, size=G)
    y = 2 + 0.5 * x + (f == "b") + u0[g] + u1[g] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "f": pd.Categorical(f, ["a", "b", "c"]), "g": [f"s{i:02d}" for i in g]})


FORMULA = "y ~ x + f + (x | g)"


@SETTINGS
@given(clustered_data(), st.integers(0, 10_000))
def test_fit_is_invariant_to_row_order(data, seed):
    perm = np.random.default_rng(seed).permutation(len(data))
    m1, m2 = fit(FORMULA, data, reml=False), fit(FORMULA, data.iloc[perm], reml=False)
    assert m2.loglik == pytest.approx(m1.loglik, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(m2.fixef, m1.fixef, rtol=1e-5, atol=1e-6)
    pd.testing.assert_series_equal(m2.fitted.sort_index(), m1.fitted.sort_index(), rtol=1e-5, atol=1e-5)


@SETTINGS
@given(clustered_data(), st.integers(0, 10_000))
def test_fit_is_invariant_to_relabelling_groups(data, seed):
    labels = sorted(data.g.unique())
    new = dict(zip(labels, np.random.default_rng(seed).permutation([f"z{i}" for i in range(len(labels))])))
    m1, m2 = fit(FORMULA, data, reml=False), fit(FORMULA, data.assign(g=data.g.map(new)), reml=False)
    assert m2.loglik == pytest.approx(m1.loglik, rel=1e-9, abs=1e-9)
    r1, r2 = m1.ranef["g"], m2.ranef["g"]
    np.testing.assert_allclose(r2.loc[[new[k] for k in r1.index]].to_numpy(), r1.to_numpy(), rtol=1e-4, atol=1e-5)


@SETTINGS
@given(clustered_data(), st.floats(0.01, 100), st.floats(-50, 50), st.floats(0.01, 100), st.floats(-50, 50),
       st.booleans())
def test_affine_rescaling(data, a, c, b, d, reml):
    """y → a y + c, x → b x + d: b̂_x → (a/b) b̂_x, σ̂ → a σ̂, and the log-likelihood shifts by
    −n log a (ML) or −(n − p) log a − log|det T| (REML; T maps the old fixed-effect columns to the new)."""
    m1 = fit(FORMULA, data, reml=reml)
    m2 = fit(FORMULA, data.assign(y=a * data.y + c, x=b * data.x + d), reml=reml)
    n, p = m1.nobs, m1.design.p
    shift = -n * np.log(a) if not reml else -(n - p) * np.log(a) - np.log(b)
    assert m2.loglik == pytest.approx(m1.loglik + shift, rel=1e-7, abs=1e-6)
    assert m2.fixef["x"] == pytest.approx(a / b * m1.fixef["x"], rel=1e-4, abs=1e-6 * a / b)
    assert m2.sigma == pytest.approx(a * m1.sigma, rel=1e-4)


@SETTINGS
@given(clustered_data(max_groups=6), st.lists(st.floats(0.0, 2.0), min_size=3, max_size=3), st.floats(0.1, 5),
       st.booleans())
def test_textbook_path_equals_fast_path(data, theta, sigma2, reml):
    design = lt.lformula(FORMULA, data)
    devfun = lt.mk_devfun(design, reml=reml)
    theta = np.array([theta[0], theta[1] - 1.0, theta[2]])
    Sigma = sigma2 * devfun.relcov(theta)
    y, X, Z, Sigma_b, S = tb.design_matrices(design, Sigma, sigma2)
    dense = tb.loglik_reml(y, X, S) if reml else tb.loglik_ml(y, X, S)
    assert devfun.loglik(theta, sigma2) == pytest.approx(dense, rel=1e-9)
    e = devfun.evaluate(theta)
    np.testing.assert_allclose(e.beta, tb.gls_stacked(X, y, S), rtol=1e-7, atol=1e-9)


def anova_mean_squares(Y):
    """Closed forms of the one-way RM layout (n subjects x a levels), straight from the data:
    MSS = a Σ_i (ȳ_i. − ȳ..)² / (n − 1) and MSE = Σ_ij (y_ij − ȳ_i. − ȳ_.j + ȳ..)² / ((n − 1)(a − 1))."""
    n, a = Y.shape
    grand, subj, level = Y.mean(), Y.mean(axis=1, keepdims=True), Y.mean(axis=0, keepdims=True)
    mss = a * ((subj - grand) ** 2).sum() / (n - 1)
    mse = ((Y - subj - level + grand) ** 2).sum() / ((n - 1) * (a - 1))
    return mss, mse


@SETTINGS
@given(st.integers(3, 12), st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_balanced_oneway_reml_equals_anova_estimators(n, a, seed):
    """In a balanced one-way RM layout the REML variance components are the ANOVA estimators
    σ̂²_e = MSE and σ̂²_ρ = (MSS − MSE)/a, when MSS > MSE (the grocery data show it too); aov1rm reports
    the same two estimators."""
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(n, 1)) * 2 + rng.normal(size=(n, a)) + np.arange(a)
    mss, mse = anova_mean_squares(Y)
    # otherwise REML puts σ_ρ² on the boundary (0) while the ANOVA estimator is negative
    assume(mss > 1.001 * mse)
    long = pd.DataFrame({"y": Y.ravel(), "subject": np.repeat(np.arange(n), a).astype(str),
                         "level": np.tile([f"L{j}" for j in range(a)], n)})
    m = fit("y ~ level + (1 | subject)", long)
    assert m.sigma**2 == pytest.approx(mse, rel=1e-5)
    assert m.varcorr.vcov.iloc[0] == pytest.approx((mss - mse) / a, rel=1e-5)
    res = lt.aov1rm(Y)
    assert res.sigma2_e == pytest.approx(mse, rel=shared.ROUNDING_RTOL)
    assert res.sigma2_rho == pytest.approx((mss - mse) / a, rel=shared.ROUNDING_RTOL)
