"""The lme4 model language in the fixed part (transforms, I(), poly, scale, offsets, prior weights, R's term
order) against lme4 on R's ChickWeight (tests/reference/language_reference.R)."""

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.lmm.formula import FormulaError

REF = shared.reference("language_reference")
LOGLIK_RTOL = 1e-6
ESTIMATE_RTOL = 1e-4
ESTIMATE_ATOL = 1e-6  # estimates that are ~0 (e.g. poly(Time, 2)2:Diet3 ≈ 0.0098) are compared absolutely too

#: the Python spelling of each reference model, and R's column names written as lmmteach writes them
FORMULAS = {
    "poly": "log(weight) ~ poly(Time, 2) * Diet + (Time | Chick)",
    "poly_raw": "log(weight) ~ poly(Time, 2, raw=True) + Diet + (Time | Chick)",
    "I_square": "weight ~ Time + I(Time**2) + Diet + (Time | Chick)",
    "scale": "log(weight) ~ scale(Time) + Diet + (Time | Chick)",
    "sqrt_center": "sqrt(weight) ~ center(Time) + Diet + (Time | Chick)",
    "offset": "weight ~ Diet + offset(8 * Time) + (Time | Chick)",
    "term_order": "weight ~ Time:Diet + Diet + Time + (Time | Chick)",
    "interaction": "weight ~ Time * Diet + (Time | Chick)",
}
R_NAMES = {"raw = TRUE": "raw=True", "I(Time^2)": "I(Time ** 2)", "I(Time - mean(Time))": "center(Time)"}


def python_name(r_name: str) -> str:
    for r, py in R_NAMES.items():
        r_name = r_name.replace(r, py)
    return r_name


def fit(name, **kw):
    return shared.fit(FORMULAS[name], "chickweight", **kw)


def assert_matches(m, ref):
    assert m.loglik == pytest.approx(ref["logLik"], rel=LOGLIK_RTOL)
    assert list(m.fixef.index) == [python_name(n) for n in ref["fixef_names"]]
    np.testing.assert_allclose(m.fixef.to_numpy(), list(ref["fixef"].values()), rtol=ESTIMATE_RTOL,
                               atol=ESTIMATE_ATOL)
    np.testing.assert_allclose(m.se.to_numpy(), ref["se"], rtol=ESTIMATE_RTOL)
    assert m.sigma == pytest.approx(ref["sigma"], rel=ESTIMATE_RTOL)
    np.testing.assert_allclose(m.varcorr.vcov.to_numpy(), ref["vcov"], rtol=ESTIMATE_RTOL, atol=1e-8)
    np.testing.assert_allclose(m.fitted.to_numpy()[:5], ref["fitted_head"], rtol=ESTIMATE_RTOL)


def test_chickweight_is_r_data():
    cw = lt.load_chickweight()
    assert cw.shape == (578, 4)
    assert list(cw.Chick.cat.categories) == REF["chick_levels"]
    assert list(cw.Diet.cat.categories) == ["1", "2", "3", "4"]


@pytest.mark.parametrize("name", list(FORMULAS))
@pytest.mark.parametrize("reml", [True, False])
def test_transformed_models_match_lme4(name, reml):
    assert_matches(fit(name, reml=reml), REF["models"][name if reml else f"{name}_ML"])


def test_terms_are_ordered_as_r_orders_them():
    m = fit("term_order")
    assert list(m.fixef.index) == ["(Intercept)", "Diet2", "Diet3", "Diet4", "Time", "Time:Diet2", "Time:Diet3",
                                   "Time:Diet4"]
    assert list(m.vcov.index) == list(m.fixef.index)
    # the same model written in the other order: same estimates, R's order for that formula
    other = fit("interaction")
    np.testing.assert_allclose(m.fixef[other.fixef.index], other.fixef, rtol=1e-6)


@pytest.mark.parametrize("formula", ["weight ~ Time + I(Time^2) + Diet + (Time | Chick)",
                                     "weight ~ Time + np.square(Time) + Diet + (Time | Chick)"])
def test_r_spellings_of_a_square(formula):
    m = shared.fit(formula, "chickweight")
    np.testing.assert_allclose(m.fixef.to_numpy(), list(REF["models"]["I_square"]["fixef"].values()),
                               rtol=ESTIMATE_RTOL)


def test_centering_by_I_and_mean_is_center():
    m = shared.fit("sqrt(weight) ~ I(Time - mean(Time)) + Diet + (Time | Chick)", "chickweight")
    assert m.loglik == pytest.approx(REF["models"]["sqrt_center"]["logLik"], rel=LOGLIK_RTOL)


@pytest.mark.parametrize("name", ["poly", "scale", "offset"])
def test_predict_uses_the_training_data_transforms(name):
    """poly() and scale() at new Time values use the fitted data's parameters (as R's predict does)."""
    newdata = pd.DataFrame({"Time": [0.0, 5, 10, 21, 30], "Diet": pd.Categorical(["1", "2", "3", "4", "2"]),
                            "Chick": ["1"] * 5})
    m = fit(name)
    np.testing.assert_allclose(m.predict(newdata).to_numpy(), REF["predict"][name]["re"], rtol=ESTIMATE_RTOL)
    np.testing.assert_allclose(m.predict(newdata, re=False).to_numpy(), REF["predict"][name]["fixed"],
                               rtol=ESTIMATE_RTOL)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("how", ["array", "column"])
def test_prior_weights_match_lme4(reml, how):
    cw = lt.load_chickweight()
    w = 1 / (1 + cw.Time / 7)
    weights = w.to_numpy() if how == "array" else "wt"
    m = shared.fit("log(weight) ~ Time * Diet + (Time | Chick)", cw.assign(wt=w), reml=reml, weights=weights)
    assert_matches(m, REF["weighted"]["REML" if reml else "ML"])


def test_weights_change_the_residual_variance_only_as_sigma2_over_w():
    """Weights of 2 everywhere are the same model written with Var(e_i) = σ²/2: σ̂² doubles, while b̂, the
    random-effect covariance and the log-likelihood (with lme4's ½ Σ log w_i) stay as they were."""
    cw = lt.load_chickweight()
    m1 = shared.fit("log(weight) ~ Time + (Time | Chick)", cw, weights=np.ones(len(cw)))
    m2 = shared.fit("log(weight) ~ Time + (Time | Chick)", cw, weights=np.full(len(cw), 2.0))
    np.testing.assert_allclose(m2.fixef, m1.fixef, rtol=1e-6)
    assert m2.sigma**2 == pytest.approx(2 * m1.sigma**2, rel=1e-6)
    assert m2.loglik == pytest.approx(m1.loglik, rel=LOGLIK_RTOL)
    np.testing.assert_allclose(m2.Sigma, m1.Sigma, rtol=1e-5)


def test_offset_argument_equals_offset_term():
    cw = lt.load_chickweight()
    m = shared.fit("weight ~ Diet + (Time | Chick)", cw, offset=8 * cw.Time.to_numpy())
    assert m.loglik == pytest.approx(REF["models"]["offset"]["logLik"], rel=LOGLIK_RTOL)


# -- bad input: clear errors, nothing dropped silently -------------------------------------------------------
@pytest.fixture(scope="module")
def cw():
    return lt.load_chickweight()


@pytest.mark.parametrize("formula,match", [
    ("weight ~ lgo(Time) + (1 | Chick)", r"unknown function 'lgo' in 'lgo\(Time\)'; a formula may use .*log.*poly"),
    ("weight ~ poly(Time, 12) + (1 | Chick)", r"degree 12 must be less than the number of distinct values .*\(12\)"),
    ("sqrt(weight - 100) ~ Time + (1 | Chick)", r"the response .sqrt\(weight - 100\). is not a number \(NaN\) on \d+ complete row"),
    ("weight ~ log(Time) + (1 | Chick)", r"variable 'log\(Time\)' has 50 infinite value"),
    ("weight ~ Time + offset(Time):Diet + (1 | Chick)", "an offset cannot be part of an interaction"),
    ("weight ~ scale(Tmie) + (1 | Chick)", "data has no such column"),
])
def test_bad_expressions_say_what_is_wrong(cw, formula, match):
    with pytest.raises(ValueError, match=match):
        lt.lmer(formula, cw)


def test_unknown_function_is_a_formula_error():
    with pytest.raises(FormulaError, match="unknown function 'foo'"):
        lt.parse_formula("y ~ foo(x) + (1 | g)")


@pytest.mark.parametrize("weights,match", [
    (-np.ones(578), r"weights must be positive and finite; 578 are not"),
    (np.r_[np.nan, np.ones(577)], r"weights has 1 missing value"),
    (np.ones(10), r"weights has 10 value\(s\) but data has 578 rows"),
    ("wgt", r"weights='wgt' names no column of data"),
])
def test_bad_weights(cw, weights, match):
    with pytest.raises(ValueError, match=match):
        lt.lmer("weight ~ Time + (1 | Chick)", cw, weights=weights)


def test_bad_offset(cw):
    with pytest.raises(ValueError, match=r"offset has 3 value\(s\) but data has 578 rows"):
        lt.lmer("weight ~ Time + (1 | Chick)", cw, offset=[1.0, 2.0, 3.0])


def test_missing_values_in_an_expression_variable_are_counted(cw):
    holey = cw.astype({"Time": float}).copy()
    holey.loc[[0, 5], "Time"] = np.nan
    with pytest.warns(UserWarning, match=r"2 of 578 rows have missing values and were dropped \(Time: 2\)"):
        m = lt.lmer("log(weight) ~ poly(Time, 2) + (1 | Chick)", holey)
    assert m.nobs == 576


# -- model verbs ---------------------------------------------------------------------------------------------
def test_simulate_draws_from_the_fitted_model():
    m = fit("interaction")
    sims = m.simulate(400, seed=1)
    assert sims.shape == (578, 400) and list(sims.columns[:2]) == ["sim_1", "sim_2"]
    pd.testing.assert_frame_equal(sims.iloc[:, :3], m.simulate(3, seed=1))
    # E(y*) = X b̂ and the marginal variance Var(y*_i) = z_i'Σ̂z_i + σ̂²
    mean = m.design.X @ m.fixef.to_numpy()
    assert np.abs(sims.mean(axis=1) - mean).max() < 6 * np.sqrt(np.max(sims.var(axis=1)) / 400)
    zSz = np.einsum("nq,qr,nr->n", m.design.Z, m.Sigma, m.design.Z) + m.sigma**2
    np.testing.assert_allclose(sims.var(axis=1).mean(), zSz.mean(), rtol=0.1)


def test_update_changes_one_argument():
    m = fit("interaction")
    m0 = m.update(". ~ . - Time:Diet", reml=False)
    assert m0.formula == "weight ~ Time * Diet + (Time | Chick) - Time:Diet"
    assert not m0.reml and list(m0.fixef.index) == ["(Intercept)", "Time", "Diet2", "Diet3", "Diet4"]
    assert m.update(reml=False).loglik == pytest.approx(REF["models"]["interaction_ML"]["logLik"],
                                                        rel=LOGLIK_RTOL)
    with pytest.raises(TypeError, match="unexpected argument"):
        m.update(weigths=1)


# -- printing as lme4 prints ---------------------------------------------------------------------------------
def test_correlation_of_fixed_effects_uses_lme4_abbreviations():
    from lmmteach.lmm.display import abbreviate

    ref = REF["abbreviate"]
    assert abbreviate(ref["names"], 6) == ref["six"]
    assert abbreviate(ref["names"], 11) == ref["eleven"]
    text = str(fit("interaction").summary())
    block = text.split("Correlation of Fixed Effects:")[1].splitlines()
    assert block[1].split()[:3] == ["(Intr)", "Time", "Diet2"]
    assert block[-1].split()[0] == "Time:Diet4"


def test_scaled_residual_headers_sit_over_their_values():
    lines = str(fit("interaction").summary()).splitlines()
    k = lines.index("Scaled residuals:")
    heads, values = lines[k + 1], lines[k + 2]
    assert heads.split() == ["Min", "1Q", "Median", "3Q", "Max"]
    ends = lambda line: [i + 1 for i in range(len(line)) if line[i] != " " and (i + 1 == len(line) or line[i + 1] == " ")]  # noqa: E731
    assert ends(heads) == ends(values)
