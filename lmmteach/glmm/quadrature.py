"""Adaptive Gauss-Hermite quadrature for one scalar random effect per group (lme4's nAGQ > 1).

With one grouping factor and one random effect per group (``(1 | g)``) the likelihood is a product of
one-dimensional integrals over the spherical effect u_i ~ N(0, 1):

    L_i = ∫ p(y_i | u) φ(u) du,       −2 log L = Σ_i −2 log L_i.

*Adaptive* quadrature centres the rule on the conditional mode ũ_i and scales it by the conditional
standard deviation s_i = 1/L_ii (L_ii² = 1 + λ² Σ_{t in i} W_t z_t², the diagonal of the PIRLS factor):
with u = ũ_i + s_i x and Gauss-Hermite nodes x_k and weights w_k for the standard normal (Σ w_k = 1),

    L_i ≈ s_i Σ_k w_k exp( log p(y_i | ũ_i + s_i x_k) − (ũ_i + s_i x_k)²/2 + x_k²/2 ).

One node (x = 0, w = 1) is the Laplace approximation, −2 log L_i ≈ −2 log p(y_i | ũ_i) + ũ_i² + log L_ii²;
more nodes converge to the exact integral (:func:`lmmteach.glmm.textbook.integrand` shows it for one group).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

__all__ = ["gauss_hermite", "agq_deviance", "marginal_mean", "MAX_NAGQ"]

MAX_NAGQ = 25
"""lme4 allows at most 25 quadrature nodes."""


@lru_cache(maxsize=None)
def gauss_hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x_k and weights w_k of the n-point Gauss-Hermite rule for ∫ f(x) φ(x) dx (φ the standard normal
    density, so the weights sum to 1)."""
    x, w = hermegauss(n)
    return x, w / np.sqrt(2 * np.pi)


def agq_deviance(modes, family, y, prior_weights, group: np.ndarray, n_groups: int, lam: float, z_col: np.ndarray,
                 nAGQ: int) -> float:
    """−2 log L by adaptive Gauss-Hermite quadrature with ``nAGQ`` nodes (module docstring), from the PIRLS
    result ``modes`` at (θ, β) of a model with one scalar random-effects term: λ its relative SD, ``z_col``
    its column of Z, ``group`` the level of each row."""
    x, w = gauss_hermite(nAGQ)
    u_hat = modes.b_terms[0][:, 0] / lam if lam > 0 else np.zeros(n_groups)
    # L_ii² = 1 + λ² Σ_t W_t z_t² : the diagonal factor of Λ'Z'WZΛ + I at the mode
    Lii2 = 1.0 + lam * lam * np.bincount(group, weights=modes.weights * z_col * z_col, minlength=n_groups)
    s = 1.0 / np.sqrt(Lii2)
    eta_fixed = modes.eta - lam * u_hat[group] * z_col  # offset + Xβ
    log_terms = np.empty((len(x), n_groups))
    for k, xk in enumerate(x):
        u = u_hat + s * xk
        mu = family.link.linkinv(eta_fixed + lam * u[group] * z_col)
        loglik = np.bincount(group, weights=family.loglik_terms(y, mu, prior_weights), minlength=n_groups)
        log_terms[k] = np.log(w[k]) + loglik - 0.5 * u * u + 0.5 * xk * xk
    top = log_terms.max(axis=0)
    log_Li = np.log(s) + top + np.log(np.exp(log_terms - top).sum(axis=0))
    return float(-2.0 * log_Li.sum())


def marginal_mean(family, eta_fixed, sd, nodes: int = MAX_NAGQ) -> np.ndarray:
    """The population-averaged (marginal) mean  E[y] = ∫ g⁻¹(η + s x) φ(x) dx  of rows with fixed-part linear
    predictor η and random-part SD s (s² = z'Σz), by Gauss-Hermite quadrature with ``nodes`` nodes. For a
    non-identity link it is flatter than the conditional curve g⁻¹(η) of a typical group (b = 0): the
    marginal and the conditional effects differ."""
    x, w = gauss_hermite(nodes)
    eta = np.asarray(eta_fixed, float)[..., None] + np.asarray(sd, float)[..., None] * x
    return family.link.linkinv(eta) @ w
