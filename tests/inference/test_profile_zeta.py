"""lme4's ``profile(m)`` curves (ζ at given values of one parameter), against lme4's own profile points
(tests/reference/profile_zeta_reference.R: each point of lme4's grid is one of its constrained ML fits)."""

import numpy as np
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.inference.profile import profile_zeta

REF = shared.reference("profile_zeta_reference")
ZETA_ATOL = 1e-4  # the estimates' tolerance, on ζ (a unit-scale quantity that crosses 0)
ZETA_SHOWN = 3.5
"""A zeta plot shows |ζ| up to about 3 (99.9%); beyond this lme4's grid at a small .sig01 stops on a higher branch
of the profile (a correlation pinned near ±1): lmmteach's inner minimum is lower there, checked separately."""
DEVIANCE_RTOL = 1e-6  # log-likelihoods' tolerance


def model():
    return shared.fit("Reaction ~ Days + (Days | Subject)", "sleepstudy", reml=False)


@pytest.mark.parametrize("parm", [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"])
def test_profile_zeta_as_lme4(parm):
    values, zeta_r = np.array(REF[parm]["value"]), np.array(REF[parm]["zeta"])
    out = profile_zeta(model(), parm, values)
    assert list(out.columns) == [parm, "deviance", "zeta"]
    shown = np.abs(zeta_r) <= ZETA_SHOWN
    np.testing.assert_allclose(out["zeta"].to_numpy()[shown], zeta_r[shown], atol=ZETA_ATOL)
    deviance_r = REF["deviance"] + zeta_r**2  # lme4's constrained deviance; ours is never above it
    assert np.all(out["deviance"].to_numpy() <= deviance_r * (1 + DEVIANCE_RTOL))


def test_profile_zeta_crosses_z_at_the_profile_interval_and_reml_is_profiled_by_ml():
    reml = shared.fit("Reaction ~ Days + (Days | Subject)", "sleepstudy")
    ci = lt.confint(reml, parm=[".sig01", ".sig02", ".sig03", ".sigma"])
    for parm, (lo, hi) in ci.iterrows():
        z = profile_zeta(reml, parm, [lo, hi])["zeta"].to_numpy()
        np.testing.assert_allclose(z, [-1.959964, 1.959964], atol=ZETA_ATOL)
        np.testing.assert_allclose(z, profile_zeta(model(), parm, [lo, hi])["zeta"], atol=ZETA_ATOL)


def test_profile_zeta_bad_input():
    m = model()
    with pytest.raises(ValueError, match="unknown parameter '.sig09'"):
        profile_zeta(m, ".sig09", [1.0])
    with pytest.raises(ValueError, match="a correlation: its values must lie in \\[-1, 1\\], got 1.5"):
        profile_zeta(m, ".sig02", [0.0, 1.5])
    with pytest.raises(ValueError, match="a standard deviation"):
        profile_zeta(m, ".sigma", [-1.0])
    with pytest.raises(ValueError, match="non-empty 1-d"):
        profile_zeta(m, "Days", [])
    with pytest.raises(TypeError, match="values must be numbers"):
        profile_zeta(m, "Days", ["a"])
