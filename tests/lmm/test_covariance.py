"""Covariance structures (notes: "Covariance Structure Choices") against R.

Numbers from tests/reference/inference_reference.R (JSON): nlme's pdCompSymm for compound symmetry,
glmmTMB's ar1() for AR(1), lme4 for unstructured, and a direct ML maximisation in R for the Toeplitz
structure with one common variance (no installed package has it).
"""


import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.lmm.covariance import AR1, CompoundSymmetry, Toeplitz, make_structure

REF = shared.reference("inference_reference")["structures"]
MACHINES = lt.load_machines()


def fit(structure, reml):
    wrapped = "(0 + Machine | Worker)" if structure == "us" else f"{structure}(0 + Machine | Worker)"
    return shared.fit(f"score ~ Machine + {wrapped}", "machines", reml=reml)


def params(m):
    cp = m.covariance_parameters()
    return dict(zip(cp.parameter, cp.estimate))


# -- the structures are the notes' matrices ------------------------------------------------------------------
def test_compound_symmetry_matrix_is_the_notes_definition():
    """σ_k² = σ_v² + σ², σ_kl = σ_v²  (C = s²[(1 − ω) I + ω J], ω = σ_v² / (σ_v² + σ²))."""
    cs = CompoundSymmetry(4)
    theta, sigma2 = np.array([1.5, 0.3]), 2.0
    S = sigma2 * cs.relcov(theta)
    p = dict(cs.parameters(theta, sigma2))
    assert np.allclose(np.diag(S), p["sigma_v^2"] + p["sigma^2"])
    assert np.allclose(S[~np.eye(4, dtype=bool)], p["sigma_v^2"])
    assert p["omega"] == pytest.approx(p["sigma_v^2"] / (p["sigma_v^2"] + p["sigma^2"]))


def test_ar1_matrix_is_the_notes_definition():
    """σ_kl = σ² ρ^|k−l|."""
    ar = AR1(4)
    S = 3.0 * ar.relcov(np.array([2.0, -0.6]))
    k, l = np.indices((4, 4))
    assert np.allclose(S, 12.0 * (-0.6) ** np.abs(k - l))


def test_toeplitz_matrix_is_the_notes_definition_and_always_valid():
    """σ_kl = σ² ρ_|k−l|, ρ_0 = 1; every partial-autocorrelation vector in [−1, 1] gives a valid Σ."""
    tp = Toeplitz(5)
    rng = np.random.default_rng(0)
    for _ in range(50):
        theta = np.r_[rng.uniform(0.1, 3), rng.uniform(-0.99, 0.99, 4)]
        rho = tp.rhos(theta)
        S = tp.relcov(theta)
        k, l = np.indices((5, 5))
        assert rho[0] == 1.0
        assert np.allclose(S, theta[0] ** 2 * rho[np.abs(k - l)])
        assert np.linalg.eigvalsh(S).min() > -1e-12
    # partial autocorrelations (ρ, 0, 0, ...) are an AR(1): ρ_k = ρ^k
    assert np.allclose(tp.rhos(np.r_[1.0, 0.7, 0, 0, 0]), 0.7 ** np.arange(5))


@pytest.mark.parametrize("name", ["us", "diag", "cs", "ar1", "toep"])
def test_factor_is_a_square_root(name):
    s = make_structure(name, 3)
    theta = s.theta0 + 0.2 * np.random.default_rng(1).uniform(size=s.n_params)
    L = s.factor(theta)
    assert np.allclose(L @ L.T, s.relcov(theta))


@pytest.mark.parametrize("name", ["us", "diag"])
def test_analytic_relcov_gradient_equals_central_differences(name):
    """us and diag differentiate C = ΛΛ' analytically; central differences of C are the reference."""
    s = make_structure(name, 3)
    theta = s.theta0 + 0.2 * np.random.default_rng(1).uniform(size=s.n_params)
    g = s.relcov_grad(theta)
    for k in range(s.n_params):
        h = 1e-6
        tp, tm = theta.copy(), theta.copy()
        tp[k] += h
        tm[k] -= h
        assert np.allclose(g[k], (s.relcov(tp) - s.relcov(tm)) / (2 * h), atol=1e-6)


LAG3 = np.abs(np.subtract.outer(np.arange(3), np.arange(3)))
I3, J3 = np.eye(3), np.ones((3, 3))


def analytic_relcov_grad(name, theta):
    """dC/dθ_k by hand for q = 3 (the library differentiates these structures numerically).
    cs:   C = s²[(1 − ω)I + ωJ]        → 2s[(1 − ω)I + ωJ],  s²(J − I)
    ar1:  C = s² ρ^|k−l|               → 2s ρ^|k−l|,        s² |k−l| ρ^(|k−l|−1)
    toep: C = s² ρ_|k−l|, with Durbin-Levinson ρ_1 = φ_1, ρ_2 = φ_1² + φ_2(1 − φ_1²)
          → 2s T(ρ),  s² T(dρ/dφ_1) with dρ/dφ_1 = (0, 1, 2φ_1(1 − φ_2)),  s² T(dρ/dφ_2), dρ/dφ_2 = (0, 0, 1 − φ_1²)."""
    s = theta[0]
    if name == "cs":
        w = theta[1]
        return np.array([2 * s * ((1 - w) * I3 + w * J3), s * s * (J3 - I3)])
    if name == "ar1":
        rho = theta[1]
        return np.array([2 * s * rho**LAG3, s * s * LAG3 * rho ** np.maximum(LAG3 - 1, 0)])
    phi1, phi2 = theta[1], theta[2]
    rho = np.array([1.0, phi1, phi1**2 + phi2 * (1 - phi1**2)])
    d1 = np.array([0.0, 1.0, 2 * phi1 * (1 - phi2)])
    d2 = np.array([0.0, 0.0, 1 - phi1**2])
    return np.array([2 * s * rho[LAG3], s * s * d1[LAG3], s * s * d2[LAG3]])


@pytest.mark.parametrize("name", ["cs", "ar1", "toep"])
@pytest.mark.parametrize("seed", range(5))
def test_relcov_gradient_matches_analytic_derivatives(name, seed):
    s = make_structure(name, 3)
    rng = np.random.default_rng(seed)
    lo = max(s.bounds[1][0], -0.9)
    theta = np.r_[rng.uniform(0.2, 3.0), rng.uniform(lo, 0.9, s.n_params - 1)]
    if name == "toep":  # the closed form of ρ_2 is the library's recursion only if C is what we think it is
        assert np.allclose(s.rhos(theta), [1.0, theta[1], theta[1] ** 2 + theta[2] * (1 - theta[1] ** 2)])
    # the numerical derivative is good to about 1e-9 relative on these smooth maps
    np.testing.assert_allclose(s.relcov_grad(theta), analytic_relcov_grad(name, theta), rtol=1e-6, atol=1e-8)


def test_structures_need_two_random_effects():
    for name in ("cs", "ar1", "toep"):
        with pytest.raises(ValueError, match="at least 2 random effects"):
            make_structure(name, 1)
    with pytest.raises(ValueError, match="unknown covariance structure"):
        make_structure("banded", 3)


# -- fits against R ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["ML", "REML"])
def test_compound_symmetry_matches_nlme(method):
    ref, m = REF[f"cs_{method}"], fit("cs", method == "REML")
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-6)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-5)
    p = params(m)
    assert p["sigma_v^2"] + p["sigma^2"] == pytest.approx(ref["variance"], rel=1e-4)  # σ_k²
    assert p["sigma_v^2"] == pytest.approx(ref["covariance"], rel=1e-4)  # σ_kl
    assert p["omega"] == pytest.approx(ref["correlation"], rel=1e-4)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_ar1_matches_glmmtmb(method):
    ref, m = REF[f"ar1_{method}"], fit("ar1", method == "REML")
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-5)
    p = params(m)
    assert p["rho"] == pytest.approx(ref["rho"], rel=1e-3)  # glmmTMB's own tolerance is ~1e-5 here
    assert p["sigma^2"] == pytest.approx(ref["variance"], rel=1e-3)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-4)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_unstructured_machines_matches_lme4(method):
    ref, m = REF[f"us_{method}"], fit("us", method == "REML")
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    np.testing.assert_allclose(m.fixef.to_numpy(), list(ref["fixef"].values()), rtol=1e-6)
    np.testing.assert_allclose(m.varcorr.vcov, ref["vcov"], rtol=1e-3)
    np.testing.assert_allclose(m.varcorr.sdcor, ref["sdcor"], rtol=1e-3)


def test_toeplitz_matches_direct_maximisation_in_r():
    ref, m = REF["toep_ML"], fit("toep", False)
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    p = params(m)
    assert p["sigma^2"] == pytest.approx(ref["variance"], rel=1e-4)
    assert [p["rho1"], p["rho2"]] == pytest.approx(ref["rho"], rel=1e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-4)


def test_nested_structures_have_nested_log_likelihoods():
    """CS ⊂ Toeplitz and AR(1) ⊂ Toeplitz ⊂ heterogeneous Toeplitz (glmmTMB) ⊂ UN, so under ML
    ℓ(CS), ℓ(AR1) ≤ ℓ(Toeplitz) ≤ ℓ(UN); VC ⊂ UN too."""
    ll = {s: fit(s, False).loglik for s in ("cs", "ar1", "toep", "diag", "us")}
    tol = 1e-6
    assert ll["cs"] <= ll["toep"] + tol and ll["ar1"] <= ll["toep"] + tol
    assert ll["toep"] <= REF["heterogeneous_toep_ML"]["logLik"] + tol
    assert REF["heterogeneous_toep_ML"]["logLik"] <= ll["us"] + tol
    assert ll["diag"] <= ll["us"] + tol


# -- what the user sees -----------------------------------------------------------------------------------------
def test_each_structure_reports_its_own_parameters():
    assert set(params(fit("cs", True))) == {"sigma_v^2", "sigma^2", "omega", "sigma"}
    assert set(params(fit("ar1", True))) == {"sigma^2", "rho", "sigma"}
    assert set(params(fit("toep", False))) == {"sigma^2", "rho1", "rho2", "sigma"}
    cp = fit("ar1", True).covariance_parameters()
    assert list(cp.columns) == ["grp", "structure", "parameter", "estimate"]
    assert cp.structure.iloc[0] == "ar1"


@pytest.mark.parametrize("structure,shown", [("ar1", "rho="), ("toep", "rho2="), ("cs", "omega=")])
def test_summary_prints_the_structure_parameters(structure, shown):
    text = str(fit(structure, False).summary())
    assert f"[{structure}:" in text and shown in text


def test_varcorr_of_ar1_has_the_implied_correlations():
    m = fit("ar1", False)
    rho = params(m)["rho"]
    cors = m.varcorr.dropna(subset=["var2"]).set_index(["var1", "var2"]).sdcor
    assert cors[("MachineA", "MachineB")] == pytest.approx(rho)
    assert cors[("MachineA", "MachineC")] == pytest.approx(rho**2)


# -- identifiability --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("term", ["cs(0 + factor(Days) | Subject)", "toep(0 + factor(Days) | Subject)",
                                  "diag(0 + factor(Days) | Subject)", "(0 + factor(Days) | Subject)"])
def test_as_many_random_effects_as_observations_per_group_is_an_error(term):
    """sleepstudy: 10 days per subject, so 10 random effects per subject: Σ's diagonal (us, diag), its
    within-subject variance (cs) or its lag-0 variance (toep) cannot be told from σ² (issue 13, item 4)."""
    with pytest.raises(ValueError, match="unidentifiable, because with one effect per observation a"):
        lt.lmer(f"Reaction ~ Days + {term}", lt.load_sleepstudy())


def test_ar1_with_one_effect_per_observation_and_a_residual_is_fitted_as_glmmtmb_does():
    """AR(1) plus a nugget is identifiable (the lag-0 variance decays geometrically, σ² does not):
    glmmTMB's ar1() fit of the grocery prices (ML), tests/reference/gls_reference.R."""
    ref = shared.reference("gls_reference")["grocery_ar1_nugget"]
    m = lt.lmer(ref["formula"], lt.load_grocery(), reml=False)
    assert m.loglik == pytest.approx(ref["logLik"], rel=1e-6)
    assert m.fixef.to_numpy() == pytest.approx(list(ref["fixef"].values()), abs=1e-4)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-3)  # σ and ρ sit on a flat ridge (ρ ≈ 0.997)
    assert np.sqrt(m.Sigma[0, 0]) == pytest.approx(ref["sd"], rel=1e-3)


def test_unidentifiable_across_several_terms_is_an_error():
    """Two observations per group and two terms of one random effect each: 2 random effects per group."""
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"g": np.repeat(np.arange(20), 2).astype(str), "x": np.tile([0.0, 1.0], 20)})
    df["y"] = rng.normal(size=40)
    with pytest.raises(ValueError, match="unidentifiable"):
        lt.lmer("y ~ x + (1 | g) + (0 + x | g)", df)
    with pytest.raises(ValueError, match="unidentifiable"):
        lt.lmer("y ~ x + (x | g)", df)
