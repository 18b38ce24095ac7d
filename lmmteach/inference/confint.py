"""Confidence intervals for the parameters of a fitted model (lme4's ``confint``).

Rows as lme4 names them: ``.sig01, .sig02, ...`` for the random-effect standard deviations and
correlations (term by term, within a term in the order of the lower triangle of Σ taken column by column:
σ_0, ρ_01, ..., σ_1, ...), ``.sigma`` for σ, then the fixed effects. Three methods:

* ``"wald"``: b̂_k ± z_{1−α/2} se(b̂_k) for fixed effects; NaN for the variance parameters (as lme4: their
  sampling distributions are far from normal).
* ``"profile"`` (the default, as lme4): the likelihood-ratio interval. With the ML deviance
  d(ψ) = −2ℓ(ψ) (REML fits are refitted by ML, as lme4 does), the profile of parameter ψ_k is

      d_k(v) = min { d(ψ) : ψ_k = v },

  and the interval is { v : d_k(v) − d(ψ̂) ≤ χ²_{1, level} } — where the LRT of H0: ψ_k = v is not
  rejected. The end points are found by root finding (lme4 interpolates a spline through a grid, so the
  two agree to about 1e-4). For a fixed effect the inner minimum has a closed part: with β_k fixed at v,

      min over the other b of r'V⁻¹r = r̂'V⁻¹r̂ + (v − b̂_k)² / [(X'V⁻¹X)⁻¹]_kk,

  so only θ is searched. A standard deviation's interval stops at 0, a correlation's at ±1.
* ``"boot"``: percentile intervals of the estimates refitted to ``nsim`` data sets simulated from the fit
  (the parametric bootstrap of :mod:`lmmteach.inference.bootstrap`, lme4's ``bootMer``).

Only unstructured (``us``) and variance-components (``diag``) blocks have lme4's σ/ρ scale; other
structures get Wald intervals for their fixed effects only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..lmm.covariance import Unstructured, VarianceComponents, sd_correlation
from ..lmm.optimize import one_blas_thread
from .._util import LOG_2PI

__all__ = ["sdcor", "theta_from_sdcor", "parameter_names", "confint"]

ROOT_CHECK_TOL = 1e-6
"""An end point is re-searched when the robust inner minimum lies this far below the critical value."""
ROOT_XTOL = 1e-6
"""End points are solved to this fraction of the first step (about 1e-7 of the parameter's size)."""
BRACKET_OVERSHOOT = 1.2
"""A linear extrapolation of ζ aims this much beyond the end point, so that it is bracketed."""
MAX_BRACKET_STEPS = 60
INNER_OPTIONS = {"ftol": 1e-13, "gtol": 1e-9, "maxiter": 500}
"""L-BFGS-B options of an inner minimisation of a profile (deviance to ~1e-10 relative)."""
ROUGH_OPTIONS = {"ftol": 1e-9, "gtol": 1e-6, "maxiter": 100}
"""Options of the rough inner minimisations from the other starts of a robust profile point."""



# -- the σ/ρ scale ---------------------------------------------------------------------------------------------
def _check_scale(model):
    for b in model.design.blocks:
        if not isinstance(b.structure, (Unstructured, VarianceComponents)):
            raise NotImplementedError(
                f"profile and bootstrap intervals use lme4's SD/correlation scale, which a {b.structure.name}() "
                "block does not have; use method='wald' for the fixed effects")


def sdcor(model, theta=None, sigma=None) -> np.ndarray:
    """ψ_var: the random-effect SDs and correlations (lme4's order) followed by σ."""
    theta = model.theta if theta is None else theta
    sigma = model.sigma if sigma is None else sigma
    out = []
    for b, t in zip(model.design.blocks, model.devfun.split(theta)):
        sd, R = sd_correlation(sigma**2 * b.structure.relcov(t))
        R = np.nan_to_num(R)  # an undefined correlation (a zero SD) is reported as 0
        for c in range(b.structure.q):
            out.append(sd[c])
            if isinstance(b.structure, Unstructured):
                out.extend(R[c + 1 :, c])
    return np.array(out + [sigma])


def _bounds(model) -> list[tuple[float, float]]:
    out = []
    for b in model.design.blocks:
        for c in range(b.structure.q):
            out.append((0.0, np.inf))
            if isinstance(b.structure, Unstructured):
                out += [(-1.0, 1.0)] * (b.structure.q - c - 1)
    return out + [(0.0, np.inf)]


def theta_from_sdcor(model, psi) -> np.ndarray | None:
    """θ for given SDs/correlations ψ (σ last): C = Σ/σ², θ from its Cholesky factor; None when the
    correlations do not make a valid covariance matrix."""
    sigma = psi[-1]
    thetas, k = [], 0
    for b in model.design.blocks:
        q = b.structure.q
        if isinstance(b.structure, VarianceComponents):
            thetas.append(np.asarray(psi[k : k + q]) / sigma)
            k += q
            continue
        sd, R = np.zeros(q), np.eye(q)
        for c in range(q):
            sd[c] = psi[k]
            k += 1
            for r in range(c + 1, q):
                R[r, c] = R[c, r] = psi[k]
                k += 1
        if q > 1 and np.linalg.eigvalsh(R).min() < -1e-12:
            return None
        thetas.append(b.structure.theta_from_relcov(np.outer(sd, sd) * R / sigma**2))
    return np.concatenate(thetas)


def parameter_names(model) -> list[str]:
    n_var = len(sdcor(model)) - 1
    return [f".sig{k + 1:02d}" for k in range(n_var)] + [".sigma"] + list(model.fixef.index)


# -- the profiles ----------------------------------------------------------------------------------------------------
class _Profiler:
    """The ML deviance on the σ/ρ scale, and its profiles."""

    def __init__(self, model):
        self.m = model.refit_ml() if model.reml else model
        self.psi_hat = sdcor(self.m)
        self.bounds = _bounds(self.m)
        self.dev_hat = self.m.deviance
        self.theta_bounds = self.m.devfun.bounds

    def deviance(self, psi) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            theta = theta_from_sdcor(self.m, psi)
        if theta is None or psi[-1] <= 0:
            return np.inf
        try:
            return -2.0 * self.m.devfun.loglik(theta, psi[-1] ** 2)
        except np.linalg.LinAlgError:  # numerically singular at an extreme ψ
            return np.inf

    def variance_profile(self, k):
        """v ↦ min over the other variance parameters of d(ψ) with ψ_k = v (warm-started)."""
        others = [j for j in range(len(self.psi_hat)) if j != k]
        start = {"x": self.psi_hat[others]}
        history = [(self.psi_hat[k], self.psi_hat[others])]  # (v, inner minimiser) of the points so far
        scale = np.where(self.psi_hat[others] != 0, np.abs(self.psi_hat[others]), 1.0)
        bnds = [(lo / s if np.isfinite(lo) else None, hi / s if np.isfinite(hi) else None)
                for (lo, hi), s in ((self.bounds[j], sc) for j, sc in zip(others, scale))]

        def minimise(f, x0, options=INNER_OPTIONS):
            res = optimize.minimize(f, x0, method="L-BFGS-B", bounds=bnds, options=options)
            return float(res.fun), res.x

        def at(v, robust=False):
            def f(x):
                psi = np.empty(len(self.psi_hat))
                psi[k], psi[others] = v, x * scale
                d = self.deviance(psi)
                return d if np.isfinite(d) else 1e300

            best = minimise(f, self._predicted_start(history, v, start["x"], others) / scale)
            if robust:  # the other starts roughly; the lowest of them polished only if it beats the warm one
                rough = min((minimise(f, x0 / scale, ROUGH_OPTIONS) for x0 in self._other_starts(others, start["x"])),
                            key=lambda r: r[0])
                if rough[0] < best[0] - ROOT_CHECK_TOL:
                    best = min(best, minimise(f, rough[1]), key=lambda r: r[0])
            if np.isfinite(best[0]) and best[0] < 1e299:
                start["x"] = best[1] * scale
                history.append((v, start["x"]))
            return best[0]

        return at

    def _predicted_start(self, history, v, warm, others) -> np.ndarray:
        """The inner minimiser at v predicted from the two profile points nearest to v (linear inter- or
        extrapolation along the profile's path, kept inside the bounds); the last one when there is one."""
        if len(history) < 2:
            return warm
        (v1, x1), (v2, x2) = sorted(history, key=lambda h: abs(h[0] - v))[:2]
        if v1 == v2:
            return x1
        x = x1 + (x2 - x1) * (v - v1) / (v2 - v1)
        lo = np.array([self.bounds[j][0] for j in others])
        hi = np.array([self.bounds[j][1] for j in others])
        return np.clip(x, lo, hi)

    def _other_starts(self, others, warm) -> list[np.ndarray]:
        """Inner starting points besides the warm start, for profiles with several branches: the
        estimates, and the warm start with each SD at 0 (the boundary) and each correlation at ±1."""
        out = [self.psi_hat[others].copy()]
        sigma = len(self.psi_hat) - 1
        for i, j in enumerate(others):
            lo, hi = self.bounds[j]
            if j == sigma:
                continue
            for value in ((0.0,) if lo == 0.0 else (lo, hi) if np.isfinite(lo) else ()):
                x = warm.copy()
                x[i] = value
                out.append(x)
        return out

    def fixef_profile(self, k):
        """v ↦ min over θ of the ML deviance with b_k = v and the other b's at their GLS estimates."""
        devfun, n = self.m.devfun, self.m.nobs
        start = {"theta": self.m.theta}
        scale = devfun.theta_scale
        bnds = [(lo / s + (1e-12 if lo == 0 else 0), hi / s) for (lo, hi), s in zip(self.theta_bounds, scale)]

        def dev(theta, v):
            e = devfun.evaluate(theta)
            Ainv = np.linalg.inv(e.A)
            pwrss = e.pwrss + (v - e.beta[k]) ** 2 / Ainv[k, k]
            return e.logdet_V + n * (1 + LOG_2PI + np.log(pwrss / n))

        def at(v, robust=False):
            starts = [start["theta"]] + ([self.m.theta, devfun.theta0] if robust else [])
            fits = [optimize.minimize(lambda x: dev(x * scale, v), t0 / scale, method="L-BFGS-B", bounds=bnds,
                                      options={"ftol": 1e-14, "gtol": 1e-9, "maxiter": 500}) for t0 in starts]
            res = min(fits, key=lambda r: r.fun)
            start["theta"] = res.x * scale
            return float(res.fun)

        return at

    def interval(self, profile, estimate, step, bound, crit):
        """The two end points where profile(v) − d̂ = crit, searched outward from the estimate.

        Each inner minimum is warm-started from the previous one, which is fast but may stay on a higher
        branch of a profile with several (e.g. a slope SD at 0 against a correlation at +1): the deviance
        found is then too high and the end point too close. So the end point is checked with the robust
        inner minimum (several starts, :meth:`_other_starts`, keep the lowest); where that is lower, the
        true end point lies further out and the search continues from there with robust minima.
        """
        out = []
        for direction, limit in ((-1, bound[0]), (1, bound[1])):
            end = self._end_point(profile, estimate, direction, step, limit, crit)
            if end != limit and profile(end, robust=True) - self.dev_hat - crit < -ROOT_CHECK_TOL:
                end = self._end_point(lambda v: profile(v, robust=True), end, direction, 0.05 * step, limit,
                                      crit, at_estimate=False)
            out.append(end)
        return out

    def _end_point(self, profile, start, direction, step, limit, crit, at_estimate=True):
        """Where the signed root ζ(v) = √(profile(v) − d̂) reaches z = √crit beyond ``start`` (ζ < z
        there), or ``limit`` when it never does. ζ is nearly linear in v, so a linear extrapolation from
        the points seen so far brackets the end point in a step or two, and Brent's method on ζ − z then
        converges in a few more; each point costs one inner minimisation."""
        z = np.sqrt(crit)

        def h(v):
            return np.sqrt(max(profile(v) - self.dev_hat, 0.0)) - z

        def clip(v):
            return max(v, limit) if direction < 0 else min(v, limit)

        lo, hi = start, clip(start + direction * step)
        h_lo = -z if at_estimate else h(start)  # at the estimate the deviance has not risen
        for _ in range(MAX_BRACKET_STEPS):
            h_hi = h(hi)
            if h_hi > 0:
                return optimize.brentq(h, min(lo, hi), max(lo, hi), xtol=ROOT_XTOL * max(abs(step), 1e-8),
                                       rtol=1e-10)
            if hi == limit:  # the deviance never rises enough: the interval reaches the bound
                return limit
            slope = (h_hi - h_lo) / (hi - lo)
            guess = hi + BRACKET_OVERSHOOT * (-h_hi) / slope if slope * direction > 0 else hi + 2 * (hi - lo)
            lo, h_lo = hi, h_hi
            hi = clip(guess if (guess - hi) * direction > 0 else hi + (hi - start))
        raise RuntimeError("could not bracket the end point of a profile interval")


def _level_columns(level):
    a = (1 - level) / 2
    return [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]


def confint(model, method: str = "profile", level: float = 0.95, parm=None, nsim: int = 500, seed=None,
            progress: bool = False, n_jobs: int = 1) -> pd.DataFrame:
    """lme4's ``confint(m, method=...)``: a DataFrame with rows ``.sig01, ..., .sigma``, then the fixed
    effects, and columns ``2.5 %`` and ``97.5 %`` (for level 0.95). ``parm`` selects rows by name;
    ``nsim``, ``seed`` and ``n_jobs`` (worker processes; the result does not depend on it) are for
    ``method="boot"``."""
    method = method.lower()
    if method not in ("wald", "profile", "boot"):
        raise ValueError(f"method must be 'wald', 'profile' or 'boot', not {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    cols = _level_columns(level)
    fixed = list(model.fixef.index)
    if method == "wald":
        try:
            _check_scale(model)
            names = parameter_names(model)
        except NotImplementedError:
            names = fixed
        z = stats.norm.isf((1 - level) / 2)
        out = pd.DataFrame(np.nan, index=names, columns=cols)
        out.loc[fixed, cols[0]] = (model.fixef - z * model.se).to_numpy()
        out.loc[fixed, cols[1]] = (model.fixef + z * model.se).to_numpy()
        return out if parm is None else out.loc[list(parm)]
    _check_scale(model)
    names = parameter_names(model)
    wanted = names if parm is None else list(parm)
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the parameters are {names}")
    if method == "boot":
        from .bootstrap import parametric_bootstrap

        def statistic(Y):  # the estimates of a batch of simulated responses, refitted together
            r = model.refit_many(Y, theta0=model.theta)
            return [np.r_[sdcor(model, t, s), b] for t, s, b in zip(r.theta, r.sigma, r.fixef)]

        sims = parametric_bootstrap(model, statistic, nsim, seed, progress, desc="bootstrap confint",
                                    n_jobs=n_jobs, many=True)
        a = (1 - level) / 2
        q = np.nanquantile(sims, [a, 1 - a], axis=0).T
        return pd.DataFrame(q, index=names, columns=cols).loc[wanted]

    with one_blas_thread():
        return _profile_intervals(model, names, wanted, level, cols)


def _profile_intervals(model, names, wanted, level, cols) -> pd.DataFrame:
    prof = _Profiler(model)
    crit = stats.chi2.isf(1 - level, 1)
    n_var = len(prof.psi_hat)
    se = prof.m.se.to_numpy()
    rows = []
    for name in wanted:
        k = names.index(name)
        if k < n_var:
            est, bound = prof.psi_hat[k], prof.bounds[k]
            step = 0.2 * abs(est) if bound[0] == 0.0 else 0.2
            step = step if step > 0 else 0.1 * prof.psi_hat[-1]
            rows.append(prof.interval(prof.variance_profile(k), est, step, bound, crit))
        else:
            j = k - n_var
            est = prof.m.fixef.iloc[j]
            rows.append(prof.interval(prof.fixef_profile(j), est, se[j], (-np.inf, np.inf), crit))
    return pd.DataFrame(rows, index=wanted, columns=cols)
