"""glmer against lme4 (tests/reference/glmm_reference.R -> glmm_reference.json, data as CSV beside it).

Tolerances: log-likelihoods 1e-6 relative, fixed effects and θ 1e-4 absolute (the common brief). The
reference fits use glmerControl(tolPwrss = 1e-13) -- see the R script for why lme4's default PIRLS tolerance
does not give converged numbers. Standard errors come from a finite-difference Hessian in both programs
(lme4's and ours): 1e-4 relative. Before any fit, the deviance at given (θ, β) is pinned against lme4's
``devFunOnly`` function (MixedModels.jl's habit), so that an optimiser change cannot hide an algebra bug.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import lmmteach as lt
from lmmteach.glmm.family import binomial, poisson
from lmmteach.glmm.laplace import mk_glmer_devfun
from lmmteach.glmm.response import TRIALS_COLUMN, glmm_data
from lmmteach.lmm.design import lformula

REF_DIR = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REF_DIR / "glmm_reference.json").read_text())

LOGLIK_RTOL = 1e-6
ESTIMATE_ATOL = 1e-4
SE_RTOL = 1e-4  # both SEs come from finite-difference Hessians of the deviance
DEVFUN_RTOL = 1e-8  # deviance at fixed (θ, β): lme4's PIRLS stops at a relative 1e-13 of a pdev in the thousands
MODE_ATOL = 1e-4

DTYPES = {"period": str, "livch": str, "YEAR": str}
CASES = {  # reference key: data file
    "cbpp": "glmm_cbpp.csv", "cbpp_null": "glmm_cbpp.csv", "cbpp_probit": "glmm_cbpp.csv",
    "cbpp_cloglog": "glmm_cbpp.csv", "cbpp_agq25": "glmm_cbpp.csv", "grouseticks": "glmm_grouseticks.csv",
    "grouseticks_agq9": "glmm_grouseticks.csv", "contraception": "glmm_contraception.csv",
    "verbagg": "glmm_verbagg.csv", "cbpp_agq0": "glmm_cbpp.csv", "grouseticks_agq0": "glmm_grouseticks.csv",
}


@lru_cache(maxsize=None)
def data(file: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / file, dtype=DTYPES)


def family(ref) -> lt.glmm.family.Family:
    return binomial(ref["link"]) if ref["family"] == "binomial" else poisson()


@lru_cache(maxsize=None)
def fit(key: str):
    ref = REF[key]
    return lt.glmer(ref["formula"], data(CASES[key]), family(ref), nAGQ=ref["nAGQ"])


def devfun(key: str, nAGQ: int | None = None):
    ref = REF[key]
    fam = family(ref)
    frame, response = glmm_data(ref["formula"], data(CASES[key]), fam)
    design = lformula(response.formula, frame, weights=TRIALS_COLUMN)
    return mk_glmer_devfun(design, fam, design.y, design.weights, design.offset,
                           ref["nAGQ"] if nAGQ is None else nAGQ)


def lme4_loglik(model) -> float:
    """lme4's logLik: for nAGQ > 1 it leaves out the saturated log-likelihood (see the R script)."""
    return model.loglik - (model.saturated_loglik if model.nAGQ > 1 else 0.0)


# -- the deviance at fixed parameters ------------------------------------------------------------------------
def test_nagq0_deviance_of_theta_alone_matches_lme4():
    for key in ("cbpp_agq0", "grouseticks_agq0"):
        ref, f = REF[key], devfun(key)
        assert f.stage1(ref["theta"]) == pytest.approx(ref["devfun"]["at_fit"], rel=DEVFUN_RTOL)
        assert f.stage1(ref["devfun"]["theta_other"]) == pytest.approx(ref["devfun"]["at_other"], rel=DEVFUN_RTOL)


@pytest.mark.parametrize("key", ["cbpp", "cbpp_probit", "cbpp_cloglog", "grouseticks", "contraception", "verbagg",
                                 "cbpp_agq25", "grouseticks_agq9"])
def test_deviance_at_fixed_parameters_matches_lme4(key):
    ref = REF[key]
    f = devfun(key)
    shift = -2 * float(np.sum(f.family.loglik_terms(f.y, f.y, f.prior_weights))) if ref["nAGQ"] > 1 else 0.0
    at_fit = f(np.r_[ref["theta"], ref["fixef"]]) - shift
    at_other = f(np.r_[ref["devfun"]["theta_other"], ref["devfun"]["beta_other"]]) - shift
    assert at_fit == pytest.approx(ref["devfun"]["at_fit"], rel=DEVFUN_RTOL)
    assert at_other == pytest.approx(ref["devfun"]["at_other"], rel=DEVFUN_RTOL)


def test_loglik_as_nagq_grows_matches_lme4():
    f = devfun("cbpp_agq25")
    ref = REF["cbpp_agq25"]
    saturated = -2 * float(np.sum(f.family.loglik_terms(f.y, f.y, f.prior_weights)))
    x = np.r_[ref["theta"], ref["fixef"]]
    for row in REF["cbpp_agq_path"]:
        f.nAGQ = row["nAGQ"]
        # lme4's nAGQ = 1 keeps every constant; nAGQ > 1 leaves out the saturated log-likelihood
        expected = row["deviance"] + (saturated if row["nAGQ"] > 1 else 0.0)
        assert f(x) == pytest.approx(expected, rel=DEVFUN_RTOL), row["nAGQ"]


# -- fits -------------------------------------------------------------------------------------------------------
FIT_KEYS = ["cbpp", "cbpp_null", "cbpp_probit", "cbpp_cloglog", "cbpp_agq25", "grouseticks", "grouseticks_agq9",
            "contraception", "verbagg", "cbpp_agq0", "grouseticks_agq0"]


@pytest.mark.parametrize("key", FIT_KEYS)
def test_fit_matches_lme4(key):
    ref, m = REF[key], fit(key)
    assert m.converged
    assert lme4_loglik(m) == pytest.approx(ref["loglik"], rel=LOGLIK_RTOL)
    assert lme4_loglik(m) >= ref["loglik"] - 1e-6 * abs(ref["loglik"])
    np.testing.assert_allclose(m.fixef.to_numpy(), ref["fixef"], atol=ESTIMATE_ATOL)
    np.testing.assert_allclose(m.theta, ref["theta"], atol=ESTIMATE_ATOL)
    assert m.nobs == ref["nobs"] and m.df_resid == ref["df_resid"]
    if ref["nAGQ"] <= 1:
        assert m.aic == pytest.approx(ref["aic"], rel=LOGLIK_RTOL)
        assert m.bic == pytest.approx(ref["bic"], rel=LOGLIK_RTOL)


@pytest.mark.parametrize("key", ["cbpp", "cbpp_probit", "grouseticks", "contraception", "cbpp_agq0",
                                 "grouseticks_agq0"])
def test_standard_errors_and_z_match_lme4(key):
    ref, m = REF[key], fit(key)
    np.testing.assert_allclose(m.se.to_numpy(), ref["se"], rtol=SE_RTOL)
    table = m.coef_table()
    np.testing.assert_allclose(table["z value"].to_numpy(), ref["z"], rtol=SE_RTOL)
    np.testing.assert_allclose(table["Pr(>|z|)"].to_numpy(), ref["p"], rtol=10 * SE_RTOL, atol=1e-12)


@pytest.mark.parametrize("key", ["cbpp", "grouseticks", "contraception"])
def test_modes_conditional_sds_and_varcorr_match_lme4(key):
    ref, m = REF[key], fit(key)
    ranef, se = m.ranef, m.ranef_se
    for name, r in ref["ranef"].items():
        levels = [type(ranef[name].index[0])(v) for v in r["levels"]]
        np.testing.assert_allclose(ranef[name].loc[levels].to_numpy(), np.asarray(r["values"]).reshape(len(levels), -1),
                                   atol=MODE_ATOL)
        np.testing.assert_allclose(se[name].loc[levels].to_numpy(), np.asarray(r["condsd"]).reshape(len(levels), -1),
                                   atol=MODE_ATOL)
    np.testing.assert_allclose(m.varcorr["sdcor"].to_numpy(), ref["varcorr"]["sdcor"], atol=ESTIMATE_ATOL)
    np.testing.assert_allclose(np.quantile(m.residuals("pearson"), [0, .25, .5, .75, 1]), ref["scaled_resid"],
                               atol=MODE_ATOL)
    np.testing.assert_allclose(m.fitted.to_numpy()[:10], ref["fitted_head"], atol=MODE_ATOL)


def test_proportion_with_weights_equals_cbind():
    cbpp = data("glmm_cbpp.csv").assign(prop=lambda d: d.incidence / d["size"])
    m = lt.glmer("prop ~ period + (1 | herd)", cbpp, "binomial", weights=cbpp["size"].to_numpy())
    ref = REF["cbpp_prop"]
    assert m.loglik == pytest.approx(ref["loglik"], rel=LOGLIK_RTOL)
    np.testing.assert_allclose(m.fixef.to_numpy(), ref["fixef"], atol=ESTIMATE_ATOL)
    assert m.loglik == pytest.approx(fit("cbpp").loglik, rel=1e-9)


def test_predict_link_response_and_new_levels_match_lme4():
    ref, m = REF["cbpp"], fit("cbpp")
    new = pd.DataFrame({"period": ["1", "2", "4", "3"], "herd": [1, 5, 15, 99]})
    np.testing.assert_allclose(m.predict(new, type="link", allow_new_levels=True), ref["predict_link"], atol=MODE_ATOL)
    np.testing.assert_allclose(m.predict(new, type="response", allow_new_levels=True), ref["predict_response"],
                               atol=MODE_ATOL)
    np.testing.assert_allclose(m.predict(new, re=False), ref["predict_fixed"], atol=MODE_ATOL)
    with pytest.raises(ValueError, match="new level"):
        m.predict(new)


def test_anova_lrt_matches_lme4():
    ref = REF["cbpp_anova"]
    table = lt.anova(fit("cbpp_null"), fit("cbpp"))
    assert table["Chisq"].iloc[1] == pytest.approx(ref["chisq"], rel=1e-5)
    assert int(table["Df"].iloc[1]) == ref["df"]
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p"], rel=1e-4)
    np.testing.assert_allclose(table["AIC"], ref["aic"], rtol=LOGLIK_RTOL)


def test_overdispersion_uses_pearson_chi2():
    m = fit("grouseticks_agq9")
    od = lt.overdispersion(m)
    assert od["chisq"] == pytest.approx(REF["grouseticks_agq9"]["pearson_chi2"], rel=1e-4)
    assert od["ratio"] == pytest.approx(od["chisq"] / (m.nobs - m.npar))
    assert od["ratio"] > 1 and od["p"] < 1e-3  # grouse ticks are overdispersed given broods alone


def test_summary_prints_lme4s_blocks():
    text = str(fit("cbpp").summary())
    for piece in ("Laplace", "binomial  ( logit )", "AIC", "Scaled residuals:", "herd", "(Intercept)", "z value",
                  "Pr(>|z|)", "194.1", "-92.0", "Number of obs: 56, groups:  herd, 15"):
        assert piece in text
    assert "nAGQ = 25" in str(fit("cbpp_agq25").summary())


def test_wald_confint():
    m = fit("cbpp")
    ci = m.confint()
    np.testing.assert_allclose(ci.iloc[:, 0], m.fixef - 1.959963984540054 * m.se)
    np.testing.assert_allclose(ci.iloc[:, 1], m.fixef + 1.959963984540054 * m.se)


def test_simulate_and_refit():
    m = fit("cbpp")
    sims = m.simulate(3, seed=1)
    assert sims.shape == (56, 3)
    np.testing.assert_array_equal(sims, m.simulate(3, seed=1))
    trials = data("glmm_cbpp.csv")["size"].to_numpy()
    assert np.allclose(sims.to_numpy() * trials[:, None], np.round(sims.to_numpy() * trials[:, None]))
    same = m.refit(m.devfun.y)
    assert same.loglik == pytest.approx(m.loglik, rel=1e-9)
    other = m.refit(sims["sim_1"].to_numpy())
    assert other.converged and other.loglik != pytest.approx(m.loglik)


# -- bad input ------------------------------------------------------------------------------------------------
def test_response_outside_the_support_is_a_clear_error():
    cbpp = data("glmm_cbpp.csv")
    with pytest.raises(ValueError, match="'incidence'.*whole numbers >= 0"):
        lt.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 cbpp.assign(incidence=cbpp.incidence.where(cbpp.index != 3, -1)), "binomial")
    with pytest.raises(ValueError, match="'prop'.*proportion in \\[0, 1\\]"):
        lt.glmer("prop ~ period + (1 | herd)", cbpp.assign(prop=cbpp.incidence / 3), "binomial")
    with pytest.raises(ValueError, match="'prop'.*non-integer successes"):
        lt.glmer("prop ~ period + (1 | herd)", cbpp.assign(prop=0.37), "binomial", weights="size")
    grouse = data("glmm_grouseticks.csv")
    with pytest.raises(ValueError, match="'TICKS'.*counts"):
        lt.glmer("TICKS ~ YEAR + (1 | BROOD)", grouse.assign(TICKS=grouse.TICKS - 1), "poisson")
    with pytest.raises(ValueError, match="'TICKS'.*counts"):
        lt.glmer("TICKS ~ YEAR + (1 | BROOD)", grouse.assign(TICKS=grouse.TICKS + 0.5), "poisson")
    with pytest.raises(ValueError, match="nAGQ = 5 needs a single scalar random effect"):
        lt.glmer("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", grouse, "poisson", nAGQ=5)
    with pytest.raises(ValueError, match="poisson response .TICKS. must be numbers"):
        lt.glmer("TICKS ~ YEAR + (1 | BROOD)", grouse.assign(TICKS=grouse.TICKS.astype(str)), "poisson")
    with pytest.raises(ValueError, match="has 3 levels"):
        lt.glmer("YEAR ~ HEIGHT + (1 | BROOD)", grouse, "binomial")
    with pytest.raises(ValueError, match="observation-level random effect"):
        lt.glmer("TICKS ~ YEAR + (1 | BROOD) + (1 | INDEX)", grouse, "poisson")
    with pytest.raises(ValueError, match="family='gaussian'"):
        lt.glmer("TICKS ~ YEAR + (1 | BROOD)", grouse, "gaussian")
    with pytest.raises(ValueError, match="link"):
        binomial("log")


def test_singular_fit_warns_and_says_what_happened():
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"g": np.repeat(np.arange(20), 10), "x": rng.normal(size=200)})
    d["y"] = rng.binomial(1, 1 / (1 + np.exp(-0.5 * d.x)))  # no group effect at all
    with pytest.warns(UserWarning, match="singular.*variance estimated as zero"):
        m = lt.glmer("y ~ x + (1 | g)", d, "binomial")
    assert m.is_singular


def test_complete_separation_warns():
    rng = np.random.default_rng(4)
    d = pd.DataFrame({"g": np.repeat(np.arange(10), 10), "x": rng.normal(size=100)})
    d["y"] = (d.x > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with pytest.warns(UserWarning, match="separation"):
            lt.glmer("y ~ x + (1 | g)", d, "binomial")


# -- the textbook path -----------------------------------------------------------------------------------------
def test_textbook_laplace_and_quadrature_equal_the_fast_path():
    from lmmteach.glmm import textbook

    ref = REF["cbpp"]
    f = devfun("cbpp")
    theta, beta = np.array(ref["theta"]), np.array(ref["fixef"])
    assert textbook.laplace_deviance(f, theta, beta) == pytest.approx(f(np.r_[theta, beta]), rel=1e-10)
    for n in (1, 5, 25):
        f.nAGQ = n
        assert textbook.agq_deviance(f, theta, beta, n) == pytest.approx(f(np.r_[theta, beta]), rel=1e-10)
    exact = -2 * sum(np.log(textbook.group_likelihood(f, theta, beta, level)) for level in range(15))
    assert f(np.r_[theta, beta]) == pytest.approx(exact, rel=1e-8)  # 25 nodes are exact here


def test_textbook_laplace_equals_fast_path_for_crossed_and_vector_terms():
    from lmmteach.glmm import textbook

    for key in ("grouseticks", "contraception"):
        ref = REF[key]
        f = devfun(key)
        x = np.r_[ref["devfun"]["theta_other"], ref["devfun"]["beta_other"]]
        n = f.n_theta
        assert textbook.laplace_deviance(f, x[:n], x[n:]) == pytest.approx(f(x), rel=1e-10)


def test_loglik_at_more_nodes_and_devfun_only():
    m = fit("cbpp")
    assert m.loglik_at() == pytest.approx(m.loglik, rel=1e-12)
    ref = REF["cbpp_agq25"]
    f = lt.glmer_devfun(ref["formula"], data("glmm_cbpp.csv"), nAGQ=25)
    x = np.r_[ref["theta"], ref["fixef"]]
    shift = -2 * float(np.sum(f.family.loglik_terms(f.y, f.y, f.prior_weights)))
    assert f(x) - shift == pytest.approx(ref["devfun"]["at_fit"], rel=DEVFUN_RTOL)
    assert m.loglik_at(ref["theta"], ref["fixef"], nAGQ=25) == pytest.approx(-0.5 * f(x), rel=1e-12)


def test_parametric_bootstrap_lrt_between_glmer_fits():
    m0, m1 = fit("cbpp_null"), fit("cbpp")
    boot = lt.bootstrap_lrt(m1, m0, nsim=8, seed=1, progress=False)
    assert boot.statistic == pytest.approx(REF["cbpp_anova"]["chisq"], rel=1e-5)
    assert boot.df == 3 and boot.n_failed == 0
    assert np.all(boot.simulated >= 0) and np.all(boot.simulated < boot.statistic)  # D = 25.6 is far out
    again = lt.bootstrap_lrt(m1, m0, nsim=8, seed=1, progress=False)
    np.testing.assert_allclose(again.simulated, boot.simulated)


def test_offset_argument_equals_offset_term_and_double_bar():
    grouse = data("glmm_grouseticks.csv").assign(expo=lambda d: 1 + (d.index % 3))
    a = lt.glmer("TICKS ~ YEAR + offset(log(expo)) + (1 | BROOD)", grouse, "poisson")
    b = lt.glmer("TICKS ~ YEAR + (1 | BROOD)", grouse, "poisson", offset=np.log(grouse.expo.to_numpy()))
    assert a.loglik == pytest.approx(b.loglik, rel=1e-9)
    np.testing.assert_allclose(a.fixef, b.fixef, atol=1e-6)
    from lmmteach.glmm import textbook

    contra = data("glmm_contraception.csv")
    f = lt.glmer_devfun("use ~ age + (age || district)", contra)  # (1 | district) + (0 + age | district)
    x = np.r_[0.5, 0.02, -0.5, 0.01]
    assert f.n_theta == 2
    assert textbook.laplace_deviance(f, x[:2], x[2:]) == pytest.approx(f(x), rel=1e-10)


PROFILE_ATOL = 5e-4  # lme4 interpolates ζ by splines through ~10-20 profile points: its end points hold ~1e-4


@pytest.mark.parametrize("key, parm", [("cbpp", [".sig01", "period2"]), ("grouseticks", [".sig02"])])
def test_profile_intervals_match_lme4(key, parm):
    ref = REF[key]["confint_profile"]
    ci = lt.confint(fit(key), method="profile", parm=parm)
    for name in parm:
        k = ref["names"].index(name)
        np.testing.assert_allclose(ci.loc[name].to_numpy(), [ref["lower"][k], ref["upper"][k]], atol=PROFILE_ATOL)
    if key == "grouseticks":
        assert ci.loc[".sig02"].iloc[0] == 0.0  # LOCATION's SD: the deviance at 0 is within the cut-off


def test_marginal_mean_and_pirls_history():
    from lmmteach.glmm.quadrature import marginal_mean

    # log link: E[exp(η + s x)] = exp(η + s²/2) exactly
    eta, sd = np.array([-1.0, 0.0, 2.0]), np.array([0.3, 1.0, 0.5])
    np.testing.assert_allclose(marginal_mean(poisson(), eta, sd), np.exp(eta + sd**2 / 2), rtol=1e-10)
    m = fit("cbpp")
    marginal = m.marginal_predict()
    conditional = m.predict(re=False, type="response")
    assert np.all(marginal > conditional)  # logit below 1/2: the random intercept lifts the average
    modes = m.devfun.modes(m.theta, m.optimum.beta, warm=False)
    assert modes.converged and len(modes.history) >= 3
    assert np.all(np.diff(modes.history) <= 1e-9)  # the penalised deviance never increases


def test_rows_with_missing_values_are_dropped_with_a_word():
    cbpp = data("glmm_cbpp.csv").copy()
    cbpp.loc[3, "incidence"] = np.nan
    with pytest.warns(UserWarning, match=r"1 of 56 rows .* dropped \(cbind\(incidence, size - incidence\): 1\)"):
        m = lt.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    assert m.nobs == 55


PROFILE_VECTOR = json.loads((REF_DIR / "glmm_profile_vector_reference.json").read_text())


def test_profile_interval_of_a_vector_term_matches_lme4():
    """(urban | district): .sig03 is urbanY's SD on lme4's SD/correlation scale (not a Cholesky θ). lme4 doubted
    its own .sig02 and (Intercept) profiles (`doubtful` in the JSON), so those are not references."""
    ref = PROFILE_VECTOR
    assert ".sig03" not in ref["doubtful"]
    contra = data("glmm_contraception.csv")
    m = lt.glmer(ref["formula"], contra, "binomial")
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    ci = lt.confint(m, method="profile", parm=[".sig03"])
    k = ref["names"].index(".sig03")
    np.testing.assert_allclose(ci.loc[".sig03"].to_numpy(), [ref["lower"][k], ref["upper"][k]], atol=PROFILE_ATOL)
