"""Minimise the profiled deviance over θ (lme4's ``optimizeLmer``).

Only the covariance parameters θ are searched: b̂ and σ̂² have closed forms given θ
(see :mod:`lmmteach.deviance`). We use L-BFGS-B with the exact gradient and the structures' bounds
(relative SDs ≥ 0, correlations in [−1, 1]), then report honestly: converged or not, iterations,
evaluations, and the size of the gradient where the search stopped (the *projected* gradient: at a
bound, only the part pointing into the parameter space counts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize


@dataclass(frozen=True)
class OptimizerResult:
    theta: np.ndarray
    deviance: float
    converged: bool
    n_iter: int
    n_eval: int
    gradient: np.ndarray
    gradient_norm: float
    message: str
    method: str = "L-BFGS-B (exact gradient)"


def projected_gradient(theta, grad, bounds) -> np.ndarray:
    """The gradient with components removed that push against an active bound."""
    g = np.array(grad, float)
    for k, (lo, hi) in enumerate(bounds):
        if np.isfinite(lo) and theta[k] <= lo + 1e-10 and g[k] > 0:
            g[k] = 0.0
        if np.isfinite(hi) and theta[k] >= hi - 1e-10 and g[k] < 0:
            g[k] = 0.0
    return g


def optimize_lmer(devfun, theta0=None, gtol: float = 1e-6, maxiter: int = 2000) -> OptimizerResult:
    """Minimise ``devfun`` (a :class:`~lmmteach.deviance.ProfiledDeviance`) from ``theta0``.

    Converged means: the optimiser stopped normally and the projected gradient of the deviance has
    max-norm below ``1e-3`` (a change of θ by 0.01 then moves the log-likelihood by less than 1e-5).
    """
    theta0 = devfun.theta0 if theta0 is None else np.asarray(theta0, float)
    bounds = devfun.bounds
    theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    n_eval = 0

    def fun(theta):
        nonlocal n_eval
        n_eval += 1
        e = devfun.evaluate(theta, gradient=True)
        return e.deviance, e.gradient

    n_iter, res = 0, None
    start = theta0
    for _ in range(3):  # a restart from the optimum polishes what the quasi-Newton memory missed
        res = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": 1e-15, "gtol": gtol, "maxcor": 20})
        n_iter += int(res.nit)
        moved = np.max(np.abs(res.x - start)) if start is not None else np.inf
        start = res.x
        if moved < 1e-8:
            break
    theta = np.asarray(res.x, float)
    e = devfun.evaluate(theta, gradient=True)
    g = projected_gradient(theta, e.gradient, bounds)
    gnorm = float(np.max(np.abs(g))) if g.size else 0.0
    ok = bool(np.isfinite(e.deviance)) and gnorm < 1e-3
    msg = str(res.message)
    return OptimizerResult(theta, e.deviance, ok, n_iter, n_eval, e.gradient, gnorm, msg)
