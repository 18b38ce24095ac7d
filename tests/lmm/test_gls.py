"""lmmteach.gls against nlme::gls (tests/reference/gls_reference.R → gls_reference.json): ML and REML,
compound symmetry, AR(1), Toeplitz, unstructured, per-time variances, missing visits; the dense textbook
likelihood; LRTs against nlme's anova; Satterthwaite df against lmerTest."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach import textbook

REF = shared.reference("gls_reference")
LOGLIK_RTOL = 1e-6
COEF_ATOL = 1e-4
# nlme stops its own search at a relative tolerance of ~1e-7 in the log-likelihood, which leaves its
# variance parameters (and so SEs and Cov(y_i)) a few 1e-5 from the optimum; 1e-4 relative holds them.
SE_RTOL = 1e-4
COV_RTOL = 1e-4


def _data(case):
    if case == "grocery":
        return lt.load_grocery(), "price ~ store", "item", "store"
    orth = lt.load_orthodont()
    if case == "orthodont_missing":
        orth = orth.drop(index=REF[case]["dropped"])
    return orth, "distance ~ age * Sex", "Subject", "age"


_FITS = {}


def fit(case, correlation, heteroscedastic, reml):
    key = (case, correlation, heteroscedastic, reml)
    if key not in _FITS:
        data, formula, group, time = _data(case)
        _FITS[key] = lt.gls(formula, data, group=group, time=time, correlation=correlation,
                            heteroscedastic=heteroscedastic, reml=reml)
    return _FITS[key]


CASES = [(case, key) for case in ("grocery", "orthodont", "orthodont_missing") for key in REF[case]["fits"]]


@pytest.mark.parametrize("case,key", CASES, ids=[f"{c}-{k}" for c, k in CASES])
def test_gls_matches_nlme(case, key):
    r = REF[case]["fits"][key]
    corr = None if r["correlation"] == "none" else r["correlation"]
    m = fit(case, corr, r["heteroscedastic"], r["reml"])
    assert m.converged
    # nlme's fit is a converged one, and ours is at least as high
    assert m.loglik == pytest.approx(r["logLik"], rel=LOGLIK_RTOL)
    assert m.npar == r["df"]
    assert m.aic == pytest.approx(r["AIC"], rel=LOGLIK_RTOL)
    assert m.bic == pytest.approx(r["BIC"], rel=LOGLIK_RTOL)
    assert list(m.fixef.index) == list(r["coefficients"])
    assert m.fixef.to_numpy() == pytest.approx(list(r["coefficients"].values()), abs=COEF_ATOL)
    assert m.se.to_numpy() == pytest.approx(list(r["se"].values()), rel=SE_RTOL)
    assert m.sigma == pytest.approx(r["sigma"], rel=SE_RTOL)
    V = np.array(r["cov_matrix"])
    assert m.cov_matrix().to_numpy() == pytest.approx(V, rel=COV_RTOL, abs=COV_RTOL * np.abs(V).max())
    if r["delta"] is not None:
        delta = m.variance_parameters
        assert delta.to_numpy() == pytest.approx([r["delta"][str(k) if case == "grocery" else f"{k:g}"]
                                                  for k in delta.index], rel=SE_RTOL)


def test_missing_visits_keep_the_other_rows():
    m = fit("orthodont_missing", "un", True, True)
    assert m.nobs == 108 - len(REF["orthodont_missing"]["dropped"]) == REF["orthodont_missing"]["n"]
    # complete; without age 10, 12 or 14; without both 12 and 14 (subject 20)
    assert len(m.devfun.cp.patterns) == 5


@pytest.mark.parametrize("correlation,het", [("cs", False), ("ar1", True), ("toep", False), ("un", True)])
@pytest.mark.parametrize("reml", [True, False])
def test_profiled_deviance_equals_the_dense_textbook_likelihood(correlation, het, reml):
    """At the estimates, −2ℓ of the per-pattern cross-products equals the notes' dense formula with the
    n × n Σ* = bdiag(σ̂² V[P_i, P_i]) (textbook.gls_covariance), on data with missing visits."""
    m = fit("orthodont_missing", correlation, het, reml)
    d = m.design
    V = m.devfun.covariance.matrix(m.theta)
    S = textbook.gls_covariance(d.group, d.time, V, m.sigma**2)
    ll = (textbook.loglik_reml if reml else textbook.loglik_ml)(d.y, d.X, S)
    assert ll == pytest.approx(m.loglik, rel=shared.ROUNDING_RTOL)
    assert textbook.gls_stacked(d.X, d.y, S) == pytest.approx(m.fixef.to_numpy(), rel=1e-9)
    # and away from the optimum, at a perturbed φ (σ² profiled: the dense ML optimum over σ² is r'V⁻¹r/n)
    phi = m.theta + 0.1
    e = m.devfun.evaluate(phi)
    S = textbook.gls_covariance(d.group, d.time, m.devfun.covariance.matrix(phi), e.sigma2)
    ll = (textbook.loglik_reml if reml else textbook.loglik_ml)(d.y, d.X, S)
    assert -2 * ll == pytest.approx(e.deviance, rel=shared.ROUNDING_RTOL)


def test_gradient_is_the_derivative_of_the_deviance():
    m = fit("orthodont_missing", "un", True, True)
    phi = m.theta + 0.05
    g = m.devfun.evaluate(phi, gradient=True).gradient
    h = 1e-5
    num = [(m.devfun(phi + h * e) - m.devfun(phi - h * e)) / (2 * h) for e in np.eye(len(phi))]
    assert g == pytest.approx(num, rel=1e-5, abs=1e-6)


def test_anova_gls_against_lmer_matches_nlme():
    """gls UN + varIdent against a random intercept (lme) with the same fixed part: nlme's anova (ML
    refit, and REML with refit=False)."""
    o = lt.load_orthodont()
    ri = lt.lmer("distance ~ age * Sex + (1 | Subject)", o)
    un = fit("orthodont", "un", True, True)
    with pytest.warns(UserWarning, match="refitting"):
        tab = lt.anova(ri, un)
    r = REF["orthodont_anova"]
    assert list(tab.npar) == r["df"]
    assert tab.logLik.iloc[0] == pytest.approx(r["lme_logLik"], rel=LOGLIK_RTOL)
    assert tab.logLik.iloc[1] == pytest.approx(r["gls_logLik"], rel=LOGLIK_RTOL)
    assert tab.Chisq.iloc[1] == pytest.approx(r["L.Ratio"], rel=1e-5)
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(r["p"], rel=1e-5)
    tab = lt.anova(ri, un, refit=False)
    assert tab.Chisq.iloc[1] == pytest.approx(REF["orthodont_anova_reml"]["L.Ratio"], rel=1e-5)
    assert tab.logLik.iloc[0] == pytest.approx(REF["orthodont_anova_reml"]["lme_logLik"], rel=LOGLIK_RTOL)


def test_anova_between_nested_gls_fits():
    cs, un = fit("grocery", "cs", False, False), fit("grocery", "un", True, False)
    tab = lt.anova(cs=cs, un=un)
    ref = REF["grocery"]["fits"]
    expected = 2 * (ref["un_het_ML"]["logLik"] - ref["cs_hom_ML"]["logLik"])
    assert list(tab.index) == ["cs", "un"]
    assert tab.Chisq.iloc[1] == pytest.approx(expected, rel=1e-6)
    assert tab.Df.iloc[1] == ref["un_het_ML"]["df"] - ref["cs_hom_ML"]["df"]


def test_anova_refuses_reml_comparison_of_different_fixed_parts():
    g = lt.load_grocery()
    a = lt.gls("price ~ store", g, group="item", time="store", correlation="cs")
    b = lt.gls("price ~ 1", g, group="item", time="store", correlation="cs")
    with pytest.raises(ValueError, match="not comparable"):
        lt.anova(a, b, refit=False)
    c = lt.gls("price ~ 1", g.iloc[:-1], group="item", time="store")
    with pytest.raises(ValueError, match="same data"):
        lt.anova(b, c)


def test_compound_symmetry_equals_the_random_intercept_model():
    """With ω ≥ 0, CS is the random-intercept model: same REML likelihood and fixed effects as lmer."""
    m = fit("grocery", "cs", False, True)
    ri = lt.lmer("price ~ store + (1 | item)", lt.load_grocery())
    assert m.loglik == pytest.approx(ri.loglik, rel=1e-9)
    assert m.se.to_numpy() == pytest.approx(ri.se.to_numpy(), rel=1e-6)


@pytest.mark.parametrize("case,ref", [("grocery", "grocery_amod_reml"), ("orthodont", None)])
def test_satterthwaite_df_of_compound_symmetry_equal_lmertest(case, ref):
    """CS by REML is the random-intercept model, whose Satterthwaite df lmerTest computes (for the grocery
    data the store contrasts have exactly (10 − 1)(4 − 1) = 27 df, the RM ANOVA's error df)."""
    m = fit(case, "cs", False, True)
    if ref is None:
        df_ref = REF["orthodont_satterthwaite"]["df"]
    else:
        df_ref = shared.reference("inference_reference")["satterthwaite"][ref]["df"]
    tab = lt.satterthwaite(m)
    # numerical second derivatives on both sides (lmerTest's numDeriv, our Richardson differences)
    assert tab.df.to_numpy() == pytest.approx(df_ref, rel=1e-4)


def test_predict_and_newdata():
    m = fit("orthodont", "ar1", False, True)
    new = pd.DataFrame({"age": [8.0, 14.0, np.nan], "Sex": pd.Categorical(["Female", "Male", "Male"])})
    pred = m.predict(new)
    b = m.fixef
    assert pred.iloc[0] == pytest.approx(b["(Intercept)"] + 8 * b["age"] + b["SexFemale"] + 8 * b["age:SexFemale"])
    assert pred.iloc[1] == pytest.approx(b["(Intercept)"] + 14 * b["age"])
    assert np.isnan(pred.iloc[2])
    assert m.predict().to_numpy() == pytest.approx(m.design.X @ b.to_numpy())


def test_summary_prints_like_nlme():
    text = str(fit("orthodont", "un", True, True).summary())
    for piece in ("Generalized least squares fit by REML", "Correlation Structure: General",
                  "Different standard deviations per stratum", "Residual standard error: 2.329",
                  "Degrees of freedom: 108 total; 104 residual", "age:SexFemale"):
        assert piece in text
    assert "AR(1)" in repr(fit("orthodont", "ar1", False, True))


def test_refit_on_new_response_equals_a_fresh_fit():
    m = fit("orthodont_missing", "un", True, True)
    rng = np.random.default_rng(3)
    y = m.design.y + rng.normal(scale=0.5, size=m.nobs)
    data, formula, group, time = _data("orthodont_missing")
    data = data.assign(distance=y)
    fresh = lt.gls(formula, data, group=group, time=time, correlation="un", heteroscedastic=True)
    re = m.refit(y)
    assert re.loglik == pytest.approx(fresh.loglik, rel=1e-9)
    assert re.fixef.to_numpy() == pytest.approx(fresh.fixef.to_numpy(), abs=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"group": "nope"}, "group='nope' is not a column"),
    ({"time": 3}, "time must name a column"),
    ({"correlation": "exchangeable"}, "unknown correlation 'exchangeable'"),
    ({"reml": "yes"}, "reml must be True or False"),
])
def test_bad_input_is_named(kwargs, match):
    args = dict(group="item", time="store")
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        lt.gls("price ~ store", lt.load_grocery(), **args)


def test_duplicate_time_point_and_random_terms_are_refused():
    g = lt.load_grocery()
    with pytest.raises(ValueError, match="more than one row at store="):
        lt.gls("price ~ store", pd.concat([g, g.iloc[:1]]), group="item", time="store")
    with pytest.raises(ValueError, match="must have no random-effects term"):
        lt.gls("price ~ store + (1 | item)", g, group="item", time="store")
    with pytest.raises(ValueError, match="missing value"):
        lt.gls("price ~ store", g.assign(item=g.item.astype(object).where(g.index > 0)), group="item", time="store")


def test_anova_options_that_gls_lacks_are_refused():
    cs = fit("grocery", "cs", False, True)
    with pytest.raises(ValueError, match="chisq reference only"):
        lt.anova(cs, fit("grocery", "un", True, True), boundary=True)
    with pytest.raises(TypeError, match="F tests need a model returned by lmmteach.lmer, not GLSFit"):
        lt.anova(cs, type=3)
