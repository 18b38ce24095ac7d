"""Inference (notes: "Likelihood Ratio Tests", "Inference for Random Effects", "Inference for Fixed Effects"):
χ̄² references, the parametric bootstrap, confidence intervals (lme4's confint) and Satterthwaite t tests
(lmerTest). Numbers from tests/reference/inference_reference.R (JSON); everything seeded."""

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import _shared as shared
import lmmteach as lt
from lmmteach.bootstrap import BootstrapLRT, bootstrap_lrt, simulate
from lmmteach.lrt import chibar_sf, reference_distribution

REF = shared.reference("inference_reference")

MODELS = {
    "sleep_us": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", True),
    "sleep_us_ml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", False),
    "sleep_vc_ml": ("Reaction ~ Days + (Days || Subject)", "sleepstudy", False),
    "sleep_ri": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", True),
    "sleep_ri_ml": ("Reaction ~ Days + (1 | Subject)", "sleepstudy", False),
    "grocery_amod": ("price ~ store + (1 | item)", "grocery", False),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", True),
    "grocery_amod_reml": ("price ~ store + (1 | item)", "grocery", True),
    "grocery_nmod": ("price ~ 1 + (1 | item)", "grocery", False),
    "timss_ri2mod": ("science ~ 1 + grpCmath + grpMmath + (1 | idschool)", "timss", True),
    "timss_ri2mod_ml": ("science ~ 1 + grpCmath + grpMmath + (1 | idschool)", "timss", False),
}


def fit(key):
    formula, d, reml = MODELS[key]
    return shared.fit(formula, d, reml=reml)


# -- LRT reference distributions ---------------------------------------------------------------------------------
def test_chibar_formula():
    """½χ²_m + ½χ²_{m+1}: the survival function is the average of the two χ² survival functions."""
    for m in (0, 1, 2):
        for x in (0.5, 2.0, 5.0):
            expected = 0.5 * (stats.chi2.sf(x, m) if m else 0.0) + 0.5 * stats.chi2.sf(x, m + 1)
            assert chibar_sf(x, (0.5, 0.5), (m, m + 1)) == pytest.approx(expected)
    assert chibar_sf(0.0, (0.5, 0.5), (0, 1)) == 1.0
    # 5% critical value of ½χ²_0 + ½χ²_1 is the 10% critical value of χ²_1
    assert chibar_sf(stats.chi2.isf(0.10, 1), (0.5, 0.5), (0, 1)) == pytest.approx(0.05)


@pytest.mark.parametrize("name,models,label", [
    ("sleep_vc_vs_ri", ("sleep_vc_ml", "sleep_ri_ml"), "0.5*chisq(0) + 0.5*chisq(1)"),
    ("sleep_us_vs_ri", ("sleep_us_ml", "sleep_ri_ml"), "0.5*chisq(1) + 0.5*chisq(2)"),
    ("sleep_us_vs_vc", ("sleep_us_ml", "sleep_vc_ml"), "chisq(1)"),
])
def test_anova_reference_column(name, models, label):
    ref = REF["lrt_boundary"][name]
    tab = lt.anova(*(fit(k) for k in models), boundary=True)
    assert tab["ref"].iloc[1] == label
    assert tab["Chisq"].iloc[1] == pytest.approx(ref["Chisq"], rel=1e-5)
    expected = ref["p_chibar"] if "chisq(0" in label or "+" in label else ref["p_chisq"]
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(expected, rel=1e-3)


def test_fixed_effects_and_covariances_use_chisq():
    _, dfs, label = reference_distribution(fit("grocery_nmod"), fit("grocery_amod"))
    assert dfs == (3,) and label == "chisq(3)"
    _, dfs, label = reference_distribution(fit("sleep_vc_ml"), fit("sleep_us_ml"))
    assert label == "chisq(1)"
    _, _, label = reference_distribution(fit("sleep_ri_ml"), fit("sleep_vc_ml"), boundary=False)
    assert label == "chisq(1)"


def _null_data(n_groups=40, m=8, seed=3):
    """A random-intercept data set with no random slope: H0 of the slope-variance test is true."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), m)
    x = np.tile(np.arange(m, dtype=float), n_groups)
    y = 1.0 + 0.5 * x + rng.normal(0, 1.0, n_groups)[g] + rng.normal(0, 1.0, n_groups * m)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


def test_chibar_matches_simulated_null_distribution():
    """Under H0: σ_1² = 0 the LRT statistic has about half its mass at 0 and mean ½ (χ̄² = ½χ²_0 + ½χ²_1),
    not mean 1 (χ²_1); its upper 5% point is near χ²_1's 10% point."""
    d = _null_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m0 = lt.lmer("y ~ x + (1 | g)", d, reml=False)
        m1 = lt.lmer("y ~ x + (1 | g) + (0 + x | g)", d, reml=False)
    res = bootstrap_lrt(m1, m0, nsim=200, seed=11, progress=False)
    D = res.simulated
    assert res.n_failed == 0
    assert 0.4 <= np.mean(D < 1e-6) <= 0.75
    assert 0.25 <= np.mean(D) <= 0.75
    assert np.mean(D > stats.chi2.isf(0.10, 1)) <= 0.10


# -- parametric bootstrap ----------------------------------------------------------------------------------------
def test_simulate_has_the_fitted_mean_and_covariance():
    m = fit("grocery_amod")
    rng = np.random.default_rng(0)
    Y = np.array([simulate(m, rng) for _ in range(3000)])
    # Monte Carlo: with 3000 draws the means are within ~0.05 and the (co)variances within a few per cent
    d = m.design
    assert np.allclose(Y.mean(0), d.X @ m.fixef.to_numpy(), atol=0.1)
    S = np.cov(Y.T)
    sv2, s2 = m.varcorr.vcov.iloc[0], m.sigma**2
    same_item = d.group[:, None] == d.group[None, :]
    assert np.mean(np.diag(S)) == pytest.approx(sv2 + s2, rel=0.05)  # Σ_i = σ_v² J + σ² I
    assert np.mean(S[same_item & ~np.eye(len(S), dtype=bool)]) == pytest.approx(sv2, rel=0.05)
    assert abs(np.mean(S[~same_item])) < 0.05 * sv2


def test_bootstrap_lrt_grocery():
    res = bootstrap_lrt(fit("grocery_amod"), fit("grocery_nmod"), nsim=100, seed=2024, progress=False)
    assert isinstance(res, BootstrapLRT)
    assert res.statistic == pytest.approx(11.8157, abs=1e-3)  # the notes' Chisq
    assert res.nsim == 100 and res.simulated.shape == (100,) and res.df == 3
    assert res.p_value < 0.05
    assert "bootstrap p" in str(res)
    assert f"p_value={res.p_value:.4g}" in repr(res)  # the repr a notebook shows names the p-value


def test_progress_bar_only_where_someone_sees_it(monkeypatch):
    import sys

    from lmmteach.inference.bootstrap import show_progress

    assert not show_progress(False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not show_progress(True)  # a log file, a pipe, a test run
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert show_progress(True)  # a terminal


def test_bootstrap_p_value_counts_the_simulations_at_least_as_large():
    """A worked example: D = 2 and D* = 0.5, 2, 3, 1, (failed) → 4 successful refits, 2 of them ≥ D,
    so p = (1 + 2)/(4 + 1) = 0.6 (Davison & Hinkley's (1 + #)/(n + 1); a failed refit does not count)."""
    res = BootstrapLRT(statistic=2.0, simulated=np.array([0.5, 2.0, 3.0, 1.0, np.nan]), nsim=5, df=1)
    assert res.n_failed == 1
    assert res.p_value == 0.6
    none_larger = BootstrapLRT(statistic=9.0, simulated=np.array([0.5, 2.0, 3.0]), nsim=3, df=1)
    assert none_larger.p_value == 0.25  # never 0: the observed D counts as one of the draws


def test_bootstrap_is_reproducible_and_immutable():
    a = bootstrap_lrt(fit("grocery_nmod"), fit("grocery_amod"), nsim=20, seed=7, progress=False)
    b = bootstrap_lrt(fit("grocery_amod"), fit("grocery_nmod"), nsim=20, seed=7, progress=False)
    np.testing.assert_array_equal(a.simulated, b.simulated)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.statistic = 0.0
    with pytest.raises(ValueError):
        a.simulated[0] = 0.0


def test_bootstrap_refits_reml_with_ml():
    with pytest.warns(UserWarning, match="refitting"):
        res = bootstrap_lrt(fit("sleep_us"), fit("sleep_ri"), nsim=5, seed=1, progress=False)
    assert res.statistic == pytest.approx(REF["lrt_boundary"]["sleep_us_vs_ri"]["Chisq"], rel=1e-5)


# -- Satterthwaite t tests (lmerTest) ----------------------------------------------------------------------------
@pytest.mark.parametrize("key", sorted(REF["satterthwaite"]))
def test_satterthwaite_matches_lmertest(key):
    ref = REF["satterthwaite"][key]
    m = fit(key)
    assert m.formula.replace(" ", "") == ref["formula"].replace(" ", "") and m.reml == ref["REML"]
    tab = lt.satterthwaite(m)
    assert list(tab.index) == ref["rows"]
    assert list(tab.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_allclose(tab["Estimate"], ref["estimate"], rtol=1e-5)
    np.testing.assert_allclose(tab["Std. Error"], ref["se"], rtol=1e-4)
    np.testing.assert_allclose(tab["df"], ref["df"], rtol=1e-3)
    p_ref = np.array(ref["p"], float)
    ok = p_ref > 1e-250  # lmerTest's p underflows to 0 for the TIMSS intercept
    # lmerTest differentiates numerically (numDeriv), so its df agree to ~1e-4; in the far tail (sleepstudy's
    # p ~ 1e-17) that moves p by up to 4e-3 relative
    np.testing.assert_allclose(tab["Pr(>|t|)"].to_numpy()[ok], p_ref[ok], rtol=1e-2)


def test_satterthwaite_contrast():
    """A contrast l'b (store C − store B) gets its own df; a one-row L of a unit vector repeats the table."""
    m = fit("grocery_amod_reml")
    full = lt.satterthwaite(m)
    one = lt.satterthwaite(m, pd.DataFrame([[0, 1, 0, 0]], index=["storeB"], columns=full.index))
    assert one.df.iloc[0] == pytest.approx(full.df.loc["storeB"])
    diff = lt.satterthwaite(m, [[0, -1, 1, 0]])
    assert diff.Estimate.iloc[0] == pytest.approx(m.fixef["storeC"] - m.fixef["storeB"])
    with pytest.raises(ValueError, match="one per fixed effect"):
        lt.satterthwaite(m, [[1, 0]])


# -- confidence intervals (lme4's confint) -----------------------------------------------------------------------
CONFINT = {  # reference key: (model, method, level)
    "sleep_us_profile": ("sleep_us", "profile", 0.95),
    "sleep_us_ml_profile": ("sleep_us_ml", "profile", 0.95),
    "sleep_us_profile_90": ("sleep_us", "profile", 0.90),  # three rows only, to keep the file fast
    "grocery_amod_profile": ("grocery_amod", "profile", 0.95),
    "grocery_amod_reml_profile": ("grocery_amod_reml", "profile", 0.95),
    "sleep_us_wald": ("sleep_us", "wald", 0.95),
    "grocery_amod_wald": ("grocery_amod", "wald", 0.95),
    "penicillin_profile": ("penicillin", "profile", 0.95),  # crossed: the blocked engine's exact gradient
}


def _ref_interval(key):
    r = REF["confint"][key]
    def as_float(xs):
        return np.array([np.nan if v is None else v for v in xs], float)
    return r["rows"], as_float(r["lower"]), as_float(r["upper"])


@pytest.mark.parametrize("key", sorted(CONFINT))
def test_confint_matches_lme4(key):
    """Profile intervals to 1e-3 relative (lme4 interpolates a spline; we find the roots; they agree to
    ~5e-5 on these data), Wald intervals to 1e-5 with NaN for the variance parameters."""
    model, method, level = CONFINT[key]
    rows, lower, upper = _ref_interval(key)
    if key == "sleep_us_profile_90":
        keep = [1, 3, 5]
        rows, lower, upper = [rows[i] for i in keep], lower[keep], upper[keep]
        ci = lt.confint(fit(model), method=method, level=level, parm=rows)
    else:
        ci = lt.confint(fit(model), method=method, level=level)
    assert list(ci.index) == rows
    a = 100 * (1 - level) / 2
    assert list(ci.columns) == [f"{a:.3g} %", f"{100 - a:.3g} %"]
    rtol = 1e-3 if method == "profile" else 1e-5
    np.testing.assert_allclose(ci.iloc[:, 0], lower, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(ci.iloc[:, 1], upper, rtol=rtol, atol=1e-6)


def test_confint_profile_parm_and_deviance_rise():
    """At each end point the profiled ML deviance is χ²_1(0.95) above its minimum."""
    from lmmteach.inference.profile import _Profiler

    m = fit("grocery_amod")
    ci = lt.confint(m, parm=[".sig01", "storeD"])
    assert list(ci.index) == [".sig01", "storeD"]
    prof = _Profiler(m)
    crit = stats.chi2.isf(0.05, 1)
    for v in ci.loc[".sig01"]:
        assert prof.variance_profile(0)(v) - prof.dev_hat == pytest.approx(crit, abs=1e-4)
    for v in ci.loc["storeD"]:
        assert prof.fixef_profile(3)(v) - prof.dev_hat == pytest.approx(crit, abs=1e-4)


def test_confint_boot_percentile_intervals():
    m = fit("grocery_amod")
    a = lt.confint(m, method="boot", nsim=60, seed=5)
    b = lt.confint(m, method="boot", nsim=60, seed=5)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == [".sig01", ".sigma", "(Intercept)", "storeB", "storeC", "storeD"]
    est = np.r_[m.varcorr.sdcor.to_numpy(), m.fixef.to_numpy()]
    assert np.all((a.iloc[:, 0] < est) & (est < a.iloc[:, 1]))
    _, lower, upper = _ref_interval("grocery_amod_profile")  # similar width to the profile intervals
    width, ref_width = (a.iloc[:, 1] - a.iloc[:, 0]).to_numpy(), upper - lower
    assert np.all((width > 0.5 * ref_width) & (width < 1.5 * ref_width))


def test_confint_rejects_bad_arguments():
    m = fit("grocery_amod")
    with pytest.raises(ValueError, match="method"):
        lt.confint(m, method="bca")
    with pytest.raises(ValueError, match="unknown parameter"):
        lt.confint(m, parm=["storeE"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ar = lt.lmer("score ~ Machine + ar1(0 + Machine | Worker)", lt.load_machines())
    with pytest.raises(NotImplementedError, match="wald"):
        lt.confint(ar)
    wald = lt.confint(ar, method="wald")
    assert list(wald.index) == ["(Intercept)", "MachineB", "MachineC"]


def test_profile_interval_on_a_two_branch_profile_reaches_the_true_end_point():
    """Issue 10, item 6: Orthodont ``distance ~ age*Sex + (age|Subject)`` (REML, profiled by ML as lme4
    does). The profile of σ has two branches (slope SD at 0; correlation +1 with a small slope SD); a
    warm-started inner minimum stays on the higher one and stopped at σ = 1.579251. The end point is
    checked against a brute-force inner minimum: many starts over the grid of the other parameters."""
    from scipy import optimize as opt

    from lmmteach.inference.profile import _Profiler

    m = lt.lmer("distance ~ age * Sex + (age | Subject)", lt.load_orthodont())
    upper = lt.confint(m, parm=[".sigma"]).iloc[0, 1]
    assert upper == pytest.approx(1.5884, abs=1e-4)  # lme4 prints 1.588495 (it interpolates a spline)
    prof = _Profiler(m)
    crit = stats.chi2.isf(0.05, 1)

    def brute_force_rise(sigma):
        def f(x):
            return prof.deviance(np.r_[x, sigma])
        best = np.inf
        for sd0 in (0.5, 2.0, 4.0):
            for cor in (-1.0, -0.5, 0.0, 0.5, 1.0):
                for sd1 in (0.0, 0.05, 0.3):
                    res = opt.minimize(f, [sd0, cor, sd1], method="L-BFGS-B",
                                       bounds=[(0, None), (-1, 1), (0, None)], options={"ftol": 1e-14, "gtol": 1e-9})
                    best = min(best, res.fun)
        return best - prof.dev_hat

    assert brute_force_rise(upper) == pytest.approx(crit, abs=1e-4)
    assert brute_force_rise(1.579251) < crit - 0.2  # where the warm-started search used to stop


@pytest.mark.parametrize("name,formula", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("grocery", "price ~ store + (1 | item)"),
    ("dyestuff2", "Yield ~ 1 + (1 | Batch)"),  # a singular fit: no warm Hessian, the full optimiser
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),  # several factors: the blocked gradient
])
def test_refit_on_a_new_response_equals_a_fresh_lmer(name, formula):
    """Issue 17: a refit reuses the design and the cross-products of X and Z, starts at the generating θ
    with this fit's Hessian, and reaches what lmer reaches from scratch on the same simulated data."""
    from lmmteach.inference.bootstrap import simulate

    data = shared.data(name)
    m = lt.lmer(formula, data)
    rng = np.random.default_rng(17)
    methods = set()
    for _ in range(8):
        y = simulate(m, rng)
        r = m.refit(y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = lt.lmer(formula, data.assign(**{m.design.formula.response: y}))
        methods.add(r.optimum.method)
        assert r.loglik == pytest.approx(f.loglik, rel=1e-9, abs=1e-7)
        assert r.fixef.to_numpy() == pytest.approx(f.fixef.to_numpy(), rel=1e-6, abs=1e-8)
        assert r.sigma == pytest.approx(f.sigma, rel=1e-5)
        assert r.design.data_id == f.design.data_id
    if name != "dyestuff2":
        assert any("warm start" in x for x in methods)


@pytest.mark.parametrize("name,formula,reml", [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", True),
    ("sleepstudy", "Reaction ~ Days + (Days || Subject)", False),
    ("grocery", "price ~ store + (1 | item)", False),
    ("machines", "score ~ Machine + cs(0 + Machine | Worker)", True),  # a structure without stacked θ's
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", False),  # several factors: one at a time
])
def test_refit_many_equals_refitting_one_response_at_a_time(name, formula, reml):
    """Issue 17: the stacked refits (K searches in lockstep on the stacked deviance) reach the optimum that
    ``refit`` reaches for each response alone, and a fresh lmer agrees with both."""
    from lmmteach.inference.bootstrap import simulate

    data = shared.data(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lt.lmer(formula, data, reml=reml)
        rng = np.random.default_rng(3)
        Y = np.stack([simulate(m, rng) for _ in range(12)])
        many = m.refit_many(Y)
        one = [m.refit(y) for y in Y]
        fresh = lt.lmer(formula, data.assign(**{m.design.formula.response: Y[0]}), reml=reml)
    assert len(many) == 12 and many.reml == reml
    np.testing.assert_allclose(many.loglik, [f.loglik for f in one], rtol=shared.ROUNDING_RTOL)
    np.testing.assert_allclose(many.fixef, [f.fixef.to_numpy() for f in one], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(many.sigma, [f.sigma for f in one], rtol=1e-5)
    assert many.loglik[0] == pytest.approx(fresh.loglik, rel=1e-9, abs=1e-7)
    with pytest.raises(ValueError, match="one response of"):
        m.refit_many(Y[:, :-1])


def test_refit_many_with_prior_weights_and_an_offset():
    """The stacked responses are scaled by √w and lose the offset as the one response of a fit is."""
    from lmmteach.inference.bootstrap import simulate

    s = shared.data("sleepstudy")
    w, off = 1.0 + s["Days"].to_numpy() % 3, 0.5 * s["Days"].to_numpy()
    m = lt.lmer("Reaction ~ Days + (Days | Subject)", s, weights=w, offset=off)
    rng = np.random.default_rng(2)
    Y = np.stack([simulate(m, rng) for _ in range(4)])
    many = m.refit_many(Y)
    fresh = lt.lmer("Reaction ~ Days + (Days | Subject)", s.assign(Reaction=Y[0]), weights=w, offset=off)
    np.testing.assert_allclose(many.loglik, [m.refit(y).loglik for y in Y], rtol=shared.ROUNDING_RTOL)
    assert many.loglik[0] == pytest.approx(fresh.loglik, rel=1e-9)
    np.testing.assert_allclose(many.fixef[0], fresh.fixef.to_numpy(), rtol=1e-6)


def test_stacked_deviance_is_the_deviance_of_each_response():
    """The stacked evaluation (with_responses) is, slice by slice, the deviance, gradient, b̂ and σ̂² of
    each response on its own, at θ's that differ between the responses."""
    from lmmteach.inference.bootstrap import simulate

    m = fit("sleep_us")
    rng = np.random.default_rng(5)
    Y = np.stack([simulate(m, rng) for _ in range(4)])
    thetas = m.theta * np.array([[0.7], [0.9], [1.1], [1.4]])
    stacked = m.devfun.with_responses(m.design, Y).evaluate(thetas, gradient=True)
    for k in range(4):
        e = m.devfun.with_response(m.design.with_response(Y[k])).evaluate(thetas[k], gradient=True)
        assert stacked.deviance[k] == pytest.approx(e.deviance, rel=shared.ROUNDING_RTOL)
        np.testing.assert_allclose(stacked.gradient[k], e.gradient, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(stacked.beta[k], e.beta, rtol=shared.ROUNDING_RTOL)
        assert stacked.sigma2[k] == pytest.approx(e.sigma2, rel=shared.ROUNDING_RTOL)
    with pytest.raises(ValueError, match="one row per response"):
        m.devfun.with_responses(m.design, Y).evaluate(thetas[:3])


def test_parallel_bootstrap_gives_the_serial_result(monkeypatch):
    """Issue 17: with a seed, the bootstrap does not depend on the number of worker processes (small
    batches here, so that the workers really share the simulations)."""
    from lmmteach.inference import bootstrap

    monkeypatch.setattr(bootstrap, "BATCH_SIZE", 5)
    m1, m0 = fit("grocery_amod"), fit("grocery_nmod")
    serial = bootstrap_lrt(m1, m0, nsim=24, seed=99, progress=False)
    parallel = bootstrap_lrt(m1, m0, nsim=24, seed=99, progress=False, n_jobs=2)
    np.testing.assert_array_equal(serial.simulated, parallel.simulated)
    m = fit("grocery_amod")
    pd.testing.assert_frame_equal(lt.confint(m, method="boot", nsim=12, seed=4),
                                  lt.confint(m, method="boot", nsim=12, seed=4, n_jobs=2))
    with pytest.raises(ValueError, match="n_jobs must be"):
        bootstrap_lrt(m1, m0, nsim=2, seed=1, progress=False, n_jobs=0)
