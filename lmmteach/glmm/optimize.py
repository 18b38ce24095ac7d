"""Minimise the GLMM deviance in lme4's two stages (``glmer``'s ``optimizeGlmer`` twice).

1. **θ alone**, with β moving inside PIRLS together with the random effects (lme4's nAGQ = 0 criterion,
   ``GlmerDeviance.stage1``): cheap and close to the optimum; COBYQA (scipy's successor of Powell's BOBYQA,
   lme4's default derivative-free optimiser) within θ's bounds (relative SDs ≥ 0);
2. **θ and β together**, starting from stage 1, on the Laplace (or adaptive quadrature) deviance
   (``GlmerDeviance.__call__``): the maximum-likelihood estimates.

Stage 2 for the Laplace approximation (nAGQ = 1) uses the **exact gradient** of the deviance
(:func:`lmmteach.glmm.laplace_gradient.laplace_gradient`) and then starts from θ₀ and the GLM's β without
stage 1 (``GlmerControl.stage1 = None``; measured: stage 1's 36 θ-only evaluations cost more than the
gradient evaluations they save, on VerbAgg and on 10⁵ crossed binary rows). The search, for a few θ's
(``GlmerControl.newton_max_theta``), is Newton's method with a cheap Hessian (:func:`hybrid_newton`: the θ columns
by forward differences of the gradient, the β block 2X'V⁻¹X from the PIRLS factor); for more θ's, or when it finds
no descent direction, L-BFGS-B within θ's bounds. Then Newton steps x ← x − H⁻¹g with H the Hessian lme4 also
computes at the end (its ``derivs``, for the convergence check and the standard errors), here by central
differences of the exact *gradient* (:func:`gradient_hessian`, 2k gradients instead of k(k + 1) deviances). The
convergence check (lme4's ``check.conv.grad``) reads the exact gradient.

For adaptive quadrature (nAGQ > 1) and the sparse Schur complement (no M⁻¹ entries) stage 2 keeps the
derivative-free path: COBYQA stopped early (trust region 1e-2), then Newton steps on the finite-difference
gradient and Hessian of the deviance (:func:`newton_polish`). The deviance is smooth enough for second
differences: PIRLS converges to the mode far below the difference step (:data:`lmmteach.glmm.pirls.PIRLS_TOL`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import Bounds, minimize

from ..lmm.optimize import one_blas_thread

from .laplace import GlmerDeviance
from .laplace_gradient import has_exact_gradient, laplace_gradient

__all__ = ["GlmerControl", "GlmerOptimum", "optimize_glmer", "central_gradient", "difference_derivatives",
           "newton_polish", "free_parameters", "gradient_hessian", "newton_polish_gradient"]


@dataclass(frozen=True)
class GlmerControl:
    """Settings of the two stages (lme4's ``glmerControl``): gradient tolerance, iteration limits, the
    difference step, and whether to run the first stage at all (``stage1``, lme4's ``nAGQ0initStep``)."""

    stage1_radius: float = 1e-5  # COBYQA's final trust-region radius, stage 1 (θ only, a starting point)
    stage2_radius: float = 1e-2  # and stage 2 (then Newton steps finish)
    newton_steps: int = 6  # most Newton steps after stage 2's search
    newton_tol: float = 1e-7  # stop when no parameter moves by more than this
    initial_radius: float = 0.05  # the first trust-region radius of stage 2 (it starts near the optimum)
    maxfev: int = 5000
    fd_step: float = 1e-5  # central differences for the final gradient: step × max(1, |x|)
    stage1: bool | None = None  # None: on for the derivative-free stage 2, off with the exact gradient (see below)
    check_gradient_tol: float = 2e-3  # lme4's check.conv.grad tolerance: warn if max|gradient| exceeds it
    hessian_step: float = 1e-3  # second differences: step × max(1, |x|) (see newton_polish)
    nagq0_radius: float = 1e-7  # nAGQ = 0: stage 1 is the fit, so it runs to this radius
    hessian_reuse: float = 1e-4  # after a Newton step shorter than this, H is retaken (see newton_polish)
    exact_gradient: bool = True  # nAGQ = 1: stage 2 on the exact gradient (stage2: Newton or L-BFGS-B; else COBYQA)
    lbfgs_gtol: float = 1e-3  # L-BFGS-B stops when max|projected gradient| is below this (Newton steps finish)
    lbfgs_ftol: float = 1e-12  # or when the deviance decreases by less than this relative amount
    gradient_hessian_step: float = 1e-4  # the Hessian from gradient differences: step × max(1, |x|)
    stage2: str = "newton"  # exact-gradient search: "newton" (hybrid_newton, L-BFGS-B its fallback) or "lbfgs"
    newton_max_theta: int = 4  # "newton" only for at most this many θ's (each iteration costs 1 + n_θ gradients)
    newton_maxit: int = 30  # most iterations of the "newton" search
    hybrid_step_tol: float = 5e-5  # the "newton" search stops when its step would move no parameter by more
    #                                (below hessian_reuse, so that the polish's H serves the standard errors)


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
    hessian: np.ndarray | None = None  # ∂²(−2 log L)/∂(θ, β)² at the optimum (None if not computed)


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
    if devfun.nAGQ == 0:  # lme4's nAGQ = 0: the first stage is the fit (tightly converged)
        return _stage1_fit(devfun, theta, theta_bounds, replace(control, stage1_radius=control.nagq0_radius), log)
    exact = control.exact_gradient and has_exact_gradient(devfun)
    if control.stage1 or (control.stage1 is None and not exact):
        r1 = _cobyqa(devfun.stage1, theta, theta_bounds, control.stage1_radius, control)
        theta = r1.x
        beta = devfun.modes(theta).beta  # β of the joint PIRLS solution at stage 1's θ
        log.append(f"stage 1 (theta, beta in PIRLS): deviance {r1.fun:.6f} after {r1.nfev} evaluations, "
                   f"theta = {np.round(theta, 5)}")
    bounds = theta_bounds + [(-np.inf, np.inf)] * devfun.p
    if exact:
        if beta0 is None and not control.stage1:  # β of the joint PIRLS mode at θ₀ (the conditional scale)
            beta = devfun.modes(theta).beta
            log.append("beta from PIRLS at the starting theta (beta moving with u)")
        return _stage2_gradient(devfun, np.r_[theta, beta], bounds, control, theta, log)
    r2 = _cobyqa(devfun, np.r_[theta, beta], bounds, control.stage2_radius, control, control.initial_radius)
    log.append(f"stage 2 (theta and beta, nAGQ = {devfun.nAGQ}): deviance {r2.fun:.6f} after {r2.nfev} evaluations "
               f"({r2.message})")
    x, dev, grad, H, steps = newton_polish(devfun, r2.x, float(r2.fun), bounds, control)
    free = free_parameters(x, grad, bounds)
    gmax = float(np.max(np.abs(grad[free]))) if free.any() else 0.0
    converged = gmax < control.check_gradient_tol
    log.append(f"Newton: {steps} step(s), deviance {dev:.10g}; max|gradient| = {gmax:.2g}")
    devfun(x)  # leaves the modes of the optimum as the devfun's last ones
    n = devfun.n_theta
    return GlmerOptimum(x[:n], x[n:], float(dev), grad, converged, devfun.n_eval, str(r2.message),
                        theta.copy(), tuple(log), H)


def _stage2_gradient(devfun: GlmerDeviance, x0, bounds, control: GlmerControl, stage1_theta,
                     log: list) -> GlmerOptimum:
    """Stage 2 on the exact gradient: the quasi-Newton search of :func:`hybrid_newton` (few θ's) or L-BFGS-B
    within the bounds (many θ's, or when the first stops without a descent direction), then Newton steps with the
    Hessian from gradient differences (:func:`newton_polish_gradient`), which is also the H of the standard
    errors."""

    def gradfun(x):
        return laplace_gradient(devfun, x)

    n = devfun.n_theta
    x0 = np.asarray(x0, float)
    if control.stage2 not in ("newton", "lbfgs"):
        raise ValueError(f"GlmerControl.stage2 must be 'newton' or 'lbfgs', not {control.stage2!r}")
    if control.stage2 == "newton" and n <= control.newton_max_theta:
        x, f, g, iterations, done = hybrid_newton(devfun, gradfun, x0, bounds, control)
        log.append(f"stage 2 (theta and beta, nAGQ = 1, exact gradient, Newton with the beta block 2X'V^-1X): "
                   f"deviance {f:.6f} after {iterations} iteration(s), {devfun.n_eval} PIRLS runs")
        if done:
            return _finish_gradient(devfun, gradfun, x, f, g, bounds, control, stage1_theta, log, "converged")
        x0 = x  # no descent direction: L-BFGS-B from here
    # Speed only: L-BFGS-B in (θ, γ) with β = β₀ + L⁻ᵀγ, LL' = 2X'V⁻¹X at the start (the deviance's curvature
    # in β at fixed θ and W), so that the β block starts well conditioned (about the identity)
    A = devfun.modes(x0[:n], x0[n:]).solve.evaluation.A
    try:
        Lc = np.linalg.cholesky(2.0 * (A + A.T) / 2)
    except np.linalg.LinAlgError:
        Lc = np.eye(devfun.p)

    def to_x(v):
        return np.r_[v[:n], x0[n:] + solve_triangular(Lc, v[n:], lower=True, trans="T")]

    def scaled(v):
        f, g = gradfun(to_x(v))
        return f, np.r_[g[:n], solve_triangular(Lc, g[n:], lower=True)]

    r2 = minimize(scaled, np.r_[x0[:n], np.zeros(devfun.p)], jac=True, method="L-BFGS-B", bounds=bounds,
                  options={"gtol": control.lbfgs_gtol, "ftol": control.lbfgs_ftol, "maxfun": control.maxfev,
                           "maxiter": control.maxfev})
    r2.x, r2.jac = to_x(r2.x), gradfun(to_x(r2.x))[1]
    log.append(f"stage 2 (theta and beta, nAGQ = 1, exact gradient): deviance {r2.fun:.6f} after {r2.nfev} "
               f"L-BFGS-B evaluations ({r2.message})")
    return _finish_gradient(devfun, gradfun, r2.x, float(r2.fun), np.asarray(r2.jac, float), bounds, control,
                            stage1_theta, log, str(r2.message))


def _finish_gradient(devfun, gradfun, x, f, g, bounds, control, stage1_theta, log, message) -> GlmerOptimum:
    n = devfun.n_theta
    devfun(x)  # x's modes (pinned by the search, else one PIRLS run from its last evaluation, next to x)
    devfun.pin()  # kept while the Hessian evaluates around x
    x, dev, grad, H, steps = newton_polish_gradient(gradfun, x, f, g, bounds, control)
    free = free_parameters(x, grad, bounds)
    gmax = float(np.max(np.abs(grad[free]))) if free.any() else 0.0
    log.append(f"Newton (exact gradient): {steps} step(s), deviance {dev:.10g}; max|gradient| = {gmax:.2g}")
    devfun(x)  # leaves the modes of the optimum as the devfun's last ones
    return GlmerOptimum(x[:n], x[n:], float(dev), grad, gmax < control.check_gradient_tol, devfun.n_eval,
                        message, np.asarray(stage1_theta, float).copy(), tuple(log), H)


EIGENVALUE_FLOOR = 1e-6
"""hybrid_newton: the Hessian's eigenvalues are replaced by their absolute values, floored at this times the
largest (a negative or zero curvature far from the optimum would not give a descent direction)."""


BOUNDARY_FRACTION = 0.1
"""hybrid_newton: one step takes a θ at most this fraction of the way to its lower bound, unless it is within
BOUNDARY_JUMP of it. The deviance is even in a scalar term's θ (f(θ) = f(−θ)), so θ = 0 is a stationary
point: a long step clipped at the bound could stop there although f falls as θ grows (a saddle)."""
BOUNDARY_JUMP = 1e-4


def boundary_floor(x, lower) -> np.ndarray:
    """The lowest value each parameter may take in one :func:`hybrid_newton` step (:data:`BOUNDARY_FRACTION`)."""
    finite = np.isfinite(lower)
    gap = np.where(finite, x - np.where(finite, lower, 0.0), np.inf)
    return np.where(finite & (gap > BOUNDARY_JUMP), lower + BOUNDARY_FRACTION * np.where(finite, gap, 0.0), lower)


def _short(delta, control: GlmerControl) -> bool:
    """Whether a Newton direction would move no parameter by more than ``control.hybrid_step_tol``."""
    return delta is not None and float(np.max(np.abs(delta))) <= control.hybrid_step_tol


HYBRID_PIRLS_TOL = 1e-7
"""PIRLS's tolerance for the gradients of :func:`hybrid_newton`'s difference columns: an approximate H needs them
to about 1e-3 relative only, and PIRLS then stops after one solve from its first-order start (speed only)."""


def _hybrid_hessian(devfun, x, g, upper, control: GlmerControl) -> np.ndarray | None:
    """:func:`hybrid_newton`'s H at x (g = ∇f(x)), made positive definite: its eigenvalues replaced by their
    absolute values floored at EIGENVALUE_FLOOR times the largest (far from the optimum H may be indefinite)."""
    n = devfun.n_theta
    modes = devfun.last_modes
    if modes is None:
        return None
    A = modes.solve.evaluation.A  # at x: the PIRLS run of gradfun(x) is the devfun's last one
    H = np.empty((len(x), len(x)))
    for k in range(n):
        h = control.gradient_hessian_step * max(1.0, abs(x[k]))
        up = x.copy()
        up[k] = x[k] + h if x[k] + h <= upper[k] else x[k] - h
        H[:, k] = (laplace_gradient(devfun, up, HYBRID_PIRLS_TOL)[1] - g) / (up[k] - x[k])
    H[:n, :n] = (H[:n, :n] + H[:n, :n].T) / 2
    H[:n, n:] = H[n:, :n].T
    H[n:, n:] = A + A.T  # 2X'V⁻¹X
    values, vectors = np.linalg.eigh(H)
    if not np.all(np.isfinite(values)) or values[-1] <= 0:
        return None
    values = np.maximum(np.abs(values), EIGENVALUE_FLOOR * values[-1])
    return (vectors * values) @ vectors.T


def hybrid_newton(devfun: GlmerDeviance, gradfun, x, bounds, control: GlmerControl):
    """Newton's method on f(θ, β) with a cheap Hessian: the columns of θ by forward differences of the exact
    gradient (n_θ gradients), the β block by 2X'V⁻¹X at the current modes (the curvature of the penalised
    deviance in β with ũ following; log|M| adds a part smaller by about the number of random effects over n),

        H ≈ [[ (∇f(x + h e_k) − ∇f(x))_θ / h_k,  ... ],
             [ (∇f(x + h e_k) − ∇f(x))_β / h_k,  2X'V⁻¹X ]],   symmetrised,

    made positive definite (:func:`_hybrid_hessian`), a projected step (θ at a bound with the gradient pushing
    out stays; a θ goes at most :data:`BOUNDARY_FRACTION` of the way to 0) halved until f does not rise. An
    iteration costs 1 + n_θ gradients where L-BFGS-B must learn the β block's curvature over many; so this runs
    for few θ's (``control.newton_max_theta``). Stops when the step would move no parameter by more than
    ``control.hybrid_step_tol``, judged first with the last iteration's H (which saves its n_θ gradients); then
    :func:`newton_polish_gradient` finishes with the full difference Hessian (which it need not retake). Returns
    x, f, g, iterations and whether it stopped there (False: no descent direction; L-BFGS-B takes over)."""
    lower = np.array([lo for lo, _ in bounds])
    upper = np.array([hi for _, hi in bounds])
    f, g = gradfun(x)
    devfun.pin()  # the modes at x, for when the search ends here after evaluating around it
    H = None
    for it in range(1, control.newton_maxit + 1):
        if H is not None and _short(newton_direction(x, g, H, bounds), control):
            return x, f, g, it, True  # the last H already predicts a step too short to matter
        H = _hybrid_hessian(devfun, x, g, upper, control)
        if H is None:
            return x, f, g, it, False
        delta = newton_direction(x, g, H, bounds)
        if _short(delta, control):
            return x, f, g, it, True
        step = None if delta is None else newton_step(gradfun, x, delta, f, boundary_floor(x, lower), upper)
        if step is None:
            return x, f, g, it, False
        x, (f, g) = step
        devfun.pin()
    return x, f, g, control.newton_maxit, False


def gradient_hessian(gradfun, x, bounds, step: float) -> np.ndarray:
    """H = ∂²f/∂x² by central differences of the exact gradient, column by column,

        H_·k = [∇f(x + h_k e_k) − ∇f(x − h_k e_k)] / (2h_k),   h_k = step × max(1, |x_k|),

    symmetrised (H + H')/2 -- 2k gradient evaluations (k(k + 1) deviances for second differences of f). The
    centre is moved inside θ's bounds by h (as :func:`newton_polish`), so no θ leaves its range."""
    x = np.asarray(x, float)
    lower = np.array([lo for lo, _ in bounds])
    upper = np.array([hi for _, hi in bounds])
    h = step * np.maximum(1.0, np.abs(x))
    centre = np.clip(x, lower + h, upper - h)
    H = np.empty((len(x), len(x)))
    for k in range(len(x)):
        up, down = centre.copy(), centre.copy()
        up[k] += h[k]
        down[k] -= h[k]
        H[:, k] = (gradfun(up)[1] - gradfun(down)[1]) / (2 * h[k])
    return (H + H.T) / 2


def newton_direction(x, g, H, bounds) -> np.ndarray | None:
    """The Newton direction −H⁻¹g on the free parameters (θ at a bound with the gradient pushing out stays, its
    entry 0), or None when there is none (nothing free, H singular, not a descent direction)."""
    lower = np.array([lo for lo, _ in bounds])
    free = free_parameters(x, g, bounds) & ~((x <= lower) & (g > 0))
    if not free.any():
        return None
    try:
        delta = np.zeros_like(x)
        delta[free] = -np.linalg.solve(H[np.ix_(free, free)], g[free])
    except np.linalg.LinAlgError:
        return None
    if not np.all(np.isfinite(delta)) or g @ delta >= 0:
        return None
    return delta


def newton_step(evaluate, x, delta, f0: float, lower, upper):
    """The step x + t·delta (clipped to the bounds), t halved from 1 until f does not rise (``evaluate(x)`` returns
    a tuple whose first entry is f). Returns (the new x, ``evaluate`` there), or None when no t ≥ 1e-3 lowers f."""
    t = 1.0
    while t > 1e-3:
        trial = np.clip(x + t * delta, lower, upper)
        out = evaluate(trial)
        if out[0] <= f0:
            return trial, out
        t /= 2
    return None


def newton_polish_gradient(gradfun, x, f0: float, g, bounds, control: GlmerControl):
    """Newton steps x ← x − H⁻¹g on the free parameters with the exact gradient g (``gradfun(x)`` = (f, g)) and
    H from :func:`gradient_hessian`, halving a step that does not lower f (θ at a bound stays there). H is
    retaken at the end if x moved by more than ``control.hessian_reuse`` since (it is the H of the standard
    errors). Returns x, f(x), g, H, steps."""
    lower = np.array([lo for lo, _ in bounds])
    upper = np.array([hi for _, hi in bounds])
    H = gradient_hessian(gradfun, x, bounds, control.gradient_hessian_step)
    at, steps = x, 0
    while steps < control.newton_steps:
        delta = newton_direction(x, g, H, bounds)
        if delta is None or float(np.max(np.abs(delta))) <= control.newton_tol:
            break  # (converged: the step would move no parameter by more than newton_tol)
        step = newton_step(gradfun, x, delta, f0, lower, upper)
        if step is None:
            break
        x, (f0, g) = step
        steps += 1
    if float(np.max(np.abs(x - at))) > control.hessian_reuse:  # the H of the standard errors, at the optimum
        H = gradient_hessian(gradfun, x, bounds, control.gradient_hessian_step)
        f0, g = gradfun(x)
    return x, f0, g, H, steps


def _stage1_fit(devfun: GlmerDeviance, theta, theta_bounds, control: GlmerControl, log: list) -> GlmerOptimum:
    """The fit for nAGQ = 0: θ minimises the Laplace deviance with β inside PIRLS; β is PIRLS's at that θ."""
    r1 = _cobyqa(devfun.stage1, theta, theta_bounds, control.stage1_radius, control)
    x, dev, grad, _, steps = newton_polish(devfun.stage1, r1.x, float(r1.fun), theta_bounds, control)
    free = free_parameters(x, grad, theta_bounds)
    gmax = float(np.max(np.abs(grad[free]))) if free.any() else 0.0
    modes = devfun.modes(x)
    log.append(f"nAGQ = 0 (theta, beta in PIRLS): deviance {dev:.10g} after {r1.nfev} evaluations and {steps} "
               f"Newton step(s); max|gradient| = {gmax:.2g}")
    return GlmerOptimum(x, modes.beta, float(modes.laplace_deviance), grad, gmax < control.check_gradient_tol,
                        devfun.n_eval, str(r1.message), x.copy(), tuple(log))


def free_parameters(x, grad, bounds) -> np.ndarray:
    """Which parameters are free: not at a bound with the gradient pushing outwards."""
    return np.array([not ((x[k] <= lo and grad[k] > 0) or (x[k] >= hi and grad[k] < 0))
                     for k, (lo, hi) in enumerate(bounds)])


def difference_derivatives(fun, x, f0: float, h) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian of f at x by central differences with steps h, from k(k + 1) evaluations (the
    f(x ± h_i) serve the gradient, the diagonal and every off-diagonal element that involves i):
    g_i = [f(x + h_i) − f(x − h_i)] / (2h_i),  H_ii = [f(x + h_i) − 2f(x) + f(x − h_i)] / h_i²,
    H_ij = [f(x + h_i + h_j) + f(x − h_i − h_j) − f(x + h_i) − f(x − h_i) − f(x + h_j) − f(x − h_j) + 2f(x)]
    / (2h_ih_j)  (error O(h²) as the four-point formula's, with two evaluations per pair instead of four)."""
    k = len(x)
    E = np.diag(h)
    g, H = np.empty(k), np.empty((k, k))
    up, down = np.empty(k), np.empty(k)
    for i in range(k):
        up[i], down[i] = fun(x + E[i]), fun(x - E[i])
        g[i] = (up[i] - down[i]) / (2 * h[i])
        H[i, i] = (up[i] - 2 * f0 + down[i]) / (h[i] * h[i])
        for j in range(i):
            H[i, j] = H[j, i] = (fun(x + E[i] + E[j]) + fun(x - E[i] - E[j]) - up[i] - down[i] - up[j] - down[j]
                                 + 2 * f0) / (2 * h[i] * h[j])
    return g, H


def newton_polish(fun, x, f0: float, bounds, control: GlmerControl):
    """Newton steps x ← x − H⁻¹g on the free parameters (θ at a bound stays there), halving a step that does not
    lower f; the differences are taken at a centre moved inside θ's bounds. H is taken at the start; while the
    steps are longer than ``control.hessian_reuse`` the next one takes a new gradient only (2k evaluations instead
    of k(k + 1)): with H from a nearby point each step still shrinks the distance to the optimum by the relative
    error of H. After a shorter step H is taken again where x is now (unless it was taken within
    ``hessian_reuse`` of it): the last steps are then Newton's, and it is the H of the standard errors.
    Returns x, f(x), g, H, steps."""
    lower = np.array([lo for lo, _ in bounds])
    upper = np.array([hi for _, hi in bounds])
    steps = 0
    H, g, at, moved = None, None, x, np.inf

    def derivatives(x, f0):
        h = control.hessian_step * np.maximum(1.0, np.abs(x))
        centre = np.clip(x, lower + h, upper - h)
        fc = f0 if np.array_equal(centre, x) else fun(centre)
        g, H = difference_derivatives(fun, centre, fc, h)
        return g + H @ (x - centre), H  # the gradient at x, from the quadratic model around the centre

    while True:
        if H is None or (moved <= control.hessian_reuse and float(np.max(np.abs(x - at))) > control.hessian_reuse):
            g, H = derivatives(x, f0)
            at = x
        elif g is None:
            g = central_gradient(fun, x, bounds, control.fd_step)
        if steps >= control.newton_steps:
            break
        delta = newton_direction(x, g, H, bounds)
        step = None if delta is None else newton_step(lambda z: (fun(z),), x, delta, f0, lower, upper)
        if step is None:
            break
        trial, (ft,) = step
        moved = float(np.max(np.abs(trial - x)))
        x, f0, g = trial, ft, None
        steps += 1
        if moved <= control.newton_tol:
            break
    if float(np.max(np.abs(x - at))) > control.hessian_reuse:  # the H of the standard errors, at the optimum
        g, H = derivatives(x, f0)
    elif g is None:
        g = central_gradient(fun, x, bounds, control.fd_step)
    return x, f0, g, H, steps
