"""lmmteach.lmer against lme4 (numbers from tests/reference/make_reference.R, stored as JSON)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt

REF = shared.reference("lme4_reference")

TIMSS_FIXED = "science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV"
FORMULAS = {
    "grocery_nmod": "price ~ 1 + (1 | item)",
    "grocery_amod": "price ~ store + (1 | item)",
    "grocery_amod_reml": "price ~ store + (1 | item)",
    "grocery_amod_sum": "price ~ store + (1 | item)",
    "timss_ramod": "science ~ 1 + (1 | idschool)",
    "timss_rimod": "science ~ 1 + math + (1 | idschool)",
    "timss_ri2mod": "science ~ 1 + grpCmath + grpMmath + (1 | idschool)",
    "timss_ri3mod": "science ~ 1 + grpCmath + grpMmath + grade + (1 | idschool)",
    "timss_ri4mod": "science ~ 1 + grpCmath + grpMmath + grade + gender + (1 | idschool)",
    "timss_ri5mod": TIMSS_FIXED + " + (1 | idschool)",
    "timss_risucmod": TIMSS_FIXED + " + (grpCmath + grpChoursTV | idschool)",
    "timss_risucmod_reml": TIMSS_FIXED + " + (grpCmath + grpChoursTV | idschool)",
    "timss_risvcmod": TIMSS_FIXED + " + (grpCmath + grpChoursTV || idschool)",
    "timss_risicmod": TIMSS_FIXED + " + (1 | idschool) + (0 + grpCmath + grpChoursTV | idschool)",
    "sleep_us": "Reaction ~ Days + (Days | Subject)",
    "sleep_us_ml": "Reaction ~ Days + (Days | Subject)",
    "sleep_vc_ml": "Reaction ~ Days + (Days || Subject)",
    "sleep_ri_ml": "Reaction ~ Days + (1 | Subject)",
    "sleep_slope": "Reaction ~ Days + (0 + Days | Subject)",
    "dyestuff2": "Yield ~ 1 + (1 | Batch)",
    "orthodont": "distance ~ age*Sex + (age | Subject)",
    "orthodont_ml": "distance ~ age*Sex + (age | Subject)",
    "hsb_ml": "MathAch ~ cses*Sector + meanses + Minority + Sex + (cses | School)",
}

#: Every reference is a converged lme4 fit (the best of its optimizers, no warning), so every fit is held
#: to the same tolerances: log-likelihoods (and deviance, AIC, BIC) 1e-6 relative, estimates 1e-4.
LOGLIK_RTOL = 1e-6
ESTIMATE_RTOL = 1e-4


def close_enough(ours, theirs, scale):
    """|ours - theirs| <= ESTIMATE_RTOL * max(|theirs|, scale), elementwise (scale broadcasts)."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    bound = ESTIMATE_RTOL * np.maximum(np.abs(theirs), scale)
    bad = np.abs(ours - theirs) > bound
    assert not bad.any(), f"differ beyond {ESTIMATE_RTOL:g}: ours {ours[bad]}, lme4 {theirs[bad]}"


def fit(key):
    ref = REF["fits"][key]
    contrasts = {"store": "sum"} if key.endswith("_sum") else None
    return shared.fit(FORMULAS[key], ref["data"], reml=ref["REML"], contrasts=contrasts)


def test_every_reference_is_a_converged_fit():
    """make_reference.R keeps, per model, the best fit of lme4's three optimizers among those without a
    warning; the JSON says which optimizer won and that it gave no warning."""
    assert set(REF["fits"]) == set(FORMULAS)
    for key, ref in REF["fits"].items():
        assert ref["warnings"] == [], key
        assert ref["optimizer"] in ref["optimizers"], key
        tries = ref["optimizers"]
        assert set(tries) == {"nloptwrap", "bobyqa", "Nelder_Mead"}, key
        assert tries[ref["optimizer"]]["logLik"] == ref["logLik"], key
        assert ref["logLik"] == max(t["logLik"] for t in tries.values() if t["warnings"] == []), key


@pytest.mark.parametrize("key", sorted(FORMULAS))
def test_loglik_matches_lme4(key):
    ref, m = REF["fits"][key], fit(key)
    assert m.converged
    assert m.loglik == pytest.approx(ref["logLik"], rel=LOGLIK_RTOL)
    assert m.deviance == pytest.approx(ref["deviance"], rel=LOGLIK_RTOL)
    assert m.aic == pytest.approx(ref["AIC"], rel=LOGLIK_RTOL)
    assert m.bic == pytest.approx(ref["BIC"], rel=LOGLIK_RTOL)
    assert m.nobs == ref["nobs"]
    assert m.npar == ref["npar"]
    assert m.df_resid == ref["df_resid"]
    assert m.is_singular == ref["isSingular"]


@pytest.mark.parametrize("key", sorted(FORMULAS))
def test_fixed_effects_and_se_match_lme4(key):
    ref, m = REF["fits"][key], fit(key)
    assert list(m.fixef.index) == list(ref["fixef"])  # R's order: main effects, then interactions
    names = list(ref["fixef"])
    se = np.array(list(ref["se"].values()))
    # each coefficient within 1e-4 of itself or, near zero, of its standard error
    close_enough(m.fixef[names].to_numpy(), np.array(list(ref["fixef"].values())), scale=se)
    np.testing.assert_allclose(m.se[names].to_numpy(), se, rtol=ESTIMATE_RTOL)
    assert m.sigma == pytest.approx(ref["sigma"], rel=ESTIMATE_RTOL)


@pytest.mark.parametrize("key", sorted(FORMULAS))
def test_varcorr_has_r_shape_and_values(key):
    ref, m = REF["fits"][key], fit(key)
    vc, rv = m.varcorr, ref["varcorr"]
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert list(vc.grp) == list(np.atleast_1d(rv["grp"]))
    assert [v if isinstance(v, str) else "" for v in vc.var1] == list(np.atleast_1d(rv["var1"]))
    assert [v if isinstance(v, str) else "" for v in vc.var2] == list(np.atleast_1d(rv["var2"]))
    assert vc.var2.isna().sum() == sum(1 for v in np.atleast_1d(rv["var2"]) if v == "")
    sd_rows = vc.var2.isna().to_numpy()
    # an SD of exactly zero (a singular fit) can only be compared absolutely
    np.testing.assert_allclose(vc.sdcor[sd_rows], np.atleast_1d(rv["sdcor"])[sd_rows], rtol=ESTIMATE_RTOL,
                               atol=1e-6)
    np.testing.assert_allclose(vc.sdcor[~sd_rows], np.atleast_1d(rv["sdcor"])[~sd_rows], atol=ESTIMATE_RTOL)
    np.testing.assert_allclose(vc.vcov[sd_rows], np.atleast_1d(rv["vcov"])[sd_rows], rtol=ESTIMATE_RTOL,
                               atol=shared.ZERO_ATOL)


@pytest.mark.parametrize("key", sorted(FORMULAS))
def test_blups_and_theta_match_lme4(key):
    ref, m = REF["fits"][key], fit(key)
    theta = np.atleast_1d(ref["theta"])
    # theta holds Cholesky factors of different sizes (covariance terms near 0): on the scale of the largest
    close_enough(m.theta, theta, scale=np.abs(theta).max())
    for grp, r in ref["ranef"].items():
        ours = m.ranef[grp]
        theirs = pd.DataFrame(np.array(r["values"]).reshape(len(r["levels"]), -1), index=r["levels"],
                              columns=np.atleast_1d(r["columns"]))
        ours = ours.set_axis([str(v) for v in ours.index])
        assert list(ours.columns) == list(theirs.columns)
        # each column (intercept, slope) on the scale of its own largest BLUP
        close_enough(ours.loc[theirs.index].to_numpy(), theirs.to_numpy(), scale=np.abs(theirs.to_numpy()).max(axis=0))


def test_lme4_default_optimizer_stops_short_on_hsb():
    """The fact the README states: on High School and Beyond lme4's default (nloptwrap) fit ends 0.38
    log-likelihood units below the optimum that bobyqa, Nelder_Mead and lmmteach reach, and calls it singular."""
    ref, m = REF["fits"]["hsb_ml"], fit("hsb_ml")
    short = m.loglik - ref["default_logLik"]
    assert 0.38 < short < 0.39
    assert ref["default_isSingular"] and not ref["isSingular"] and not m.is_singular
    # the TIMSS random-slope models: lme4's default warns that it failed to converge on each, and stops
    # visibly short on two of them
    for key in ["timss_risucmod", "timss_risvcmod", "timss_risicmod", "timss_risucmod_reml"]:
        assert "failed to converge" in str(REF["fits"][key]["default_warnings"])
    for key in ["timss_risucmod", "timss_risicmod"]:
        assert fit(key).loglik > REF["fits"][key]["default_logLik"] + 1e-4


def test_notes_grocery_figures():
    """The notes print: logLik -26.773 / -20.865, Chisq 11.816 on 3 df, p = 0.008042, AIC/BIC."""
    nmod, amod = fit("grocery_nmod"), fit("grocery_amod")
    tab = lt.anova(amod, nmod)
    assert round(tab["logLik"].iloc[0], 3) == -26.773
    assert round(tab["logLik"].iloc[1], 3) == -20.865
    assert round(tab["Chisq"].iloc[1], 3) == 11.816
    assert tab["Df"].iloc[1] == 3
    assert round(tab["Pr(>Chisq)"].iloc[1], 6) == 0.008042
    assert [round(v, 3) for v in tab["AIC"]] == [59.546, 53.731]
    assert [round(v, 3) for v in tab["BIC"]] == [64.613, 63.864]
    assert [round(v, 3) for v in tab["deviance"]] == [53.546, 41.731]


LRT_MODELS = {
    "grocery": ["grocery_amod", "grocery_nmod"],
    "timss_rimod_ramod": ["timss_rimod", "timss_ramod"],
    "timss_ri_chain": ["timss_ri2mod", "timss_ri3mod", "timss_ri4mod", "timss_ri5mod"],
    "timss_risucmod_risvcmod": ["timss_risucmod", "timss_risvcmod"],
    "timss_risicmod_risvcmod": ["timss_risicmod", "timss_risvcmod"],
    "timss_ri5mod_risvcmod": ["timss_risvcmod", "timss_ri5mod"],
    "sleep": ["sleep_us_ml", "sleep_vc_ml", "sleep_ri_ml"],
    "sleep_reml_refit": ["sleep_us", "sleep_ri_ml"],
}


@pytest.mark.parametrize("name", sorted(LRT_MODELS))
def test_anova_matches_lme4(name):
    ref = REF["anova"][name]
    models = [fit(k) for k in LRT_MODELS[name]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tab = lt.anova(*models)
    assert list(tab.columns) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
    assert list(tab["npar"]) == list(ref["npar"])
    assert list(tab["Df"].iloc[1:]) == list(ref["Df"][1:])
    np.testing.assert_allclose(tab["logLik"], ref["logLik"], rtol=LOGLIK_RTOL)
    np.testing.assert_allclose(tab["Chisq"].iloc[1:], ref["Chisq"][1:], rtol=ESTIMATE_RTOL, atol=1e-6)
    np.testing.assert_allclose(tab["Pr(>Chisq)"].iloc[1:], ref["p"][1:], rtol=ESTIMATE_RTOL, atol=shared.ZERO_ATOL)


def test_anova_refits_reml_with_ml_and_says_so():
    with pytest.warns(UserWarning, match="refitting model"):
        tab = lt.anova(fit("sleep_us"), fit("sleep_ri_ml"))
    assert tab["logLik"].iloc[1] == pytest.approx(REF["fits"]["sleep_us_ml"]["logLik"], rel=LOGLIK_RTOL)


def test_anova_refuses_models_fitted_to_different_data():
    s = shared.data("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m_small = lt.lmer("Reaction ~ Days + (1 | Subject)", s.iloc[:120], reml=False)
    with pytest.raises(ValueError, match="same data"):
        lt.anova(fit("sleep_us_ml"), m_small)


@pytest.mark.parametrize("i", range(len(REF["devfun"])))
def test_profiled_deviance_at_fixed_theta_matches_lme4(i):
    """No optimiser involved: lme4's devFunOnly=TRUE function against ours at the same θ."""
    r = REF["devfun"][i]
    design = lt.lformula(FORMULAS[r["name"]], shared.data(r["data"]))
    devfun = lt.mk_devfun(design, reml=r["REML"])
    assert devfun(np.atleast_1d(r["theta"])) == pytest.approx(r["deviance"], rel=1e-9)


def test_sum_contrasts_name_columns_like_r():
    m = fit("grocery_amod_sum")
    assert list(m.fixef.index) == ["(Intercept)", "store1", "store2", "store3"]
    # sum-to-zero coding: the intercept is the grand mean of the store means
    assert m.fixef["(Intercept)"] == pytest.approx(shared.data("grocery")["price"].mean(), rel=shared.ROUNDING_RTOL)


def test_summary_and_html_show_the_estimates():
    m = fit("sleep_us")
    text = str(m.summary())
    assert "REML criterion at convergence: 1743.6283" in text
    assert "Subject" in text and "Residual" in text and "Days" in text
    assert "<pre>" in m._repr_html_()
    assert "251.4" in repr(m)


def test_predict_population_and_conditional():
    m = fit("sleep_us")
    s = shared.data("sleepstudy")
    np.testing.assert_allclose(m.predict(s), m.fitted.to_numpy(), rtol=shared.ROUNDING_RTOL)
    pop = m.predict(s, re=False).to_numpy()
    np.testing.assert_allclose(pop, m.fixef["(Intercept)"] + m.fixef["Days"] * s["Days"].to_numpy())
    new = pd.DataFrame({"Days": [1.0], "Subject": ["999"]})
    with pytest.raises(ValueError, match="new level"):
        m.predict(new)
    assert m.predict(new, allow_new_levels=True).iloc[0] == pytest.approx(pop[0] + m.fixef["Days"] * 1.0 - m.fixef["Days"] * s["Days"].iloc[0])


@pytest.mark.parametrize("key", ["sleep_us", "orthodont"])
def test_fitted_values_and_residuals_match_lme4(key):
    """lme4's fitted() = X b + Z u and residuals() = y - fitted(), row by row."""
    ref, m = REF["predictions"][key], fit(key)
    scale = np.abs(ref["fitted"]).max()
    close_enough(m.fitted.to_numpy(), ref["fitted"], scale=scale)
    close_enough(m.residuals.to_numpy(), ref["residuals"], scale=np.abs(ref["residuals"]).max())


@pytest.mark.parametrize("key", ["sleep_us", "grocery_amod"])
def test_conditional_sd_of_blups_matches_lme4_condvar(key):
    ref = REF["condvar"][key]
    m = fit(key)
    for grp, r in ref.items():
        ours = m.ranef_se[grp].set_axis([str(v) for v in m.ranef_se[grp].index])
        theirs = np.array(r["sd"]).reshape(len(r["levels"]), -1)
        np.testing.assert_allclose(ours.loc[r["levels"]].to_numpy(), theirs, rtol=1e-4)


@pytest.mark.parametrize("keyword", ["bounday", "refti", "model3"])
def test_anova_names_a_keyword_that_is_not_a_model(keyword):
    """A misspelt option (bounday=True) must not be taken for a model."""
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{keyword}'"):
        lt.anova(fit("grocery_amod"), fit("grocery_nmod"), **{keyword: True})


def test_anova_labels_rows_by_keyword_names():
    tab = lt.anova(amod=fit("grocery_amod"), nmod=fit("grocery_nmod"))
    assert list(tab.index) == ["nmod", "amod"]  # ordered by npar, as lme4 does
    assert tab.attrs["formulas"]["amod"] == FORMULAS["grocery_amod"]
    mixed = lt.anova(fit("grocery_amod"), nmod=fit("grocery_nmod"))
    assert list(mixed.index) == ["nmod", "model1"]


def test_predict_gives_nan_for_rows_with_missing_values():
    m = fit("sleep_us")
    new = shared.data("sleepstudy").iloc[:3].copy()
    new.loc[1, "Days"] = np.nan
    pred = m.predict(new)
    assert np.isnan(pred.iloc[1]) and list(pred.index) == list(new.index)
    np.testing.assert_allclose(pred.iloc[[0, 2]], m.fitted.iloc[[0, 2]], rtol=shared.ROUNDING_RTOL)


@pytest.mark.parametrize("key", sorted(FORMULAS))
def test_vcov_of_fixed_effects_matches_lme4(key):
    """The whole Cov(b̂) = σ̂²(X'V⁻¹X)⁻¹, off-diagonal included (summary's 'Correlation of Fixed Effects')."""
    ref, m = REF["fits"][key], fit(key)
    theirs = np.array(ref["vcov"], float).reshape(len(m.fixef), len(m.fixef))
    names = list(ref["fixef"])
    # an off-diagonal covariance near zero is compared on the scale of its two variances
    scale = np.sqrt(np.outer(np.diag(theirs), np.diag(theirs)))
    close_enough(m.vcov.loc[names, names].to_numpy(), theirs, scale=scale)


def test_summary_prints_correlation_of_fixed_effects_like_lme4():
    text = str(fit("sleep_us").summary())
    assert "Correlation of Fixed Effects:" in text
    assert "     (Intr)\nDays -0.138" in text  # lme4 prints exactly these two lines (abbreviate(names, 6))
