"""Profile confidence intervals (issue 17): the analytic gradient of the ML deviance on lme4's SD/correlation
scale, the slope of a profile (what the Newton root finder uses), the fixed-effect profile as an offset fit,
and the fast (Newton) path against the derivative-free robust path, including profiles with several
branches. End points against lme4's are in test_inference.py (test_confint_matches_lme4)."""

import numpy as np
import pytest
from scipy import stats

import _shared as shared
from lmmteach.inference.confint import _level_columns
from lmmteach.inference.profile import (_bounds, _FixefProfile, _Profiler, parameter_names, profile_intervals,
                                        sdcor, sdcor_deviance)

FD_REL_STEP = 1e-6
GRADIENT_RTOL = 1e-5  # central differences of a deviance of ~1e3 with a 1e-6 relative step: ~1e-7 relative

MODELS = {
    "sleep_us": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
    "sleep_vc": ("Reaction ~ Days + (Days || Subject)", "sleepstudy"),  # two terms, one grouping factor
    "grocery": ("price ~ store + (1 | item)", "grocery"),
    "orthodont": ("distance ~ age * Sex + (age | Subject)", "orthodont"),
    # several grouping factors: the blocked engine's exact gradient
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
    "crossed_slope": ("y ~ x + (x | subj) + (1 | item)", "crossed_slope"),
}


def ml_fit(key):
    formula, data = MODELS[key]
    return shared.fit(formula, data, reml=False)


def weighted_fit():
    d = shared.data("sleepstudy")
    return shared.fit("Reaction ~ Days + (Days | Subject)", d, reml=False, weights=1.0 + np.arange(len(d)) % 3)


def away_from_the_optimum(model):
    """ψ̂ with SDs and σ 20% larger and correlations moved 0.2 towards 0 (the gradient is not 0 there)."""
    psi = sdcor(model).copy()
    is_cor = np.array([b[0] == -1.0 for b in _bounds(model)])
    psi[~is_cor] *= 1.2
    psi[is_cor] -= 0.2 * np.sign(psi[is_cor])
    return psi


def central_differences(f, x):
    g = np.empty(len(x))
    for j in range(len(x)):
        h = FD_REL_STEP * max(abs(x[j]), 0.1)
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        g[j] = (f(up) - f(down)) / (2 * h)
    return g


@pytest.mark.parametrize("key", sorted(MODELS) + ["weighted"])
def test_sdcor_gradient_matches_finite_differences(key):
    """∂d/∂ψ by the chain rule (sdcor_deviance) against central differences of d(ψ), away from the optimum;
    at ψ̂ the deviance is the ML fit's and the gradient ~0 (it is the maximum of the likelihood)."""
    m = weighted_fit() if key == "weighted" else ml_fit(key)
    psi_hat = sdcor(m)
    d_hat, g_hat = sdcor_deviance(m, psi_hat, gradient=True)
    assert d_hat == pytest.approx(m.deviance, rel=shared.ROUNDING_RTOL)
    assert sdcor_deviance(m, psi_hat) == pytest.approx(d_hat, rel=shared.ROUNDING_RTOL)  # the path without a gradient
    psi = away_from_the_optimum(m)
    d, g = sdcor_deviance(m, psi, gradient=True)
    assert sdcor_deviance(m, psi) == pytest.approx(d, rel=shared.ROUNDING_RTOL)
    fd = central_differences(lambda p: sdcor_deviance(m, p), psi)
    np.testing.assert_allclose(g, fd, rtol=GRADIENT_RTOL, atol=GRADIENT_RTOL * np.abs(fd).max())
    assert np.abs(g).max() > 1.0  # away from the optimum the test has something to compare
    assert np.abs(g_hat).max() < 1e-3 * np.abs(g).max()


def test_sdcor_deviance_outside_the_parameter_space_is_infinite():
    m = ml_fit("sleep_us")
    psi = sdcor(m).copy()
    psi[1] = 1.5  # a correlation above 1
    assert sdcor_deviance(m, psi) == np.inf
    d, g = sdcor_deviance(m, psi, gradient=True)
    assert d == np.inf and np.isnan(g).all()


@pytest.mark.parametrize("key,k", [("sleep_us", 0), ("sleep_us", 1), ("sleep_us", 3), ("grocery", 0),
                                   ("penicillin", 1), ("crossed_slope", 1)])
def test_variance_profile_slope_is_the_partial_derivative(key, k):
    """At the inner minimum ∂d_k/∂v = ∂d/∂ψ_k (the envelope theorem): the slope each profile point carries,
    which Newton's method on ζ uses, against central differences of the profile itself."""
    m = ml_fit(key)
    prof = _Profiler(m)
    se = np.sqrt(2 * np.linalg.inv(prof.H_hat)[k, k])  # Cov(ψ̂) ≈ 2 H⁻¹ for the deviance d = −2ℓ
    v = prof.psi_hat[k] + se  # ζ ≈ 1 there
    profile = prof.variance_profile(k)
    p = profile.point(v)
    h = 1e-4 * se
    fd = (prof.variance_profile(k)(v + h) - prof.variance_profile(k)(v - h)) / (2 * h)
    assert p.deviance - prof.dev_hat > 0.5  # away from the estimate
    assert p.slope == pytest.approx(fd, rel=1e-4)


@pytest.mark.parametrize("key,k", [("sleep_us", 0), ("sleep_us", 1), ("grocery", 2), ("penicillin", 0),
                                   ("crossed_slope", 1)])
def test_fixef_profile_offset_fit_equals_the_closed_form(key, k):
    """With β_k = v the offset fit of y − v x_k on the other columns has the closed-form deviance
    log|V| + n[1 + log(2π (r̂'V⁻¹r̂ + (v − b̂_k)²/[(X'V⁻¹X)⁻¹]_kk)/n)] at every θ, and the profile's slope is
    its derivative in v."""
    m = ml_fit(key)
    prof = _Profiler(m)
    fp = _FixefProfile(prof, k)
    v = m.fixef.iloc[k] + 2 * m.se.iloc[k]
    theta = np.asarray(m.theta) * 1.3
    d, slope = fp._closed_form(theta, v)
    assert fp._devfun(v)(theta) == pytest.approx(d, rel=shared.ROUNDING_RTOL)
    h = 1e-4 * m.se.iloc[k]
    fd = (fp._closed_form(theta, v + h)[0] - fp._closed_form(theta, v - h)[0]) / (2 * h)
    assert slope == pytest.approx(fd, rel=1e-6)
    point = fp.point(v)
    assert point.deviance < d  # the inner minimum over θ is below the value at an arbitrary θ
    profile = _FixefProfile(prof, k)
    fd = (profile(v + h) - profile(v - h)) / (2 * h)
    assert point.slope == pytest.approx(fd, rel=1e-4)


def both_paths(model, rows, level=0.95):
    names = parameter_names(model)
    cols = _level_columns(level)
    fast = profile_intervals(model, names, rows, level, cols)
    slow = profile_intervals(model, names, rows, level, cols, use_gradient=False)
    return fast, slow


def test_newton_path_agrees_with_the_derivative_free_path_on_a_multi_branch_profile():
    """Orthodont ``distance ~ age*Sex + (age|Subject)``: σ's profile has two branches (test_inference.py
    checks its upper end against a brute-force grid), .sig01's lower end lies near 0, the correlation's
    interval is [−1, 1] and the slope SD's reaches 0. The Newton path (analytic gradient, cheap robust
    checks) and the derivative-free path with its rough starts find the same end points."""
    m = shared.fit(*MODELS["orthodont"])
    prof = _Profiler(m)
    assert prof.fast and not _Profiler(m, use_gradient=False).fast
    rows = [".sig01", ".sig02", ".sig03", ".sigma", "age:SexFemale"]
    fast, slow = both_paths(m, rows)
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-5, atol=2e-5)
    assert fast.loc[".sig02"].tolist() == [-1.0, 1.0]
    assert fast.loc[".sig03"].iloc[0] == 0.0
    assert fast.loc[".sigma"].iloc[1] == pytest.approx(1.5884, abs=1e-4)


def test_intercept_only_model_profiles_its_intercept():
    """A model with one fixed effect: the offset fit has no fixed effects left (p = 0)."""
    m = shared.fit("price ~ 1 + (1 | item)", "grocery", reml=False)
    fast, slow = both_paths(m, ["(Intercept)", ".sig01"])
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-6)
    prof = _Profiler(m)
    crit = stats.chi2.isf(0.05, 1)
    for v in fast.loc["(Intercept)"]:
        assert prof.fixef_profile(0)(v) - prof.dev_hat == pytest.approx(crit, abs=1e-5)


def test_robust_check_leaves_a_higher_branch_on_the_newton_path():
    """Orthodont, σ = 1.579251: the slope SD at 0 (where the correlation has no gradient) is a branch of the
    inner minimisation about 0.5 above the lowest one (correlation +1, small slope SD); a derivative-free
    warm path once stayed on it. Given that branch as its warm solution, the robust check (rough runs with
    the analytic gradient from the other starts) finds the lower branch."""
    from scipy import optimize as opt

    from lmmteach.inference.profile import _Point

    m = shared.fit(*MODELS["orthodont"])
    prof = _Profiler(m)
    sigma = 1.579251

    def stuck(x):  # the inner minimisation over (sd0, ρ, sd1) from sd1 = 0, ρ = 0
        return prof.deviance(np.r_[x, sigma])
    high = opt.minimize(stuck, [prof.psi_hat[0], 0.0, 0.0], method="L-BFGS-B", bounds=[(0, None), (-1, 1), (0, None)])
    assert high.x[2] == 0.0
    profile = prof.variance_profile(3)
    profile.points.append(_Point(sigma, np.r_[high.x, sigma], float(high.fun)))
    assert profile(sigma) == high.fun  # the warm solution is the higher branch
    low = profile.point(sigma, robust=True)
    assert low.deviance < high.fun - 0.2
    assert low.x[1] == pytest.approx(1.0)  # correlation +1
    assert low.x[2] > 0.01
    best = min(opt.minimize(stuck, x0, method="L-BFGS-B", bounds=[(0, None), (-1, 1), (0, None)],
                            options={"ftol": 1e-14, "gtol": 1e-9}).fun
               for x0 in ([2.0, 1.0, 0.05], [2.0, 0.5, 0.3], [4.0, 1.0, 0.1]))
    assert low.deviance == pytest.approx(best, abs=1e-6)


def test_crossed_newton_path_agrees_with_the_derivative_free_path():
    """Several grouping factors (``(x | subj) + (1 | item)``): the Newton path on the blocked engine's exact
    gradient and the derivative-free path find the same end points (lme4's are checked for Penicillin in
    test_inference.py)."""
    m = ml_fit("crossed_slope")
    assert _Profiler(m).fast and not _Profiler(m, use_gradient=False).fast
    rows = parameter_names(m)
    fast, slow = both_paths(m, rows)
    np.testing.assert_allclose(fast.to_numpy(), slow.to_numpy(), rtol=1e-5, atol=2e-5)
