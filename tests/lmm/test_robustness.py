"""Bad input gets a message that teaches; data problems are handled as R users expect, and said."""

import warnings

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt

REF = shared.reference("lme4_reference")


@pytest.fixture(scope="module")
def sleep():
    return lt.load_sleepstudy()


fit_quiet = shared.fit


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("formula,match", [
    ("Reaction ~ Dayz + (1 | Subject)", "variable 'Dayz' but data has no such column"),
    ("Reaction ~ Days + (1 | Subjct)", "grouping factor 'Subjct' but data has no such column"),
    ("Reactio ~ Days + (1 | Subject)", "response 'Reactio'"),
    ("Reaction Days + (1 | Subject)", "exactly one '~'"),
    ("Reaction ~ Days + (1 | Subject", r"unbalanced '\('"),
    ("Reaction ~ Days) + (1 | Subject)", r"unbalanced '\)'"),
    ("Reaction ~ Days + 1 | Subject", "must be in parentheses"),
    ("Reaction ~ Days + + (1 | Subject)", "empty term before '\\+' at position"),
    ("Reaction ~ Days + ( | Subject)", "nothing left of '\\|'"),
    ("Reaction ~ Days + (1 | )", "no grouping factor right of"),
    ("~ Days + (1 | Subject)", "no response left of '~'"),
    ("Reaction ~ Days + (1 | Subject/Days)", r"grouping factor 'Days:Subject' \(180\) must be < number of obs"),
    ("Reaction ~ Days + (1 | Subject + Days)", r"'Subject \+ Days' is not a column name"),
    ("Reaction ~ Days", "no random-effects term"),
    ("Reaction ~ Days + (1 | Subject) + (1 | Days:Subject)", r"grouping factor 'Days:Subject' \(180\)"),
    ("Reaction ~ Da-ys + (1 | Subject)", "variable 'Da'"),
])
def test_bad_formulas_are_named(sleep, formula, match):
    with pytest.raises(ValueError, match=match):
        lt.lmer(formula, sleep)


def test_formula_must_be_text(sleep):
    with pytest.raises(TypeError, match="formula must be a string"):
        lt.lmer(42, sleep)


@pytest.mark.parametrize("data,exc,match", [
    ({"Reaction": [1.0]}, TypeError, "data must be a pandas DataFrame, not dict"),
    (np.zeros((3, 3)), TypeError, "not ndarray"),
    (pd.DataFrame(columns=["Reaction", "Days", "Subject"]), ValueError, "data has no rows"),
])
def test_bad_data_objects(data, exc, match):
    with pytest.raises(exc, match=match):
        lt.lmer("Reaction ~ Days + (1 | Subject)", data)


def test_grouping_factor_with_one_level(sleep):
    with pytest.raises(ValueError, match="grouping factor 'Subject' has 1 level"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Subject="only"))


def test_as_many_random_effects_as_observations(sleep):
    two_per_subject = sleep.groupby("Subject", observed=True).head(2)
    with pytest.raises(ValueError, match=r"number of observations \(=36\) <= number of random effects \(=36\)"):
        lt.lmer("Reaction ~ Days + (Days | Subject)", two_per_subject)
    with pytest.raises(ValueError, match="must be < number of observations"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Subject=np.arange(len(sleep))))


def test_non_numeric_response(sleep):
    with pytest.raises(ValueError, match="the response 'Reaction' must be real numbers"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Reaction=sleep.Reaction.astype(str)))


def test_infinite_response(sleep):
    bad = sleep.assign(Reaction=np.where(np.arange(len(sleep)) == 3, np.inf, sleep.Reaction))
    with pytest.raises(ValueError, match="the response 'Reaction' has 1 infinite value"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", bad)


def test_infinite_predictor_is_named(sleep):
    bad = sleep.assign(Days=np.where(np.arange(len(sleep)) == 5, np.inf, sleep.Days))
    with pytest.raises(ValueError, match="variable 'Days' has 1 infinite"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", bad)


def test_unknown_contrasts_and_reml_flag(sleep):
    with pytest.raises(ValueError, match="unknown contrasts 'helmert' for factor 'store'"):
        lt.lmer("price ~ store + (1 | item)", lt.load_grocery(), contrasts={"store": "helmert"})
    with pytest.raises(ValueError, match="not a variable of the formula"):
        lt.lmer("price ~ store + (1 | item)", lt.load_grocery(), contrasts={"shop": "sum"})
    with pytest.raises(TypeError, match="reml must be True or False"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", sleep, reml="yes")


def test_anova_needs_fitted_models_and_same_data(sleep):
    m = fit_quiet("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    with pytest.raises(ValueError, match="at least two"):
        lt.anova(m)
    with pytest.raises(TypeError, match="models returned by lmmteach.lmer"):
        lt.anova(m, "m0")
    other = fit_quiet("Reaction ~ Days + (1 | Subject)", sleep.assign(Reaction=sleep.Reaction * 2), reml=False)
    with pytest.raises(ValueError, match="not all fitted to the same data"):
        lt.anova(m, other)


def test_predict_with_unknown_factor_level():
    m = fit_quiet("price ~ store + (1 | item)", lt.load_grocery())
    new = pd.DataFrame({"store": ["E"], "item": ["milk"]})
    with pytest.raises(ValueError, match=r"factor 'store' has level\(s\) \['E'\]"):
        m.predict(new)


# -- data problems, handled and said ------------------------------------------------------------------------
def test_missing_values_are_dropped_with_a_count(sleep):
    holey = sleep.copy()
    holey.loc[[0, 5, 17], "Reaction"] = np.nan
    holey.loc[40, "Days"] = np.nan
    with pytest.warns(UserWarning, match=r"4 of 180 rows have missing values and were dropped \(Reaction: 3, Days: 1\)"):
        m = lt.lmer("Reaction ~ Days + (Days | Subject)", holey)
    assert m.nobs == 176
    complete = fit_quiet("Reaction ~ Days + (Days | Subject)", holey.dropna())
    assert m.loglik == pytest.approx(complete.loglik, rel=shared.ROUNDING_RTOL)
    assert list(m.fitted.index) == list(holey.dropna().index)


def test_rank_deficient_fixed_effects_are_dropped_with_a_warning(sleep):
    d = sleep.assign(Days2=2 * sleep.Days + 1)
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column: Days2"):
        m = lt.lmer("Reaction ~ Days + Days2 + (1 | Subject)", d)
    ref = fit_quiet("Reaction ~ Days + (1 | Subject)", sleep)
    assert list(m.fixef.index) == ["(Intercept)", "Days"]
    assert m.loglik == pytest.approx(ref.loglik, rel=shared.ROUNDING_RTOL)


def test_boundary_fit_is_flagged_like_lme4():
    ref = REF["fits"]["dyestuff2"]
    with pytest.warns(UserWarning, match=r"boundary \(singular\) fit"):
        m = lt.lmer("Yield ~ 1 + (1 | Batch)", lt.load_dyestuff2())
    assert m.is_singular and ref["isSingular"]
    assert m.varcorr.vcov.iloc[0] == 0.0
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert "boundary (singular) fit" in str(m.summary())


def test_badly_scaled_predictors_fit_the_same(sleep):
    """Values in the thousands: the same fit, up to units; the caller's DataFrame is not modified."""
    t = lt.load_timss(center=True)
    before = t.copy()
    f = "science ~ grpCmath + grpMmath + (grpCmath | idschool)"
    m1 = fit_quiet(f, t, reml=False)
    scaled = t.assign(grpCmath=t.grpCmath * 1000, grpMmath=t.grpMmath * 1000 + 5e5)
    m2 = fit_quiet(f, scaled, reml=False)
    pd.testing.assert_frame_equal(t, before)
    assert m1.converged and m2.converged
    assert m2.loglik == pytest.approx(m1.loglik, rel=1e-9)
    assert m2.fixef["grpCmath"] * 1000 == pytest.approx(m1.fixef["grpCmath"], rel=1e-5)
    assert m2.fixef["grpMmath"] * 1000 == pytest.approx(m1.fixef["grpMmath"], rel=1e-5)
    sd1 = m1.varcorr.set_index(["grp", "var1"]).sdcor
    sd2 = m2.varcorr.set_index(["grp", "var1"]).sdcor
    assert sd2[("idschool", "grpCmath")] * 1000 == pytest.approx(sd1[("idschool", "grpCmath")], rel=1e-4)


def test_callers_data_not_modified(sleep):
    before = sleep.copy()
    fit_quiet("Reaction ~ Days + (Days | Subject)", sleep)
    pd.testing.assert_frame_equal(sleep, before)


@pytest.mark.parametrize("change,match", [
    (lambda s: s.assign(Reaction=1.0), "the response 'Reaction' is constant"),
    (lambda s: s.assign(Reaction=2 * s.Days + 1), "reproduce the response exactly"),
    (lambda s: s.assign(Reaction=s.Reaction.astype(complex)), "must be real numbers"),
    (lambda s: s.assign(Reaction=s.Reaction * 1e200), "rescale it"),
    (lambda s: s.assign(Days=pd.Timestamp("2020-01-01") + pd.to_timedelta(s.Days, unit="D")), "dates or times"),
    (lambda s: pd.concat([s, s[["Days"]]], axis=1), "more than one column named 'Days'"),
])
def test_degenerate_data_is_refused_in_words(sleep, change, match):
    with pytest.raises(ValueError, match=match):
        lt.lmer("Reaction ~ Days + (1 | Subject)", change(sleep))


def test_unused_categories_of_a_grouping_factor_are_ignored_quietly(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = lt.lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Subject=sleep.Subject.cat.add_categories(["999"])))
    assert m.ngroups == {"Subject": 18}
