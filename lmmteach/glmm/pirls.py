"""PIRLS: penalised iteratively reweighted least squares for the conditional modes (lme4's ``pwrssUpdate``).

At fixed θ the conditional mode ũ of the spherical random effects (b = Λ_θ u, u ~ N(0, I)) maximises

    log p(y | u) − ½ |u|²,   i.e. minimises the penalised deviance   Σ d_i(y_i, μ_i) + |u|²,

with η = offset + Xβ + ZΛu. Fisher scoring on it is a sequence of *linear* mixed-model solves: with the
working weights W = w (dμ/dη)²/V(μ) and working response z = η − offset + (y − μ)/(dμ/dη) at the current η,

    [ Λ'Z'WZΛ + I   Λ'Z'WX ] [ u ]   [ Λ'Z'Wz ]
    [ X'WZΛ         X'WX   ] [ β ] = [ X'Wz   ]

-- the mixed-model equations of :mod:`lmmteach.lmm.blocked` with prior weights W and response z. So PIRLS
asks the linear mixed model's engine for one solve per iteration (:func:`solve_weighted_pls`, the only call
into it; the engine is built once per design, :func:`pls_engine`, and each iteration only reweights its
cross-products), then steps, halving the step while the penalised deviance does not decrease. The factor of the
last solve gives log|L|² = log|Λ'Z'WZΛ + I| for the Laplace approximation (:mod:`lmmteach.glmm.laplace`).

Two variants, as lme4: β updated with u (``beta=None``; the first optimisation stage, lme4's nAGQ = 0), or β
held at a given value and only u updated (the Laplace / quadrature deviance of (θ, β)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..lmm.engine import mk_devfun
from .family import Family, ResponseLogLik

__all__ = ["PlsSolve", "PirlsResult", "pls_engine", "solve_weighted_pls", "solve_at_beta",
           "linear_predictor", "pirls", "glm_start", "spherical_start", "PIRLS_TOL", "PIRLS_MAXIT", "MAX_HALVINGS"]

PIRLS_TOL = 1e-11
"""PIRLS stops when no linear predictor moves by more than this (times max(1, |η|)): Newton converges
quadratically, so the mode is then exact to about this squared. The Laplace deviance is not stationary in η
through log|L|² (W depends on η), so it is exact to about this times a sum of leverages: 1e-9 left noise of
~1e-7 on VerbAgg, which the second differences of the Hessian (step 1e-3) turned into errors of 1e-4 in the
standard errors; 1e-11 rarely costs an iteration (the move before the last is usually below 1e-6)."""
PIRLS_MAXIT = 60
"""Most PIRLS iterations (lme4: 30 with its looser tolerance)."""
MAX_HALVINGS = 20
"""Most step halvings within one PIRLS iteration."""
PDEV_FLOOR = 1e-13
"""A relative change of the penalised deviance below this is rounding: the iteration has converged."""


@dataclass(frozen=True)
class PlsSolve:
    """One weighted penalised least-squares solve: β, the random effects by term (b_j = λ_j u_j, an
    (ℓ_j × q_j) array each), u (the spherical effects, flattened) and log|L|² = log|Λ'Z'WZΛ + I|."""

    beta: np.ndarray
    b_terms: list
    u: np.ndarray
    logdet: float
    evaluation: Any  # the engine's evaluation (for the conditional variances)


def pls_engine(design):
    """The linear mixed model's engine for the design's X and Z, without weights or offset (``mk_devfun`` picks
    the one-factor or the blocked factor): built once per fit, reweighted in every PIRLS iteration."""
    return mk_devfun(replace(design, weights=None, offset=None), reml=False)


def solve_weighted_pls(engine, theta, weights: np.ndarray, z: np.ndarray, beta: np.ndarray | None = None) -> PlsSolve:
    """The bridge to the linear mixed model's engine (:func:`pls_engine`): solve the mixed-model equations with
    prior weights W and response z at θ; with ``beta`` given, u is the solution for that β (back substitution
    through the same factor: u = L⁻ᵀ(c − R_ZX β))."""
    ev = engine.reweighted(weights, z).evaluate(theta)
    if beta is not None:
        return solve_at_beta(ev, beta)
    return PlsSolve(np.asarray(ev.beta, float), list(ev.term_blups), ev.u_vector, float(ev.logdet_V), ev)


def linear_predictor(design, beta, b_terms, offset) -> np.ndarray:
    """η = offset + Xβ + Σ_j Z_j b_j (row t takes the effects of its level of term j's grouping factor)."""
    eta = design.X @ np.asarray(beta, float)
    eta += offset  # (in place, and ``take`` rather than b[group]: speed only, every PIRLS iteration)
    for block, b in zip(design.blocks, b_terms):
        eta += np.einsum("nq,nq->n", block.Z, np.take(b, block.group, axis=0))
    return eta


@dataclass(frozen=True)
class PirlsResult:
    """The conditional modes at (θ, β): η, μ, the modes by term, ũ, the working weights at the mode, the
    penalised deviance Σ d_i + |ũ|², log|L|², −2 log p(y | ũ) and the number of iterations."""

    theta: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    b_terms: list
    u: np.ndarray
    weights: np.ndarray
    pdev: float
    logdet: float
    minus2_cond_loglik: float
    iterations: int
    converged: bool
    solve: PlsSolve
    history: tuple = ()  # the penalised deviance Σ d_i + |u|² after each iteration (the first is the start's)

    @property
    def laplace_deviance(self) -> float:
        """−2 log L ≈ −2 log p(y | ũ) + |ũ|² + log|L|²  (the Laplace approximation)."""
        return self.minus2_cond_loglik + float(self.u @ self.u) + self.logdet


def pirls(design, family: Family, y, prior_weights, offset, theta, beta_start, beta_fixed: bool,
          b_start=None, engine=None, loglik: ResponseLogLik | None = None, tol: float = PIRLS_TOL) -> PirlsResult:
    """The conditional modes at θ (and at β when ``beta_fixed``; otherwise β moves with u, starting from
    ``beta_start``), from the random effects ``b_start`` (zero if None). See the module docstring. ``engine``:
    :func:`pls_engine` of the design, ``loglik``: ``ResponseLogLik.of(family, y, prior_weights)`` (each built
    here if None; a deviance function builds them once). ``tol``: the convergence tolerance (:data:`PIRLS_TOL`)."""
    engine = pls_engine(design) if engine is None else engine
    loglik = ResponseLogLik.of(family, y, prior_weights) if loglik is None else loglik
    theta = np.asarray(theta, float)
    beta = np.asarray(beta_start, float)
    if b_start is None:
        b_terms = [np.zeros((blk.n_levels, blk.q)) for blk in design.blocks]
        u = np.zeros(sum(blk.n_levels * blk.q for blk in design.blocks))
    else:
        b_terms, u = spherical_start(design, theta, b_start)
    eta = linear_predictor(design, beta, b_terms, offset)
    pdev, mu = _penalised_deviance(family, loglik, eta, u)
    history = [pdev]
    for it in range(1, PIRLS_MAXIT + 1):
        W, z = family.working(y, eta, offset, prior_weights, mu)
        sol = solve_weighted_pls(engine, theta, W, z, beta if beta_fixed else None)
        new_eta = trial_eta = linear_predictor(design, sol.beta, sol.b_terms, offset)
        if _relative_move(new_eta, eta) <= tol:
            # converged at the current η: W and log|L|² of this solve belong to it exactly
            return _result(loglik, theta, beta, eta, mu, b_terms, u, W, pdev, sol, it, True, history)
        step, (new_pdev, new_mu) = 1.0, _penalised_deviance(family, loglik, new_eta, sol.u)
        while not new_pdev <= pdev * (1 + PDEV_FLOOR) + PDEV_FLOOR and step > 2.0 ** -MAX_HALVINGS:
            step /= 2  # step halving: η, β and u move together (b = Λu is linear)
            trial_eta = eta + step * (new_eta - eta)
            new_pdev, new_mu = _penalised_deviance(family, loglik, trial_eta, u + step * (sol.u - u))
        if _relative_move(trial_eta, eta) <= tol:  # (after step halving: no move left)
            return _result(loglik, theta, beta, eta, mu, b_terms, u, W, pdev, sol, it, True, history)
        beta = beta + step * (sol.beta - beta)
        b_terms = [b + step * (nb - b) for b, nb in zip(b_terms, sol.b_terms)]
        u = u + step * (sol.u - u)
        eta, mu = trial_eta, new_mu  # = the linear predictor of (β, b) just set (it is linear in them)
        pdev = new_pdev
        history.append(pdev)
    W, z = family.working(y, eta, offset, prior_weights, mu)
    sol = solve_weighted_pls(engine, theta, W, z, beta)
    return _result(loglik, theta, beta, eta, mu, b_terms, u, W, pdev, sol, PIRLS_MAXIT, False, history)


def _relative_move(new_eta, eta) -> float:
    """max_i |Δη_i| / max(1, |η_i|): PIRLS's convergence measure."""
    return float(np.max(np.abs(new_eta - eta) / np.maximum(1.0, np.abs(eta))))


def solve_at_beta(ev, beta) -> PlsSolve:
    """The engine's solve ``ev`` with β held at ``beta``: u = L⁻ᵀ(c − R_ZX β) through the same factor (the engine
    solves in the basis X = QR around the OLS fit: β_Q = R(β − b_ols))."""
    ev = replace(ev, beta_Q=ev.cp.R @ (np.asarray(beta, float) - ev.cp.b_ols))
    return PlsSolve(np.asarray(ev.beta, float), list(ev.term_blups), ev.u_vector, float(ev.logdet_V), ev)


def spherical_start(design, theta, b_terms) -> tuple[list, np.ndarray]:
    """The start (b, u) from given random effects b (the previous mode at a nearby θ): u solves λ_j u = b_j
    by least squares (a zero λ_j gives u_j = 0), and b = λ_j u_j again so that both agree. u is flattened in
    the engine's order (:func:`solve_weighted_pls`): level by level for the first grouping factor's terms
    side by side, then every other term level by level."""
    structures = design.structures()
    parts = np.split(np.asarray(theta, float), np.cumsum([s.n_params for s in structures])[:-1])
    us, bs = [], []
    for s, t, b in zip(structures, parts, b_terms):
        lam = s.factor(t)
        if lam.shape == (1, 1):  # a scalar term (speed only: the same least-squares solution)
            u = b / lam[0, 0] if lam[0, 0] != 0 else np.zeros_like(b)
        else:
            u = np.linalg.lstsq(lam, b.T, rcond=None)[0].T
        us.append(u)
        bs.append(u @ lam.T)
    first = [k for k, blk in enumerate(design.blocks) if blk.group_name == design.blocks[0].group_name]
    rest = [k for k in range(len(design.blocks)) if k not in first]
    flat = [np.hstack([us[k] for k in first]).ravel()] + [us[k].ravel() for k in rest]
    return bs, np.concatenate(flat)


def _penalised_deviance(family, loglik: ResponseLogLik, eta, u) -> tuple[float, np.ndarray]:
    """Σ d_i(y_i, μ_i) + |u|² at η, and μ = g⁻¹(η) (the next iteration's weights start from it)."""
    mu = family.link.linkinv(eta)
    return loglik.deviance(mu) + float(u @ u), mu


def _result(loglik: ResponseLogLik, theta, beta, eta, mu, b_terms, u, W, pdev, sol, iterations, converged, history):
    return PirlsResult(theta, np.asarray(beta, float), eta, mu, b_terms, u, W, pdev, sol.logdet, -2.0 * loglik(mu),
                       iterations, converged, sol, tuple(history))


GLM_MAXIT = 50
GLM_TOL = 1e-10


def glm_start(X, family: Family, y, prior_weights, offset) -> tuple[np.ndarray, bool]:
    """β of the GLM without random effects (IRLS, as R's ``glm.fit``; glmer's starting values), and whether the
    fitted probabilities went to 0 or 1 (complete separation: the GLM's estimates run off to ±∞)."""
    mu = (prior_weights * y + 0.5) / (prior_weights + 1) if family.name == "binomial" else y + 0.1
    eta = family.link.linkfun(mu)
    beta = np.zeros(X.shape[1])
    dev_old = np.inf
    for _ in range(GLM_MAXIT):
        W = family.working_weights(eta, prior_weights)
        z = family.working_response(y, eta, offset)
        sw = np.sqrt(W)
        beta = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        eta = offset + X @ beta
        dev = float(np.sum(family.deviance_residuals(y, family.link.linkinv(eta), prior_weights)))
        if abs(dev - dev_old) <= GLM_TOL * (abs(dev) + 0.1):
            break
        dev_old = dev
    separated = family.name == "binomial" and bool(np.any(np.abs(eta - offset) > SEPARATION_ETA))
    return beta, separated


SEPARATION_ETA = 15.0
"""A binomial linear predictor beyond ±15 (fitted probability within 3e-7 of 0 or 1) signals separation."""
