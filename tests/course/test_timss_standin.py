"""The simulated TIMSS stand-in reproduces the notes' TIMSS example (issue 16).

Fits every model the notes fit to ``timss1997.txt`` on the stand-in and compares with the numbers the
notes print (Helwig, "Example: TIMSS Data"). The tolerances are the issue's: deviances within 0.5%, the
math LRT within 10%, the covariance LRT reaching the notes' decisions (reject at 0.05, retain at 0.01).
The stand-in is a random sample, not the real file, so estimates can only be *close*: fixed effects
within one standard error of the notes', random-effect SDs within a stated sampling margin.
"""

from __future__ import annotations

import numpy as np
import pytest

import lmmteach as lt

FIXED = "science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV"
MODELS = {
    "ramod": "science ~ 1 + (1 | idschool)",
    "rimod": "science ~ 1 + math + (1 | idschool)",
    "risucmod": FIXED + " + (grpCmath + grpChoursTV | idschool)",
    "risvcmod": FIXED + " + (grpCmath + grpChoursTV || idschool)",
    "risicmod": FIXED + " + (1 | idschool) + (0 + grpCmath + grpChoursTV | idschool)",
}
# the notes' printed deviances (anova tables and model prints)
NOTES_DEVIANCE = {"ramod": 51489, "rimod": 48482, "risucmod": 48313.60, "risvcmod": 48322.04, "risicmod": 48321.49}
NOTES_MATH_LRT = 3006.6
NOTES_RISUC_FIXED = [15.6041, 0.5593, 0.9309, 0.8990, -1.1839, -0.1152, -1.9144]
NOTES_RISUC_SD = {"(Intercept)": 1.89212, "grpCmath": 0.09541, "grpChoursTV": 0.36491}
NOTES_RESIDUAL_SD = 7.12812

DEVIANCE_RTOL = 0.005  # the "within 0.5%"
MATH_LRT_RTOL = 0.10  # the "within 10%"
FIXED_IN_SE = 1.0  # a sample from the notes' model: each fixed effect within one SE of the notes' value
# A random-effect SD of 146 schools has a sampling error of roughly 10-25% (the grpCmath slope SD is
# estimated from within-school slopes of 20-80 students); the residual SD from 7,097 students to < 1%.
RE_SD_RTOL = 0.25
RESIDUAL_SD_RTOL = 0.01


@pytest.fixture(scope="module")
def fits():
    timss = lt.load_timss(center=True)
    assert timss.attrs["simulated"] is True
    return {name: lt.lmer(formula, timss, reml=False) for name, formula in MODELS.items()}


@pytest.mark.parametrize("name", list(MODELS))
def test_deviance_within_half_a_percent_of_the_notes(fits, name):
    assert fits[name].deviance == pytest.approx(NOTES_DEVIANCE[name], rel=DEVIANCE_RTOL)


def test_math_lrt_within_ten_percent(fits):
    table = lt.anova(rimod=fits["rimod"], ramod=fits["ramod"])
    assert table["Chisq"].iloc[1] == pytest.approx(NOTES_MATH_LRT, rel=MATH_LRT_RTOL)
    assert table["Pr(>Chisq)"].iloc[1] < 2.2e-16  # the notes' "< 2.2e-16"


def test_covariance_lrt_reaches_the_notes_conclusions(fits):
    table = lt.anova(risucmod=fits["risucmod"], risvcmod=fits["risvcmod"])
    assert int(table["Df"].iloc[1]) == 3
    p = table["Pr(>Chisq)"].iloc[1]
    assert p < 0.05, "the notes reject H0: sigma_jk = 0 at alpha = 0.05"
    assert p > 0.01, "the notes retain H0: sigma_jk = 0 at alpha = 0.01"


def test_risucmod_fixed_effects_within_one_se_of_the_notes(fits):
    m = fits["risucmod"]
    gap = (m.fixef.to_numpy() - np.array(NOTES_RISUC_FIXED)) / m.se.to_numpy()
    assert np.all(np.abs(gap) < FIXED_IN_SE), dict(zip(m.fixef.index, np.round(gap, 2)))


def test_risucmod_standard_deviations_close_to_the_notes(fits):
    vc = fits["risucmod"].varcorr
    for name, notes_sd in NOTES_RISUC_SD.items():
        sd = vc.loc[(vc["grp"] == "idschool") & (vc["var1"] == name) & vc["var2"].isna(), "sdcor"].item()
        assert sd == pytest.approx(notes_sd, rel=RE_SD_RTOL), name
    assert fits["risucmod"].sigma == pytest.approx(NOTES_RESIDUAL_SD, rel=RESIDUAL_SD_RTOL)
    # the signs of the notes' correlations (0.46, 0.36, -0.27)
    corr = vc.loc[vc["var2"].notna(), "sdcor"].to_numpy()
    np.testing.assert_array_equal(np.sign(corr), [1, 1, -1])


def test_no_singular_fit(fits):
    # the notes' fits are all interior: no SD at zero, no correlation at +-1
    assert not any(m.is_singular for m in fits.values())
