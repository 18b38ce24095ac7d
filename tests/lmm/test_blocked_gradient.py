"""The exact gradient of the blocked deviance (several grouping factors) against central differences of the
deviance itself, and its two parts ∂log|V|/∂C and ∂(r'V⁻¹r)/∂C against differences of log|V| and r'V⁻¹r.

Tolerance: central differences with step h = FD_STEP · max(|θ_k|, 0.1) have truncation error ~h²|d'''| ≈ 1e-10
and rounding error ~ε|d|/h ≈ 1e-16 · 300 / 1e-5 ≈ 3e-9 (d is a few hundred here), so the exact gradient must
agree to GRAD_RTOL = 1e-6 relative to the gradient's size (at least 1), with a margin of ~100 over both errors.
The points are away from the optimum (θ̂ stretched), where the gradient is far from 0."""

import numpy as np
import pytest

import _shared as shared
from lmmteach.lmm.blocked import BlockedDeviance
from test_crossed import FITS, fit

GRAD_RTOL = 1e-6
FD_STEP = 1e-5
SAME_RTOL = 1e-10  # one quantity computed two ways from the same evaluation: rounding only

# beyond the lme4-checked fits of test_crossed: a random slope in block r ("the rest"; item has fewer levels
# than subj) and random slopes on both factors
SLOPES = {
    "slope_in_rest": "y ~ x + (1 | subj) + (x | item)",
    "slope_both": "y ~ x + (x | subj) + (x | item)",
}


def _away(theta):
    """A point away from the optimum, inside the bounds (a correlation-type θ keeps its sign)."""
    theta = np.asarray(theta, float)
    return 1.3 * theta + 0.05 * np.sign(theta + 1e-12)


def _central(f, theta):
    """Central differences of a scalar function of θ."""
    out = np.empty(theta.size)
    for k in range(theta.size):
        h = FD_STEP * max(abs(theta[k]), 0.1)
        step = np.zeros(theta.size)
        step[k] = h
        out[k] = (f(theta + step) - f(theta - step)) / (2 * h)
    return out


def _assert_close(exact, approx):
    scale = max(1.0, float(np.max(np.abs(approx))))
    assert np.max(np.abs(exact - approx)) <= GRAD_RTOL * scale, (exact, approx)


def _slope_model(key, reml):
    return shared.fit(SLOPES[key], "crossed_slope", reml=reml)


MODELS = [("ref", k) for k in FITS] + [(k, reml) for k in SLOPES for reml in (False, True)]


def _model(spec):
    kind, key = spec
    return fit(key) if kind == "ref" else _slope_model(kind, key)


@pytest.mark.parametrize("spec", MODELS, ids=[f"{a}-{b}" for a, b in MODELS])
def test_gradient_matches_central_differences(spec):
    m = _model(spec)
    f = m.devfun
    assert isinstance(f, BlockedDeviance)
    theta = _away(m.theta)
    e = f.evaluate(theta, gradient=True)
    assert e.deviance == pytest.approx(f(theta), rel=SAME_RTOL)
    _assert_close(e.gradient, _central(f, theta))


@pytest.mark.parametrize("spec", MODELS, ids=[f"{a}-{b}" for a, b in MODELS])
def test_gradient_parts_over_C(spec):
    """∂log|V|/∂C and ∂(r'V⁻¹r)/∂C, through the chain rule tr(∂/∂C · ∂C/∂θ_k), against differences of log|V|
    and of r'V⁻¹r; and ∂d/∂C the same way against the gradient (all in the terms' block-diagonal layout)."""
    m = _model(spec)
    f = m.devfun
    theta = _away(m.theta)
    e = f.evaluate(theta, gradient=True)
    dC_dtheta = _relcov_grad(f, theta)
    chain = lambda G: np.einsum("ij,kij->k", G, dC_dtheta)  # noqa: E731
    _assert_close(chain(e.dlogdetV_dC), _central(lambda t: f.evaluate(t).logdet_V, theta))
    _assert_close(chain(e.dpwrss_dC), _central(lambda t: f.evaluate(t).pwrss, theta))
    np.testing.assert_allclose(chain(e.dC), e.gradient, rtol=SAME_RTOL, atol=SAME_RTOL)
    # at a fixed σ² (what the profiles use): d/dθ [log|V| + r'V⁻¹r/σ²]
    s2 = 1.7 * e.sigma2
    _assert_close(chain(e.dlogdetV_dC + e.dpwrss_dC / s2),
                  _central(lambda t: (lambda x: x.logdet_V + x.pwrss / s2)(f.evaluate(t)), theta))
    np.testing.assert_allclose(e.C, f.relcov(theta), rtol=SAME_RTOL, atol=0)


def _relcov_grad(f, theta):
    """∂C/∂θ_k (n_theta, q, q) in the block-diagonal layout of the terms."""
    q = sum(s.q for s in f.structures)
    out = np.zeros((len(theta), q, q))
    k, offset = 0, 0
    for s, t in zip(f.structures, f.split(theta)):
        out[k : k + s.n_params, offset : offset + s.q, offset : offset + s.q] = s.relcov_grad(t)
        k, offset = k + s.n_params, offset + s.q
    return out


def test_slope_in_rest_is_in_block_r():
    """The case the two slope models are here for: a term with two random effects outside block 1."""
    f = _slope_model("slope_in_rest", False).devfun
    assert [f.cp.q_terms[k] for k in f.cp.rest] == [2]


def test_gradient_new_response():
    """A refit's deviance (a new response: only the y-products change) has the exact gradient too."""
    m = fit("penicillin_ml")
    y = np.asarray(m.design.y, float) + np.random.default_rng(3).normal(size=m.nobs)
    f = m.devfun.with_response(m.design.with_response(y))
    theta = _away(m.theta)
    _assert_close(f.evaluate(theta, gradient=True).gradient, _central(f, theta))


@pytest.mark.parametrize("formula, data", [("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
                                           ("strength ~ 1 + (1 | batch/cask)", "pastes"),
                                           ("strength ~ 1 + (1 | batch) + (1 | sample)", "pastes")])
@pytest.mark.parametrize("reml", [True, False])
def test_trace_formula_gradient_is_the_general_one(formula, data, reml, monkeypatch):
    """Scalar terms with every θ_j ≥ TRACE_FORMULA_MIN_THETA take W_j = (ℓ_j − tr_j M⁻¹)/θ_j² (speed only):
    the same gradient, to rounding, as the blocks H and T_rr (the floor raised so that those run)."""
    import lmmteach as lt
    import lmmteach.lmm.blocked as blocked

    f = lt.mk_devfun(lt.lformula(formula, shared.data(data)), reml=reml)
    for theta in (f.theta0, 0.3 * f.theta0 + 0.02, 2.0 * f.theta0):
        assert theta.min() >= blocked.TRACE_FORMULA_MIN_THETA
        fast = f._evaluate(theta, gradient=True)
        monkeypatch.setattr(blocked, "TRACE_FORMULA_MIN_THETA", np.inf)
        general = f._evaluate(theta, gradient=True)
        monkeypatch.undo()
        scale = max(1.0, float(np.abs(general.gradient).max()))
        np.testing.assert_allclose(fast.gradient, general.gradient, rtol=0, atol=SAME_RTOL * scale)
        np.testing.assert_allclose(fast.dC, general.dC, rtol=0, atol=SAME_RTOL * max(1.0, np.abs(general.dC).max()))
