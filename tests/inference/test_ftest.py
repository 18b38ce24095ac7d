"""F tests of one model's terms (lmerTest's anova(m, type, ddf), contest) with Satterthwaite and
Kenward-Roger denominator df, against lmerTest/pbkrtest (tests/reference/language_reference.R)."""

import numpy as np
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.inference.ftest import contrasts_type1, contrasts_type3
from lmmteach.inference.kenward_roger import kenward_roger

REF = shared.reference("language_reference")
FTEST_RTOL = 1e-3  # the tolerance for F, df and p (both sides differentiate numerically)
FORMULAS = {
    "interaction": "weight ~ Time * Diet + (Time | Chick)",
    "poly": "log(weight) ~ poly(Time, 2) * Diet + (Time | Chick)",
    "term_order": "weight ~ Time:Diet + Diet + Time + (Time | Chick)",
}
COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def fit(name, **kw):
    return shared.fit(FORMULAS[name], "chickweight", **kw)


def assert_table(tab, ref):
    assert list(tab.columns) == COLUMNS
    assert list(tab.index) == ref["terms"]
    for col, key in zip(COLUMNS[:-1], ["SumSq", "MeanSq", "NumDF", "DenDF", "F"]):
        np.testing.assert_allclose(tab[col].to_numpy(dtype=float), ref[key], rtol=FTEST_RTOL, err_msg=col)
    assert_p_close(tab["Pr(>F)"].to_numpy(dtype=float), ref["p"])


FAR_TAIL = 1e-10
"""Below this p, compare log p: there a df change of 1e-5 (the two sides' numerical derivatives differ
by that much) moves p by 1e-3 relative (p = 2e-49 with DenDF 80.1389 against lmerTest's 80.1377), so
p's digits say nothing about agreement, while log p (its order of magnitude) is stable to ~1e-5."""


def assert_p_close(p, ref):
    p, ref = np.asarray(p, float), np.asarray(ref, float)
    tail = ref < FAR_TAIL
    np.testing.assert_allclose(p[~tail], ref[~tail], rtol=FTEST_RTOL, err_msg="Pr(>F)")
    np.testing.assert_allclose(np.log(p[tail]), np.log(ref[tail]), rtol=FTEST_RTOL / 10, err_msg="log Pr(>F)")


@pytest.mark.parametrize("name", list(FORMULAS))
@pytest.mark.parametrize("type_", [1, 3])
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_anova_table_matches_lmertest(name, type_, ddf):
    tab = lt.anova(fit(name), type=type_, ddf=ddf)
    assert_table(tab, REF["anova"][f"{name}_{type_}_{ddf}"])


@pytest.mark.parametrize("ddf,key", [("Satterthwaite", "interaction_sum_3_Satterthwaite"),
                                     ("Kenward-Roger", "interaction_sum_3_KR")])
def test_type3_does_not_depend_on_the_coding(ddf, key):
    m = shared.fit(FORMULAS["interaction"], "chickweight", contrasts={"Diet": "sum"})
    assert_table(lt.anova(m, type=3, ddf=ddf), REF["anova"][key])


def test_type3_hypotheses_are_coding_free():
    """The type 3 hypothesis of a term tests the same thing in any coding: L_trt b_trt = 0 ⇔ L_sum b_sum = 0."""
    m_t = fit("interaction")
    m_s = shared.fit(FORMULAS["interaction"], "chickweight", contrasts={"Diet": "sum"})
    for term in ["Time", "Diet", "Time:Diet"]:
        Lt, Ls = contrasts_type3(m_t)[term], contrasts_type3(m_s)[term]
        # the tested values span the same space: compare the Wald statistics' quadratic forms
        wt = Lt @ m_t.fixef.to_numpy()
        ws = Ls @ m_s.fixef.to_numpy()
        qt = wt @ np.linalg.solve(Lt @ m_t.vcov.to_numpy() @ Lt.T, wt)
        qs = ws @ np.linalg.solve(Ls @ m_s.vcov.to_numpy() @ Ls.T, ws)
        assert qt == pytest.approx(qs, rel=1e-4)


def test_type1_is_sequential():
    """Type 1 rows are unit upper triangular: each term is adjusted only for the terms before it."""
    L = np.vstack(list(contrasts_type1(fit("interaction")).values()))
    assert np.allclose(np.tril(L[:, 1:], -1), 0) and np.allclose(np.diag(L[:, 1:]), 1)


@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_joint_contest_matches_lmertest(ddf):
    ref = REF["contest"][ddf]
    tab = lt.contest(fit("interaction"), np.array(ref["L"], float), joint=True, ddf=ddf)
    for col, key in zip(COLUMNS, ["SumSq", "MeanSq", "NumDF", "DenDF", "F", "p"]):
        assert float(tab[col].iloc[0]) == pytest.approx(ref[key], rel=FTEST_RTOL), col


@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_one_contrast_at_a_time_matches_lmertest(ddf):
    ref = REF["contest"][f"{ddf}_1d"]
    tab = lt.contest(fit("interaction"), np.array(REF["contest"][ddf]["L"], float), joint=False, ddf=ddf)
    for col, key in [("Estimate", "estimate"), ("Std. Error", "se"), ("df", "df"), ("t value", "t"),
                     ("Pr(>|t|)", "p")]:
        np.testing.assert_allclose(tab[col].to_numpy(), ref[key], rtol=FTEST_RTOL, err_msg=col)


def test_kenward_roger_adjusted_covariance_matches_pbkrtest():
    kr = kenward_roger(fit("interaction"))
    np.testing.assert_allclose(kr.vcov_adjusted, np.array(REF["kr_vcov"]), rtol=FTEST_RTOL)
    assert np.all(np.diag(kr.vcov_adjusted) >= np.diag(kr.vcov))  # the adjustment inflates the variances


def test_anova_dispatch_keeps_likelihood_ratio_tests():
    m1, m0 = fit("interaction", reml=False), shared.fit("weight ~ Time + Diet + (Time | Chick)", "chickweight",
                                                        reml=False)
    lrt = lt.anova(m1, m0)
    assert "Chisq" in lrt.columns and len(lrt) == 2
    with pytest.raises(ValueError, match="at least two fitted models.*anova\\(m, type=3"):
        lt.anova(m1)
    with pytest.raises(ValueError, match="F tests of one model's terms"):
        lt.anova(m1, m0, type=3)


def test_bad_requests_say_what_is_wrong():
    m = fit("interaction")
    with pytest.raises(ValueError, match="ddf must be one of 'Satterthwaite', 'Kenward-Roger'"):
        lt.anova(m, ddf="Welch")
    with pytest.raises(ValueError, match="type must be 1 or 3"):
        lt.anova(m, type=2)
    with pytest.raises(ValueError, match="each contrast needs 8 coefficients"):
        lt.contest(m, [1.0, 0.0])
    with pytest.raises(ValueError, match="only available for REML fits"):
        lt.anova(fit("interaction", reml=False), ddf="Kenward-Roger")


def test_table_prints_in_full_in_a_plain_terminal():
    text = str(lt.anova(fit("poly"), type=3, ddf="Kenward-Roger"))
    assert "..." not in text
    assert "Type III Analysis of Variance Table with Kenward-Roger's method" in text
    assert all(col in text for col in COLUMNS)


@pytest.fixture(scope="module")
def timss40():
    """The TIMSS stand-in's schools 10-400, as language_reference.R selects them."""
    t = shared.data("timss")
    return t[t.idschool.astype(int) <= 400]


@pytest.mark.parametrize("type_", [1, 3])
@pytest.mark.parametrize("ddf", ["Satterthwaite", "Kenward-Roger"])
def test_two_crossed_factors_match_lmertest(timss40, type_, ddf):
    """grade and gender are contained in grade:gender (both factors), so type 3 orthogonalises them."""
    m = shared.fit("science ~ grpCmath + grade * gender + (grpCmath | idschool)", timss40)
    assert m.loglik == pytest.approx(REF["models"]["timss"]["logLik"], rel=1e-6)
    assert_table(lt.anova(m, type=type_, ddf=ddf), REF["anova"][f"timss_{type_}_{ddf}"])


def test_f_tests_refuse_what_is_not_an_lmer_fit(grocery):
    g = lt.gls("price ~ store", grocery, group="item", time="store", correlation="cs")
    with pytest.raises(TypeError, match="F tests need a model returned by lmmteach.lmer, not GLSFit"):
        lt.anova(g, type=3)


def test_f_tests_of_a_weighted_fit_match_lmertest():
    cw = lt.load_chickweight()
    m = shared.fit("log(weight) ~ Time * Diet + (Time | Chick)", cw, weights=(1 / (1 + cw.Time / 7)).to_numpy())
    assert_table(lt.anova(m, type=3), REF["anova"]["weighted_3_Satterthwaite"])
    with pytest.raises(ValueError, match="Kenward-Roger with prior weights is not available"):
        lt.anova(m, ddf="Kenward-Roger")
