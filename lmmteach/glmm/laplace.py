"""The GLMM deviance −2 log L(θ, β) by the Laplace approximation or adaptive quadrature (lme4's
``mkGlmerDevfun``).

The likelihood integrates the random effects out,

    L(θ, β) = ∫ p(y | u) φ(u) du     (u spherical: b = Λ_θ u, φ the N(0, I) density),

and for non-Gaussian y this integral has no closed form. The Laplace approximation replaces the log of the
integrand by its second-order expansion about the conditional mode ũ (found by PIRLS,
:mod:`lmmteach.glmm.pirls`), whose curvature there is L L' = Λ'Z'WZΛ + I:

    −2 log L(θ, β) ≈ −2 log p(y | ũ) + |ũ|² + log|L|².

It needs the same blocked factor L as the linear mixed model, so it works for any number of grouping
factors and vector-valued terms. For one scalar random effect per group, adaptive Gauss-Hermite quadrature
(``nAGQ`` > 1, :mod:`lmmteach.glmm.quadrature`) refines it.

:class:`GlmerDeviance` is the function the optimiser sees, in lme4's two forms:

* ``stage1(θ)``: β moves with u inside PIRLS (lme4's nAGQ = 0 criterion, its first stage);
* ``__call__(params)``, params = (θ, β): u alone moves in PIRLS; the Laplace or quadrature deviance.
"""

from __future__ import annotations

import numpy as np

from .family import Family, ResponseLogLik
from .laplace_gradient import Layout, has_inverse_entries, predicted_mode
from .pirls import PIRLS_TOL, PirlsResult, glm_start, pirls, pls_engine
from .quadrature import MAX_NAGQ, agq_deviance
from .response import GlmmResponse

__all__ = ["GlmerDeviance", "mk_glmer_devfun"]


class GlmerDeviance:
    """(θ, β) ↦ −2 log L by Laplace (nAGQ = 0 or 1) or adaptive quadrature (nAGQ > 1); see the module docstring.
    (nAGQ = 0 differs from 1 in the fit only: its estimates are the first stage's, β from PIRLS.)

    Keeps the last conditional modes to start the next PIRLS from them (lme4 does the same)."""

    def __init__(self, design, family: Family, y, prior_weights, offset, nAGQ: int = 1):
        self.design = design
        self.family = family
        self.y = np.asarray(y, float)
        self.prior_weights = np.asarray(prior_weights, float)
        self.offset = np.zeros(len(self.y)) if offset is None else np.asarray(offset, float)
        self.loglik = ResponseLogLik.of(family, self.y, self.prior_weights)  # log p(y | μ), its constants summed once
        self.structures = design.structures()
        sizes = [s.n_params for s in self.structures]
        self._slices = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])
        self.nAGQ = check_nagq(nAGQ, design)
        self.engine = pls_engine(design)  # the linear mixed model's engine, reweighted in every PIRLS iteration
        self.beta_glm, self.separated = glm_start(design.X, family, self.y, self.prior_weights, self.offset)
        self._last_b: list | None = None
        self._last: PirlsResult | None = None  # the last converged modes (speed only: see predicted_mode)
        self._pinned: PirlsResult | None = None  # modes kept by :meth:`pin`
        self._layout: tuple = (None, None)  # (θ, its layout): see :meth:`layout`
        self._last_joint_beta: np.ndarray | None = None  # β of the last run with β inside PIRLS (stage 1)
        self.n_eval = 0
        self.response: GlmmResponse | None = None  # how glmer read the response (set by glmer_devfun)
        self.n_unconverged = 0  # PIRLS runs that hit the iteration limit (glmer warns once, at the end)

    # -- parameters ------------------------------------------------------------------------------------
    @property
    def n_theta(self) -> int:
        return len(np.concatenate(self._slices)) if self._slices else 0

    @property
    def p(self) -> int:
        return self.design.p

    @property
    def theta0(self) -> np.ndarray:
        """lme4's starting θ: 1 for relative SDs, 0 for the off-diagonal elements."""
        return np.concatenate([s.theta0 for s in self.structures])

    @property
    def theta_bounds(self) -> list[tuple[float, float]]:
        return [b for s in self.structures for b in s.bounds]

    def split(self, theta) -> list[np.ndarray]:
        theta = np.atleast_1d(np.asarray(theta, float))
        return [theta[idx] for idx in self._slices]

    def layout(self, theta):
        """Where each term's random effects sit in u, with the rows' Λ'z_i at θ (the exact gradient's
        :class:`~lmmteach.glmm.laplace_gradient.Layout`); the last one is kept (speed only: the gradient and the
        next PIRLS start ask for the same θ)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        if self._layout[0] is None or not np.array_equal(self._layout[0], theta):
            self._layout = (theta.copy(), Layout(self.design, self.lambdas(theta)))
        return self._layout[1]

    def lambdas(self, theta) -> list[np.ndarray]:
        """λ_j(θ) of every term (q_j × q_j lower triangular): Σ_j = λ_j λ_j' (σ = 1 in these families)."""
        return [s.factor(t) for s, t in zip(self.structures, self.split(theta))]

    # -- evaluations ---------------------------------------------------------------------------------
    @property
    def last_modes(self) -> PirlsResult | None:
        """The modes of the last converged PIRLS run (None if it did not converge)."""
        return self._last

    def pin(self) -> None:
        """Keep the last converged modes for a later call at the same (θ, β) (speed only: the optimiser pins its
        current point before it evaluates points around it for a Hessian, then returns to it)."""
        self._pinned = self._last

    def modes(self, theta, beta=None, warm: bool = True, tol: float | None = None) -> PirlsResult:
        """The conditional modes at θ and β (``beta=None``: β moves with u). ``warm``: PIRLS starts from the last
        modes (and, with β moving, the last such β), else from u = 0 and the GLM's β. ``tol``: a looser PIRLS
        tolerance than :data:`~lmmteach.glmm.pirls.PIRLS_TOL` for an approximate answer (speed only: such modes are
        neither kept nor used to start the next run)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        start = self._last_b if warm else None
        fixed = beta is not None
        for kept in (self._last, self._pinned) if fixed and warm else ():
            if kept is not None and np.array_equal(kept.theta, theta) and np.array_equal(kept.beta, beta):
                self._last, self._last_b = kept, kept.b_terms  # the modes at this very point, kept (speed only)
                return kept
        last = self._last if warm else None
        if fixed and last is not None and has_inverse_entries(self.engine):
            predicted = predicted_mode(self, last, theta, beta)  # speed only: exact to first order in the step
            start = start if predicted is None else predicted
        if not fixed:  # β moves with u: from the last such run's β (it goes with the start's b)
            beta = self._last_joint_beta if warm and self._last_joint_beta is not None else self.beta_glm
        r = pirls(self.design, self.family, self.y, self.prior_weights, self.offset, theta, beta, fixed, start,
                  self.engine, self.loglik, PIRLS_TOL if tol is None else tol)
        self.n_eval += 1
        if tol is not None:
            return r
        if not fixed:
            self._last_joint_beta = r.beta
        self._last_b = r.b_terms
        self._last = r if r.converged else None
        self.n_unconverged += not r.converged
        return r

    def deviance_at(self, modes: PirlsResult) -> float:
        """−2 log L at the modes: Laplace (nAGQ = 0 or 1) or adaptive quadrature."""
        if self.nAGQ <= 1:
            return modes.laplace_deviance
        block = self.design.blocks[0]
        lam = float(self.lambdas(modes.theta)[0][0, 0])
        return agq_deviance(modes, self.family, self.y, self.prior_weights, block.group, block.n_levels, lam,
                            block.Z[:, 0], self.nAGQ)

    def stage1(self, theta) -> float:
        """lme4's first stage: the Laplace deviance with β updated inside PIRLS (a function of θ alone)."""
        return self.modes(theta).laplace_deviance

    def __call__(self, params) -> float:
        params = np.asarray(params, float)
        theta, beta = params[: self.n_theta], params[self.n_theta :]
        return self.deviance_at(self.modes(theta, beta))


def check_nagq(nAGQ, design) -> int:
    """glmer's rules: nAGQ a whole number in 0..25; above 1 only for one scalar random effect per group."""
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)) or not 0 <= nAGQ <= MAX_NAGQ:
        raise ValueError(f"nAGQ must be a whole number from 0 (β inside PIRLS, lme4's fast approximation) or 1 "
                         f"(Laplace) to {MAX_NAGQ}, not {nAGQ!r}")
    if nAGQ > 1 and (len(design.blocks) != 1 or design.blocks[0].q != 1):
        raise ValueError(f"nAGQ = {nAGQ} needs a single scalar random effect, e.g. (1 | g); this model has "
                         + ", ".join(b.term.text or b.group_name for b in design.blocks)
                         + " -- use nAGQ = 1 (the Laplace approximation)")
    return int(nAGQ)


def mk_glmer_devfun(design, family: Family, y, prior_weights, offset, nAGQ: int = 1) -> GlmerDeviance:
    """The deviance function of a GLMM design (lme4's ``mkGlmerDevfun``)."""
    return GlmerDeviance(design, family, y, prior_weights, offset, nAGQ)
