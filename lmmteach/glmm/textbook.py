"""The GLMM likelihood by brute force: dense matrices and numerical integration (the oracle and the lecture).

Everything here follows the formulas with the whole Z and Λ as dense matrices -- short, slow, and tested
equal to the fast path (:mod:`lmmteach.glmm.pirls`, :mod:`lmmteach.glmm.laplace`, :mod:`lmmteach.glmm.quadrature`).

* the integrand of one group with one scalar random effect, p(y_i | u) φ(u) (:func:`integrand`), its
  integral by adaptive numerical quadrature (:func:`group_likelihood`, "exact"), and its Gaussian (Laplace)
  approximation (:func:`laplace_gaussian`);
* the conditional mode by Newton's method on the dense penalised log-likelihood (:func:`conditional_mode`) and
  the Laplace deviance −2 log p(y | ũ) + |ũ|² + log|Λ'Z'WZΛ + I| (:func:`laplace_deviance`);
* the log-likelihood with nAGQ Gauss-Hermite nodes per group (:func:`agq_deviance`).
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats
from scipy.linalg import block_diag

from .quadrature import gauss_hermite

__all__ = ["dense_Z", "dense_Lambda", "conditional_mode", "laplace_deviance", "integrand", "group_likelihood",
           "laplace_gaussian", "agq_deviance", "NEWTON_TOL"]

NEWTON_TOL = 1e-12
"""Newton's method for the mode stops when no component of u moves by more than this."""


def dense_Z(design) -> np.ndarray:
    """Z as one dense n × Σ ℓ_j q_j matrix: term j's columns level by level (level l, column c at l q_j + c)."""
    parts = []
    for b in design.blocks:
        Zj = np.zeros((design.nobs, b.n_levels * b.q))
        for c in range(b.q):
            Zj[np.arange(design.nobs), b.group * b.q + c] = b.Z[:, c]
        parts.append(Zj)
    return np.hstack(parts)


def dense_Lambda(devfun, theta) -> np.ndarray:
    """Λ_θ = blockdiag(I_ℓj ⊗ λ_j) in the column order of :func:`dense_Z`."""
    return block_diag(*[np.kron(np.eye(b.n_levels), lam) for b, lam in zip(devfun.design.blocks,
                                                                           devfun.lambdas(theta))])


def conditional_mode(devfun, theta, beta) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ũ = argmax_u [log p(y | u) − ½|u|²] by Newton's method with the dense Hessian
    −(Λ'Z'WZΛ + I) (Fisher scoring, which for canonical links is Newton's method); returns ũ, η̃ and W."""
    d, fam = devfun, devfun.family
    ZL = dense_Z(d.design) @ dense_Lambda(d, theta)
    fixed = d.offset + d.design.X @ np.asarray(beta, float)
    u = np.zeros(ZL.shape[1])
    for _ in range(200):
        eta = fixed + ZL @ u
        mu, dmu = fam.link.linkinv(eta), fam.link.mu_eta(eta)
        W = fam.working_weights(eta, d.prior_weights)
        score = ZL.T @ (d.prior_weights * (d.y - mu) * dmu / fam.variance(mu)) - u
        step = np.linalg.solve(ZL.T @ (W[:, None] * ZL) + np.eye(len(u)), score)
        u = u + step
        if np.max(np.abs(step)) < NEWTON_TOL:
            break
    eta = fixed + ZL @ u
    return u, eta, fam.working_weights(eta, d.prior_weights)


def laplace_deviance(devfun, theta, beta) -> float:
    """−2 log L ≈ −2 log p(y | ũ) + ũ'ũ + log|Λ'Z'WZΛ + I|, all dense."""
    d = devfun
    u, eta, W = conditional_mode(d, theta, beta)
    ZL = dense_Z(d.design) @ dense_Lambda(d, theta)
    logdet = np.linalg.slogdet(ZL.T @ (W[:, None] * ZL) + np.eye(len(u)))[1]
    loglik = d.family.loglik_terms(d.y, d.family.link.linkinv(eta), d.prior_weights).sum()
    return float(-2 * loglik + u @ u + logdet)


def _one_group(devfun, theta, beta, level: int):
    d = devfun
    block = d.design.blocks[0]
    rows = block.group == level
    lam = float(d.lambdas(theta)[0][0, 0])
    fixed = (d.offset + d.design.X @ np.asarray(beta, float))[rows]
    return d.y[rows], d.prior_weights[rows], fixed, lam * block.Z[rows, 0]


def integrand(devfun, theta, beta, level: int, u) -> np.ndarray:
    """p(y_i | u) φ(u) for group ``level`` of a model with one scalar random effect (b_i = λu): the function
    whose integral over u is the group's likelihood L_i."""
    y, w, fixed, z = _one_group(devfun, theta, beta, level)
    u = np.atleast_1d(np.asarray(u, float))
    fam = devfun.family
    logp = np.array([fam.loglik_terms(y, fam.link.linkinv(fixed + z * uk), w).sum() for uk in u])
    return np.exp(logp) * stats.norm.pdf(u)


def group_likelihood(devfun, theta, beta, level: int) -> float:
    """L_i = ∫ p(y_i | u) φ(u) du by adaptive numerical integration (scipy's ``quad``): the exact value."""
    value, _ = integrate.quad(lambda t: float(integrand(devfun, theta, beta, level, t)[0]), -np.inf, np.inf,
                              epsabs=0, epsrel=1e-12, limit=200)
    return value


def laplace_gaussian(devfun, theta, beta, level: int) -> tuple[float, float, float]:
    """The Laplace approximation of one group's integrand: (ũ_i, s_i, height) with the Gaussian
    height · exp(−(u − ũ_i)²/(2 s_i²)) matching the integrand's log and curvature at its mode ũ_i; its area
    height · s_i √(2π) is the Laplace value of L_i."""
    y, w, fixed, z = _one_group(devfun, theta, beta, level)
    fam = devfun.family
    u = 0.0
    for _ in range(200):  # Newton on log p(y_i | u) − u²/2
        eta = fixed + z * u
        mu, dmu = fam.link.linkinv(eta), fam.link.mu_eta(eta)
        score = np.sum(z * w * (y - mu) * dmu / fam.variance(mu)) - u
        info = np.sum(z * z * fam.working_weights(eta, w)) + 1.0
        u += score / info
        if abs(score / info) < NEWTON_TOL:
            break
    info = np.sum(z * z * fam.working_weights(fixed + z * u, w)) + 1.0
    return u, 1.0 / np.sqrt(info), float(integrand(devfun, theta, beta, level, u)[0])


def agq_deviance(devfun, theta, beta, nAGQ: int) -> float:
    """−2 Σ_i log L_i by adaptive Gauss-Hermite quadrature, group by group: with the nodes x_k and weights w_k
    of the rule for the standard normal, centred at the mode and scaled by the curvature of
    :func:`laplace_gaussian`,  L_i ≈ s_i Σ_k w_k integrand(ũ_i + s_i x_k) / φ(x_k)  (nAGQ = 1: Laplace)."""
    x, w = gauss_hermite(nAGQ)
    total = 0.0
    for level in range(devfun.design.blocks[0].n_levels):
        u_hat, s, _ = laplace_gaussian(devfun, theta, beta, level)
        values = integrand(devfun, theta, beta, level, u_hat + s * x) / stats.norm.pdf(x)
        total += -2 * np.log(s * np.sum(w * values))
    return float(total)
