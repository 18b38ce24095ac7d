"""Satterthwaite df from the exact gradient of −2ℓ(θ, σ): lmerTest's numbers, whatever the step.

The Hessian over φ = (θ, σ) is a Richardson difference of the exact gradient
(:meth:`DevianceFunction.deviance_given_sigma`), not a second difference of function values, so the df
do not move with the step (a second difference of −2ℓ at step 1e-5 gave 13.298 for BodyWeight).
"""

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.inference import satterthwaite as S

REF = shared.reference("satterthwaite_reference")["bodyweight"]
DF_ATOL = 1e-4
"""The issue's target: lmerTest's df to 1e-4."""
STEP_ATOL = 1e-5
"""Df at steps three orders of magnitude apart agree to this (they differ by ~1e-7 here)."""
GRAD_RTOL = 1e-6
"""Exact gradient against central differences of −2ℓ (those carry ~1e-8 truncation and roundoff)."""


@pytest.fixture(scope="module")
def bodyweight():
    bw = pd.read_csv(shared.REFERENCE / "bodyweight.csv", dtype={"Rat": str, "Diet": str})
    return shared.fit(REF["formula"], bw)


def test_bodyweight_fit_equals_lme4(bodyweight):
    assert bodyweight.loglik == pytest.approx(REF["loglik"], rel=1e-6)
    assert bodyweight.fixef.to_numpy() == pytest.approx(REF["estimate"], rel=1e-4)
    assert bodyweight.se.to_numpy() == pytest.approx(REF["se"], rel=1e-4)


def test_bodyweight_dendf_equals_lmertest(bodyweight):
    tab = lt.satterthwaite(bodyweight)
    assert list(tab.index) == REF["names"]
    np.testing.assert_allclose(tab.df.to_numpy(), REF["df"], atol=DF_ATOL, rtol=0)


def test_dendf_does_not_depend_on_the_step(bodyweight, monkeypatch):
    dfs = []
    for step in (1e-2, 1e-5):
        monkeypatch.setattr(S, "STEP", step)
        dfs.append(lt.satterthwaite(bodyweight).df.to_numpy())
    np.testing.assert_allclose(dfs[0], dfs[1], atol=STEP_ATOL, rtol=0)


def _central(f, x, h=1e-5):
    out = np.empty(len(x))
    for k in range(len(x)):
        e = np.zeros(len(x))
        e[k] = h * max(1.0, abs(x[k]))
        out[k] = (f(x + e) - f(x - e)) / (2 * e[k])
    return out


@pytest.mark.parametrize("model", ["bodyweight", "penicillin", "gls_ar1"])
def test_gradient_given_sigma_is_the_derivative(model, bodyweight):
    """∂(−2ℓ(θ, σ))/∂(θ, σ) of each engine (one factor, blocked, gls) against central differences,
    away from the optimum (where the θ part would vanish for the profiled deviance but not here)."""
    if model == "bodyweight":
        m = bodyweight
    elif model == "penicillin":
        m = shared.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin")
    else:
        m = lt.gls("distance ~ age", lt.load_orthodont(), group="Subject", time="age", correlation="ar1")
    phi = np.r_[m.theta * 1.1 + 0.05, m.sigma * 0.9]
    d, g = m.devfun.deviance_given_sigma(phi[:-1], phi[-1], gradient=True)
    assert d == pytest.approx(-2 * m.devfun.loglik(phi[:-1], phi[-1] ** 2), rel=1e-12)
    fd = _central(lambda p: m.devfun.deviance_given_sigma(p[:-1], p[-1]), phi)
    np.testing.assert_allclose(g, fd, rtol=GRAD_RTOL, atol=GRAD_RTOL * np.abs(fd).max())
