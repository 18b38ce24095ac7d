"""Profile-likelihood intervals for a GLMM's parameters (lme4's ``confint(m, method = "profile")``).

The parameters are on lme4's scale: the random effects' SDs and correlations (``.sig01, .sig02, ...``: for each
term, each column's SD followed by its correlations with the later columns; σ = 1 in these families, so a scalar
term's SD is its θ) and the fixed effects. For one parameter ψ the profiled deviance holds ψ at a value v and
minimises the Laplace (or quadrature) deviance over all the other parameters,

    D(v) = min_{others} −2 log L(ψ = v, others),      ζ(v) = sign(v − ψ̂) √(D(v) − D(ψ̂)),

and the interval at level 1 − α is {v : |ζ(v)| ≤ z_{1−α/2}}: its end points are the roots of ζ(v) = ±z
(found by Brent's method). An SD whose deviance at 0 is within z² of the minimum has the lower end point 0, and
a correlation whose deviance at ±1 is within z² has the end point ±1.

Each inner minimisation starts on the first-order path of the optimum, z(v) ≈ ẑ − H_oo⁻¹ H_oψ (v − ψ̂) (H the
Hessian on this scale, J'H_θJ from the fit's Hessian H_θ in (θ, β) and the Jacobian J = ∂(θ, β)/∂(ψ, β);
o the other parameters), and takes chord-Newton steps z ← z − H_oo⁻¹ g(z). The gradient g in ψ is the exact
gradient of the Laplace deviance in (θ, β) (:func:`~lmmteach.glmm.laplace_gradient.laplace_gradient`) times
J(ψ) = ∂(θ, β)/∂(ψ, β) at the current ψ (the chain rule; J by central differences of θ(ψ), which costs no
deviance); where there is no exact gradient (adaptive quadrature, the sparse Schur complement, a correlation
next to ±1) central differences of the deviance. Brent's method then needs a few such minimisations per end
point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..lmm.covariance import check_sdcor_scale, sd_cor_blocks, sdcor_bounds, sdcor_of_theta, theta_from_blocks
from ..lmm.optimize import one_blas_thread
from .laplace_gradient import has_exact_gradient, laplace_gradient
from .optimize import central_gradient

__all__ = ["profile_deviance", "profile_interval", "profile_confint", "parameter_names", "PROFILE_XTOL"]

PROFILE_XTOL = 1e-6
"""Brent's method stops when the end point is known to this (absolute, on the parameter's scale)."""
INNER_TOL = 1e-8
"""The chord-Newton steps of an inner minimisation stop when no parameter moves by more than this."""
INNER_MAXIT = 30
GRADIENT_STEP = 1e-5
"""Central differences for the inner gradients: step × max(1, |x|)."""
JACOBIAN_STEP = 1e-6
"""Central differences for J = ∂θ/∂ψ (θ is a smooth function of the SDs and correlations inside their range)."""
MAX_BRACKET_DOUBLINGS = 12


def parameter_names(model) -> list[str]:
    """lme4's names: ``.sig01, .sig02, ...`` for the random effects' SDs and correlations, then the fixed effects."""
    return [f".sig{k + 1:02d}" for k in range(len(sdcor_bounds(model.design.structures())))] + list(model.fixef.index)


def _theta_of_psi(structures, psi) -> np.ndarray | None:
    """θ for SDs and correlations ψ (σ = 1); None where the correlations make no covariance matrix."""
    return theta_from_blocks(sd_cor_blocks(structures, psi))


class _Profile:
    """D(v) for one parameter (module docstring)."""

    def __init__(self, model, index: int):
        check_sdcor_scale(model.design.structures())
        self.devfun = model.devfun
        self.structures = model.design.structures()
        psi_hat = sdcor_of_theta(self.structures, self.devfun.split(model.theta))
        self.n_psi = len(psi_hat)
        self.x_hat = np.r_[psi_hat, model.optimum.beta]
        self.d_hat = model.deviance
        self.index = index
        self.bounds = sdcor_bounds(self.structures) + [(-np.inf, np.inf)] * model.devfun.p
        self.others = [k for k in range(len(self.x_hat)) if k != index]
        J = self._jacobian(psi_hat)
        if J is None:  # a correlation at ±1 with others: no covariance matrix nearby
            raise ValueError("the estimated correlations lie on the edge of the valid covariance matrices: "
                             "no profile on lme4's SD/correlation scale here")
        self.exact = has_exact_gradient(self.devfun)
        self.H = H = J.T @ model.hessian @ J
        self.H_oo = H[np.ix_(self.others, self.others)]
        self.path = -np.linalg.solve(self.H_oo, H[self.others, index])  # dz/dv at the optimum

    def _jacobian(self, psi) -> np.ndarray | None:
        """J = ∂(θ, β)/∂(ψ, β) at ψ: central differences in ψ (one-sided at a bound); β maps to itself. None where
        a nearby ψ makes no covariance matrix."""
        k, n = len(self.x_hat), self.n_psi
        J = np.eye(k)
        for c in range(n):
            lo, hi = self.bounds[c]
            up, down = psi.copy(), psi.copy()
            up[c], down[c] = min(psi[c] + JACOBIAN_STEP, hi), max(psi[c] - JACOBIAN_STEP, lo)
            t_up, t_down = _theta_of_psi(self.structures, up), _theta_of_psi(self.structures, down)
            if t_up is None or t_down is None:
                return None
            J[:n, c] = (t_up - t_down) / (up[c] - down[c])
        return J

    def devfun_psi(self, x) -> float:
        """−2 log L at ψ and β (inf where ψ's correlations make no covariance matrix)."""
        theta = _theta_of_psi(self.structures, x[: self.n_psi])
        return np.inf if theta is None else self.devfun(np.r_[theta, x[self.n_psi :]])

    def full(self, v: float, z: np.ndarray) -> np.ndarray:
        x = np.empty_like(self.x_hat)
        x[self.index] = v
        x[self.others] = z
        return x

    def deviance(self, v: float) -> float:
        lower = np.array([self.bounds[k][0] for k in self.others])

        def f(z):
            return self.devfun_psi(self.full(v, z))

        bounds = [self.bounds[k] for k in self.others]
        z = np.maximum(self.x_hat[self.others] + self.path * (v - self.x_hat[self.index]), lower)
        dev = f(z)
        for _ in range(INNER_MAXIT):
            g = self._gradient(v, z)
            if g is None:
                g = central_gradient(f, z, bounds, GRADIENT_STEP)
            step = -np.linalg.solve(self.H_oo, g)
            t = 1.0
            while True:  # halve a step that does not lower D (far from the optimum the chord is rough)
                trial = np.maximum(z + t * step, lower)
                d_trial = f(trial)
                if d_trial <= dev or t < 1e-3:
                    break
                t /= 2
            moved = float(np.max(np.abs(trial - z)))
            if d_trial <= dev:
                z, dev = trial, d_trial
            if moved <= INNER_TOL or d_trial > dev:
                break
        return dev

    def _gradient(self, v: float, z: np.ndarray) -> np.ndarray | None:
        """∂D/∂z at ψ = v by the chain rule, J(ψ)'∇f(θ, β) on the other parameters (module docstring); None
        without an exact gradient."""
        if not self.exact:
            return None
        x = self.full(v, z)
        psi = x[: self.n_psi]
        theta = _theta_of_psi(self.structures, psi)
        J = None if theta is None else self._jacobian(psi)
        if J is None:
            return None
        return (J.T @ laplace_gradient(self.devfun, np.r_[theta, x[self.n_psi :]])[1])[self.others]

    def zeta(self, v: float) -> float:
        return float(np.sign(v - self.x_hat[self.index]) * np.sqrt(max(self.deviance(v) - self.d_hat, 0.0)))


def profile_deviance(model, parameter: str, values) -> pd.DataFrame:
    """D(v) and ζ(v) at the given values of one parameter (for a plot of the profile)."""
    names = parameter_names(model)
    if parameter not in names:
        raise ValueError(f"unknown parameter {parameter!r}; the parameters are {names}")
    prof = _Profile(model, names.index(parameter))
    with one_blas_thread():
        devs = [prof.deviance(float(v)) for v in values]
    zeta = [float(np.sign(v - prof.x_hat[prof.index]) * np.sqrt(max(d - prof.d_hat, 0.0))) for v, d in zip(values, devs)]
    return pd.DataFrame({parameter: list(values), "deviance": devs, "zeta": zeta})


def profile_interval(model, parameter: str, level: float = 0.95) -> tuple[float, float]:
    """The profile interval of one parameter (module docstring)."""
    names = parameter_names(model)
    if parameter not in names:
        raise ValueError(f"unknown parameter {parameter!r}; the parameters are {names}")
    j = names.index(parameter)
    prof = _Profile(model, j)
    z = stats.norm.isf((1 - level) / 2)
    x_hat = prof.x_hat[j]
    H = prof.H
    try:
        scale = float(np.sqrt(max(2 * np.linalg.inv(H)[j, j], 1e-8)))
    except np.linalg.LinAlgError:
        scale = 0.1 * max(1.0, abs(x_hat))
    ends = []
    with one_blas_thread():
        for side, bound in ((-1, prof.bounds[j][0]), (1, prof.bounds[j][1])):
            target = side * z
            step = scale * z
            v = x_hat + side * step
            for _ in range(MAX_BRACKET_DOUBLINGS):
                if side * (v - bound) >= 0:
                    v = bound
                    break
                if side * prof.zeta(v) >= z:
                    break
                step *= 2
                v = x_hat + side * step
            if v == bound and side * prof.zeta(v) < z:
                ends.append(float(bound))  # an SD's whole lower side, or a correlation's side, inside the interval
                continue
            a, b = sorted((x_hat, v))
            ends.append(float(optimize.brentq(lambda t, c=target: prof.zeta(t) - c, a, b, xtol=PROFILE_XTOL)))
    return ends[0], ends[1]


def profile_confint(model, level: float = 0.95, parm=None) -> pd.DataFrame:
    """Profile intervals of the parameters ``parm`` (default all): rows ``.sig01, ...`` then the fixed effects,
    columns ``2.5 %`` and ``97.5 %`` (as lme4's ``confint``)."""
    names = parameter_names(model)
    wanted = names if parm is None else list(parm)
    cols = [f"{50 * (1 - level):.1f} %", f"{100 - 50 * (1 - level):.1f} %"]
    rows = [profile_interval(model, p, level) for p in wanted]
    return pd.DataFrame(rows, index=wanted, columns=cols)
