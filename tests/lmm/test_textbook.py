"""The textbook (dense, stacked) path equals the fast (per-group) path at the same parameters."""

import warnings

import numpy as np
import pytest

import lmmteach as lt
from lmmteach import textbook as tb
import _shared as shared

CASES = [
    ("price ~ store + (1 | item)", lt.load_grocery, [1.3]),
    ("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy, [0.9, 0.1, 0.2]),
    ("Reaction ~ Days + (Days || Subject)", lt.load_sleepstudy, [0.7, 0.3]),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", lt.load_sleepstudy, [0.7, 0.25]),
]


@pytest.mark.parametrize("formula,loader,theta", CASES)
@pytest.mark.parametrize("reml", [False, True])
def test_dense_loglik_equals_fast_path(formula, loader, theta, reml):
    design = lt.lformula(formula, loader())
    devfun = lt.mk_devfun(design, reml=reml)
    sigma2 = 3.7 if "price" not in formula else 0.05
    Sigma = sigma2 * devfun.relcov(theta)
    y, X, Z, Sigma_b, Sigma_star = tb.design_matrices(design, Sigma, sigma2)
    dense = tb.loglik_reml(y, X, Sigma_star) if reml else tb.loglik_ml(y, X, Sigma_star)
    assert devfun.loglik(theta, sigma2) == pytest.approx(dense, rel=shared.ROUNDING_RTOL)
    # and the profiled version: at σ̂²(θ) the dense log-likelihood is −deviance/2
    e = devfun.evaluate(theta)
    *_, Sigma_star_hat = tb.design_matrices(design, e.sigma2 * devfun.relcov(theta), e.sigma2)
    dense_hat = tb.loglik_reml(y, X, Sigma_star_hat) if reml else tb.loglik_ml(y, X, Sigma_star_hat)
    assert -0.5 * e.deviance == pytest.approx(dense_hat, rel=shared.ROUNDING_RTOL)


def test_reml_error_contrasts_identities():
    """The notes' REML identities, for K with K'X = 0 and K'K = I."""
    design = lt.lformula("price ~ store + (1 | item)", lt.load_grocery())
    y, X, Z, Sigma_b, S = tb.design_matrices(design, np.array([[2.0]]), 0.05)
    K = tb.error_contrasts(X)
    assert K.shape == (40, 36)
    np.testing.assert_allclose(K.T @ X, 0, atol=shared.ZERO_ATOL)
    np.testing.assert_allclose(K.T @ K, np.eye(36), atol=shared.ZERO_ATOL)
    # ln|K'Σ*K| = ln|Σ*| + ln|X'Σ*⁻¹X| − ln|X'X|  (the notes' form holds up to the constant ln|X'X|)
    lhs = np.linalg.slogdet(K.T @ S @ K)[1]
    rhs = np.linalg.slogdet(S)[1] + np.linalg.slogdet(X.T @ np.linalg.solve(S, X))[1] - np.linalg.slogdet(X.T @ X)[1]
    assert lhs == pytest.approx(rhs, rel=shared.ROUNDING_RTOL)
    b = tb.gls_stacked(X, y, S)
    r = y - X @ b
    w = K.T @ y
    assert w @ np.linalg.solve(K.T @ S @ K, w) == pytest.approx(r @ np.linalg.solve(S, r), rel=shared.ROUNDING_RTOL)
    # so the two REML log-likelihoods differ only by ½ ln|X'X|, whatever Σ is
    diff = tb.loglik_reml_contrasts(y, X, S, K) - tb.loglik_reml(y, X, S)
    assert diff == pytest.approx(0.5 * np.linalg.slogdet(X.T @ X)[1], rel=shared.ROUNDING_RTOL)


@pytest.mark.parametrize("formula,loader", [(c[0], c[1]) for c in CASES])
def test_mixed_model_equations_give_the_fitted_blue_and_blup(formula, loader):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lt.lmer(formula, loader())
    d = m.design
    y, X, Z, Sigma_b, S = tb.design_matrices(d, m.Sigma, m.sigma**2)
    b, v = tb.mixed_model_equations(X, Z, y, m.sigma**2, Sigma_b)
    np.testing.assert_allclose(b, m.fixef.to_numpy(), rtol=1e-8)
    blups = m.ranef[d.group_name].to_numpy().ravel()
    np.testing.assert_allclose(v, blups, rtol=1e-7, atol=1e-9 * np.abs(blups).max())
    # the same BLUP from the marginal form  v̂ = Σ_b Z'Σ*⁻¹(y − X b̂)
    np.testing.assert_allclose(tb.blup(X, Z, y, b, Sigma_b, S), v, rtol=1e-7, atol=1e-9 * np.abs(v).max())
    # GLS with the per-group Σ_i gives the BLUE too
    ys, Xs, Zs = tb.split_by_group(d)
    Sigmas = [Zi @ m.Sigma @ Zi.T + m.sigma**2 * np.eye(len(yi)) for yi, Zi in zip(ys, Zs)]
    np.testing.assert_allclose(tb.gls(Xs, ys, Sigmas), m.fixef.to_numpy(), rtol=1e-8)


def test_vcov_is_inverse_gls_information():
    m = lt.lmer("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy())
    y, X, Z, Sigma_b, S = tb.design_matrices(m.design, m.Sigma, m.sigma**2)
    np.testing.assert_allclose(m.vcov.to_numpy(), np.linalg.inv(X.T @ np.linalg.solve(S, X)), rtol=1e-8)


def test_gradient_matches_finite_differences():
    d = lt.lformula("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy())
    for reml in (False, True):
        f = lt.mk_devfun(d, reml=reml)
        theta = np.array([0.8, 0.05, 0.25])
        g = f.evaluate(theta, gradient=True).gradient
        h = 1e-6
        fd = [(f(theta + h * e) - f(theta - h * e)) / (2 * h) for e in np.eye(3)]
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6)
