"""Satterthwaite degrees of freedom for t tests of fixed effects (lmerTest's ``summary(m)``).

The t statistic of a fixed effect (or a contrast l'b) is

    t = l'b̂ / √(l' Ĉ l),       Ĉ = Cov(b̂) = σ̂² (X'V⁻¹X)⁻¹ = (X'Σ̂*⁻¹X)⁻¹,

but Ĉ is *estimated*: it depends on the variance parameters φ = (θ, σ) (θ the relative covariance
parameters, σ the residual SD — lmerTest's parametrisation). Satterthwaite matches the moments of
l'Ĉl with a scaled χ²_ν / ν: with g = ∂(l'C(φ)l)/∂φ at φ̂ and Cov(φ̂) ≈ 2 H⁻¹, H the Hessian of the
deviance −2ℓ(φ) (REML deviance for a REML fit, ML deviance with b̂ profiled out for an ML fit),

    ν = 2 (l'Ĉl)² / (g' Cov(φ̂) g),        p = 2 P(t_ν > |t|).

H is the Jacobian of the *exact* gradient of −2ℓ(φ) (:meth:`DevianceFunction.deviance_given_sigma`), by
central differences with Richardson extrapolation, and g the same differences of C(φ): both are accurate
to O(h⁴) and roundoff/h, so the df do not depend on the step (lmerTest differentiates −2ℓ twice with
numDeriv; a second difference of function values would lose half the digits).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["jacobian", "varpar_covariance", "satterthwaite"]


def _deviance_gradient(model, phi) -> np.ndarray:
    """∂(−2ℓ)/∂φ at φ = (θ, σ), b̂ profiled out (the REML deviance for a REML fit), exact."""
    return model.devfun.deviance_given_sigma(phi[:-1], phi[-1], gradient=True)[1]


def _vcov_beta(model, phi) -> np.ndarray:
    """C(φ) = σ² A(θ)⁻¹, A = X'V⁻¹X: the covariance of b̂ at the variance parameters φ = (θ, σ)."""
    e = model.devfun.evaluate(phi[:-1])
    return phi[-1] ** 2 * np.linalg.inv(e.A)


STEP = 1e-4
"""Relative step of the differences (of the exact gradient and of C(φ)); the df do not depend on it."""


def _steps(phi) -> np.ndarray:
    return STEP * np.maximum(np.abs(phi), 1e-2)




def jacobian(f, x, h) -> np.ndarray:
    """Derivatives of an array-valued f at x (last axis = components of x), central differences with
    Richardson extrapolation."""

    def once(h):
        cols = []
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = h[i]
            cols.append((f(x + e) - f(x - e)) / (2 * h[i]))
        return np.stack(cols, axis=-1)

    return (4 * once(h / 2) - once(h)) / 3


def varpar_covariance(model) -> np.ndarray:
    """Cov(φ̂) ≈ 2 H⁻¹ for φ = (θ, σ), H the Hessian of the deviance at the estimates (lmerTest's
    ``vcov_varpar``)."""
    phi = np.r_[model.theta, model.sigma]
    H = jacobian(lambda p: _deviance_gradient(model, p), phi, _steps(phi))
    return 2.0 * np.linalg.pinv(0.5 * (H + H.T))


def vcov_jacobian(model) -> np.ndarray:
    """∂C(φ)/∂φ_k at φ̂ (lmerTest's ``Jac_list``), shape (p, p, n_φ)."""
    phi = np.r_[model.theta, model.sigma]
    return jacobian(lambda p: _vcov_beta(model, p), phi, _steps(phi))


def satterthwaite(model, L=None) -> pd.DataFrame:
    """lmerTest's Satterthwaite t tests: columns ``Estimate, Std. Error, df, t value, Pr(>|t|)``.

    ``L`` (optional) is a matrix of contrasts, one per row (default: the identity, one test per fixed
    effect, as ``summary`` shows); a DataFrame's index names the rows.
    """
    names = list(model.fixef.index)
    if L is None:
        L = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    index = list(L.index) if isinstance(L, pd.DataFrame) else [f"L{k + 1}" for k in range(np.shape(L)[0])]
    Lm = np.atleast_2d(np.asarray(L, float))
    if Lm.shape[1] != len(names):
        raise ValueError(f"each contrast needs {len(names)} coefficients (one per fixed effect), got {Lm.shape[1]}")
    A = varpar_covariance(model)
    v = np.einsum("kp,pq,kq->k", Lm, model.vcov.to_numpy(), Lm)  # l'C(φ̂)l for every contrast
    G = np.einsum("kp,pqi,kq->ki", Lm, vcov_jacobian(model), Lm)  # ∂(l'C(φ)l)/∂φ, (contrasts, n_phi)
    df = 2 * v**2 / np.einsum("ki,ij,kj->k", G, A, G)
    est = Lm @ model.fixef.to_numpy()
    se = np.sqrt(v)
    t = est / se
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                         "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df)}, index=index)
