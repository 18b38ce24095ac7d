"""The exact gradient of the Laplace deviance (lmmteach.glmm.laplace_gradient) against central differences of
the deviance itself, at parameters away from the optimum (so that the gradient is far from zero) and at a
boundary θ = 0.

Tolerance: GRADIENT_RTOL relative to max(1, |∂f|). Central differences with step h have truncation error
~h²f'''/6 (h = 1e-4: ~1e-8 relative here) and rounding error ~ε·|f|/h plus PIRLS's convergence noise
(:data:`lmmteach.glmm.pirls.PIRLS_TOL`, ~1e-11 of a deviance in the thousands) over h: ~1e-7 absolute. So a
wrong term in the gradient (of size ≥ 1e-4 everywhere we looked) shows up, the differences' own error does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmmteach.glmm.family import binomial, poisson
from lmmteach.glmm.laplace import mk_glmer_devfun
from lmmteach.glmm.laplace_gradient import has_exact_gradient, laplace_gradient
from lmmteach.glmm.response import TRIALS_COLUMN, glmm_data
from lmmteach.lmm.design import lformula

REF_DIR = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REF_DIR / "glmm_reference.json").read_text())
FILES = {"cbpp": "glmm_cbpp.csv", "verbagg": "glmm_verbagg.csv", "contraception": "glmm_contraception.csv",
         "grouseticks": "glmm_grouseticks.csv"}
DTYPES = {"period": str, "livch": str, "YEAR": str}

pytestmark = pytest.mark.filterwarnings("ignore:the labels of 'h' repeat")  # crossed on purpose

GRADIENT_RTOL = 1e-6
FD_STEP = 1e-4


def devfun_of(formula, frame, fam):
    frame, response = glmm_data(formula, frame, fam)
    design = lformula(response.formula, frame, weights=TRIALS_COLUMN)
    return mk_glmer_devfun(design, fam, design.y, design.weights, design.offset, 1)


def central(devfun, x, step=FD_STEP):
    g = np.empty_like(x)
    for k in range(len(x)):
        h = step * max(1.0, abs(x[k]))
        up, down = x.copy(), x.copy()
        up[k] += h
        down[k] -= h
        g[k] = (devfun(up) - devfun(down)) / (2 * h)
    return g


def check(devfun, x):
    assert has_exact_gradient(devfun)
    f, g = laplace_gradient(devfun, x)
    assert f == pytest.approx(devfun(x), rel=1e-12)
    fd = central(devfun, x)
    np.testing.assert_allclose(g, fd, rtol=0, atol=GRADIENT_RTOL * max(1.0, float(np.max(np.abs(fd)))))
    return g


def simulated(seed=1, n_g=40, n_per=12, slope=False, family="binomial"):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_g), n_per)
    h = rng.integers(0, 9, size=len(g))
    x = rng.normal(size=len(g))
    eta = -0.2 + 0.6 * x + rng.normal(0, 0.8, n_g)[g] + rng.normal(0, 0.5, 9)[h]
    if slope:
        eta = eta + rng.normal(0, 0.4, n_g)[g] * x
    y = rng.binomial(1, 1 / (1 + np.exp(-eta))) if family == "binomial" else rng.poisson(np.exp(eta))
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "h": h.astype(str)})


def ref_devfun(key):
    ref = REF[key]
    fam = binomial(ref["link"]) if ref["family"] == "binomial" else poisson()
    return devfun_of(ref["formula"], pd.read_csv(REF_DIR / FILES[key], dtype=DTYPES), fam)


def away_from_optimum(devfun, theta):
    return np.r_[theta, devfun.beta_glm + 0.1]


def test_binomial_logit_one_factor():
    d = ref_devfun("cbpp")
    check(d, away_from_optimum(d, [0.8]))


def test_crossed_scalar_factors_verbagg():
    d = ref_devfun("verbagg")
    check(d, away_from_optimum(d, [1.1, 0.4]))


def test_vector_valued_term():
    d = devfun_of("y ~ x + (1 + x | g)", simulated(slope=True), binomial())
    check(d, away_from_optimum(d, [0.7, 0.2, 0.3]))


def test_vector_valued_term_crossed_contraception():
    d = ref_devfun("contraception")
    check(d, away_from_optimum(d, [0.6, -0.3, 0.5]))


def test_poisson_log_crossed():
    d = ref_devfun("grouseticks")
    check(d, away_from_optimum(d, [0.9, 0.6]))


@pytest.mark.parametrize("link", ["probit", "cloglog"])
def test_non_canonical_links(link):
    d = devfun_of("y ~ x + (1 | g) + (1 | h)", simulated(), binomial(link))
    check(d, away_from_optimum(d, [0.6, 0.3]))


def test_theta_at_zero():
    """At θ_k = 0 the deviance is even in θ_k (u → −u), so its derivative is 0 there; the others as usual."""
    d = devfun_of("y ~ x + (1 | g) + (1 | h)", simulated(), binomial())
    g = check(d, away_from_optimum(d, [0.0, 0.4]))
    assert abs(g[0]) < GRADIENT_RTOL * max(1.0, float(np.max(np.abs(g))))


# -- the engines' M⁻¹ entries and solves, against dense algebra ----------------------------------------------
def dense_ZLambda(devfun, theta):
    """ZΛ as a dense n × q matrix, columns in the engine's order of u (written out here independently of
    lmmteach.glmm.laplace_gradient): the first grouping factor's terms side by side level by level, then every
    other term level by level."""
    design = devfun.design
    lambdas = devfun.lambdas(theta)
    blocks = design.blocks
    first = [k for k, b in enumerate(blocks) if b.group_name == blocks[0].group_name]
    rest = [k for k in range(len(blocks)) if k not in first]
    n = len(devfun.y)
    cols = []
    q1 = sum(blocks[k].q for k in first)
    B1 = np.zeros((n, blocks[0].n_levels * q1))
    a = np.hstack([blocks[k].Z @ lambdas[k] for k in first])
    for i in range(n):
        B1[i, blocks[0].group[i] * q1 : (blocks[0].group[i] + 1) * q1] = a[i]
    cols.append(B1)
    for k in rest:
        b, q = blocks[k].Z @ lambdas[k], blocks[k].q
        Bk = np.zeros((n, blocks[k].n_levels * q))
        for i in range(n):
            Bk[i, blocks[k].group[i] * q : (blocks[k].group[i] + 1) * q] = b[i]
        cols.append(Bk)
    return np.hstack(cols)


INVERSE_RTOL = 1e-10  # both sides are direct factorisations of a well-conditioned M (eigenvalues ≥ 1)


@pytest.mark.parametrize("formula, theta", [("y ~ x + (1 | g)", [0.8]), ("y ~ x + (1 + x | g)", [0.7, 0.2, 0.3]),
                                            ("y ~ x + (1 | g) + (1 | h)", [0.6, 0.4]),
                                            ("y ~ x + (1 + x | g) + (1 | h)", [0.7, 0.2, 0.3, 0.5]),
                                            ("y ~ x + (1 | g) + (1 + x | h)", [0.5, 0.6, -0.2, 0.4])])
def test_inverse_blocks_leverages_and_solve_match_dense_algebra(formula, theta):
    from lmmteach.glmm.laplace_gradient import Layout

    d = devfun_of(formula, simulated(slope=True), binomial())
    x = np.r_[theta, d.beta_glm]
    modes = d.modes(np.asarray(theta), d.beta_glm)
    z = d.family.working_response(d.y, modes.eta, d.offset)
    ev = d.engine.reweighted(modes.weights, z).evaluate(np.asarray(theta))
    B = dense_ZLambda(d, np.asarray(theta))
    M = B.T @ (modes.weights[:, None] * B) + np.eye(B.shape[1])
    Minv = np.linalg.inv(M)
    layout = Layout(d.design, d.lambdas(x[: d.n_theta]))
    np.testing.assert_allclose(layout.leverages(ev.inverse_blocks()), np.einsum("ij,jk,ik->i", B, Minv, B),
                               rtol=INVERSE_RTOL)
    v = np.random.default_rng(3).normal(size=B.shape[1])
    np.testing.assert_allclose(ev.solve_M(v), Minv @ v, rtol=INVERSE_RTOL, atol=INVERSE_RTOL)
    np.testing.assert_allclose(layout.crossprod(np.arange(len(d.y), dtype=float)), B.T @ np.arange(len(d.y)),
                               rtol=INVERSE_RTOL)
    np.testing.assert_allclose(layout.times(v), B @ v, rtol=INVERSE_RTOL, atol=INVERSE_RTOL)


def test_sparse_schur_engine_keeps_the_derivative_free_path(monkeypatch):
    """The sparse Schur complement gives no M⁻¹ entries: no exact gradient, and glmer falls back to COBYQA and
    the finite-difference Newton steps -- reaching the dense engine's optimum."""
    import lmmteach as lt
    import lmmteach.lmm.engine as engine

    frame = simulated()
    dense = lt.glmer("y ~ x + (1 | g) + (1 | h)", frame, "binomial")
    monkeypatch.setattr(engine, "SPARSE_SCHUR_COLUMNS", 2)
    d = devfun_of("y ~ x + (1 | g) + (1 | h)", frame, binomial())
    assert not has_exact_gradient(d)
    with pytest.raises(ValueError, match="sparse Schur"):
        laplace_gradient(d, np.r_[0.5, 0.5, d.beta_glm])
    sparse = lt.glmer("y ~ x + (1 | g) + (1 | h)", frame, "binomial")
    assert not any("exact gradient" in line for line in sparse.optimum.log)
    assert sparse.loglik == pytest.approx(dense.loglik, rel=1e-8)
    np.testing.assert_allclose(sparse.fixef.to_numpy(), dense.fixef.to_numpy(), atol=1e-4)


SE_AGREEMENT_RTOL = 3e-5  # two Hessians taken within 1e-4 of the optimum (measured: 1.7e-6 to 7.4e-6)


@pytest.mark.parametrize("key", ["verbagg", "grouseticks", "contraception"])
def test_newton_search_reaches_the_lbfgs_optimum(key):
    """The default search (Newton with the β block 2X'V⁻¹X, :func:`hybrid_newton`) and L-BFGS-B end at the same
    optimum, with the same standard errors. (Each Hessian is taken where its search handed over, within
    ``GlmerControl.hessian_reuse`` = 1e-4 of the optimum: entries differ by up to ~2e-3 relative, the standard
    errors by < 1e-5.)"""
    from lmmteach.glmm.optimize import GlmerControl, optimize_glmer

    newton = optimize_glmer(ref_devfun(key))
    lbfgs = optimize_glmer(ref_devfun(key), GlmerControl(stage2="lbfgs"))
    assert any("Newton with the beta block" in line for line in newton.log)
    assert not any("Newton with the beta block" in line for line in lbfgs.log)
    assert newton.converged and lbfgs.converged
    assert newton.deviance == pytest.approx(lbfgs.deviance, rel=1e-10)
    np.testing.assert_allclose(np.r_[newton.theta, newton.beta], np.r_[lbfgs.theta, lbfgs.beta], atol=1e-5)
    n = len(newton.theta)

    def se(opt):
        return np.sqrt(np.diag(2 * np.linalg.inv(opt.hessian))[n:])

    np.testing.assert_allclose(se(newton), se(lbfgs), rtol=SE_AGREEMENT_RTOL)


def test_newton_search_does_not_stop_at_the_saddle_at_theta_zero():
    """The deviance is even in a scalar θ, so θ = 0 is stationary; a long Newton step clipped at 0 used to stop
    there although the optimum has θ_h ≈ 0.33 (a step now goes at most BOUNDARY_FRACTION of the way to 0)."""
    from lmmteach.glmm.optimize import BOUNDARY_FRACTION, boundary_floor, optimize_glmer

    opt = optimize_glmer(devfun_of("y ~ x + (1 | g) + (1 | h)", simulated(), binomial()))
    assert opt.converged and opt.theta[1] > 0.3
    floor = boundary_floor(np.array([0.5, 1e-5, 2.0]), np.array([0.0, 0.0, -np.inf]))
    np.testing.assert_array_equal(floor, [BOUNDARY_FRACTION * 0.5, 0.0, -np.inf])


def test_unknown_search_is_refused():
    from lmmteach.glmm.optimize import GlmerControl, optimize_glmer

    with pytest.raises(ValueError, match="stage2 must be 'newton' or 'lbfgs'"):
        optimize_glmer(ref_devfun("cbpp"), GlmerControl(stage2="bfgs"))
