"""Profile likelihood intervals (lme4's ``profile`` and ``confint(method = "profile")``).

With the ML deviance d(ψ) = −2ℓ(ψ) on lme4's scale ψ = (random-effect SDs and correlations, σ) (REML fits
are refitted by ML, as lme4 does), the profile of parameter ψ_k is

    d_k(v) = min { d(ψ) : ψ_k = v },

and the interval is { v : d_k(v) − d(ψ̂) ≤ χ²_{1, level} } — where the LRT of H0: ψ_k = v is not
rejected. In lme4's terms the end points are where the signed root

    ζ(v) = sign(v − ψ̂_k) √(d_k(v) − d(ψ̂))

reaches ±z_{1−α/2}. lme4 interpolates a spline through a grid of ζ; we solve ζ(v) = ±z directly by
Newton's method: ζ is nearly linear in v, and its slope comes free with each profile point, because at
the inner minimum ∂d_k/∂v = ∂d/∂ψ_k (the other coordinates are at their optimum, so moving them gains
nothing to first order), hence ζ'(v) = (∂d/∂ψ_k) / (2ζ). The first guess is the Wald end point
ψ̂_k ± z √(2 [H⁻¹]_kk) on this scale (H = ∂²d/∂ψ²), and each end point costs a few profile points
(lme4's spline and our roots agree to about 1e-4). The gradient ∂d/∂ψ is exact (:func:`sdcor_deviance`,
the chain rule from the engine's gradient over C = Σ/σ²).

For a fixed effect, holding β_k = v leaves the ML fit of y − v x_k on the other columns of X (lme4
uses an offset), so only θ is searched, with the engine's exact gradient; its value has a closed form,

    min over the other b of r'V⁻¹r = r̂'V⁻¹r̂ + (v − b̂_k)² / [(X'V⁻¹X)⁻¹]_kk.

A standard deviation's interval stops at 0, a correlation's at ±1.

Each inner minimum is warm-started along the profile's path (quasi-Newton steps with the curvature
carried from point to point), which is fast but may stay on a higher branch of a profile with several
(e.g. a slope SD at 0 against a correlation at +1). So each end point is checked by rough minimisations
from other starts (the estimates; each SD at 0, each correlation at ±1), with the analytic gradient and
stopped as soon as they can be judged; where one is lower, the search goes on from there.

Only unstructured (``us``) and variance-components (``diag``) blocks have lme4's σ/ρ scale. Every engine
(:class:`~lmmteach.lmm.profiled.DevianceFunction`) has the exact gradient, so models with several grouping
factors are profiled the same way. ``use_gradient=False`` gives derivative-free inner minimisations instead
(a check of the Newton path in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..lmm.covariance import (check_sdcor_scale, sd_cor_blocks, sdcor_bounds, sdcor_of_theta,
                              theta_from_blocks)
from ..lmm.optimize import bfgs_update, hessian, one_blas_thread, optimize_lmer, optimize_warm
from ..lmm.profiled import profiled_deviance
from .._util import fd_hessian

__all__ = ["sdcor", "theta_from_sdcor", "sdcor_deviance", "parameter_names", "check_scale", "profile_intervals",
           "profile_zeta"]

ROOT_CHECK_TOL = 1e-6
"""A robust inner minimum replaces the warm one when it lies this far below it."""
ZETA_TOL = 1e-6
"""An end point is accepted when |ζ(v)| is within this of z (the deviance within ~4e-6 of χ²)."""
ROOT_XTOL = 1e-7
"""... or when the bracket around it is narrower than this fraction of the first step."""
BRACKET_OVERSHOOT = 1.2
"""Without a slope, a linear extrapolation of ζ aims this much beyond the end point, so that it is bracketed."""
MAX_ROOT_STEPS = 60
FIRST_STEP = 0.2
"""Without curvature, the first step from an SD's estimate (as a fraction of it) or from a correlation's."""
FD_STEP_PSI = 1e-5
"""Relative step of the finite-difference Hessian over ψ (differences of the exact gradient)."""
INNER_OPTIONS = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 500}
"""L-BFGS-B options of an inner minimisation of a profile (deviance to ~1e-10 relative)."""
ROUGH_OPTIONS = {"ftol": 1e-9, "gtol": 1e-6, "maxiter": 100}
"""Options of the rough inner minimisations from the other starts of a robust profile point."""
THETA_FLOOR = 1e-12
"""SD-type θ's (relative to their typical size) are searched from this far above 0."""
BASIN_RISE = 4.0
"""A rough run is in the warm minimum's basin once it is within this much deviance of it ..."""
BASIN_RTOL = 0.1
"""... and a Newton step from it lands on the warm minimum to this fraction of its rise (in ½ δ'Hδ)."""
FAR_RISE = 50.0
"""A start of a rough run this far above the warm minimum is skipped when it is on no branch (see
:func:`_rough_minimum`)."""
HIGHER_SAFETY = 10.0
"""A rough run stops when this many times its Newton decrement (with the warm minimum's curvature) would
not bring it down to the warm minimum."""


# -- the σ/ρ scale ---------------------------------------------------------------------------------------------
def check_scale(model):
    """Raise NotImplementedError unless every block is on lme4's SD/correlation scale (us or diag)."""
    check_sdcor_scale(model.design.structures())


def sdcor(model, theta=None, sigma=None) -> np.ndarray:
    """ψ_var: the random-effect SDs and correlations (lme4's order) followed by σ."""
    theta = model.theta if theta is None else theta
    sigma = model.sigma if sigma is None else sigma
    return np.r_[sdcor_of_theta(model.design.structures(), model.devfun.split(theta), sigma), sigma]


def _bounds(model) -> list[tuple[float, float]]:
    return sdcor_bounds(model.design.structures()) + [(0.0, np.inf)]


def theta_from_sdcor(model, psi) -> np.ndarray | None:
    """θ for given SDs/correlations ψ (σ last): C = Σ/σ² with Σ = D R D per block (D the SDs, R the
    correlations), θ from its Cholesky factor; None when the correlations do not make a valid
    covariance matrix."""
    return theta_from_blocks(sd_cor_blocks(model.design.structures(), psi), psi[-1])


def parameter_names(model) -> list[str]:
    n_var = len(sdcor(model)) - 1
    return [f".sig{k + 1:02d}" for k in range(n_var)] + [".sigma"] + list(model.fixef.index)


def sdcor_deviance(model, psi, gradient: bool = False):
    """The ML deviance at ψ = (SDs and correlations, σ) with b̂ profiled out, for an ML fit ``model``:

        d(ψ) = n log(2πσ²) + log|V| + r'V⁻¹r / σ²  (− Σ log w_i),     V = I + Z C Z',  C = Σ(ψ)/σ²;

    with ``gradient`` also ∂d/∂ψ, by the chain rule from the two
    parts of the gradient over C that the engine computes (G_C = ∂d/∂C at fixed σ² = ∂log|V|/∂C + ∂(r'V⁻¹r)/∂C / σ²):

        ∂d/∂Σ = G_C / σ² =: G          (σ held, C = Σ/σ²)
        ∂d/∂σ = 2n/σ − 2 r'V⁻¹r/σ³ − (2/σ) tr(G_C C)       (Σ held: ∂C/∂σ = −2C/σ)
        ∂d/∂σ_c = 2 Σ_j G_cj σ_j R_cj,    ∂d/∂ρ_rc = 2 G_rc σ_r σ_c     (Σ = D R D per block).

    d is inf (the gradient NaN) where ψ is not a valid covariance or the evaluation is singular.
    """
    psi = np.asarray(psi, float)
    sigma = psi[-1]
    blocks = sd_cor_blocks(model.design.structures(), psi)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = None if not sigma > 0 else theta_from_blocks(blocks, sigma)
    devfun = model.devfun
    if not gradient:
        try:
            return np.inf if theta is None else -2.0 * devfun.loglik(theta, sigma**2)
        except np.linalg.LinAlgError:  # numerically singular at an extreme ψ
            return np.inf
    if theta is None:
        return np.inf, np.full(len(psi), np.nan)
    try:
        e = devfun.evaluate(theta, gradient=True)
    except np.linalg.LinAlgError:
        return np.inf, np.full(len(psi), np.nan)
    s2, n = sigma**2, devfun.cp.n
    d = devfun.deviance_given_sigma2(e, s2)
    G_C = e.dlogdetV_dC + e.dpwrss_dC / s2
    G = G_C / s2
    g = np.empty(len(psi))
    g[-1] = 2 * n / sigma - 2 * e.pwrss / sigma**3 - 2 / sigma * float(np.sum(G_C * e.C))
    offset = 0
    for _, sd, R, sd_at, cor_at in blocks:
        q = len(sd)
        Gb = G[offset : offset + q, offset : offset + q]
        g[sd_at] = 2 * (Gb * R) @ sd
        for at, r, c in cor_at:
            g[at] = 2 * Gb[r, c] * sd[r] * sd[c]
        offset += q
    return float(d), g


# -- the profiles ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Point:
    """One point of a profile: the parameter held at v, the inner minimiser x (all of ψ for a variance
    parameter, θ for a fixed effect), d_k(v), its slope ∂d_k/∂v (NaN when unknown), and for the Newton
    path the gradient over ψ at x and the Hessian carried along the profile."""

    v: float
    x: np.ndarray
    deviance: float
    slope: float = np.nan
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None


class _Slice:
    """d(ψ) with ψ_k = v held, as a function of the other coordinates x, in the interface of a deviance
    function that :func:`optimize_warm` minimises: ``bounds``, ``p`` and ``evaluate`` of a stack of x's
    (one row here) returning the deviances and gradients (no fixed effects to report: p = 0). It keeps the
    gradient over all of ψ at the points it evaluates (the profile's slope is its k-th element)."""

    p = 0
    n_responses = None

    @dataclass(frozen=True)
    class Evaluation:
        deviance: np.ndarray  # (K,)
        gradient: np.ndarray  # (K, number of x's)
        beta: np.ndarray  # (K, 0)
        sigma2: np.ndarray  # (K,)

    def __init__(self, model, k, v, others, bounds):
        self.model, self.k, self.v, self.others, self.bounds = model, k, v, others, bounds
        self.full_gradient: dict[bytes, np.ndarray] = {}

    def psi(self, x) -> np.ndarray:
        out = np.empty(len(self.others) + 1)
        out[self.k], out[self.others] = self.v, x
        return out

    def evaluate(self, x, gradient: bool = True) -> "_Slice.Evaluation":
        xs = np.atleast_2d(np.asarray(x, float))
        ds, gs = np.empty(len(xs)), np.empty(xs.shape)
        for i, xi in enumerate(xs):
            d, g = sdcor_deviance(self.model, self.psi(xi), gradient=True)
            if not np.isfinite(d):
                raise np.linalg.LinAlgError("not a valid covariance matrix")
            self.full_gradient[xi.tobytes()] = g
            ds[i], gs[i] = d, g[self.others]
        return _Slice.Evaluation(ds, gs, np.zeros((len(xs), 0)), np.full(len(xs), np.nan))


def _lbfgsb(fun, x0, lo, hi, scale, jac: bool, options=INNER_OPTIONS, stop=None):
    """L-BFGS-B from x0 within [lo, hi], searching x / scale (each coordinate of size ~1); ``fun(x)`` is the
    deviance (with ``jac``: and its gradient), inf where undefined. ``stop(x, d, gradient or None)``, asked
    at the start and after each iteration, may end the search early. Returns (d, x)."""
    last: dict = {}

    def f(u):
        x = u * scale
        if not jac:
            d = fun(x)
            return d if np.isfinite(d) else 1e300
        d, g = fun(x)
        last.update(u=u.copy(), g=g)
        return (d, g * scale) if np.isfinite(d) else (1e300, np.zeros_like(u))

    def asked(u, d):
        return stop(u * scale, d, last["g"] if "u" in last and np.array_equal(u, last["u"]) else None)

    def callback(intermediate_result):
        if asked(intermediate_result.x, intermediate_result.fun):
            raise StopIteration

    u0 = np.clip(x0, lo, hi) / scale
    if stop is not None:
        d0 = f(u0)
        d0 = d0[0] if jac else d0
        if asked(u0, d0):
            return (d0 if d0 < 1e299 else np.inf), u0 * scale
    bounds = [(a / s if np.isfinite(a) else None, b / s if np.isfinite(b) else None) for a, b, s in zip(lo, hi, scale)]
    res = optimize.minimize(f, u0, jac=jac, method="L-BFGS-B", bounds=bounds, options=options,
                            callback=None if stop is None else callback)
    return (float(res.fun) if res.fun < 1e299 else np.inf), res.x * scale


def _rough_minimum(fun, starts, warm_d, warm_x, H, lo, hi, scale, jac: bool):
    """The robust check of a warm inner minimum (warm_d at warm_x): rough L-BFGS-B runs from ``starts``;
    the lowest (d, x) they reach. A run stops as soon as it is below warm_d (the caller polishes it); and,
    with the Hessian H at the warm minimum, once it is in that minimum's basin, where it would only converge
    to warm_x again (within ``BASIN_RISE`` of it, and a Newton step x − H⁻¹g lands on warm_x), or once it is
    so far above that ``HIGHER_SAFETY`` times its Newton decrement ½ g'H⁻¹g (over the coordinates not held
    by a bound) could not bring it below warm_d (it converges to a higher branch). A start more than
    ``FAR_RISE`` above warm_d from which the deviance falls off every bound it sits on is not run: it is on
    no branch of the profile (a branch is a minimum held by its bound), and the descent from it crosses the
    interior, which the start at the estimates covers."""

    def stop(x, d, g, first):
        if d < warm_d - ROOT_CHECK_TOL:
            return True
        if g is None:
            return False
        at_bound = (x <= lo) | (x >= hi)
        leaves = ((x <= lo) & (g < 0)) | ((x >= hi) & (g > 0))
        if first and d - warm_d > FAR_RISE and at_bound.any() and np.all(leaves[at_bound]):
            return True
        if H is None:
            return False
        free = ~(at_bound & ~leaves)  # not pushing against a bound
        try:
            gf = g[free]
            decrement = 0.5 * float(gf @ np.linalg.solve(H[np.ix_(free, free)], gf)) if free.any() else 0.0
            if d - HIGHER_SAFETY * decrement > warm_d + ROOT_CHECK_TOL:
                return True
            if d - warm_d < BASIN_RISE:
                miss = x - np.linalg.solve(H, g) - warm_x
                return 0.5 * float(miss @ H @ miss) <= BASIN_RTOL * (d - warm_d) + ROOT_CHECK_TOL
        except np.linalg.LinAlgError:
            pass
        return False

    def run(x0):
        asked = {"first": True}

        def ask(x, d, g):
            first, asked["first"] = asked["first"], False
            return stop(x, d, g, first)
        return _lbfgsb(fun, x0, lo, hi, scale, jac, ROUGH_OPTIONS, ask)

    return min((run(x0) for x0 in starts), key=lambda r: r[0])


class _Profile:
    """v ↦ d_k(v), the profiled deviance with one parameter held at v. It keeps the points found so far,
    so that each inner minimisation starts from a prediction along the profile's path."""

    def __init__(self, profiler, k, start: _Point):
        self.prof, self.k, self.points = profiler, k, [start]

    def __call__(self, v, robust: bool = False) -> float:
        return self.point(v, robust).deviance

    def point(self, v, robust: bool = False) -> _Point:
        """The profile at v: warm-started, and with ``robust`` checked from other starts (:func:`_rough_minimum`)."""
        raise NotImplementedError

    def nearest(self, v) -> _Point:
        return min(self.points, key=lambda p: abs(p.v - v))

    def _linear_start(self, v) -> np.ndarray:
        """The inner minimiser at v predicted from the two profile points nearest to v (linear inter- or
        extrapolation along the path; the caller keeps it inside the bounds); the only one when there is one."""
        if len(self.points) < 2:
            return self.points[0].x
        p1, p2 = sorted(self.points, key=lambda p: abs(p.v - v))[:2]
        if p1.v == p2.v:
            return p1.x
        return p1.x + (p2.x - p1.x) * (v - p1.v) / (p2.v - p1.v)

    def _keep(self, p: _Point) -> _Point:
        if np.isfinite(p.deviance):
            self.points.append(p)
        return p


class _VarianceProfile(_Profile):
    """The profile of a variance parameter ψ_k: the inner minimisation is over the other ψ's.

    Newton path (one grouping factor): from the nearest point found so far (x_j, H_j), the start is the
    tangent of the path, x = x_j − H_oo⁻¹ H_ok (v − v_j) (o: the other coordinates); quasi-Newton steps with
    H_oo (:func:`optimize_warm`) then converge in two or three gradients, and the pair of gradients at the
    two optima BFGS-updates H for the next point. Where a step would leave the parameter space (an SD at 0,
    a correlation at ±1), L-BFGS-B with the exact gradient takes over. Without it (``use_gradient=False``)
    every inner minimisation is L-BFGS-B on finite differences.
    """

    def __init__(self, profiler, k):
        pr = profiler
        super().__init__(pr, k, _Point(pr.psi_hat[k], pr.psi_hat, pr.dev_hat, 0.0, pr.grad_hat, pr.H_hat))
        self.others = [j for j in range(len(pr.psi_hat)) if j != k]
        self.lo = np.array([pr.bounds[j][0] for j in self.others])
        self.hi = np.array([pr.bounds[j][1] for j in self.others])
        psi_o = pr.psi_hat[self.others]
        self.scale = np.where(psi_o != 0, np.abs(psi_o), 1.0)  # L-BFGS-B searches x / scale
        if pr.H_hat is not None:  # with the curvature at the estimate: each coordinate's standard error
            self.scale = 1.0 / np.sqrt(np.diag(pr.H_hat)[self.others])

    def point(self, v, robust=False) -> _Point:
        near = self.nearest(v)
        if near.v == v and near is not self.points[0]:  # already solved (the end point, now checked)
            d, x, g, H = near.deviance, near.x[self.others], near.gradient, near.hessian
        else:
            if self.prof.fast:
                d, x, g = self._newton(v, near)
            else:
                d, x, g = self._minimise(v, self._linear_start(v)[self.others])
            H = None
            if g is not None and near.hessian is not None and near.gradient is not None:
                s_k, y_k = self._psi(v, x) - near.x, g - near.gradient  # a secant pair of the full Hessian
                H = bfgs_update(near.hessian[None], s_k[None], y_k[None])[0]
        if robust:
            o = self.others
            fun = self._fun(v)
            rough = _rough_minimum(fun, self._other_starts(x), d, x, None if H is None else H[np.ix_(o, o)],
                                   self.lo, self.hi, self.scale, self.prof.fast)
            if rough[0] < d - ROOT_CHECK_TOL:
                polished = self._minimise(v, rough[1])
                if polished[0] < d:  # another branch: the curvature carried so far does not apply
                    (d, x, g), H = polished, None
        slope = float(g[self.k]) if g is not None else np.nan
        return self._keep(_Point(v, self._psi(v, x), d, slope, g, H))

    def _psi(self, v, x) -> np.ndarray:
        out = np.empty(len(self.others) + 1)
        out[self.k], out[self.others] = v, x
        return out

    def _fun(self, v):
        """x ↦ d (and ∂d/∂x on the Newton path) with ψ_k = v and the other coordinates x."""
        m, o = self.prof.m, self.others
        if not self.prof.fast:
            return lambda x: sdcor_deviance(m, self._psi(v, x))

        def fun(x):
            d, g = sdcor_deviance(m, self._psi(v, x), gradient=True)
            return d, g[o]
        return fun

    def _newton(self, v, near):
        """The inner minimum by quasi-Newton steps from the path's tangent (see the class docstring)."""
        o, k = self.others, self.k
        x0 = near.x[o]
        if near.hessian is not None:
            H_oo = near.hessian[np.ix_(o, o)]
            try:
                x0 = x0 - np.linalg.solve(H_oo, near.hessian[o, k] * (v - near.v))
            except np.linalg.LinAlgError:
                pass
            x0 = np.clip(x0, self.lo, self.hi)
            sl = _Slice(self.prof.m, k, v, o, self.prof.bounds_of(o))
            res = optimize_warm(sl, x0, H_oo)
            if res is not None:
                x = np.asarray(res.theta, float)
                g = sl.full_gradient.get(x.tobytes())
                return res.deviance, x, (g if g is not None else sdcor_deviance(self.prof.m, sl.psi(x), True)[1])
        return self._minimise(v, x0)

    def _minimise(self, v, x0):
        """L-BFGS-B over the other coordinates from x0 (with the exact gradient when there is one);
        returns (d, x, gradient over ψ or None)."""
        d, x = _lbfgsb(self._fun(v), x0, self.lo, self.hi, self.scale, self.prof.fast)
        if not self.prof.fast:
            return d, x, None
        d, g = sdcor_deviance(self.prof.m, self._psi(v, x), gradient=True)
        return d, x, (g if np.isfinite(d) else None)

    def _other_starts(self, warm) -> list[np.ndarray]:
        """Inner starting points besides the warm start, for profiles with several branches: the
        estimates, and the warm start with each SD at 0 (the boundary) and each correlation at ±1."""
        out = [self.prof.psi_hat[self.others].copy()]
        sigma = len(self.prof.psi_hat) - 1
        for i, j in enumerate(self.others):
            lo, hi = self.prof.bounds[j]
            if j == sigma:
                continue
            for value in ((0.0,) if lo == 0.0 else (lo, hi) if np.isfinite(lo) else ()):
                x = warm.copy()
                x[i] = value
                out.append(x)
        return out


class _FixefProfile(_Profile):
    """The profile of a fixed effect β_k: with β_k = v, the ML fit over θ of y − v x_k on the other
    columns of X (a deviance function of its own, with the engine's exact gradient), minimised by
    quasi-Newton steps from a start extrapolated along the path with the Hessian over θ at the estimate
    (:func:`optimize_warm`), or by the full optimiser where those fail. Its slope is
    ∂d_k/∂v = n/(r'V⁻¹r)_v · 2 (v − b̂_k) / [(X'V⁻¹X)⁻¹]_kk at the inner θ. Without an exact gradient
    (``use_gradient=False``) that closed form is minimised over θ derivative-free. The robust check starts from
    the estimate θ̂ and the default start θ₀."""

    def __init__(self, profiler, k):
        m = profiler.m
        super().__init__(profiler, k, _Point(m.fixef.iloc[k], np.asarray(m.theta, float), profiler.dev_hat, 0.0))
        devfun = m.devfun
        self.lo = np.array([b[0] for b in devfun.bounds])
        self.hi = np.array([b[1] for b in devfun.bounds])
        self.scale = devfun.theta_scale
        # SD-type θ's are searched a hair above 0, where their gradient does not vanish (see optimize_lmer)
        self.lo_search = np.where(self.lo == 0.0, THETA_FLOOR * self.scale, self.lo)
        self.H = None
        if profiler.fast:
            X, _, self.y = m.design.fitting_arrays()  # rows scaled by √w_i, offset subtracted
            self.x_k = X[:, k]
            self.without_k = devfun.without_fixed_effect(k).with_reml(False)
            theta = np.asarray(m.theta, float)
            if np.all((theta > self.lo) & (theta < self.hi)):  # no θ on a bound: a Hessian over all of them
                H = hessian(self._devfun(m.fixef.iloc[k]), theta, list(range(len(theta))))
                if np.all(np.isfinite(H)) and np.linalg.eigvalsh(H).min() > 0:
                    self.H = H

    def _devfun(self, v):
        """The ML deviance over θ of the model with β_k = v: response y − v x_k, X without column k."""
        return self.without_k.with_y(self.y - v * self.x_k)

    def _closed_form(self, theta, v):
        """(d, ∂d/∂v) at θ with β_k = v, from the full model's evaluation (the module docstring)."""
        m = self.prof.m
        try:
            e = m.devfun.evaluate(theta)
        except np.linalg.LinAlgError:
            return np.inf, np.nan
        Ainv_kk = np.linalg.inv(e.A)[self.k, self.k]
        pwrss = e.pwrss + (v - e.beta[self.k]) ** 2 / Ainv_kk
        n = m.nobs
        d = profiled_deviance(e.logdet_V, pwrss, n, m.design.p, False, log_weights=m.devfun.cp.log_weights)
        return float(d), float(n / pwrss * 2 * (v - e.beta[self.k]) / Ainv_kk)

    def point(self, v, robust=False) -> _Point:
        near = self.nearest(v)
        starts = [self.prof.m.theta, self.prof.m.devfun.theta0]
        if not self.prof.fast:
            fun = lambda theta: self._closed_form(theta, v)[0]  # noqa: E731
            d, theta = min((_lbfgsb(fun, t0, self.lo_search, self.hi, self.scale, False)
                            for t0 in [np.clip(self._linear_start(v), self.lo, self.hi)] + (starts if robust else [])),
                           key=lambda r: r[0])
            return self._keep(_Point(v, theta, d))
        f = self._devfun(v)
        if near.v == v and near is not self.points[0]:  # already solved (the end point, now checked)
            theta, d = near.x, near.deviance
        else:
            start = np.clip(self._linear_start(v), self.lo, self.hi)
            res = optimize_warm(f, start, self.H) if self.H is not None else None
            if res is None:
                res = optimize_lmer(f, theta0=start)
            theta, d = np.asarray(res.theta, float), float(res.deviance)
        if robust:
            def fun(x):
                try:
                    e = f.evaluate(x, gradient=True)
                except np.linalg.LinAlgError:
                    return np.inf, np.zeros_like(x)
                return e.deviance, e.gradient
            rough = _rough_minimum(fun, starts, d, theta, self.H, self.lo_search, self.hi, self.scale, True)
            if rough[0] < d - ROOT_CHECK_TOL:
                polished = optimize_lmer(f, theta0=rough[1])
                if polished.deviance < d:
                    theta, d = np.asarray(polished.theta, float), float(polished.deviance)
        return self._keep(_Point(v, theta, d, self._closed_form(theta, v)[1]))


class _Profiler:
    """The ML deviance on the σ/ρ scale, its profiles, and the intervals where they reach χ²_1.

    ``use_gradient=False`` forces derivative-free inner minimisations (a check of the Newton path in the
    tests)."""

    def __init__(self, model, use_gradient: bool | None = None):
        self.m = model.refit_ml() if model.reml else model
        self.psi_hat = sdcor(self.m)
        self.bounds = _bounds(self.m)
        self.dev_hat = self.m.deviance
        self.fast = True if use_gradient is None else bool(use_gradient)  # every engine has the exact gradient
        self.grad_hat = self.H_hat = None
        if self.fast:
            self.grad_hat = sdcor_deviance(self.m, self.psi_hat, gradient=True)[1]
            self.H_hat = self._hessian(self.psi_hat)

    def bounds_of(self, idx) -> list[tuple[float, float]]:
        return [self.bounds[j] for j in idx]

    def deviance(self, psi) -> float:
        return sdcor_deviance(self.m, psi)

    def _hessian(self, psi):
        """∂²d/∂ψ² by forward differences of the exact gradient (backwards next to an upper bound); None
        when it is not positive definite (e.g. an SD at 0, where a correlation has no curvature)."""
        typical = np.where(psi != 0, np.abs(psi), psi[-1])
        typical = np.where([lo == -1.0 for lo, _ in self.bounds], 1.0, typical)  # correlations
        h = FD_STEP_PSI * typical
        h = np.where(psi + h > np.array([hi for _, hi in self.bounds]), -h, h)
        H = fd_hessian(None, psi, h, gradient=lambda p: sdcor_deviance(self.m, p, gradient=True)[1])
        if not np.all(np.isfinite(H)) or np.linalg.eigvalsh(H).min() <= 0:
            return None
        return H

    def variance_profile(self, k) -> _VarianceProfile:
        """v ↦ min over the other variance parameters of d(ψ) with ψ_k = v (warm-started)."""
        return _VarianceProfile(self, k)

    def fixef_profile(self, k) -> _FixefProfile:
        """v ↦ min over θ of the ML deviance with b_k = v and the other b's at their GLS estimates."""
        return _FixefProfile(self, k)

    def interval(self, profile: _Profile, step, bound, crit):
        """The two end points where profile(v) − d̂ = crit, searched outward from the estimate.

        Each inner minimum is warm-started along the path, which is fast but may stay on a higher branch of
        a profile with several (e.g. a slope SD at 0 against a correlation at +1): the deviance found is
        then too high and the end point too close. So the end point is checked with the robust inner
        minimum (several starts, keep the lowest); where that is short of z (beyond the root's tolerance),
        the true end point lies further out and the search continues from there with robust minima.
        """
        out, z = [], np.sqrt(crit)
        estimate = profile.points[0]
        for direction, limit in ((-1, bound[0]), (1, bound[1])):
            end = self._end_point(profile.point, estimate, direction, step, limit, crit)
            if end != limit:
                p = profile.point(end, robust=True)
                if np.sqrt(max(p.deviance - self.dev_hat, 0.0)) < z - 2 * ZETA_TOL:  # short of z: further out
                    end = self._end_point(lambda v: profile.point(v, robust=True), p, direction,
                                          0.05 * step, limit, crit)
            out.append(end)
        return out

    def _end_point(self, point, start: _Point, direction, step, limit, crit):
        """Where |ζ(v)| = √(d_k(v) − d̂) reaches z = √crit beyond ``start`` (|ζ| < z there), or ``limit`` when
        it never does. Newton's method on h(v) = |ζ(v)| − z, with h'(v) = (∂d_k/∂v) / (2|ζ|) from the point's
        slope (a secant through the last two points when there is none), kept inside the bracket once
        there is one (bisection when a step would leave it). Each step costs one inner minimisation."""
        z = np.sqrt(crit)

        def h_and_slope(p):
            rise = p.deviance - self.dev_hat
            if not np.isfinite(rise):
                return np.inf, np.nan
            root = np.sqrt(max(rise, 0.0))
            return root - z, (p.slope / (2 * root) if root > 0 else np.nan)

        def clip(v):
            return max(v, limit) if direction < 0 else min(v, limit)

        def next_guess(v, h, dh, previous, overshoot):
            """Newton from (v, h) with slope dh, else the secant through the previous point; None when
            neither points outward from the inside (or inward from the outside)."""
            if np.isfinite(h) and np.isfinite(dh) and dh * direction > 0:
                return v - h / dh
            if previous is not None and np.isfinite(h) and np.isfinite(previous[1]) and previous[0] != v:
                slope = (h - previous[1]) / (v - previous[0])
                if slope * direction > 0:
                    return v - overshoot * h / slope
            return None

        h, dh = h_and_slope(start)
        inner, outer, latest = (start.v, h), None, (start.v, h)
        v = next_guess(start.v, h, dh, None, 1.0)
        if v is None or (v - start.v) * direction <= 0:
            v = start.v + direction * abs(step)
        v = clip(v)
        sizes = []
        for _ in range(MAX_ROOT_STEPS):
            h, dh = h_and_slope(point(v))
            if abs(h) < ZETA_TOL:
                return v
            sizes.append(abs(h))
            previous, latest = latest, (v, h)
            if h < 0:
                if v == limit:  # the deviance never rises enough: the interval reaches the bound
                    return limit
                inner = (v, h)
            else:
                outer = (v, h)
            falsi = None if outer is None or not np.isfinite(outer[1]) else \
                inner[0] + (outer[0] - inner[0]) * (-inner[1]) / (outer[1] - inner[1])
            if outer is not None and abs(outer[0] - inner[0]) < ROOT_XTOL * abs(step):
                return falsi if falsi is not None else 0.5 * (inner[0] + outer[0])
            cand = next_guess(v, h, dh, previous, BRACKET_OVERSHOOT if outer is None else 1.0)
            if outer is None:  # not bracketed yet: go further out
                if cand is None or (cand - v) * direction <= 0:
                    cand = v + (v - start.v)  # double the distance from the start
                v = clip(cand)
                continue
            a, b = sorted((inner[0], outer[0]))
            if cand is None or not a < cand < b:
                cand = falsi if falsi is not None else 0.5 * (a + b)
            if len(sizes) >= 3 and sizes[-1] > 0.5 * sizes[-3]:  # not converging: bisect
                cand = 0.5 * (a + b)
            v = cand
        raise RuntimeError("could not find the end point of a profile interval")


def profile_intervals(model, names, wanted, level, cols, use_gradient: bool | None = None) -> pd.DataFrame:
    """The profile intervals of the parameters ``wanted`` (of ``names``, :func:`parameter_names`) at ``level``,
    as a DataFrame with columns ``cols``; ``use_gradient=False`` forces derivative-free inner
    minimisations."""
    with one_blas_thread():  # tiny matrices: a multi-threaded BLAS only adds overhead
        return _profile_rows(model, names, wanted, level, cols, use_gradient)


def _profile_rows(model, names, wanted, level, cols, use_gradient) -> pd.DataFrame:
    prof = _Profiler(model, use_gradient)
    crit = stats.chi2.isf(1 - level, 1)
    z = np.sqrt(crit)
    n_var = len(prof.psi_hat)
    se = prof.m.se.to_numpy()
    cov = None if prof.H_hat is None else 2.0 * np.linalg.inv(prof.H_hat)  # Cov(ψ̂) ≈ 2 H⁻¹ (d = −2ℓ)
    rows = []
    for name in wanted:
        k = names.index(name)
        if k < n_var:
            est, bound = prof.psi_hat[k], prof.bounds[k]
            if cov is not None and cov[k, k] > 0:
                step = z * np.sqrt(cov[k, k])  # the Wald end point on the ψ scale
            else:
                step = FIRST_STEP * abs(est) if bound[0] == 0.0 else FIRST_STEP
                step = step if step > 0 else 0.5 * FIRST_STEP * prof.psi_hat[-1]
            rows.append(prof.interval(prof.variance_profile(k), step, bound, crit))
        else:
            j = k - n_var
            rows.append(prof.interval(prof.fixef_profile(j), z * se[j], (-np.inf, np.inf), crit))
    return pd.DataFrame(rows, index=wanted, columns=cols)


def profile_zeta(model, parm: str, values, use_gradient: bool | None = None) -> pd.DataFrame:
    """lme4's ``profile(m, which = parm)`` at given values v of one parameter (``.sig01``, ..., ``.sigma`` on the
    SD/correlation scale, or a fixed effect): columns ``parm``, ``deviance`` d_k(v) (the ML deviance with the
    parameter held at v, the others re-estimated) and ``zeta`` ζ(v) = sign(v − ψ̂_k) √(d_k(v) − d(ψ̂)), the curve
    of a zeta plot (:func:`lmmteach.course.plots.plot_zeta`). A REML fit is profiled by ML, as lme4 does.
    The points are computed outward from the estimate, each warm-started from its neighbour and checked from
    other starts (as the intervals' end points are)."""
    check_scale(model)
    names = parameter_names(model)
    if not isinstance(parm, str) or parm not in names:
        raise ValueError(f"unknown parameter {parm!r}; the parameters are {names}")
    try:
        v = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"values must be numbers (the values of {parm} to profile at), not {values!r}") from None
    if v.ndim != 1 or len(v) == 0 or not np.all(np.isfinite(v)):
        raise ValueError(f"values must be a non-empty 1-d sequence of finite numbers, got {values!r}")
    with one_blas_thread():
        prof = _Profiler(model, use_gradient)
        k, n_var = names.index(parm), len(prof.psi_hat)
        if k < n_var:
            lo, hi = prof.bounds[k]
            if np.any((v < lo) | (v > hi)):
                raise ValueError(f"{parm} is {'a correlation' if lo == -1.0 else 'a standard deviation'}: its values "
                                 f"must lie in [{lo:g}, {hi:g}], got {v[(v < lo) | (v > hi)][0]:g}")
        profile = prof.variance_profile(k) if k < n_var else prof.fixef_profile(k - n_var)
        estimate = profile.points[0].v
        deviance = np.empty(len(v))
        for side in (v < estimate, v >= estimate):  # outward from the estimate: each start is a neighbour's
            idx = np.flatnonzero(side)
            for i in idx[np.argsort(np.abs(v[idx] - estimate))]:
                deviance[i] = profile.point(float(v[i]), robust=True).deviance
    zeta = np.sign(v - estimate) * np.sqrt(np.maximum(deviance - prof.dev_hat, 0.0))
    return pd.DataFrame({parm: v, "deviance": deviance, "zeta": zeta})
