"""Kenward-Roger (and Satterthwaite) F tests of gls fits, against what can fail independently of lmmteach:

* pbkrtest's ``KRmodcomp`` and lmerTest's ``contest`` on the random-intercept lmer fit that *is* a gls with
  compound symmetry (tests/reference/kr_gls_reference.R: same REML log-likelihood in R, positive correlation);
* Kenward & Roger (1997, section 5): for complete data with an unstructured covariance and the same design
  matrix at every time point, KR reproduces Hotelling's T² test exactly, F and ddf (T² computed here from the
  sample covariance, without any model);
* for AR(1), whose covariance is not linear in (σ², ρ), the first and second derivatives of Σ against
  central differences of σ²ρ^|t−s| written out here.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import _shared as shared
import lmmteach as lt
from lmmteach.inference.kenward_roger import gls_parameter_matrices, kenward_roger, kr_test

REF = shared.reference("kr_gls_reference")
KR_GLS_RTOL = 1e-4  # the brief's tolerance for estimates: both fits are converged REML optima
EXACT_RTOL = 1e-8  # KR = Hotelling's T² holds in exact arithmetic; the gls optimum carries ~1e-10 of it
DIFF_STEP = 1e-5
DIFF_RTOL = 1e-6  # central differences: error O(h²) ≈ 1e-10 relative, a margin for roundoff/h
SECOND_DIFF_RTOL = 1e-4  # differences of differences: roundoff/h² ≈ 1e-16/1e-10 = 1e-6, with a margin
ROUNDING = shared.ROUNDING_RTOL


def _orthodont_missing() -> pd.DataFrame:
    d = pd.read_csv(shared.REFERENCE / "kr_gls_orthodont_missing.csv")
    return d.assign(Sex=pd.Categorical(d["Sex"], categories=["Male", "Female"]),
                    visit=pd.Categorical(d["age"].astype(int)), Subject=d["Subject"].astype("category"))


CASES = {
    "grocery": ("price ~ store", lambda: shared.data("grocery"), "item", "store"),
    "orthodont_missing": ("distance ~ Sex + visit", _orthodont_missing, "Subject", "visit"),
}


def gls_cs(case):
    formula, data, group, time = CASES[case]
    return lt.gls(formula, data(), group=group, time=time, correlation="cs")


@pytest.mark.parametrize("case", list(CASES))
def test_gls_cs_is_the_random_intercept_model(case):
    ref, fit = REF[case], gls_cs(case)
    assert list(fit.fixef.index) == ref["fixef_names"]
    assert fit.loglik == pytest.approx(ref["loglik"], rel=1e-6)
    assert fit.correlation_parameters.iloc[0] == pytest.approx(ref["rho"], rel=KR_GLS_RTOL)
    V = np.array(ref["vcov_adjusted"])  # (an entry that is 0 in exact arithmetic: absolute tolerance)
    np.testing.assert_allclose(kenward_roger(fit).vcov_adjusted, V, rtol=KR_GLS_RTOL,
                               atol=shared.ZERO_ATOL * np.abs(V).max())


@pytest.mark.parametrize("case, test", [(c, t) for c in CASES for t in REF[c]["tests"]])
def test_gls_kenward_roger_and_satterthwaite_as_pbkrtest_and_lmertest(case, test):
    r, fit = REF[case]["tests"][test], gls_cs(case)
    L = np.atleast_2d(np.array(r["L"], float))
    kr = kr_test(fit, L)
    assert kr["F"] == pytest.approx(r["F"], rel=KR_GLS_RTOL)
    assert kr["DenDF"] == pytest.approx(r["ddf"], rel=KR_GLS_RTOL)
    assert kr["scaling"] == pytest.approx(r["F_scaling"], rel=KR_GLS_RTOL)
    tab = lt.contest(fit, L, ddf="Kenward-Roger")
    assert tab["Pr(>F)"].iloc[0] == pytest.approx(r["p"], rel=KR_GLS_RTOL)
    sat = lt.contest(fit, L, ddf="Satterthwaite")
    assert sat["F value"].iloc[0] == pytest.approx(r["sat_F"], rel=KR_GLS_RTOL)
    assert sat["DenDF"].iloc[0] == pytest.approx(r["sat_ddf"], rel=KR_GLS_RTOL)
    assert sat["Pr(>F)"].iloc[0] == pytest.approx(r["sat_p"], rel=KR_GLS_RTOL)


def _complete_data(n_per_group, T=4, seed=2025):
    """Complete data: every subject at every time, a general covariance (not CS) and a time trend."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(T, T))
    Y = rng.multivariate_normal(np.linspace(0, 1, T), A @ A.T + np.eye(T), size=sum(n_per_group))
    group = np.repeat(np.arange(len(n_per_group)), n_per_group)
    data = pd.DataFrame({"y": Y.ravel(), "subject": np.repeat(np.arange(len(Y)), T),
                         "time": np.tile(np.arange(T), len(Y)), "arm": np.repeat(group, T).astype(str)})
    return Y, group, data.assign(visit=pd.Categorical(data["time"]))


def _profile_contrasts(T):
    """The T − 1 differences from the first time point (rows: y_t − y_1)."""
    return np.c_[-np.ones(T - 1), np.eye(T - 1)]


def test_mmrm_kenward_roger_is_hotellings_t2_one_sample():
    n, T = 12, 4
    Y, _, data = _complete_data([n], T)
    D = Y @ _profile_contrasts(T).T
    dbar, q = D.mean(axis=0), T - 1
    T2 = n * dbar @ np.linalg.solve(np.cov(D, rowvar=False), dbar)
    fit = lt.gls("y ~ visit", data, group="subject", time="time", correlation="un", heteroscedastic=True)
    kr = kr_test(fit, np.eye(T)[1:])  # visit1 = visit2 = visit3 = 0: equal means over time
    assert kr["NumDF"] == q
    assert kr["DenDF"] == pytest.approx(n - q, rel=EXACT_RTOL)
    assert kr["F"] == pytest.approx((n - q) / (q * (n - 1)) * T2, rel=EXACT_RTOL)


def test_mmrm_kenward_roger_is_hotellings_t2_two_samples():
    n1, n2, T = 7, 9, 4
    Y, group, data = _complete_data([n1, n2], T)
    D = Y @ _profile_contrasts(T).T
    d1, d2 = D[group == 0], D[group == 1]
    N, q = n1 + n2, T - 1
    S = ((n1 - 1) * np.cov(d1, rowvar=False) + (n2 - 1) * np.cov(d2, rowvar=False)) / (N - 2)
    diff = d1.mean(axis=0) - d2.mean(axis=0)
    T2 = n1 * n2 / N * diff @ np.linalg.solve(S, diff)
    fit = lt.gls("y ~ arm * visit", data, group="subject", time="time", correlation="un", heteroscedastic=True)
    names = list(fit.fixef.index)
    L = np.array([[1.0 if nm == f"arm1:visit{t}" else 0.0 for nm in names] for t in range(1, T)])
    kr = kr_test(fit, L)  # parallel profiles: arm × time interaction = 0
    assert kr["DenDF"] == pytest.approx(N - 1 - q, rel=EXACT_RTOL)
    assert kr["F"] == pytest.approx((N - 1 - q) / (q * (N - 2)) * T2, rel=EXACT_RTOL)
    assert lt.contest(fit, L, ddf="Kenward-Roger")["Pr(>F)"].iloc[0] == pytest.approx(
        stats.f.sf((N - 1 - q) / (q * (N - 2)) * T2, q, N - 1 - q), rel=EXACT_RTOL)


@pytest.mark.parametrize("correlation, unit", [("ar1", 1.0), ("car1", 1 / 3)])
def test_ar1_parameter_derivatives_are_those_of_sigma2_rho_to_the_lag(correlation, unit):
    """sleepstudy's days, for car1 counted in units of 3 days (lags 1/3, 2/3, 1, ...: below 1 too)."""
    data = shared.data("sleepstudy").assign(t=lambda d: d["Days"] * unit)
    fit = lt.gls("Reaction ~ Days", data, group="Subject", time="t", correlation=correlation)
    G, G2 = gls_parameter_matrices(fit)
    times = np.arange(10.0) * unit
    lag = np.abs(np.subtract.outer(times, times))

    def Sigma(g):
        return g[0] * g[1] ** lag

    g = np.array([fit.sigma**2, fit.correlation_parameters.iloc[0]])  # (σ², ρ)
    h = DIFF_STEP * np.maximum(np.abs(g), 1)

    def derivative(f, g):  # central differences of f in each of σ², ρ
        return np.stack([(f(g + e) - f(g - e)) / (2 * h[k]) for k, e in enumerate(np.diag(h))])

    np.testing.assert_allclose(Sigma(g), fit.cov_matrix().to_numpy(), rtol=ROUNDING)
    np.testing.assert_allclose(G, derivative(Sigma, g), rtol=DIFF_RTOL, atol=DIFF_RTOL * np.abs(G).max())
    second = derivative(lambda x: derivative(Sigma, x), g)
    np.testing.assert_allclose(G2, second, rtol=SECOND_DIFF_RTOL, atol=SECOND_DIFF_RTOL * np.abs(G2).max())
    kr = kr_test(fit, np.array([[0.0, 1.0]]))
    assert np.isfinite(kr["DenDF"]) and kr["DenDF"] > 0


def test_linear_parametrisations_have_no_second_derivatives():
    g = shared.data("grocery")
    for c, h in [(None, False), (None, True), ("cs", False), ("toep", False), ("un", False), ("un", True)]:
        fit = lt.gls("price ~ store", g, group="item", time="store", correlation=c, heteroscedastic=h)
        G, G2 = gls_parameter_matrices(fit)
        assert G2 is None
        gamma = np.linalg.lstsq(G.reshape(len(G), -1).T, fit.cov_matrix().to_numpy().ravel(), rcond=None)[0]
        np.testing.assert_allclose(np.tensordot(gamma, G, 1), fit.cov_matrix().to_numpy(), rtol=ROUNDING)
        assert len(G) == fit.npar - fit.design.p  # one γ_k per covariance parameter (σ² included)


def test_kenward_roger_gls_bad_input():
    g = shared.data("grocery")
    ml = lt.gls("price ~ store", g, group="item", time="store", correlation="cs", reml=False)
    with pytest.raises(ValueError, match="REML"):
        kenward_roger(ml)
    csh = lt.gls("price ~ store", g, group="item", time="store", correlation="cs", heteroscedastic=True)
    with pytest.raises(ValueError, match="heteroscedastic=False.*MMRM"):
        kenward_roger(csh)
    with pytest.raises(TypeError, match="lmmteach.lmer or lmmteach.gls"):
        kenward_roger("a model")
    cs = lt.gls("price ~ store", g, group="item", time="store", correlation="cs")
    with pytest.raises(ValueError, match="4 coefficients"):
        lt.contest(cs, np.eye(3), ddf="Kenward-Roger")
    with pytest.raises(TypeError, match="lmmteach.lmer or lmmteach.gls"):
        lt.contest(object(), np.eye(4), ddf="Kenward-Roger")
