"""Several grouping factors (crossed and nested) against lme4: tests/reference/crossed_reference.R wrote the
numbers (best of lme4's optimisers, fits without warnings) and the simulated crossed data set."""

import warnings

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.lmm import textbook
from lmmteach.lmm.blocked import BlockedDeviance
from lmmteach.lmm.deviance import ProfiledDeviance

REF = shared.reference("crossed_reference")
FORMULAS = {
    "penicillin": "diameter ~ 1 + (1 | plate) + (1 | sample)",
    "penicillin_weighted": "diameter ~ 1 + (1 | plate) + (1 | sample)",
    "pastes_nested": "strength ~ 1 + (1 | batch/cask)",
    "pastes_interaction": "strength ~ 1 + (1 | batch:cask) + (1 | batch)",
    "pastes_sample": "strength ~ 1 + (1 | batch) + (1 | sample)",
    "slope": "y ~ x + (x | subj) + (1 | item)",
    "slope_sorted": "y ~ x + (1 | item) + (x | subj)",
    "slope_indep": "y ~ x + (x || subj) + (1 | item)",
}
FITS = sorted(REF["fits"])
LOGLIK_RTOL = 1e-6
EST_RTOL = 1e-4  # estimates: relative, with EST_ATOL for values near 0
EST_ATOL = 1e-4
DEVFUN_RTOL = 1e-9


def _as_list(x):
    """jsonlite writes a vector of length 1 as a scalar (auto_unbox)."""
    return x if isinstance(x, list) else [x]


def penicillin_weights():
    """The prior weights of crossed_reference.R: 1, 2, 3, 1, 2, 3, ... in row order."""
    return 1.0 + np.arange(len(shared.data("penicillin"))) % 3


def fit(key):
    ref = REF["fits"][key]
    name = key.rsplit("_", 1)[0]
    if name == "penicillin_weighted":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return lt.lmer(FORMULAS[name], shared.data("penicillin"), reml=ref["REML"], weights=penicillin_weights())
    return shared.fit(FORMULAS[name], ref["data"], reml=ref["REML"])


# -- fits against lme4 --------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", FITS)
def test_loglik_and_theta(key):
    ref, m = REF["fits"][key], fit(key)
    assert m.converged
    assert m.loglik == pytest.approx(ref["logLik"], rel=LOGLIK_RTOL)
    assert m.loglik >= ref["logLik"] - 1e-7  # never a worse optimum than lme4's
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=EST_RTOL, atol=EST_ATOL)
    assert m.sigma == pytest.approx(ref["sigma"], rel=EST_RTOL)
    assert m.nobs == ref["nobs"]
    assert m.ngroups == ref["ngrps"]
    assert m.is_singular == ref["isSingular"]


@pytest.mark.parametrize("key", FITS)
def test_fixef_and_se(key):
    ref, m = REF["fits"][key], fit(key)
    assert list(m.fixef.index) == list(ref["fixef"])
    np.testing.assert_allclose(m.fixef.to_numpy(), list(ref["fixef"].values()), rtol=EST_RTOL, atol=EST_ATOL)
    np.testing.assert_allclose(m.se.to_numpy(), list(ref["se"].values()), rtol=EST_RTOL)
    assert m.aic == pytest.approx(ref["AIC"], rel=LOGLIK_RTOL)
    assert m.bic == pytest.approx(ref["BIC"], rel=LOGLIK_RTOL)


@pytest.mark.parametrize("key", FITS)
def test_varcorr_shape_and_values(key):
    ref, m = REF["fits"][key]["varcorr"], fit(key)
    vc = m.varcorr
    assert list(vc.grp) == ref["grp"]
    assert [v if isinstance(v, str) else "" for v in vc.var1] == ref["var1"]
    assert [v if isinstance(v, str) else "" for v in vc.var2] == ref["var2"]
    np.testing.assert_allclose(vc.vcov, ref["vcov"], rtol=EST_RTOL, atol=EST_ATOL)
    np.testing.assert_allclose(vc.sdcor, ref["sdcor"], rtol=EST_RTOL, atol=EST_ATOL)


@pytest.mark.parametrize("key", FITS)
def test_ranef_and_condvar(key):
    ref, m = REF["fits"][key]["ranef"], fit(key)
    assert list(m.ranef) == list(ref)  # one DataFrame per grouping factor, in lme4's order
    for name, r in ref.items():
        ours = m.ranef[name]
        assert [str(v) for v in ours.index] == r["levels"]
        assert list(ours.columns) == _as_list(r["columns"])
        np.testing.assert_allclose(ours.to_numpy(), np.array(r["values"]), rtol=EST_RTOL, atol=EST_ATOL)
        if isinstance(r["condsd"], list):  # lme4 gives no postVar array for a factor with several terms
            np.testing.assert_allclose(m.ranef_se[name].to_numpy(), np.array(r["condsd"]), rtol=EST_RTOL,
                                       atol=EST_ATOL)


def test_summary_prints_every_factor():
    m = fit("penicillin_reml")
    text = str(m.summary())
    assert "Number of obs: 144, groups:  plate, 24; sample, 6" in text
    assert "REML criterion at convergence: 330.8606" in text  # the design note's check (lme4: 330.8606)
    nested = fit("pastes_nested_reml")
    assert "groups:  cask:batch, 30; batch, 10" in str(nested.summary())


# -- the deviance at fixed θ, no optimiser --------------------------------------------------------------------
@pytest.mark.parametrize("case", REF["devfun"], ids=lambda c: f"{c['name']}-{c['REML']}-{c['theta']}")
def test_devfun_at_fixed_theta(case):
    data = shared.data(REF["fits"][case["name"] + "_reml"]["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = lt.lformula(FORMULAS[case["name"]], data)
    devfun = lt.mk_devfun(design, reml=case["REML"])
    assert isinstance(devfun, BlockedDeviance)
    assert devfun(np.array(case["theta"], float)) == pytest.approx(case["deviance"], rel=DEVFUN_RTOL)


# -- the textbook's dense formulas with a general Z are the oracle -----------------------------------------------
@pytest.mark.parametrize("key", ["penicillin_reml", "pastes_nested_ml", "slope_reml"])
def test_textbook_dense_path_equals_blocked(key):
    m = fit(key)
    Sigmas = [m.sigma**2 * b.structure.relcov(t) for b, t in zip(m.design.blocks, m.devfun.split(m.theta))]
    y, X, Z, Sigma_b, Sigma_star = textbook.general_design_matrices(m.design, Sigmas, m.sigma**2)
    ll = textbook.loglik_reml(y, X, Sigma_star) if m.reml else textbook.loglik_ml(y, X, Sigma_star)
    assert ll == pytest.approx(m.loglik, rel=shared.ROUNDING_RTOL)
    b = textbook.gls_stacked(X, y, Sigma_star)
    np.testing.assert_allclose(b, m.fixef.to_numpy(), rtol=1e-9)
    v = textbook.blup(X, Z, y, b, Sigma_b, Sigma_star)
    ours = np.concatenate([bl.ravel() for bl in m._term_blups])
    np.testing.assert_allclose(v, ours, rtol=1e-7, atol=1e-9)
    b_mme, v_mme = textbook.mixed_model_equations(X, Z, y, m.sigma**2, Sigma_b)
    np.testing.assert_allclose(b_mme, b, rtol=1e-9)
    np.testing.assert_allclose(v_mme, v, rtol=1e-7, atol=1e-9)


def test_one_factor_keeps_the_fast_path():
    design = lt.lformula("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy())
    assert design.single_factor and isinstance(lt.mk_devfun(design), ProfiledDeviance)


# -- formulas ---------------------------------------------------------------------------------------------------
def test_nested_and_interaction_terms_expand_as_lme4():
    f = lt.parse_formula("y ~ 1 + (1 | a/b)")
    assert [(r.group, r.grouping_variables) for r in f.random] == [("b:a", ("b", "a")), ("a", ("a",))]
    f = lt.parse_formula("y ~ x + (x || a/b)")
    assert [(r.group, r.intercept, [t.label for t in r.terms]) for r in f.random] == [
        ("b:a", True, []), ("a", True, []), ("b:a", False, ["x"]), ("a", False, ["x"])]
    f = lt.parse_formula("y ~ (1 | a/b/c)")
    assert [r.group for r in f.random] == ["c:(b:a)", "b:a", "a"]
    assert f.random[0].grouping_variables == ("c", "b", "a")
    assert lt.parse_formula("y ~ (1 | a:b)").random[0].grouping_variables == ("a", "b")
    with pytest.raises(ValueError, match="empty name"):
        lt.parse_formula("y ~ (1 | a:)")


def test_interaction_levels_in_r_order():
    m = fit("pastes_nested_reml")
    assert list(m.ranef["cask:batch"].index[:4]) == ["a:A", "a:B", "a:C", "a:D"]
    assert m.design.block_names == ["cask:batch", "batch"]


def test_terms_sorted_by_levels_as_lme4():
    a, b = fit("slope_reml"), fit("slope_sorted_reml")
    assert [blk.group_name for blk in b.design.blocks] == ["subj", "item"]
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-6)


# -- downstream -------------------------------------------------------------------------------------------------
def test_anova_against_lme4():
    ref = REF["anova"]["penicillin"]
    m1 = fit("penicillin_ml")
    m0 = shared.fit("diameter ~ 1 + (1 | plate)", "penicillin", reml=False)
    tab = lt.anova(m0, m1)
    np.testing.assert_allclose(tab["logLik"], ref["logLik"], rtol=LOGLIK_RTOL)
    assert tab["Chisq"].iloc[1] == pytest.approx(ref["Chisq"][1], rel=1e-5)
    ref = REF["anova"]["slope"]
    tab = lt.anova(fit("slope_indep_ml"), fit("slope_ml"))
    np.testing.assert_allclose(tab["logLik"], ref["logLik"], rtol=LOGLIK_RTOL)


def test_predict_new_levels_per_factor():
    m = fit("penicillin_reml")
    pen = shared.data("penicillin")
    np.testing.assert_allclose(m.predict(pen), m.fitted.to_numpy())
    new = pd.DataFrame({"plate": ["a", "zz"], "sample": ["A", "A"]})
    with pytest.raises(ValueError, match="new level.*'plate'"):
        m.predict(new)
    p = m.predict(new, allow_new_levels={"plate"})
    re = m.ranef
    expected = m.fixef.iloc[0] + re["sample"].loc["A"].iloc[0] + np.array([re["plate"].loc["a"].iloc[0], 0.0])
    np.testing.assert_allclose(p.to_numpy(), expected)
    with pytest.raises(ValueError, match="new level.*'sample'"):
        m.predict(pd.DataFrame({"plate": ["a"], "sample": ["Z"]}), allow_new_levels={"plate"})
    with pytest.raises(ValueError, match="not grouping factors"):
        m.predict(new, allow_new_levels={"plates"})
    np.testing.assert_allclose(m.predict(new, re=False), m.fixef.iloc[0])


def test_predict_nested_builds_the_interaction():
    m = fit("pastes_nested_reml")
    pastes = shared.data("pastes")
    np.testing.assert_allclose(m.predict(pastes.iloc[:5]).to_numpy(), m.fitted.to_numpy()[:5])


def test_refit_and_bootstrap_with_several_factors():
    m1 = fit("penicillin_ml")
    m0 = shared.fit("diameter ~ 1 + (1 | sample)", "penicillin", reml=False)
    same = m1.refit(m1.design.y)
    assert same.loglik == pytest.approx(m1.loglik, rel=1e-9)
    boot = lt.bootstrap_lrt(m0, m1, nsim=5, seed=2, progress=False)
    assert np.all(np.isfinite(boot.simulated)) and np.all(boot.simulated >= 0) and boot.statistic > 0
    assert m1.refit_ml() is m1
    ml = fit("penicillin_reml").refit_ml()
    assert ml.loglik == pytest.approx(REF["fits"]["penicillin_ml"]["logLik"], rel=LOGLIK_RTOL)


@pytest.mark.parametrize("case", REF["satterthwaite"], ids=lambda c: c["name"])
def test_satterthwaite_against_lmertest(case):
    table = lt.satterthwaite(fit(case["name"] + "_reml"))
    assert list(table.index) == _as_list(case["terms"])
    np.testing.assert_allclose(table["df"], _as_list(case["df"]), rtol=1e-3)  # numerical Hessians on both sides
    np.testing.assert_allclose(table["t value"], _as_list(case["t"]), rtol=EST_RTOL)


def test_wald_and_profile_confint():
    m = fit("penicillin_ml")
    wald = lt.confint(m, method="Wald")
    se = m.se.iloc[0]
    assert wald.loc["(Intercept)", "97.5 %"] - m.fixef.iloc[0] == pytest.approx(1.959964 * se, rel=1e-5)
    prof = lt.confint(m, method="profile")
    lo, hi = prof.loc[".sig01"]
    assert lo < m.varcorr.sdcor.iloc[0] < hi


# -- bad input ---------------------------------------------------------------------------------------------------
def test_bad_input_is_named():
    pen = shared.data("penicillin").copy()
    pen["one"] = "x"
    with pytest.raises(ValueError, match="'one' has 1 level"):
        lt.lformula("diameter ~ 1 + (1 | plate) + (1 | one)", pen)
    pen["plate2"] = pen["plate"].astype(str) + "!"
    with pytest.raises(ValueError, match="'plate' and 'plate2' split the rows into the same 24 groups"):
        lt.lformula("diameter ~ 1 + (1 | plate) + (1 | plate2)", pen)
    pen["cell"] = pen["plate"].astype(str) + pen["sample"].astype(str)
    with pytest.raises(ValueError, match="grouping factor 'cell'"):
        lt.lformula("diameter ~ 1 + (1 | plate) + (1 | cell)", pen)


def test_nested_labels_reused_warn():
    with pytest.warns(UserWarning, match=r"labels of 'cask' repeat.*\(1 \| batch/cask\)"):
        lt.lformula("strength ~ 1 + (1 | batch) + (1 | cask)", shared.data("pastes"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lt.lformula("diameter ~ 1 + (1 | plate) + (1 | sample)", shared.data("penicillin"))
        lt.lformula("strength ~ 1 + (1 | batch/cask)", shared.data("pastes"))


def test_more_random_effects_than_observations_warns():
    rng = np.random.default_rng(5)
    n = 30
    df = pd.DataFrame({"a": [f"a{i % 16}" for i in range(n)], "b": [f"b{(7 * i) % 15}" for i in range(n)],
                       "y": rng.normal(size=n)})
    with pytest.warns(UserWarning, match=r"more random effects \(31\) than observations \(30\)"):
        lt.lformula("y ~ 1 + (1 | a) + (1 | b)", df)


def test_bootstrap_confint_and_simulate_with_several_factors():
    m = fit("penicillin_reml")
    ci = lt.confint(m, method="boot", nsim=10, seed=1)
    assert np.all(np.isfinite(ci.to_numpy()))
    assert ci.loc["(Intercept)", "2.5 %"] < m.fixef.iloc[0] < ci.loc["(Intercept)", "97.5 %"]
    sims = m.simulate(3, seed=4)
    assert sims.shape == (144, 3) and not np.allclose(sims.iloc[:, 0], sims.iloc[:, 1])


def test_textbook_per_group_split_refuses_several_factors():
    with pytest.raises(ValueError, match="general_design_matrices"):
        textbook.split_by_group(fit("penicillin_reml").design)


def test_kenward_roger_refuses_several_factors():
    with pytest.raises(ValueError, match="one grouping factor only.*plate, sample.*Satterthwaite"):
        lt.kenward_roger(fit("penicillin_reml"))
