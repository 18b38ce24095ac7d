"""Minimise the GLMM deviance in lme4's two stages (``glmer``'s ``optimizeGlmer`` twice).

1. **θ alone**, with β moving inside PIRLS together with the random effects (lme4's nAGQ = 0 criterion,
   ``GlmerDeviance.stage1``): cheap and close to the optimum;
2. **θ and β together**, starting from stage 1, on the Laplace (or adaptive quadrature) deviance
   (``GlmerDeviance.__call__``): the maximum-likelihood estimates.

Both stages use COBYQA (scipy's successor of Powell's BOBYQA, lme4's default derivative-free optimiser)
within θ's bounds (relative SDs ≥ 0); a final check computes the gradient by central differences and
reports it, as lme4's convergence check does (the deviance is smooth: PIRLS converges to the mode far below
the difference step, :data:`lmmteach.glmm.pirls.PIRLS_TOL`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import Bounds, minimize

from ..lmm.optimize import one_blas_thread

from .laplace import GlmerDeviance

__all__ = ["GlmerControl", "GlmerOptimum", "optimize_glmer", "central_gradient"]


@dataclass(frozen=True)
class GlmerControl:
    """Settings of the two stages (lme4's ``glmerControl``): gradient tolerance, iteration limits, the
    difference step, and whether to run the first stage at all (``stage1``, lme4's ``nAGQ0initStep``)."""

    stage1_radius: float = 1e-5  # COBYQA's final trust-region radius, stage 1 (θ only, a starting point)
    stage2_radius: float = 1e-7  # and stage 2 (the estimates)
    initial_radius: float = 0.1  # the first trust-region radius of stage 2 (it starts near the optimum)
    maxfev: int = 5000
    fd_step: float = 1e-5  # central differences for the final gradient: step × max(1, |x|)
    stage1: bool = True
    check_gradient_tol: float = 2e-3  # lme4's check.conv.grad tolerance: warn if max|gradient| exceeds it


@dataclass(frozen=True)
class GlmerOptimum:
    """The optimum: θ, β, the deviance −2 log L, the gradient at the end, and what the search did."""

    theta: np.ndarray
    beta: np.ndarray
    deviance: float
    gradient: np.ndarray
    converged: bool
    n_eval: int
    message: str
    stage1_theta: np.ndarray = field(default_factory=lambda: np.empty(0))
    log: tuple = ()


def central_gradient(fun, x, bounds, step: float) -> np.ndarray:
    """∂f/∂x_k by central differences (one-sided at a bound)."""
    x = np.asarray(x, float)
    g = np.empty_like(x)
    for k in range(len(x)):
        h = step * max(1.0, abs(x[k]))
        lo, hi = bounds[k]
        up, down = x.copy(), x.copy()
        up[k] = min(x[k] + h, hi)
        down[k] = max(x[k] - h, lo)
        g[k] = (fun(up) - fun(down)) / (up[k] - down[k])
    return g


def _cobyqa(fun, x0, bounds, radius: float, control: GlmerControl, initial: float | None = None):
    lower, upper = zip(*bounds)
    options = {"final_tr_radius": radius, "maxfev": control.maxfev}
    if initial is not None:
        options["initial_tr_radius"] = initial
    return minimize(fun, x0, method="COBYQA", bounds=Bounds(lower, upper), options=options)


def optimize_glmer(devfun: GlmerDeviance, control: GlmerControl | None = None, theta0=None,
                   beta0=None) -> GlmerOptimum:
    """lme4's two stages (module docstring), from θ₀ (default 1 for SDs, 0 for correlations) and the GLM's β."""
    control = control or GlmerControl()
    with one_blas_thread():  # tiny matrices: a multi-threaded BLAS only adds overhead
        return _optimize(devfun, control, theta0, beta0)


def _optimize(devfun: GlmerDeviance, control: GlmerControl, theta0, beta0) -> GlmerOptimum:
    theta_bounds = devfun.theta_bounds
    theta = devfun.theta0 if theta0 is None else np.asarray(theta0, float)
    beta = devfun.beta_glm if beta0 is None else np.asarray(beta0, float)
    log = [f"start: theta = {np.round(theta, 5)}, beta from the GLM without random effects"]
    if control.stage1:
        r1 = _cobyqa(devfun.stage1, theta, theta_bounds, control.stage1_radius, control)
        theta = r1.x
        beta = devfun.modes(theta).beta  # β of the joint PIRLS solution at stage 1's θ
        log.append(f"stage 1 (theta, beta in PIRLS): deviance {r1.fun:.6f} after {r1.nfev} evaluations, "
                   f"theta = {np.round(theta, 5)}")
    bounds = theta_bounds + [(-np.inf, np.inf)] * devfun.p
    r2 = _cobyqa(devfun, np.r_[theta, beta], bounds, control.stage2_radius, control, control.initial_radius)
    x = r2.x
    grad = central_gradient(devfun, x, bounds, control.fd_step)
    free = np.array([not ((lo == x[k] and grad[k] > 0) or (hi == x[k] and grad[k] < 0))
                     for k, (lo, hi) in enumerate(bounds)])
    gmax = float(np.max(np.abs(grad[free]))) if free.any() else 0.0
    converged = bool(r2.success or gmax < control.check_gradient_tol)
    log.append(f"stage 2 (theta and beta, nAGQ = {devfun.nAGQ}): deviance {r2.fun:.6f} after {r2.nfev} evaluations "
               f"({r2.message}); max|gradient| = {gmax:.2g}")
    dev = devfun(x)  # leaves the modes of the optimum as the devfun's last ones
    n = devfun.n_theta
    return GlmerOptimum(x[:n], x[n:], float(dev), grad, converged, devfun.n_eval, str(r2.message),
                        theta.copy(), tuple(log))
