"""The edge cases of issue 23, each against R (tests/reference/edges_reference.R -> edges_reference.json) or a
clear lmmteach error: gls time handling as nlme's (any number of distinct times, integer and continuous times,
ordered factors, text and inf refused), pandas weights/offsets aligned on the index, non-nested tests refused,
raw errors turned into clear ones, the model language (ordered factors, contrasts by name, pi, dotted names,
`.`), Kenward-Roger with several grouping factors (pbkrtest)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt

REF = shared.reference("edges_reference")
LOGLIK_RTOL = 1e-6
COEF_ATOL = 1e-4
# nlme stops its search at a relative change of ~1e-7 in the log-likelihood, so its φ and SEs are a few 1e-5
# from the optimum (as in test_gls)
PARAM_RTOL = 1e-4


def _csv(name):
    return pd.read_csv(shared.REFERENCE / name)


def _check_gls(m, r):
    assert m.converged
    assert m.loglik == pytest.approx(r["logLik"], rel=LOGLIK_RTOL)
    assert m.npar == r["df"]
    assert m.fixef.to_numpy() == pytest.approx(list(r["coefficients"].values()), abs=COEF_ATOL)
    assert m.se.to_numpy() == pytest.approx(list(r["se"].values()), rel=PARAM_RTOL)
    assert m.sigma == pytest.approx(r["sigma"], rel=PARAM_RTOL)
    if r["phi"] is not None:
        assert m.correlation_parameters.to_numpy() == pytest.approx([r["phi"]], rel=PARAM_RTOL)


# -- gls: time points as nlme reads them ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def many_times():
    return _csv("edges_gls_times.csv")


@pytest.fixture(scope="module")
def irregular():
    d = _csv("edges_gls_irregular.csv")
    return d.assign(t2=2 * d.t, tf=pd.Categorical(d.t, ordered=True))


def test_gls_with_more_than_64_distinct_times_matches_ols_and_nlme(many_times):
    """Was: a 64-bit mask of the visits gave -767.44 where OLS and nlme give -782.26 (and crashed beyond)."""
    r = REF["gls_many_times"]
    assert many_times.t.nunique() == r["n_times"] == 70
    m = lt.gls("y ~ x", many_times, group="id", time="t", reml=False)
    assert m.loglik == pytest.approx(r["lm_loglik"], rel=LOGLIK_RTOL)
    _check_gls(m, r["none_ml"])
    _check_gls(lt.gls("y ~ x", many_times, group="id", time="t", correlation="cs"), r["cs"])


def test_gls_rows_with_all_distinct_times_do_not_crash(many_times):
    """Was: 68+ rows each at its own time crashed with 'cannot reshape array of size 0'."""
    d = many_times.assign(t=np.arange(len(many_times)))
    m = lt.gls("y ~ x", d, group="id", time="t", reml=False)
    assert m.loglik == pytest.approx(REF["gls_many_times"]["lm_loglik"], rel=LOGLIK_RTOL)
    assert len(m.devfun.cp.patterns) == len(d) // 3


def test_car1_matches_nlme_corCAR1_on_integer_and_continuous_times(many_times):
    r = REF["gls_many_times"]
    assert "not invertible" in r["ar1_error"]  # nlme's corAR1 gives up on these lags
    _check_gls(lt.gls("y ~ x", many_times, group="id", time="t", correlation="car1"), r["car1"])
    # ar1 on integer times is the same model (lag = time difference), φ ≥ 0 here
    _check_gls(lt.gls("y ~ x", many_times, group="id", time="t", correlation="ar1"), r["car1"])
    _check_gls(lt.gls("y ~ x", many_times, group="id", time="tc", correlation="car1"), r["car1_continuous"])
    _check_gls(lt.gls("y ~ x", many_times, group="id", time="tc", correlation="car1", reml=False),
               r["car1_continuous_ml"])


@pytest.mark.parametrize("key,time,correlation,het", [
    ("ar1", "t", "ar1", False),  # corAR1(form = ~ t | g): lags 1, 4, 5, 6, not the positions
    ("car1", "t", "car1", False),
    ("car1_doubled", "t2", "car1", False),  # nlme's corAR1 stays at its start φ = 0 here; φ per time unit
    ("ar1_positions", "tf", "ar1", False),  # an ordered factor: positions 1..4
    ("car1_het", "t", "car1", True),
])
def test_irregular_integer_times_as_nlme(irregular, key, time, correlation, het):
    """Was: times {0, 1, 5, 6} were taken as equally spaced with no word."""
    _check_gls(lt.gls("y ~ x", irregular, group="g", time=time, correlation=correlation, heteroscedastic=het),
               REF["gls_irregular"][key])


def test_gls_text_times_are_refused_where_the_order_matters(irregular):
    """Was: '10 yrs' sorted before '8 yrs' and AR(1) ran on that order."""
    d = irregular.assign(visit=irregular.t.map(lambda t: f"{t} yrs"))
    with pytest.raises(ValueError, match=r"time='visit'.*no time order.*ordered=True"):
        lt.gls("y ~ x", d, group="g", time="visit", correlation="ar1")
    for c in ("car1", "toep"):
        with pytest.raises(ValueError, match="time='visit'"):
            lt.gls("y ~ x", d, group="g", time="visit", correlation=c)
    # an ordered factor of the same labels gives the positions' fit
    order = [f"{t} yrs" for t in (0, 1, 5, 6)]
    d["visit"] = pd.Categorical(d.visit, categories=order, ordered=True)
    _check_gls(lt.gls("y ~ x", d, group="g", time="visit", correlation="ar1"), REF["gls_irregular"]["ar1_positions"])
    # order-free structures use text as labels only
    un = lt.gls("y ~ x", d.assign(visit=d.visit.astype(str)), group="g", time="visit", correlation="cs")
    assert un.loglik == pytest.approx(lt.gls("y ~ x", d, group="g", time="t", correlation="cs").loglik, rel=1e-10)


def test_gls_continuous_times_need_car1(many_times, irregular):
    """Was: each continuous time became its own position, so AR(1) silently became independence."""
    with pytest.raises(ValueError, match=r"time='tc' has non-integer values.*car1"):
        lt.gls("y ~ x", many_times, group="id", time="tc", correlation="ar1")
    with pytest.raises(ValueError, match=r"time='t' is not equally spaced \(0, 1, 5, 6\)"):
        lt.gls("y ~ x", irregular, group="g", time="t", correlation="toep")


def test_gls_infinite_time_is_refused(irregular):
    """Was: inf was taken as a fifth visit."""
    d = irregular.astype({"t": float})
    d.loc[d.index[3], "t"] = np.inf
    for c in (None, "cs", "ar1", "car1"):
        with pytest.raises(ValueError, match=r"time='t' has 1 infinite value"):
            lt.gls("y ~ x", d, group="g", time="t", correlation=c)


def test_ar1_with_even_lags_leaves_phi_zero(irregular):
    """nlme's corAR1 stays at φ = 0 when every lag is even (a stationary point); our start is inside."""
    a = lt.gls("y ~ x", irregular, group="g", time="t2", correlation="ar1")
    b = REF["gls_irregular"]["car1_doubled"]
    _check_gls(a, b)


# -- weights and offsets: column names, Series aligned on the index ---------------------------------------------
@pytest.fixture(scope="module")
def sleep_wo():
    d = lt.load_sleepstudy()
    rng = np.random.default_rng(23)
    return d.assign(w=rng.uniform(0.5, 2.0, len(d)), o=rng.normal(0.0, 5.0, len(d)))


def test_weights_and_offset_series_are_aligned_on_the_index(sleep_wo):
    """Was: a shuffled Series was used by position and gave other estimates than the column by name."""
    d = sleep_wo
    by_name = lt.lmer("Reaction ~ Days + (1 | Subject)", d, weights="w", offset="o")
    by_array = lt.lmer("Reaction ~ Days + (1 | Subject)", d, weights=d.w.to_numpy(), offset=d.o.to_numpy())
    shuffled = d.sample(frac=1.0, random_state=5)
    by_series = lt.lmer("Reaction ~ Days + (1 | Subject)", d, weights=shuffled.w, offset=shuffled.o)
    for m in (by_array, by_series):
        assert m.loglik == pytest.approx(by_name.loglik, rel=1e-12)
        assert m.fixef.to_numpy() == pytest.approx(by_name.fixef.to_numpy(), rel=1e-10)
    # the offset moves the intercept by its value: a constant offset c gives (Intercept) - c
    c = lt.lmer("Reaction ~ Days + (1 | Subject)", d.assign(c=10.0), offset="c")
    plain = lt.lmer("Reaction ~ Days + (1 | Subject)", d)
    assert c.fixef["(Intercept)"] == pytest.approx(plain.fixef["(Intercept)"] - 10.0, rel=1e-8)


def test_offset_column_name_is_accepted(sleep_wo):
    """Was: offset='x2' failed with 'could not convert string to float'."""
    m = lt.lmer("Reaction ~ Days + (1 | Subject)", sleep_wo, offset="o")
    f = lt.lmer("Reaction ~ Days + offset(o) + (1 | Subject)", sleep_wo)
    assert m.loglik == pytest.approx(f.loglik, rel=1e-12)


@pytest.mark.parametrize("arg", ["weights", "offset"])
def test_series_that_cannot_be_aligned_are_refused(sleep_wo, arg):
    d = sleep_wo
    other_labels = d.w.set_axis(range(1000, 1000 + len(d)))
    with pytest.raises(ValueError, match=rf"{arg} is a pandas Series whose index does not hold data's row labels"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, **{arg: other_labels})
    with pytest.raises(ValueError, match=rf"{arg} is a pandas Series with repeated index labels"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, **{arg: d.w.set_axis([0] * len(d))})
    with pytest.raises(ValueError, match=rf"{arg}='nope' names no column"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, **{arg: "nope"})
    with pytest.raises(ValueError, match=rf"{arg} has 5 value\(s\) but data has 180 rows"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, **{arg: np.ones(5)})
    with pytest.raises(ValueError, match=rf"{arg} must be numbers"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, **{arg: "Subject"})


# -- tests that need nested models; raw errors turned into clear ones ------------------------------------------
@pytest.fixture(scope="module")
def sleep_fits():
    d = lt.load_sleepstudy()
    d = d.assign(z=np.random.default_rng(3).normal(size=len(d)))
    return {
        "days": lt.lmer("Reaction ~ Days + (1 | Subject)", d, reml=False),
        "z": lt.lmer("Reaction ~ z + (1 | Subject)", d, reml=False),
        "null": lt.lmer("Reaction ~ 1 + (1 | Subject)", d, reml=False),
        "slope": lt.lmer("Reaction ~ Days + (0 + Days | Subject)", d, reml=False),
        "both": lt.lmer("Reaction ~ Days + (Days | Subject)", d, reml=False),
    }


def test_bootstrap_lrt_and_anova_refuse_non_nested_models(sleep_fits):
    """Was: bootstrap_lrt printed 'D = 79.98 on 0 parameter(s), p = 0.048' for non-nested models."""
    f = sleep_fits
    with pytest.raises(ValueError, match=r"bootstrap_lrt needs nested models.*fixed effect 'z'.*AIC or BIC"):
        lt.bootstrap_lrt(f["days"], f["z"], nsim=5, seed=1, progress=False)
    with pytest.raises(ValueError, match=r"needs nested models.*fixed effect 'Days'"):
        lt.anova(f["days"], f["z"])
    with pytest.raises(ValueError, match=r"random effect '\(Intercept\)' on 'Subject'"):
        lt.anova(f["days"], f["slope"])
    # nested pairs still pass: fixed part within, random part within
    table = lt.anova(f["null"], f["days"], f["both"])
    assert table["Df"].tolist()[1:] == [1, 2]
    assert lt.bootstrap_lrt(f["both"], f["days"], nsim=3, seed=1, progress=False).df == 2


def test_gls_anova_refuses_non_nested_correlations():
    g = lt.load_grocery()
    a = lt.gls("price ~ store", g, group="item", time="store", correlation="ar1", reml=False)
    c = lt.gls("price ~ store", g, group="item", time="store", correlation="cs", reml=False)
    with pytest.raises(ValueError, match="is not a special case"):
        lt.anova(a, c)
    u = lt.gls("price ~ store", g, group="item", time="store", correlation="un", reml=False)
    assert lt.anova(c, u)["Df"].iloc[1] == u.npar - c.npar


def test_lmer_start_must_be_finite_theta():
    """Was: lmer(start=[nan]) returned all-NaN estimates."""
    d = lt.load_sleepstudy()
    with pytest.raises(ValueError, match=r"start must be 1 finite number\(s\).*got \[nan\]"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, start=[np.nan])
    with pytest.raises(ValueError, match="start must be 3 finite"):
        lt.lmer("Reaction ~ Days + (Days | Subject)", d, start=[1.0])
    with pytest.raises(TypeError, match="start must be numbers"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", d, start=["a"])


@pytest.mark.parametrize("scale", [1e160, 1e-160])
def test_column_beyond_floating_point_scale_is_refused(scale):
    """Was: x * 1e160 was silently dropped as rank deficient."""
    d = lt.load_sleepstudy()
    with pytest.raises(ValueError, match=r"fixed-effect column 'x' has values as (large|small).*rescale"):
        lt.lmer("Reaction ~ x + (1 | Subject)", d.assign(x=d.Days * scale))
    # within range, a rescaled column gives the rescaled estimate
    m = lt.lmer("Reaction ~ x + (1 | Subject)", d.assign(x=d.Days * 1e50))
    m0 = lt.lmer("Reaction ~ Days + (1 | Subject)", d)
    assert m.fixef["x"] * 1e50 == pytest.approx(m0.fixef["Days"], rel=1e-8)


def test_aov1rm_with_fewer_subjects_than_levels_warns():
    """Was: blank (NaN) epsilon and p with no word."""
    Y = np.random.default_rng(2).normal(size=(3, 5))
    with pytest.warns(UserWarning, match=r"Mauchly's test: undefined \(NaN\) with n = 3 subjects for a = 5 "
                                         r"levels: fewer subjects than levels"):
        a = lt.aov1rm(Y)
    assert np.isnan(a.mauchly_p) and np.isfinite(a.p) and np.isfinite(a.p_gg)
    with pytest.warns(UserWarning, match="Huynh-Feldt epsilon and p"):
        assert np.isnan(lt.aov1rm(Y[:2, :3]).eps_hf)


def test_raw_errors_are_clear_errors(sleep_fits):
    m = sleep_fits["days"]
    with pytest.raises(ValueError, match="row 1 of L is all zeros"):  # was pandas' IntCastingNaNError
        lt.contest(m, [[0, 0]])
    with pytest.raises(ValueError, match="nsim must be at least 1"):  # was 'need at least one array...'
        lt.bootstrap_lrt(sleep_fits["both"], m, nsim=0)
    with pytest.raises(TypeError, match="nsim must be a whole number"):
        lt.confint(m, method="boot", nsim=2.5)
    for method in ("wald", "profile"):  # was pandas' KeyError
        with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['nope'\] in parm"):
            lt.confint(m, method=method, parm=["nope"])
    with pytest.raises(TypeError, match="level must be a number between 0 and 1"):
        lt.confint(m, level="0.9")
    with pytest.raises(ValueError, match="method must be"):
        lt.confint(m, method=3)
    d = lt.load_sleepstudy()
    with pytest.raises(TypeError, match=r"contrasts must be a dict.*contrasts=\{'store': 'sum'\}"):
        lt.lmer("Reaction ~ factor(Days) + (1 | Subject)", d, contrasts="sum")
    with pytest.raises(TypeError, match="contrasts must be a dict"):
        lt.gls("price ~ store", lt.load_grocery(), group="item", time="store", contrasts="sum")
    assert lt.confint(m, method="wald", parm="Days").shape == (1, 2)


# -- the model language: ordered factors, contrasts by name, pi, dotted names, `.`, backticks -----------------
@pytest.fixture(scope="module")
def cake():
    c = _csv("edges_cake.csv")
    return c.assign(recipe=c.recipe.astype("category"), temperature=pd.Categorical(c.temperature, ordered=True))


def _check_lmer(m, r):
    assert m.loglik == pytest.approx(r["logLik"], rel=LOGLIK_RTOL)
    assert list(m.fixef.index) == list(r["fixef"])
    assert m.fixef.to_numpy() == pytest.approx(list(r["fixef"].values()), abs=COEF_ATOL)
    assert m.se.to_numpy() == pytest.approx(list(r["se"].values()), rel=PARAM_RTOL)


@pytest.mark.parametrize("key,reml", [("ordered_reml", True), ("ordered_ml", False)])
def test_ordered_factor_gets_polynomial_contrasts_as_lme4(cake, key, reml):
    """Was: an ordered factor got treatment contrasts (cake REML log-likelihood -816.62 vs lme4 -819.31)."""
    m = lt.lmer("angle ~ recipe * temperature + (1 | recipe:replicate)", cake, reml=reml)
    _check_lmer(m, REF["cake"][key])
    assert "temperature.L" in m.fixef.index and "recipeC:temperature^5" in m.fixef.index


@pytest.mark.parametrize("key,contrasts", [
    ("helmert_poly", {"recipe": "helmert", "temperature": "contr.poly"}),
    ("sum_treatment", {"recipe": "contr.sum", "temperature": "treatment"}),
])
def test_contrasts_by_name_as_lme4(cake, key, contrasts):
    """Was: contrasts={'x': 'poly'} was unknown."""
    d = cake.assign(temperature=cake.temperature.cat.as_unordered())
    _check_lmer(lt.lmer("angle ~ recipe + temperature + (1 | recipe:replicate)", d, contrasts=contrasts),
                REF["cake"][key])


def test_contrast_matrices_are_rs():
    poly = lt.contrasts.contr_poly(list("abcde"))
    assert list(poly.columns) == [".L", ".Q", ".C", "^4"]
    assert (poly.T @ poly).to_numpy() == pytest.approx(np.eye(4))  # orthonormal, and orthogonal to the constant
    assert poly.sum().to_numpy() == pytest.approx(np.zeros(4), abs=1e-12)
    assert poly[".L"].to_numpy() == pytest.approx(np.arange(-2, 3) / np.sqrt(10))  # R: contr.poly(5)[, 1]
    assert lt.contrasts.contr_helmert(list("abcd")).to_numpy().tolist() == [[-1, -1, -1], [1, -1, -1], [0, 2, -1],
                                                                           [0, 0, 3]]
    with pytest.raises(ValueError, match=r"unknown contrasts 'deviation' for factor 'recipe'.*'helmert', 'poly'"):
        lt.lmer("angle ~ recipe + (1 | replicate)", _csv("edges_cake.csv"), contrasts={"recipe": "deviation"})


def test_pi_in_a_formula_as_lme4():
    """Was: 'pi' was taken for a missing column."""
    m = lt.lmer("Reaction ~ I(Days * pi) + (1 | Subject)", lt.load_sleepstudy())
    _check_lmer(m, REF["sleep_pi"])


def test_dotted_column_names():
    """Was: y.val ~ x + (1 | grp.id) looked for columns 'y' and 'x'."""
    d = lt.load_sleepstudy()
    plain = lt.lmer("log(Reaction) ~ Days + I(Days**2) + (Days | Subject)", d)
    dotted = lt.lmer("log(y.val) ~ x.d + I(x.d**2) + (x.d | grp.id)",
                     d.rename(columns={"Reaction": "y.val", "Days": "x.d", "Subject": "grp.id"}))
    assert dotted.loglik == pytest.approx(plain.loglik, rel=1e-12)
    assert list(dotted.fixef.index) == ["(Intercept)", "x.d", "I(x.d ** 2)"]
    assert dotted.fixef.to_numpy() == pytest.approx(plain.fixef.to_numpy(), rel=1e-10)


def test_dot_means_all_other_columns():
    d = lt.load_sleepstudy().assign(z=np.random.default_rng(4).normal(size=180))
    explicit = lt.lmer("Reaction ~ Days + z + (1 | Subject)", d)
    dot = lt.lmer("Reaction ~ . + (1 | Subject)", d)
    assert dot.formula == "Reaction ~ Days + z + (1 | Subject)"
    assert dot.loglik == pytest.approx(explicit.loglik, rel=1e-12)
    assert list(lt.lmer("Reaction ~ . - z + (1 | Subject)", d).fixef.index) == ["(Intercept)", "Days"]
    assert lt.lmer("Reaction ~ . + (Days | Subject)", d).fixef.index.tolist() == ["(Intercept)", "z"]
    g = lt.load_grocery()  # gls: the group column is not a fixed effect either
    assert lt.gls("price ~ .", g[["price", "store", "item"]], group="item", time="store").formula == "price ~ store"
    with pytest.raises(ValueError, match=r"'\.' \(all other columns\) can only be a term of its own"):
        lt.lmer("Reaction ~ .*Days + (1 | Subject)", d)
    with pytest.raises(ValueError, match="there are none left"):
        lt.lmer("Reaction ~ . + (1 | Subject)", d[["Reaction", "Subject"]])


def test_unicode_names_need_backticks_and_the_message_says_so():
    d = lt.load_sleepstudy().rename(columns={"Days": "größe", "Subject": "Schüler id"})
    for formula in ("Reaction ~ größe + (1 | `Schüler id`)", "Reaction ~ `größe` + (1 | Schüler id)",
                    "Reaction ~ Tage zahl + (1 | `Schüler id`)"):
        with pytest.raises(ValueError, match=r"goes in backticks, e\.g\. y ~ `größe`"):
            lt.lmer(formula, d)
    m = lt.lmer("Reaction ~ `größe` + log1p(`größe`) + (1 | `Schüler id`)", d)
    assert list(m.fixef.index) == ["(Intercept)", "größe", "log1p(`größe`)"]


# -- Kenward-Roger with several grouping factors (pbkrtest) -------------------------------------------------------
KR_RTOL = 1e-6  # pbkrtest's and our vcovAdj agree to ~1e-8 relative at lme4's optimum (theta within 1e-7)


def _check_kr(model, L, r):
    from lmmteach.inference.kenward_roger import kr_test

    t = kr_test(model, L)
    assert t["F"] == pytest.approx(r["F"], rel=KR_RTOL)
    assert t["DenDF"] == pytest.approx(r["ddf"], rel=KR_RTOL)
    assert t["scaling"] == pytest.approx(r["F_scaling"], rel=KR_RTOL)
    assert t["NumDF"] == r["ndf"]


def test_kenward_roger_nested_factors_oats_as_pbkrtest():
    """Was: Kenward-Roger refused several grouping factors; pbkrtest handles Oats' (1 | Block/Variety)."""
    r = REF["oats_kr"]
    o = _csv("edges_oats.csv").astype({"Block": "category", "Variety": "category"})
    m = lt.lmer("yield ~ nitro + Variety + (1 | Block/Variety)", o)
    assert m.loglik == pytest.approx(r["logLik"], rel=LOGLIK_RTOL)
    assert list(m.fixef.index) == r["fixef_names"]
    V = np.array(r["vcov_adjusted"])
    assert lt.kenward_roger(m).vcov_adjusted == pytest.approx(V, rel=KR_RTOL, abs=KR_RTOL * np.abs(V).max())
    _check_kr(m, [[0, 1, 0, 0]], r["nitro"])
    _check_kr(m, [[0, 0, 1, 0], [0, 0, 0, 1]], r["variety"])
    tab = lt.contest(m, [[0, 0, 1, 0], [0, 0, 0, 1]], ddf="Kenward-Roger")
    assert tab["Pr(>F)"].iloc[0] == pytest.approx(r["variety"]["p"], rel=KR_RTOL)


def test_kenward_roger_crossed_factors_penicillin_as_pbkrtest():
    r = REF["penicillin_kr"]
    m = lt.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", lt.load_penicillin())
    assert m.loglik == pytest.approx(r["logLik"], rel=LOGLIK_RTOL)
    assert lt.kenward_roger(m).vcov_adjusted == pytest.approx(np.array(r["vcov_adjusted"]), rel=KR_RTOL)
    _check_kr(m, [[1.0]], r["intercept"])


# -- gls designs too small for their covariance structure (found by tests/lmm/test_fuzz.py) -------------------------
def test_gls_refuses_parameters_the_data_cannot_determine(irregular):
    small = irregular.head(12)
    with pytest.raises(ValueError, match=r"correlation='un' with heteroscedastic=True over 4 time points has 9"):
        lt.gls("y ~ x", small.head(8), group="g", time="t", correlation="un", heteroscedastic=True)
    one_each = pd.DataFrame({"y": [1.0, 2.5, 0.3, 1.9, 2.2, 0.7], "x": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3],
                             "g": ["a", "a", "b", "b", "c", "c"], "t": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]})
    pairs = pd.DataFrame({"y": np.random.default_rng(1).normal(size=20), "g": np.repeat(np.arange(10), 2),
                          "t": np.ravel([[0, 1] if i % 2 else [1, 2] for i in range(10)])})
    with pytest.raises(ValueError, match="no group has both t=0 and 2"):
        lt.gls("y ~ 1", pairs, group="g", time="t", correlation="un")
    lone = pd.DataFrame({"y": np.random.default_rng(2).normal(size=13), "x": np.arange(13.0),
                         "g": np.r_[np.repeat(np.arange(6), 2), 6], "t": np.r_[np.tile([0, 1], 6), 2]})
    with pytest.raises(ValueError, match=r"heteroscedastic=True: the 1 row\(s\) at t=2 can be fitted exactly"):
        lt.gls("y ~ x", lone, group="g", time="t", heteroscedastic=True)
    with pytest.raises(ValueError, match="correlation='cs' with 1 group"):
        lt.gls("y ~ x", one_each.assign(g="a"), group="g", time="t", correlation="cs")


def test_gls_refuses_a_singular_fit():
    """Two small groups and cs: the likelihood grows without bound as ω → -1/(T-1) (nlme returns it)."""
    d = pd.DataFrame({"y": [2.350265, 1.788579, 2.430726, 2.738407, 0.372050], "g": ["s0"] * 3 + ["s1"] * 2,
                      "t": [0.0, 1.0, 2.0, 0.0, 1.0]})
    with pytest.raises(ValueError, match=r"makes Cov\(y_i\) singular \(Rho = -0\.5"):
        lt.gls("y ~ 1", d, group="g", time="t", correlation="cs", reml=False)
