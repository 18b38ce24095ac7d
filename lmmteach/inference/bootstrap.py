"""The parametric bootstrap (notes: "Inference for Fixed Effects": "Could consider bootstrapping data to
obtain non-asymptotic significance results").

The χ²_k reference of the likelihood-ratio statistic D = 2 [LL(M1) − LL(M0)] is a large-sample result, and
on the boundary of the parameter space even its χ̄² correction is only asymptotic. The parametric
bootstrap replaces the asymptotic distribution by simulation from the fitted null model M0:

    y* = X b̂ + Z v* + e*,     v*_i ~ N(0, Σ̂)  (one draw per group),     e* ~ N(0, σ̂² I),

then refits both models to y* and records D* = 2 [LL*(M1) − LL*(M0)]. The bootstrap p-value is

    p = (1 + #{D* ≥ D}) / (nsim + 1).

Each refit reuses the design's cross-products and starts at the original estimates
(:meth:`LinearMixedModel.refit`), so a thousand refits of the grocery or TIMSS random-intercept models take
seconds. The same simulate-and-refit loop gives percentile confidence intervals (:mod:`lmmteach.inference.confint`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from .._util import warn_user
from ..lmm.optimize import one_blas_thread
from .lrt import _check_models, lrt_statistic


def simulate(model, rng: np.random.Generator) -> np.ndarray:
    """One response vector from the fitted model: y* = X b̂ + Z v* + e* with v*_i = σ̂ Λ u_i, u_i ~ N(0, I)
    (so Cov(v*_i) = σ̂² Λ Λ' = Σ̂) and e* ~ N(0, σ̂² I). Rows in the order of the fitted data."""
    d = model.design
    sigma = model.sigma
    if not d.single_factor:  # several grouping factors: v*_j = σ̂ λ_j u for every level of every term j
        y = d.X @ model.fixef.to_numpy()
        for b, theta in zip(d.blocks, model.devfun.split(model.theta)):
            v = sigma * rng.standard_normal((b.n_levels, b.q)) @ b.structure.factor(theta).T
            y = y + np.einsum("nq,nq->n", b.Z, v[b.group])
        return y + sigma * rng.standard_normal(d.nobs)
    Lam = model.devfun.factor(model.theta)
    v = sigma * rng.standard_normal((d.n_groups, d.q)) @ Lam.T  # (G, q), one row per group
    e = sigma * rng.standard_normal(d.nobs)
    return d.X @ model.fixef.to_numpy() + np.einsum("nq,nq->n", d.Z, v[d.group]) + e


def parametric_bootstrap(model, statistic, nsim: int = 1000, seed=None, progress: bool = True,
                         simulate_from=None, desc: str = "bootstrap") -> np.ndarray:
    """lme4's ``bootMer``: for each of ``nsim`` responses simulated from ``simulate_from`` (default
    ``model``), call ``statistic(y_star)`` and stack the results (rows = simulations). A simulation whose
    refit fails gives a row of NaN."""
    from tqdm.auto import tqdm

    source = model if simulate_from is None else simulate_from
    rng = np.random.default_rng(seed)
    rows = []
    with one_blas_thread():
        for _ in tqdm(range(int(nsim)), disable=not progress, desc=desc, leave=False):
            y = simulate(source, rng)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rows.append(np.atleast_1d(np.asarray(statistic(y), float)))
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                rows.append(None)
    width = max((len(r) for r in rows if r is not None), default=1)
    return np.vstack([r if r is not None else np.full(width, np.nan) for r in rows])


@dataclass(frozen=True)
class BootstrapLRT:
    """The result of :func:`bootstrap_lrt` (immutable).

    ``statistic`` is the observed D, ``simulated`` the nsim values D* (NaN where a refit failed),
    ``p_value`` = (1 + #{D* ≥ D}) / (n + 1) over the n successful simulations.
    """

    statistic: float
    simulated: np.ndarray = field(repr=False)
    nsim: int
    df: int
    seed: object = None
    null_formula: str = ""
    alternative_formula: str = ""

    def __post_init__(self):
        self.simulated.setflags(write=False)

    @property
    def n_failed(self) -> int:
        return int(np.isnan(self.simulated).sum())

    @property
    def p_value(self) -> float:
        ok = self.simulated[~np.isnan(self.simulated)]
        return float((1 + np.sum(ok >= self.statistic - 1e-10)) / (len(ok) + 1))

    def __str__(self) -> str:
        return (f"Parametric bootstrap LRT ({self.nsim} simulations from the null model"
                f"{f', {self.n_failed} failed' if self.n_failed else ''})\n"
                f"  M0: {self.null_formula}\n  M1: {self.alternative_formula}\n"
                f"  D = {self.statistic:.4f} on {self.df} parameter(s), bootstrap p = {self.p_value:.4g}")


def bootstrap_lrt(m1, m0, nsim: int = 1000, seed=None, progress: bool = True) -> BootstrapLRT:
    """Parametric bootstrap of the likelihood-ratio test of M0 (null) within M1.

    Simulates ``nsim`` responses from the fitted M0, refits M0 and M1 to each (starting from their
    estimates), and compares the observed D with the simulated D*. REML fits are refitted by ML first,
    as :func:`lmmteach.anova` does. ``seed`` makes the result reproducible (``numpy.random.default_rng``).
    """

    _check_models((m1, m0))
    if m1.npar < m0.npar:
        m1, m0 = m0, m1
    if m1.reml or m0.reml:
        warn_user("refitting model(s) with ML (instead of REML)")
        m1, m0 = m1.refit_ml(), m0.refit_ml()
    observed = lrt_statistic(m1, m0)

    def statistic(y):
        return lrt_statistic(m1.refit(y, theta0=m1.theta), m0.refit(y, theta0=m0.theta))

    sims = parametric_bootstrap(m0, statistic, nsim, seed, progress, desc="bootstrap LRT")[:, 0]
    return BootstrapLRT(float(observed), sims, int(nsim), int(m1.npar - m0.npar), seed, m0.formula, m1.formula)
