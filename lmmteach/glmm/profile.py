"""Profile-likelihood intervals for a GLMM's parameters (lme4's ``confint(m, method = "profile")``).

For one parameter ψ (a fixed effect β_j, or the SD θ_k of a scalar random-effects term: b = θ_k u with
σ = 1 in these families), the profiled deviance holds ψ at a value v and minimises the Laplace (or
quadrature) deviance over all the other parameters,

    D(v) = min_{others} −2 log L(ψ = v, others),      ζ(v) = sign(v − ψ̂) √(D(v) − D(ψ̂)),

and the interval at level 1 − α is {v : |ζ(v)| ≤ z_{1−α/2}}: its end points are the roots of ζ(v) = ±z
(found by Brent's method). An SD whose deviance at 0 is within z² of the minimum has the lower end point 0.

Each inner minimisation starts on the first-order path of the optimum, z(v) ≈ ẑ − H_oo⁻¹ H_oψ (v − ψ̂) (H the
fit's Hessian, o the other parameters), and takes chord-Newton steps z ← z − H_oo⁻¹ g(z) with central-difference
gradients g; Brent's method then needs a few such minimisations per end point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..lmm.optimize import one_blas_thread
from .optimize import central_gradient

__all__ = ["profile_deviance", "profile_interval", "profile_confint", "parameter_names", "PROFILE_XTOL"]

PROFILE_XTOL = 1e-6
"""Brent's method stops when the end point is known to this (absolute, on the parameter's scale)."""
INNER_TOL = 1e-8
"""The chord-Newton steps of an inner minimisation stop when no parameter moves by more than this."""
INNER_MAXIT = 30
GRADIENT_STEP = 1e-5
"""Central differences for the inner gradients: step × max(1, |x|)."""
MAX_BRACKET_DOUBLINGS = 12


def parameter_names(model) -> list[str]:
    """lme4's names: ``.sig01, .sig02, ...`` for the random-effects SDs, then the fixed effects."""
    return [f".sig{k + 1:02d}" for k in range(model.devfun.n_theta)] + list(model.fixef.index)


def _check_scalar_terms(model) -> None:
    if any(b.q != 1 for b in model.design.blocks):
        raise ValueError("profile intervals are offered for scalar random-effects terms such as (1 | g) only "
                         "(this model has a vector-valued term); use method='Wald' for the fixed effects")


class _Profile:
    """D(v) for one parameter (module docstring)."""

    def __init__(self, model, index: int):
        self.devfun = model.devfun
        self.x_hat = np.r_[model.theta, model.optimum.beta]
        self.d_hat = model.deviance
        self.index = index
        self.bounds = model.devfun.theta_bounds + [(-np.inf, np.inf)] * model.devfun.p
        self.others = [k for k in range(len(self.x_hat)) if k != index]
        H = model.hessian
        self.H_oo = H[np.ix_(self.others, self.others)]
        self.path = -np.linalg.solve(self.H_oo, H[self.others, index])  # dz/dv at the optimum

    def full(self, v: float, z: np.ndarray) -> np.ndarray:
        x = np.empty_like(self.x_hat)
        x[self.index] = v
        x[self.others] = z
        return x

    def deviance(self, v: float) -> float:
        lower = np.array([self.bounds[k][0] for k in self.others])

        def f(z):
            return self.devfun(self.full(v, z))

        bounds = [self.bounds[k] for k in self.others]
        z = np.maximum(self.x_hat[self.others] + self.path * (v - self.x_hat[self.index]), lower)
        dev = f(z)
        for _ in range(INNER_MAXIT):
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

    def zeta(self, v: float) -> float:
        return float(np.sign(v - self.x_hat[self.index]) * np.sqrt(max(self.deviance(v) - self.d_hat, 0.0)))


def profile_deviance(model, parameter: str, values) -> pd.DataFrame:
    """D(v) and ζ(v) at the given values of one parameter (for a plot of the profile)."""
    _check_scalar_terms(model)
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
    _check_scalar_terms(model)
    names = parameter_names(model)
    if parameter not in names:
        raise ValueError(f"unknown parameter {parameter!r}; the parameters are {names}")
    j = names.index(parameter)
    prof = _Profile(model, j)
    z = stats.norm.isf((1 - level) / 2)
    x_hat = prof.x_hat[j]
    H = model.hessian
    try:
        scale = float(np.sqrt(max(2 * np.linalg.inv(H)[j, j], 1e-8)))
    except np.linalg.LinAlgError:
        scale = 0.1 * max(1.0, abs(x_hat))
    lower_bound = prof.bounds[j][0]
    ends = []
    with one_blas_thread():
        for side in (-1, 1):
            target = side * z
            step = scale * z
            v = x_hat + side * step
            for _ in range(MAX_BRACKET_DOUBLINGS):
                if side < 0 and v <= lower_bound:
                    v = lower_bound
                    break
                if side * prof.zeta(v) >= z:
                    break
                step *= 2
                v = x_hat + side * step
            if side < 0 and v == lower_bound and prof.zeta(v) > -z:
                ends.append(float(lower_bound))  # an SD whose whole lower side is inside the interval
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
