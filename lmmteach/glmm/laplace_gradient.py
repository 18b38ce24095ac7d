"""The exact gradient of the Laplace deviance f(θ, β) (nAGQ = 1), for a gradient-based glmer.

Notation as :mod:`lmmteach.glmm.laplace` and :mod:`lmmteach.glmm.pirls`: η = o + Xβ + ZΛ(θ)u, the penalised
deviance D(u; θ, β) = −2 log p(y | u) + |u|², its minimiser ũ (PIRLS), W_i = w_i μ'(η_i)²/V(μ_i) the PIRLS
(Fisher) weights at ũ, M = Λ'Z'WZΛ + I, and

    f(θ, β) = D(ũ; θ, β) + log|M|.

**The D part (envelope theorem).** ∂D/∂u = 0 at ũ, so only the partial derivatives at fixed u count. With
the score s_i = ∂log p(y_i | η_i)/∂η_i = w_i (y_i − μ_i) μ'_i / V(μ_i):

    ∂D/∂β = −2 X's,     ∂D/∂θ_k = −2 s'Z(∂Λ/∂θ_k)ũ.

**The log|M| part.** log|M| depends on θ through C = ΛΛ' at fixed W (|I + Λ'AΛ| = |I + AΛΛ'|), and on
everything through W(η̃):

    d log|M| = Σ_j tr(∂log|M|/∂C_j dC_j)  +  Σ_i g_i W'_i dη̃_i,     g_i = z_i'ΛM⁻¹Λ'z_i,  W'_i = dW_i/dη_i.

The first term is the linear mixed model's ∂log|V|/∂C (``dlogdetV_dC`` of the engine reweighted by W: with
rows scaled by √W_i, log|V| = log|M|), mapped to θ by the structures' ∂C/∂θ_k exactly as the LMM's own
gradient does. The g_i ("leverages") need M⁻¹ at the pairs of random effects that meet in a row
(:meth:`~lmmteach.lmm.blocked.BlockedEvaluation.inverse_blocks`).

**How η̃ moves.** dη̃ = ∂η/∂p|_u + ZΛ dũ, and the implicit function theorem on ½∂D/∂u = −Λ'Z's + u = 0 gives

    H_obs dũ = −Λ'Z'W_obs ∂η/∂p|_u + (∂Λ/∂p)'Z's,     H_obs = Λ'Z'W_obs ZΛ + I,

with W_obs = −∂s/∂η the observed information (W_obs = W for the canonical links logit and log). Rather than
one solve per parameter, the adjoint ξ = H_obs⁻¹Λ'Z'c with c_i = g_i W'_i takes one: c'ZΛ dũ = ξ'(right side).
Collecting, with e = c − W_obs ∘ (ZΛξ):

    ∂f/∂β   = X'(e − 2s),
    ∂f/∂θ_k = Σ_j tr(∂log|M|/∂C_j ∂C_j/∂θ_k) + (e − 2s)'Z(∂Λ/∂θ_k)ũ + s'Z(∂Λ/∂θ_k)ξ.

For the non-canonical links (probit, cloglog) H_obs is factored by the same engine reweighted with W_obs
(their log-likelihoods are concave in η, so W_obs ≥ 0). The sparse Schur complement
(:mod:`lmmteach.lmm.sparse_schur`) gives no M⁻¹ entries: :func:`has_exact_gradient` is False there, and the
optimiser keeps its derivative-free path.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..lmm.covariance import Unstructured, VarianceComponents
from ..lmm.sparse_schur import SparseSchurDeviance
from .family import Family

__all__ = ["laplace_gradient", "has_exact_gradient", "has_inverse_entries", "predicted_mode", "Layout",
           "link_second_derivative", "variance_derivative", "factor_grad", "OBSERVED_WEIGHT_FLOOR"]

CANONICAL_LINKS = ("logit", "log")
"""Links whose observed information equals the Fisher weights (W_obs = W): binomial logit, Poisson log."""
OBSERVED_WEIGHT_FLOOR = 1e-300
"""W_obs is clipped below at this (it is ≥ 0 in exact arithmetic for these families): the engine takes log w."""


def has_exact_gradient(devfun) -> bool:
    """Whether :func:`laplace_gradient` applies: the Laplace deviance (nAGQ = 1) on an engine with M⁻¹ entries
    (one grouping factor, or the dense blocked factor; not the sparse Schur complement)."""
    return devfun.nAGQ == 1 and has_inverse_entries(devfun.engine)


def has_inverse_entries(engine) -> bool:
    """Whether the engine's factor gives M⁻¹ solves and entries (not the sparse Schur complement)."""
    return not isinstance(engine, SparseSchurDeviance)


PREDICTION_MAX_MOVE = 1.0
"""The first-order start of :func:`predicted_mode` is used only while it moves no linear predictor by more than
this (beyond a unit on the link scale μ(η)'s curvature makes the linearisation unreliable: a Poisson start went
to μ ~ 1e20 after a long optimiser step)."""


def predicted_mode(devfun, last, theta, beta) -> list | None:
    """Speed only: a PIRLS start at (θ, β) from the converged modes ``last`` at (θ₀, β₀), exact to first order
    in the step. By "How η̃ moves" (module docstring) with the Fisher M of the last solve,

        ũ(θ, β) ≈ ũ₀ + M⁻¹[(ΔΛ)'Z's − Λ₀'Z'W δη],    δη = XΔβ + Z(ΔΛ)ũ₀,   ΔΛ = Λ(θ) − Λ(θ₀)

    (Λ is linear in θ for lme4's structures; M = H_obs for the canonical links, otherwise a start exact to
    zeroth order). One solve through the last factor instead of PIRLS iterations from ũ₀: the Hessian's
    difference steps and the optimiser's short steps start within ~|Δ|² of the mode. Returns b by term, or None
    when the start would move some η_i by more than :data:`PREDICTION_MAX_MOVE`."""
    at0, lam1 = devfun.layout(last.theta), devfun.lambdas(theta)
    beta_step = np.asarray(beta, float) - last.beta
    delta_eta = devfun.design.X @ beta_step if beta_step.any() else np.zeros(len(devfun.y))
    same_theta = np.array_equal(theta, last.theta)  # (β-only steps: ΔΛ = 0)
    if not same_theta:
        step = Layout(devfun.design, [b - a for a, b in zip(at0.lambdas, lam1)])
        delta_eta += step.times(last.u)
    rhs = -at0.crossprod(last.weights * delta_eta)
    if not same_theta:
        family = devfun.family
        d1 = family.link.mu_eta(last.eta, last.mu)
        rhs += step.crossprod(devfun.prior_weights * (devfun.y - last.mu) * d1 / family.variance(last.mu))
    du = last.solve.evaluation.solve_M(rhs)
    moved = delta_eta + at0.times(du) + (0.0 if same_theta else step.times(du))
    if np.max(np.abs(moved), initial=0.0) > PREDICTION_MAX_MOVE:
        return None  # (η moves by XΔβ + ZΛ₁(ũ₀ + dũ) − ZΛ₀ũ₀)
    return [uk @ lam.T for uk, lam in zip(at0.split(last.u + du), lam1)]


def link_second_derivative(family: Family, eta: np.ndarray, mu: np.ndarray | None = None,
                           d: np.ndarray | None = None) -> np.ndarray:
    """μ''(η) = d²μ/dη²: logit μ'(1 − 2μ); probit −ηφ(η); cloglog μ'(1 − e^η); log e^η (``mu``, ``d``: μ and
    μ' when the caller has them)."""
    name = family.link.name
    d = family.link.mu_eta(eta, mu) if d is None else d
    if name == "logit":
        return d * (1 - 2 * (special.expit(eta) if mu is None else mu))
    if name == "probit":
        return -eta * d
    if name == "cloglog":
        return d * (1 - np.exp(np.minimum(eta, 700.0)))
    return d  # log


def variance_derivative(family: Family, mu: np.ndarray) -> np.ndarray:
    """V'(μ): binomial 1 − 2μ, Poisson 1."""
    return 1 - 2 * mu if family.name == "binomial" else np.ones_like(mu)


def factor_grad(structure, theta: np.ndarray) -> np.ndarray:
    """∂λ/∂θ_k of a term's factor, (n_params, q, q). lme4's structures (unstructured, diagonal) are linear in θ
    (λ = Σ_k θ_k E_k), so ∂λ/∂θ_k = λ(e_k) exactly."""
    if not isinstance(structure, (Unstructured, VarianceComponents)):
        raise TypeError(f"the exact Laplace gradient needs a factor linear in theta (us or diag), not {structure!r}")
    return np.stack([structure.factor(np.eye(structure.n_params)[k]) for k in range(structure.n_params)])


def _family_terms(family: Family, y, eta, mu, weights):
    """At η (μ = g⁻¹(η)): the score s, the Fisher weights W, dW/dη and the observed information W_obs = −ds/dη:

        s = w(y − μ)μ'/V,   W = wμ'²/V,   W' = w(2μ'μ''/V − μ'³V'/V²),   W_obs = W − w(y − μ)(μ''/V − μ'²V'/V²)."""
    d1 = family.link.mu_eta(eta, mu)
    d2 = link_second_derivative(family, eta, mu, d1)
    V = family.variance(mu)
    dV = variance_derivative(family, mu)
    s = weights * (y - mu) * d1 / V
    W = weights * d1**2 / V
    dW = weights * (2 * d1 * d2 / V - d1**3 * dV / V**2)
    W_obs = W - weights * (y - mu) * (d2 / V - d1**2 * dV / V**2)
    return s, W, dW, W_obs


class Layout:
    """Where the random effects of each term sit in u (the engine's order: the first grouping factor's terms
    side by side, level by level; then every other term level by level), and the rows' Λ'z_i."""

    def __init__(self, design, lambdas):
        blocks = design.blocks
        self.blocks = blocks
        self.lambdas = lambdas
        first_name = blocks[0].group_name
        self.first = [k for k, b in enumerate(blocks) if b.group_name == first_name]
        self.rest = [k for k in range(len(blocks)) if k not in self.first]
        self.l1 = blocks[0].n_levels
        self.q1 = sum(blocks[k].q for k in self.first)
        self.group1 = blocks[0].group
        self.rest_offset, offset = {}, 0
        for k in self.rest:
            self.rest_offset[k] = offset
            offset += blocks[k].n_levels * blocks[k].q
        self.R = offset
        # Λ'z_i of every row: block 1's terms side by side (n × q₁), and per other term (n × q_k)
        self.a = np.hstack([blocks[k].Z @ lambdas[k] for k in self.first])
        self.b = {k: blocks[k].Z @ lambdas[k] for k in self.rest}

    def split(self, v: np.ndarray) -> list[np.ndarray]:
        """A vector in u's order as (ℓ_j, q_j) arrays, term by term (the design's order)."""
        out: list = [None] * len(self.blocks)
        v1 = v[: self.l1 * self.q1].reshape(self.l1, self.q1)
        col = 0
        for k in self.first:
            out[k] = v1[:, col : col + self.blocks[k].q]
            col += self.blocks[k].q
        vr = v[self.l1 * self.q1 :]
        for k in self.rest:
            size = self.blocks[k].n_levels * self.blocks[k].q
            out[k] = vr[self.rest_offset[k] : self.rest_offset[k] + size].reshape(self.blocks[k].n_levels, -1)
        return out

    def crossprod(self, c: np.ndarray) -> np.ndarray:
        """Λ'Z'c in u's order: per level, Σ of c_i Λ'z_i over its rows."""
        parts = [_level_sums(self.a * c[:, None], self.group1, self.l1).ravel()]
        for k in self.rest:
            parts.append(_level_sums(self.b[k] * c[:, None], self.blocks[k].group, self.blocks[k].n_levels).ravel())
        return np.concatenate(parts)

    def times(self, v: np.ndarray) -> np.ndarray:
        """ZΛv for v in u's order: row i takes z_i'λ v at its levels."""
        parts = self.split(v)
        v1 = v[: self.l1 * self.q1].reshape(self.l1, self.q1)  # block 1's terms side by side, as ``a``
        out = np.einsum("nq,nq->n", self.a, np.take(v1, self.group1, axis=0))
        for k in self.rest:
            out += np.einsum("nq,nq->n", self.b[k], np.take(parts[k], self.blocks[k].group, axis=0))
        return out

    def leverages(self, inv) -> np.ndarray:
        """g_i = z_i'ΛM⁻¹Λ'z_i from the entries of M⁻¹ that row i meets (:class:`~lmmteach.lmm.deviance.InverseBlocks`):
        a_i'[M⁻¹]_11,l a_i + 2 Σ_k b_ki'[M⁻¹]_r1 a_i + Σ_k Σ_k' b_ki'[M⁻¹]_rr b_k'i, with a_i = Λ₁'z₁ᵢ and
        b_ki = λ_k'z_ki placed at row i's level of term k."""
        a, g1 = self.a, self.group1
        g = np.einsum("na,nab,nb->n", a, inv.first[g1], a)
        if not self.rest:
            return g
        cols1 = g1[:, None] * self.q1 + np.arange(self.q1)[None, :]  # (n, q₁)
        idx = {k: self.rest_offset[k] + self.blocks[k].group[:, None] * self.blocks[k].q
               + np.arange(self.blocks[k].q)[None, :] for k in self.rest}
        for k in self.rest:
            cross = inv.cross[idx[k][:, :, None], cols1[:, None, :]]  # (n, q_k, q₁)
            g += 2 * np.einsum("na,nab,nb->n", self.b[k], cross, a)
            for k2 in self.rest:
                rr = inv.rest[idx[k][:, :, None], idx[k2][:, None, :]]
                g += np.einsum("na,nab,nb->n", self.b[k], rr, self.b[k2])
        return g


def _level_sums(values: np.ndarray, group: np.ndarray, n_levels: int) -> np.ndarray:
    """Σ over the rows of each level of the rows of ``values`` (n × q): (ℓ, q)."""
    return np.stack([np.bincount(group, weights=values[:, j], minlength=n_levels) for j in range(values.shape[1])],
                    axis=1)


def laplace_gradient(devfun, params, pirls_tol: float | None = None) -> tuple[float, np.ndarray]:
    """(f, ∂f/∂(θ, β)) for the Laplace deviance f(θ, β) of ``devfun`` (a :class:`~lmmteach.glmm.laplace.GlmerDeviance`
    with nAGQ = 1) at params = (θ, β): the equations of the module docstring. One PIRLS run (warm), one
    reweighted factorisation with its gradient, one solve (two factorisations for a non-canonical link).
    ``pirls_tol``: a looser PIRLS tolerance for an approximate gradient (speed only: the quasi-Newton
    Hessian's columns, :func:`lmmteach.glmm.optimize.hybrid_newton`)."""
    if not has_exact_gradient(devfun):
        raise ValueError("the exact Laplace gradient needs nAGQ = 1 and an engine with M⁻¹ entries "
                         "(not the sparse Schur complement)")
    params = np.asarray(params, float)
    n_theta = devfun.n_theta
    theta, beta = params[:n_theta], params[n_theta:]
    modes = devfun.modes(theta, beta, tol=pirls_tol)
    f = devfun.deviance_at(modes)
    family, y, weights, design = devfun.family, devfun.y, devfun.prior_weights, devfun.design
    s, W, dW, W_obs = _family_terms(family, y, modes.eta, modes.mu, weights)
    z = family.working(y, modes.eta, devfun.offset, 1.0, modes.mu)[1] \
        if not modes.converged or family.link.name not in CANONICAL_LINKS else None  # (a response to reweight with)
    # the engine reweighted by W at η̃: PIRLS's last solve already holds those cross-products (speed only)
    if modes.converged:  # (the factor of the last solve, with the gradient added: speed only)
        ev = devfun.engine._new(modes.solve.evaluation.cp).with_gradient(modes.solve.evaluation)
    else:
        ev = devfun.engine.reweighted(W, z).evaluate(theta, gradient=True)
    structures, thetas = devfun.structures, devfun.split(theta)
    layout = devfun.layout(theta)
    # log|M| at fixed W, through C: the LMM engine's ∂log|V|/∂C mapped by ∂C/∂θ_k
    dlogdet = ev.dlogdetV_dC
    parts, offset = [], 0
    for st, t in zip(structures, thetas):
        block = dlogdet[offset : offset + st.q, offset : offset + st.q]
        parts.append(np.einsum("ij,kij->k", block, st.relcov_grad(t)))
        offset += st.q
    grad_theta = np.concatenate(parts) if parts else np.zeros(0)
    # W's dependence on η: leverages, then the adjoint solve ξ = H_obs⁻¹Λ'Z'c
    c = layout.leverages(ev.inverse_blocks()) * dW
    rhs = layout.crossprod(c)
    if family.link.name in CANONICAL_LINKS:  # H_obs = M
        xi = ev.solve_M(rhs)
    else:
        W_obs = np.maximum(W_obs, OBSERVED_WEIGHT_FLOOR)
        xi = devfun.engine.reweighted(W_obs, z).evaluate(theta).solve_M(rhs)
    e = c - W_obs * layout.times(xi)
    grad_beta = design.X.T @ (e - 2 * s)
    # θ through Λ at fixed u: (e − 2s)'Z(∂Λ/∂θ_k)ũ + s'Z(∂Λ/∂θ_k)ξ, term by term
    u_terms, xi_terms = layout.split(modes.u), layout.split(xi)
    extra = []
    for k, (st, t) in enumerate(zip(structures, thetas)):
        blk = design.blocks[k]
        P = _level_sums(blk.Z * (e - 2 * s)[:, None], blk.group, blk.n_levels)  # Z_k'(e − 2s) per level
        Sk = _level_sums(blk.Z * s[:, None], blk.group, blk.n_levels)
        A = P.T @ u_terms[k] + Sk.T @ xi_terms[k]  # Σ_l of the outer products
        extra.append(np.einsum("kab,ab->k", factor_grad(st, t), A))
    if extra:
        grad_theta = grad_theta + np.concatenate(extra)
    return float(f), np.r_[grad_theta, grad_beta]
