"""Minimise the profiled deviance over θ (lme4's ``optimizeLmer``).

Only the covariance parameters θ are searched: b̂ and σ̂² have closed forms given θ
(see :mod:`lmmteach.lmm.profiled`). Every engine (one grouping factor, several, gls) has the exact gradient,
so the search is the same for all: L-BFGS-B with the structures' bounds (relative SDs ≥ 0, correlations in
[−1, 1]), then Newton steps, then an honest report: converged or not, iterations, evaluations, and the
size of the gradient where the search stopped (the *projected* gradient: at a bound, only the part
pointing into the parameter space counts). ``LmerControl(optimizer="COBYQA")`` gives a derivative-free
search instead (lme4's BOBYQA), for comparison; it is also the search of an engine without an exact
gradient (``devfun.search``: the sparse Schur complement, :mod:`lmmteach.lmm.sparse_schur`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import Bounds, minimize

from .._util import fd_hessian
from .control import DEFAULT_CONTROL, LmerControl

if TYPE_CHECKING:
    from .profiled import DevianceFunction

__all__ = ["OptimizerResult", "projected_gradient", "boundary_escape", "staged_start", "default_start", "hessian",
           "newton_polish", "one_blas_thread", "optimize_lmer", "WarmRefits", "optimize_warm", "optimize_warm_many",
           "bfgs_update"]

FD_STEP = DEFAULT_CONTROL.fd_step
"""Relative step (times θ's typical scale) of the finite-difference Hessian in the Newton polish."""


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
    evaluation: Any = field(default=None, repr=False, compare=False)  # the deviance evaluation at θ, if kept
    log: tuple = field(default=(), repr=False, compare=False)  # the fit log: what the search did, step by step


def projected_gradient(theta, grad, bounds) -> np.ndarray:
    """The gradient with components removed that push against an active bound."""
    g = np.array(grad, float)
    for k, (lo, hi) in enumerate(bounds):
        if np.isfinite(lo) and theta[k] <= lo + 1e-10 and g[k] > 0:
            g[k] = 0.0
        if np.isfinite(hi) and theta[k] >= hi - 1e-10 and g[k] < 0:
            g[k] = 0.0
    return g


def boundary_escape(devfun, theta, rel: float = DEFAULT_CONTROL.boundary_probe,
                    restart_at: float = DEFAULT_CONTROL.boundary_restart_at):
    """If θ sits at a zero lower bound where the deviance still decreases into the parameter space, return
    a point just inside; else None.

    With C = Λ Λ' quadratic in an SD-type θ_k, ∂C/∂θ_k = 0 at θ_k = 0, so the gradient vanishes there even
    when the deviance would fall as the variance grows (a saddle for gradient methods; lme4's derivative-free
    BOBYQA never sees it). The test uses the gradient with respect to C itself:  tr[(∂D/∂C) ΔC] < 0  for the
    change ΔC = C(θ + δ e_k) − C(θ).
    """
    scale = devfun.theta0
    at_zero = [k for k, (lo, _) in enumerate(devfun.bounds) if lo == 0.0 and theta[k] <= 2e-6 * max(1.0, abs(scale[k]))]
    if not at_zero:
        return None
    e = devfun.evaluate(theta, gradient=True)
    C0 = devfun.relcov(theta)
    best_k, best_slope = None, 0.0
    for k in at_zero:
        step = np.array(theta, float)
        step[k] = rel * abs(scale[k])
        dC = devfun.relcov(step) - C0
        slope = float(np.sum(e.dC * dC)) / max(float(np.sum(dC * dC)) ** 0.5, 1e-300)
        if slope < best_slope - 1e-8:
            best_k, best_slope = k, slope
    if best_k is None:
        return None
    out = np.array(theta, float)
    out[best_k] = restart_at * abs(scale[best_k])  # restart well inside, at a tenth of the starting size
    return out


def staged_start(devfun) -> np.ndarray:
    """Starting θ. An unstructured block with several random effects starts from the fit in which they are
    independent (variance components: a smaller, better-behaved problem), as a careful analyst would;
    the quasi-Newton search then only has to find the correlations."""
    from .covariance import Unstructured, VarianceComponents

    theta0 = devfun.theta0
    if not _has_correlations(devfun):
        return theta0
    simple = [VarianceComponents(s.q) if isinstance(s, Unstructured) else s for s in devfun.structures]
    pre = devfun.with_structures(simple)
    fit = optimize_lmer(pre, theta0=pre.theta0, polish=False)
    out = []
    for s, t_simple, t0 in zip(devfun.structures, pre.split(fit.theta), devfun.split(theta0)):
        if isinstance(s, Unstructured) and s.q > 1:
            t = np.zeros(s.n_params)
            t[s._rows == s._cols] = np.maximum(t_simple, 0.1 * t0[s._rows == s._cols])
            out.append(t)
        else:
            out.append(t_simple)
    return np.concatenate(out)


def default_start(devfun) -> tuple[np.ndarray, str]:
    """The starting θ and how it was found. With one grouping factor, :func:`staged_start`. With several,
    one-factor fits: for each grouping factor, the model with only that factor's terms, fitted by the fast
    one-factor path (cheap). Each one overstates its factor's variance a little (it also carries what the
    other factors explain), but it starts the search near the optimum instead of at lme4's θ = 1."""
    parts = devfun.factor_deviances()
    if len(parts) == 1:
        staged = _has_correlations(devfun)
        return staged_start(devfun), "staged (variance components first)" if staged else "lme4"
    pieces = devfun.split(devfun.theta0)
    for ks, one in parts:
        if one is None:  # keep lme4's start for this factor
            continue
        try:
            theta = optimize_lmer(one, polish=False).theta
        except (ValueError, np.linalg.LinAlgError):
            continue
        for k, t in zip(ks, one.split(theta)):
            pieces[k] = t
    return np.concatenate(pieces), "one-factor fits"


def hessian(devfun, theta, free, step: float = FD_STEP) -> np.ndarray:
    """Second derivatives of the deviance over the free θ's: forward differences of the exact gradient
    (:func:`lmmteach._util.fd_hessian`), stepping backwards next to an upper bound."""
    scale = devfun.theta_scale[free]
    hi = np.array([devfun.bounds[i][1] for i in free])
    h = step * scale * np.where(theta[free] + step * scale <= hi, 1.0, -1.0)

    def gradient(x):
        tp = theta.copy()
        tp[free] = x
        return devfun.evaluate(tp, gradient=True).gradient[free]

    return fd_hessian(None, theta[free], h, gradient=gradient)


def _free(theta, bounds) -> list[int]:
    return [k for k, (lo, hi) in enumerate(bounds)
            if not (np.isfinite(lo) and theta[k] <= lo + 1e-12) and not (np.isfinite(hi) and theta[k] >= hi - 1e-12)]


def newton_polish(devfun, theta, max_steps: int = DEFAULT_CONTROL.newton_steps,
                  decrement_tol: float = DEFAULT_CONTROL.decrement_tol, fd_step: float = FD_STEP):
    """Newton steps on the parameters that are not at a bound, from where the quasi-Newton search stopped,
    with one Hessian reused for every step; returns (θ, Newton decrement).

    The decrement ½ g'H⁻¹g is the deviance the next step would still gain: below 1e-6 the log-likelihood is
    within 5e-7 of its maximum, which is our convergence test."""
    bounds = devfun.bounds
    theta = np.array(theta, float)
    e = devfun.evaluate(theta, gradient=True)
    free = _free(theta, bounds)
    if not free:
        return theta, 0.0
    H = hessian(devfun, theta, free, fd_step)
    if not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
        # flat or curved-down directions (e.g. a correlation whose variances are ~0): judge by the gradient
        gmax = float(np.max(np.abs(e.gradient[free])))
        return theta, (0.0 if gmax < decrement_tol else gmax)
    decrement = np.inf
    for _ in range(max_steps):
        g = e.gradient[free]
        step = np.linalg.solve(H, g)
        decrement = 0.5 * float(g @ step)
        if decrement < 1e-15:
            break
        t = 1.0
        while t > 1e-4:  # backtrack: stay inside the bounds and go downhill
            trial = theta.copy()
            trial[free] -= t * step
            if all(lo <= v <= hi for v, (lo, hi) in zip(trial, bounds)):
                et = devfun.evaluate(trial, gradient=True)
                if et.deviance <= e.deviance:
                    theta, e = trial, et
                    break
            t *= 0.5
        else:
            break
    return theta, decrement


def one_blas_thread():
    """A context in which BLAS uses one thread. The fit works on tiny matrices (q × q per group), where a
    multi-threaded BLAS only adds overhead -- ten times slower on a busy two-core machine."""
    global _CONTROLLER
    if _CONTROLLER is None:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1, user_api="blas")


_CONTROLLER = None


def optimize_lmer(devfun: DevianceFunction, theta0: np.ndarray | None = None, gtol: float | None = None,
                  maxiter: int | None = None, polish: bool = True, control: LmerControl | None = None) -> OptimizerResult:
    """Minimise ``devfun`` (any :class:`~lmmteach.lmm.profiled.DevianceFunction`) from ``theta0`` (see
    :func:`_optimize`), with BLAS on one thread. ``control`` holds the named tolerances
    (:class:`~lmmteach.lmm.control.LmerControl`); ``gtol`` and ``maxiter`` override its fields."""
    control = DEFAULT_CONTROL if control is None else control
    if not isinstance(control, LmerControl):
        raise TypeError(f"control must be an LmerControl, not {type(control).__name__}")
    if gtol is not None:
        control = replace(control, gtol=gtol)
    if maxiter is not None:
        control = replace(control, maxiter=maxiter)
    with one_blas_thread():
        return _optimize(devfun, theta0, control, polish)


def fd_gradient(devfun, theta, dev=None, step: float = DEFAULT_CONTROL.df_gradient_step
                ) -> tuple[np.ndarray, np.ndarray]:
    """∂deviance/∂θ_k and ∂²deviance/∂θ_k² by central differences (one-sided next to a bound, curvature
    then NaN), for engines without a gradient: 2 evaluations per θ_k."""
    scale = devfun.theta_scale
    dev = devfun(theta) if dev is None else dev
    g, h2 = np.zeros(theta.size), np.full(theta.size, np.nan)
    for k, (lo, hi) in enumerate(devfun.bounds):
        h = step * max(abs(scale[k]), 1e-8)
        up, down = theta.copy(), theta.copy()
        up[k], down[k] = min(theta[k] + h, hi), max(theta[k] - h, lo)
        f_up, f_down = devfun(up), devfun(down)
        g[k] = (f_up - f_down) / (up[k] - down[k])
        if up[k] - theta[k] == theta[k] - down[k]:
            h2[k] = (f_up - 2 * dev + f_down) / h**2
    return g, h2


def _optimize_derivative_free(devfun, theta0, control: LmerControl) -> OptimizerResult:
    """Minimise a deviance derivative-free (``control.optimizer == "COBYQA"``) by COBYQA,
    Powell's successor to the BOBYQA that lme4 and MixedModels.jl use: a trust region of quadratic models,
    with the bounds kept exactly, θ searched in units of its typical scale, from one-factor fits (lme4's
    BOBYQA starts at θ = 1 with radius 0.2; ours is nearer, so its first radius is smaller). Converged: the
    search reached its last radius and the deviance still to gain, ½ Σ g_k²/H_kk by central differences,
    is below ``control.decrement_tol`` (the one-factor path's Newton-decrement test)."""
    log = []
    bounds = devfun.bounds
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    if theta0 is None:
        theta0, how = default_start(devfun)
        log.append(f"start: {how}, theta = {_short(theta0)}")
    else:
        log.append(f"start: given, theta = {_short(theta0)}")
    theta0 = np.clip(np.asarray(theta0, float), lo, hi)
    scale = devfun.theta_scale
    n_eval = 0

    def fun(x):
        nonlocal n_eval
        n_eval += 1
        try:
            return devfun(x * scale)
        except np.linalg.LinAlgError:  # numerically singular at an extreme θ: tell the search to back off
            return 1e300

    res = minimize(fun, theta0 / scale, method="COBYQA", bounds=Bounds(lo / scale, hi / scale),
                   options={"maxfev": max(control.maxiter, 500 * theta0.size),
                            "initial_tr_radius": control.df_initial_radius,
                            "final_tr_radius": control.df_final_radius})
    log.append(f"COBYQA (derivative-free): {int(res.nit)} iterations, {n_eval} evaluations ({res.message})")
    theta = np.clip(np.asarray(res.x, float) * scale, lo, hi)
    dev = devfun(theta)
    near_zero = [lo_k == 0.0 and 0 < theta[k] <= 1e-4 * abs(scale[k]) for k, (lo_k, _) in enumerate(bounds)]
    theta, dev = _snap_to_zero(devfun, theta, dev, near_zero, control.snap_tol, log)  # SDs that are ~0
    grad, curvature = fd_gradient(devfun, theta, dev, control.df_gradient_step)
    g = projected_gradient(theta, grad, bounds)
    gnorm = float(np.max(np.abs(g))) if g.size else 0.0
    inside = np.isfinite(curvature) & (curvature > 0)
    decrement = 0.5 * float(np.sum(g[inside] ** 2 / curvature[inside]))  # at a bound: g = 0 there or NaN
    ok = bool(np.isfinite(dev)) and bool(res.success) and decrement < control.decrement_tol and \
        bool(np.all(inside | (g == 0)))
    log.append(f"check: central differences, max |projected gradient| = {gnorm:.3g}, deviance still to gain "
               f"{decrement:.3g} ({'converged' if ok else 'NOT converged'})")
    return OptimizerResult(theta, float(dev), ok, int(res.nit), n_eval + 2 * theta.size, grad, gnorm,
                           str(res.message), method="COBYQA (derivative-free)", log=tuple(log))


def _snap_to_zero(devfun, theta, dev, candidates, snap_tol: float, log: list) -> tuple[np.ndarray, float]:
    """Set each SD-type θ_k that the search left just above 0 (``candidates[k]``) to exactly 0 — the
    boundary, where a variance is 0 — when that raises the deviance by no more than ``snap_tol``; returns
    (θ, its deviance) and notes each snap in the fit log."""
    for k in np.flatnonzero(candidates):
        trial = theta.copy()
        trial[k] = 0.0
        dev_trial = devfun(trial)
        if dev_trial <= dev + snap_tol:
            theta, dev = trial, dev_trial
            log.append(f"snap: theta[{k}] set to 0 (the boundary)")
    return theta, dev


def _short(theta) -> str:
    return np.array2string(np.asarray(theta, float), precision=4, separator=", ")


def _optimize(devfun, theta0, control: LmerControl, polish: bool) -> OptimizerResult:
    """Minimise ``devfun`` from ``theta0`` (default: :func:`default_start`).

    Converged means: after the quasi-Newton search and a Newton polish, the Newton decrement (the deviance
    still to be gained, estimated from the gradient and Hessian) is below ``control.decrement_tol``.
    """
    if devfun.n_theta == 0:  # nothing to search (gls with independent, homoscedastic errors)
        e = devfun.evaluate(np.zeros(0))
        return OptimizerResult(np.zeros(0), e.deviance, True, 0, 1, np.zeros(0), 0.0, "no covariance parameters",
                               method="none (no covariance parameters)")
    if control.optimizer == "COBYQA" or devfun.search == "COBYQA":  # asked for, or no exact gradient
        return _optimize_derivative_free(devfun, theta0, control)
    log = []
    if theta0 is None:
        theta0, how = default_start(devfun)
        log.append(f"start: {how}, theta = {_short(theta0)}")
    else:
        log.append(f"start: given, theta = {_short(theta0)}")
    theta0 = np.asarray(theta0, float)
    bounds = devfun.bounds
    theta0 = np.clip(theta0, [b[0] for b in bounds], [b[1] for b in bounds])
    scale = devfun.theta_scale  # search x = θ / scale, so that every coordinate is of size ~1
    # SD-type parameters are kept a hair above 0 during the search: at exactly 0 their gradient vanishes
    # (C is quadratic in them) and a gradient method would stall there; the boundary is tried at the end.
    # They are also capped at 10⁴ times their typical size: far beyond any optimum, and it keeps the line
    # search away from θ's so large that X'V⁻¹X is numerically singular. The cap is a wall in the objective
    # (the deviance is taken as +∞ beyond it), not a bound handed to L-BFGS-B: with every variable bounded on
    # both sides L-BFGS-B's first step is the whole gradient, far out, and it spends evaluations coming back.
    floor, cap = control.sd_floor, control.sd_cap
    xbounds = [((lo / s) + floor, hi / s) if lo == 0.0 else (lo / s, hi / s) for (lo, hi), s in zip(bounds, scale)]
    capped = np.array([lo == 0.0 for lo, _ in bounds])
    n_eval = 0

    def fun(x):
        nonlocal n_eval
        n_eval += 1
        if np.any(x[capped] > cap):  # beyond the cap: tell the search to back off
            return 1e300, np.zeros_like(x)
        try:
            e = devfun.evaluate(x * scale, gradient=True)
        except np.linalg.LinAlgError:  # numerically singular at an extreme θ: tell the search to back off
            return 1e300, np.zeros_like(x)
        return e.deviance, e.gradient * scale

    n_iter, res = 0, None
    start = np.clip(theta0 / scale, [b[0] for b in xbounds], np.where(capped, cap, [b[1] for b in xbounds]))
    for _ in range(int(control.boundary_restarts)):
        res = minimize(fun, start, jac=True, method="L-BFGS-B", bounds=xbounds,
                       options={"maxiter": control.maxiter, "ftol": control.ftol, "gtol": control.gtol,
                                "maxcor": control.maxcor})
        n_iter += int(res.nit)
        log.append(f"L-BFGS-B (exact gradient): {int(res.nit)} iterations, deviance {res.fun:.10g} ({res.message})")
        escape = boundary_escape(devfun, res.x * scale, control.boundary_probe, control.boundary_restart_at)
        if escape is None:
            break
        k = int(np.flatnonzero(escape != res.x * scale)[0])
        log.append(f"boundary escape: the deviance falls into the parameter space at theta[{k}] = 0; "
                   f"restart at {escape[k]:.4g}")
        start = escape / scale
    assert res is not None  # the loop runs at least once
    theta = np.asarray(res.x * scale, dtype=float)
    dev = devfun(theta)
    at_floor = [lo == 0.0 and res.x[k] <= xb[0] * (1 + 1e-9) for k, ((lo, _), xb) in enumerate(zip(bounds, xbounds))]
    theta, dev = _snap_to_zero(devfun, theta, dev, at_floor, control.snap_tol, log)  # SDs at the search's floor
    if polish:
        theta, decrement = newton_polish(devfun, theta, int(control.newton_steps), control.decrement_tol,
                                         control.fd_step)
        log.append(f"Newton polish: deviance still to gain {decrement:.3g}")
    else:
        decrement = 0.0 if res.success else np.inf
    e = devfun.evaluate(theta, gradient=True)
    g = projected_gradient(theta, e.gradient, bounds)
    gnorm = float(np.max(np.abs(g))) if g.size else 0.0
    ok = bool(np.isfinite(e.deviance)) and decrement < control.decrement_tol
    log.append(f"check: max |projected gradient| = {gnorm:.3g} ({'converged' if ok else 'NOT converged'})")
    msg = str(res.message)
    return OptimizerResult(theta, e.deviance, ok, n_iter, n_eval, e.gradient, gnorm, msg, log=tuple(log))


def _has_correlations(devfun) -> bool:
    from .covariance import Unstructured

    return any(isinstance(s, Unstructured) and s.q > 1 for s in devfun.structures)


WARM_BACKTRACKS = 6
"""Step halvings a warm-start quasi-Newton step may take before the full optimiser takes over."""
WARM_TOL = 1e-9
"""Converged warm refit: the Newton decrement ½ g'H⁻¹g (the deviance still to gain) is below this."""
WARM_MAX_STEPS = 30
DOWNHILL_SLACK = 1e-12
"""A step is accepted when the deviance does not rise by more than this (rounding)."""


@dataclass(frozen=True)
class WarmRefits:
    """The optima of K warm-started refits (one row per response; NaN where ``converged`` is False)."""

    theta: np.ndarray  # (K, n_theta)
    deviance: np.ndarray  # (K,)
    gradient: np.ndarray  # (K, n_theta)
    beta: np.ndarray  # (K, p)
    sigma2: np.ndarray  # (K,)
    converged: np.ndarray  # (K,) bool
    n_iter: np.ndarray  # (K,)
    n_eval: np.ndarray  # (K,)


def optimize_warm(devfun, theta0, H: np.ndarray, tol: float = WARM_TOL, max_steps: int = WARM_MAX_STEPS):
    """Minimise ``devfun`` from a start close to the optimum by quasi-Newton steps that begin with a
    *given* Hessian ``H`` (over all θ's) and refine it by BFGS updates, for refits to a new response
    (bootstrap, simulation): the Hessian of the original fit is a good first one for data simulated from
    it, so each step costs one gradient evaluation and no search has to learn the curvature.

    Returns the :class:`OptimizerResult`, or None when this shortcut does not apply — a step leaves the
    parameter space or fails to go downhill (e.g. the new optimum is on a boundary) — so that the
    caller falls back to :func:`optimize_lmer`. Converged: the decrement ½ g'H⁻¹g is below ``tol``.
    Run it with one BLAS thread (:func:`one_blas_thread`, as the bootstrap loops do): its matrices are tiny.
    One response is a stack of one for :func:`optimize_warm_many`, which does the work.
    """
    r = optimize_warm_many(devfun, np.asarray(theta0, float)[None, :], H, tol, max_steps)
    if not r.converged[0]:
        return None
    g = projected_gradient(r.theta[0], r.gradient[0], devfun.bounds)
    return OptimizerResult(r.theta[0], float(r.deviance[0]), True, int(r.n_iter[0]), int(r.n_eval[0]), r.gradient[0],
                           float(np.max(np.abs(g))) if g.size else 0.0, "Newton decrement below tolerance",
                           "quasi-Newton (warm start, given Hessian)")


def optimize_warm_many(devfun, theta0: np.ndarray, H: np.ndarray, tol: float = WARM_TOL,
                       max_steps: int = WARM_MAX_STEPS) -> WarmRefits:
    """:func:`optimize_warm` for K responses at once (``devfun`` from
    :meth:`~lmmteach.lmm.profiled.DevianceFunction.with_responses`, ``theta0`` of shape (K, n_theta)).

    The K searches are independent — each has its own θ, Hessian (``H`` to begin with, then its own BFGS
    updates) and step halvings — but they move in lockstep, so that every round is one stacked evaluation
    of the deviance for all the responses still searching. A response whose search does not apply (see
    :func:`optimize_warm`) is marked not converged, for the caller's full optimiser."""
    bounds = devfun.bounds
    lo = np.array([b[0] for b in bounds])
    hi = np.array([b[1] for b in bounds])
    theta = np.array(theta0, float)
    K, n_theta = theta.shape
    H = np.array(np.broadcast_to(H, (K, n_theta, n_theta)), float)
    dev, grad = np.full(K, np.nan), np.full((K, n_theta), np.nan)
    beta, sigma2 = np.full((K, devfun.p), np.nan), np.full(K, np.nan)
    status = np.zeros(K, int)  # 0 searching, 1 converged, −1 the shortcut does not apply
    n_iter, n_eval = np.zeros(K, int), np.zeros(K, int)
    status[np.any((theta <= lo + 1e-10) | (theta >= hi - 1e-10), axis=1)] = -1  # a start on the boundary

    def evaluate(rows, at):
        """Evaluate at θ's ``at`` for the responses ``rows``: (mask of the rows that could be evaluated, their
        stacked evaluation or None); a numerically singular θ fails its own row only."""
        try:
            e = _evaluate_rows(devfun, rows, at)
        except np.linalg.LinAlgError:
            ok = [i for i, (r, t) in enumerate(zip(rows, at)) if _evaluates(devfun, r, t)]
            if not ok:
                return np.zeros(len(rows), bool), None
            e, mask = _evaluate_rows(devfun, rows[ok], at[ok]), np.zeros(len(rows), bool)
            mask[ok] = True
            return mask, e
        return np.ones(len(rows), bool), e

    rows = np.flatnonzero(status == 0)
    mask, e = evaluate(rows, theta[rows])
    status[rows[~mask]] = -1
    if e is not None:
        rows = rows[mask]
        dev[rows], grad[rows], beta[rows], sigma2[rows] = e.deviance, e.gradient, e.beta, e.sigma2
        n_eval[rows] += 1
    for it in range(1, max_steps + 1):
        rows = np.flatnonzero(status == 0)
        if rows.size == 0:
            break
        try:
            step = np.linalg.solve(H[rows], grad[rows][..., None])[..., 0]
        except np.linalg.LinAlgError:
            status[rows] = -1  # (a BFGS-updated H stays positive definite; this is a guard)
            break
        decrement = 0.5 * np.einsum("kt,kt->k", grad[rows], step)
        status[rows[decrement < 0]] = -1
        done = (decrement >= 0) & (decrement < tol)
        status[rows[done]], n_iter[rows[done]] = 1, it - 1
        moving = decrement >= tol
        rows, step = rows[moving], step[moving]
        for _ in range(WARM_BACKTRACKS):  # halve each step until it stays inside and goes downhill
            if rows.size == 0:
                break
            trial = theta[rows] - step
            accepted = np.zeros(len(rows), bool)
            inside = np.all((trial > lo) & (trial < hi), axis=1)
            if inside.any():
                mask, e = evaluate(rows[inside], trial[inside])
                tried = rows[inside][mask]
                n_eval[tried] += 1
                if e is not None:
                    down = e.deviance <= dev[tried] + DOWNHILL_SLACK
                    idx = np.flatnonzero(inside)[mask][down]
                    accepted[idx] = True
                    new = tried[down]
                    s_k = trial[idx] - theta[new]
                    y_k = e.gradient[down] - grad[new]
                    H[new] = bfgs_update(H[new], s_k, y_k)
                    theta[new], dev[new], grad[new] = trial[idx], e.deviance[down], e.gradient[down]
                    beta[new], sigma2[new] = e.beta[down], e.sigma2[down]
            rows, step = rows[~accepted], 0.5 * step[~accepted]
        status[rows] = -1  # no step within the halvings went downhill
    status[status == 0] = -1  # not converged within max_steps
    ok = status == 1
    for a in (theta, dev, grad, beta, sigma2):
        a[~ok] = np.nan
    return WarmRefits(theta, dev, grad, beta, sigma2, ok, n_iter, n_eval)


def _evaluate_rows(devfun, rows, at):
    """One stacked evaluation (with gradient) for the responses ``rows`` of a stack, at θ's ``at``."""
    return (devfun.take(rows) if devfun.n_responses is not None else devfun).evaluate(
        at, gradient=True)


def _evaluates(devfun, row, theta) -> bool:
    try:
        _evaluate_rows(devfun, np.array([row]), theta[None, :])
        return True
    except np.linalg.LinAlgError:
        return False


def bfgs_update(H, s, y):
    """The BFGS update of each Hessian approximation in a stack, H⁺ = H − Hss'H / s'Hs + yy' / s'y, skipped
    where the curvature condition s'y > 0 fails (the update would lose positive definiteness)."""
    Hs = (H @ s[..., None])[..., 0]
    sy = np.einsum("kt,kt->k", s, y)
    sHs = np.einsum("kt,kt->k", s, Hs)
    ok = sy > 1e-12 * np.linalg.norm(s, axis=1) * np.linalg.norm(y, axis=1)
    out = H.copy()
    out[ok] = (H[ok] - np.einsum("ki,kj->kij", Hs[ok], Hs[ok]) / sHs[ok, None, None]
               + np.einsum("ki,kj->kij", y[ok], y[ok]) / sy[ok, None, None])
    return out
