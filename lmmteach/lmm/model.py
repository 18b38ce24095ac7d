"""The fitted linear mixed model (lme4's ``mkMerMod``) and ``lmer`` itself.

``lmer`` is a short composition of four public stages, as in lme4:

    design = lformula(formula, data)          # parse, build y, X, Z          (lmmteach.lmm.design)
    devfun = mk_devfun(design, reml)          # θ ↦ profiled deviance          (lmmteach.lmm.engine)
    opt    = optimize_lmer(devfun)            # minimise over θ                (lmmteach.lmm.optimize)
    model  = LinearMixedModel(design, devfun, opt)   # the result: estimates, BLUPs, fit statistics

A :class:`LinearMixedModel` is an immutable result: it computes its quantities from the optimum and never
changes. Printing lives in :mod:`lmmteach.lmm.display`, plots in :mod:`lmmteach.course.plots`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.linalg

from .design import Design, lformula
from .engine import mk_devfun
from .fitted import MixedModelFit, ProfiledFit
from .profiled import RandomEffectsDeviance
from .control import LmerControl
from .optimize import OptimizerResult, one_blas_thread, optimize_lmer, optimize_warm, optimize_warm_many
from .._util import warn_user

if TYPE_CHECKING:
    from .display import Summary

__all__ = ["LinearMixedModel", "Refits", "lmer"]


@dataclass(frozen=True, eq=False)
class LinearMixedModel(ProfiledFit, MixedModelFit):
    """A fitted model  y_i = X_i b + Z_i v_i + e_i,  v_i ~ N(0, Σ),  e_i ~ N(0, σ² I) (the accessors shared
    with gls fits are in :class:`~lmmteach.lmm.fitted.ProfiledFit`, those shared with glmer fits in
    :class:`~lmmteach.lmm.fitted.MixedModelFit`)."""

    design: Design
    devfun: RandomEffectsDeviance
    optimum: OptimizerResult
    call: dict = field(default_factory=dict, repr=False)  # lmer's arguments, for update()

    # -- fixed effects -----------------------------------------------------------------------------------
    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error and t value of each fixed effect (lme4's ``coef(summary(m))``)."""
        return pd.concat([self.fixef, self.se, self.wald_statistics], axis=1)

    # -- variance components ------------------------------------------------------------------------------
    @property
    def Sigma(self) -> np.ndarray:
        """Σ̂ = σ̂² Λ Λ', the covariance matrix of the random effects of one group (all terms)."""
        return self._eval.sigma2 * self.devfun.relcov(self.optimum.theta)

    def _random_scale(self) -> float:
        """σ̂²: Σ = σ̂² Λ Λ'."""
        return float(self._eval.sigma2)

    def _residual_rows(self) -> list[tuple]:
        s2 = self._eval.sigma2
        return [("Residual", None, None, s2, np.sqrt(s2))]

    def covariance_parameters(self) -> pd.DataFrame:
        """Each structure's own parameters (σ's and correlations for us/diag, σ_v², σ², ω for cs,
        σ², ρ for ar1, σ², ρ_1.. for toep): columns grp, structure, parameter, estimate."""
        rows = []
        s2 = self._eval.sigma2
        for name, block, theta in zip(self.design.block_names, self.design.blocks, self.devfun.split(self.theta)):
            for pname, value in block.structure.parameters(theta, s2):
                rows.append((name, block.structure.name, pname, float(value)))
        rows.append(("Residual", "", "sigma", np.sqrt(s2)))
        return pd.DataFrame(rows, columns=["grp", "structure", "parameter", "estimate"])

    # -- random effects -----------------------------------------------------------------------------------
    @cached_property
    def _term_blups(self) -> list[np.ndarray]:
        """The BLUPs term by term: an (ℓ_j × q_j) array for every random term j."""
        return self._eval.term_blups

    def _term_effects(self) -> list[np.ndarray]:
        """The BLUPs v̂ = Σ_b Z' Σ*⁻¹ (y − X b̂) of every term."""
        return self._term_blups

    @property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariance of each level's random effects given the data, Var(v | y) =
        σ̂² Λ M⁻¹ Λ' (M = Λ'Z'ZΛ + I; its diagonal blocks), as lme4's ``ranef(m, condVar = TRUE)``:
        {grouping factor: array (levels × q × q)}. Its diagonal gives the intervals of a caterpillar plot."""
        e = self._eval
        return {name: e.sigma2 * v for name, v in e.condvar(self._factor_terms()).items()}

    # -- fit statistics -------------------------------------------------------------------------------------
    @property
    def reml_criterion(self) -> float:
        """−2 × REML log-likelihood at the optimum (lme4's ``REMLcrit``); NaN for an ML fit."""
        return self._eval.deviance if self.reml else float("nan")

    # -- fitted values -------------------------------------------------------------------------------------
    def _fitted_values(self) -> np.ndarray:
        """ŷ = offset + X b̂ + Z v̂ (conditional fitted values)."""
        yhat = self.design.X @ self._eval.beta
        for b, v in zip(self.design.blocks, self._term_blups):
            yhat = yhat + np.einsum("nq,nq->n", b.Z, v[b.group])
        if self.design.offset is not None:
            yhat = yhat + self.design.offset
        return yhat

    def predict(self, newdata: pd.DataFrame | None = None, re: bool = True, allow_new_levels=False) -> pd.Series:
        """Predictions X b̂ (+ Z v̂ with ``re=True``) for ``newdata`` (default: the data fitted).

        A group level that was not in the fitted data has no BLUP; with ``allow_new_levels=True`` it gets
        v̂ = 0 (the population-level prediction), otherwise this is an error. With several grouping factors
        ``allow_new_levels`` may name the factors for which new levels are allowed, e.g. ``{"item"}``. A row with a missing value in a
        variable the prediction needs is predicted as NaN (as lme4's ``predict``, with ``na.action = na.pass``).
        """
        if newdata is None:
            if re:
                return self.fitted.rename("predicted")
            fixed = self.design.X @ self._eval.beta
            if self.design.offset is not None:
                fixed = fixed + self.design.offset
            return pd.Series(fixed, index=self.design.index, name="predicted")
        return self._predict_newdata(newdata, re, allow_new_levels)

    # -- simulating and updating ---------------------------------------------------------------------------
    def simulate_response(self, rng: np.random.Generator) -> np.ndarray:
        """One response y* = offset + X b̂ + Z v* + e* (:func:`simulate_response`); ``simulate`` draws with it."""
        return simulate_response(self, rng)

    def update(self, formula: str | None = None, data: pd.DataFrame | None = None, reml: bool | None = None,
               **changes) -> "LinearMixedModel":
        """lme4's ``update``: the same call to :func:`lmer` with some arguments changed, e.g.
        ``m.update(". ~ . - Time:Diet")``, ``m.update(reml=False)``, ``m.update(data=other)``
        (also ``contrasts``, ``weights``, ``offset``). In ``formula`` a ``.`` stands for the old side."""
        if not self.call:
            raise ValueError("this model was not made by lmer(), so there is no call to update")
        call = dict(self.call)
        unknown = set(changes) - {"contrasts", "weights", "offset", "start", "control"}
        if unknown:
            raise TypeError(f"update() got unexpected argument(s) {sorted(unknown)}; it takes formula, data, "
                            "reml, contrasts, weights, offset, start, control")
        if formula is not None:
            call["formula"] = _update_formula(call["formula"], formula)
        if data is not None:
            call["data"] = data
        if reml is not None:
            call["reml"] = reml
        call.update(changes)
        return lmer(**call)

    # -- refitting -------------------------------------------------------------------------------------------
    def _result(self, design, devfun, optimum, ml: bool = False) -> "LinearMixedModel":
        call = {**self.call, "reml": False} if ml and self.call else {}
        return LinearMixedModel(design, devfun, optimum, call)

    def _warm_refit(self, devfun, start) -> OptimizerResult | None:
        """Newton steps on this fit's Hessian (:func:`~lmmteach.lmm.optimize.optimize_warm`), which give
        way to the full optimiser when they do not apply (e.g. an optimum on the boundary)."""
        return None if self._refit_hessian is None else optimize_warm(devfun, start, self._refit_hessian)

    def refit_many(self, Y: np.ndarray, theta0=None) -> "Refits":
        """:meth:`refit` for K responses at once (the rows of ``Y``, each in the fitted order): the estimates
        only, one row per response (a refit that fails is a row of NaN).

        The K warm-started searches run in lockstep on the stacked deviance
        (:meth:`~lmmteach.lmm.profiled.DevianceFunction.with_responses`,
        :func:`~lmmteach.lmm.optimize.optimize_warm_many`); with one grouping factor one evaluation serves
        every response, which is what makes a bootstrap of a thousand refits take about a second. A response
        whose warm search does not apply (an optimum on the boundary) is refitted on its own by :meth:`refit`."""
        Y = np.asarray(Y, float)
        if Y.ndim != 2 or Y.shape[1] != self.nobs:
            raise ValueError(f"Y must hold one response of {self.nobs} values per row, got shape {Y.shape}")
        start = self.theta if theta0 is None else np.asarray(theta0, float)
        K = len(Y)
        theta, beta = np.full((K, len(start)), np.nan), np.full((K, self.design.p), np.nan)
        sigma, deviance = np.full(K, np.nan), np.full(K, np.nan)
        todo = np.arange(K)
        if self._refit_hessian is not None:
            devfun = self.devfun.with_responses(self.design, Y)
            r = optimize_warm_many(devfun, np.tile(start, (K, 1)), self._refit_hessian)
            theta[:], beta[:], sigma[:], deviance[:] = r.theta, r.beta, np.sqrt(r.sigma2), r.deviance
            todo = np.flatnonzero(~r.converged)
        for i in todo:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    f = self.refit(Y[i], theta0=start)
                theta[i], beta[i], sigma[i], deviance[i] = f.theta, f.fixef.to_numpy(), f.sigma, f.deviance
            except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                pass  # a row of NaN
        return Refits(theta, beta, sigma, deviance, self.reml)

    @cached_property
    def _refit_hessian(self) -> np.ndarray | None:
        """The Hessian of the deviance over θ at this fit (None on the boundary), reused by every refit:
        differences of the exact gradient (:func:`~lmmteach.lmm.optimize.hessian`)."""
        from .optimize import hessian

        theta = self.optimum.theta
        if self.is_singular or not self.converged:
            return None
        H = hessian(self.devfun, theta, list(range(len(theta))))
        return H if np.all(np.isfinite(H)) and np.linalg.eigvalsh(H).min() > 0 else None

    # -- display (implemented in lmmteach.lmm.display) --------------------------------------------------------
    def summary(self) -> "Summary":
        from .display import Summary

        return Summary(self)

    def __repr__(self) -> str:
        from .display import format_model

        return format_model(self)

    def _repr_html_(self) -> str:  # (not the shared <pre> form: lme4's tables as HTML)
        from .display import model_html

        return model_html(self)


@dataclass(frozen=True)
class Refits:
    """The estimates of one model refitted to K responses (:meth:`LinearMixedModel.refit_many`), one row per
    response; NaN where a refit failed."""

    theta: np.ndarray  # (K, n_theta)
    fixef: np.ndarray  # (K, p)
    sigma: np.ndarray  # (K,)
    deviance: np.ndarray  # (K,): −2ℓ, or the REML criterion for REML refits
    reml: bool

    @property
    def loglik(self) -> np.ndarray:
        return -0.5 * self.deviance

    def __len__(self) -> int:
        return len(self.deviance)


def simulate_response(model, rng: np.random.Generator) -> np.ndarray:
    """One response vector from the fitted model: y* = offset + X b̂ + Z v* + e* with v*_i = σ̂ Λ u_i,
    u_i ~ N(0, I) (so Cov(v*_i) = σ̂² Λ Λ' = Σ̂) and e*_i ~ N(0, σ̂² / w_i) (w_i = 1 without prior weights).
    Rows in the order of the fitted data."""
    d = model.design
    sigma = model.sigma
    thetas = model.devfun.split(model.theta)
    random = np.zeros(d.nobs)
    for ks in model._factor_terms().values():  # v*_l = σ̂ Λ_f u_l for every level l of every grouping factor f
        blocks = [d.blocks[k] for k in ks]
        Lam = scipy.linalg.block_diag(*[b.structure.factor(thetas[k]) for b, k in zip(blocks, ks)])
        v = sigma * rng.standard_normal((blocks[0].n_levels, Lam.shape[0])) @ Lam.T  # one row per level
        Z = np.hstack([b.Z for b in blocks])
        random = random + np.einsum("nq,nq->n", Z, v[blocks[0].group])
    e = sigma * rng.standard_normal(d.nobs)
    if d.weights is not None:
        e = e / np.sqrt(d.weights)
    y = d.X @ model._eval.beta + random + e  # (the array behind model.fixef, without building a Series)
    return y if d.offset is None else y + d.offset



def _update_formula(old: str, new: str) -> str:
    """R's ``update.formula``: a ``.`` left of ``~`` is the old response, right of ``~`` the old terms
    (``". ~ . - Diet"``, ``". ~ . + (1 | g)"``); a formula without ``.`` replaces the old one."""
    if not isinstance(new, str) or "~" not in new:
        raise TypeError(f"formula must be a string such as '. ~ . - x', not {new!r}")
    old_lhs, old_rhs = (side.strip() for side in old.split("~", 1))
    lhs, rhs = (side.strip() for side in new.split("~", 1))
    lhs = old_lhs if lhs == "." else lhs
    if re.fullmatch(r"\.\s*([+-].*)?", rhs, flags=re.S):  # ". + x", ". - x": the old terms, then the change
        rhs = old_rhs + rhs[1:]
    rhs = re.sub(r"(?<![\w.])\.(?![\w.])", lambda _: f"({old_rhs})", rhs)
    return f"{lhs} ~ {rhs}"


def lmer(formula: str, data: pd.DataFrame, reml: bool = True, contrasts: dict | None = None,
         start=None, weights=None, offset=None, control: LmerControl | None = None) -> LinearMixedModel:
    """Fit a linear mixed-effects model by REML (default) or ML, like lme4's ``lmer``.

    Parameters
    ----------
    formula : e.g. ``"price ~ store + (1 | item)"``, ``"science ~ grpCmath + (grpCmath + grpChoursTV | idschool)"``;
        ``(x || g)`` for independent terms; ``cs(...)``, ``ar1(...)``, ``toep(...)``, ``diag(...)`` for other
        covariance structures.
    data : DataFrame with the formula's columns. Rows with missing values are dropped (with a warning).
    reml : REML (True) or ML (False). Use ML for likelihood-ratio tests of fixed effects.
    contrasts : e.g. ``{"store": "sum"}`` for sum-to-zero coding (default: treatment coding).
    start : optional starting θ.
    weights : prior weights (an array, one per row of data, or a column name), as lme4's ``weights``:
        Var(e_i) = σ² / w_i.
    offset : a known term added to the mean (an array, one per row), as ``offset(...)`` in the formula.
    control : the optimiser's named tolerances (:class:`~lmmteach.lmm.control.LmerControl`, lme4's
        ``lmerControl``); what the optimiser did is in ``model.fit_log``.

    Random terms may use any number of grouping factors, crossed ``(1 | plate) + (1 | sample)`` or nested
    ``(1 | batch/cask)`` (= ``(1 | cask:batch) + (1 | batch)``); they are kept in lme4's order (most levels
    first) and fitted by the blocked Cholesky factor (:mod:`lmmteach.lmm.blocked`).

    The fixed part may transform variables: ``log(weight) ~ poly(Time, 2) * Diet + scale(x) + I(Time**2)``
    (see :mod:`lmmteach.lmm.transforms`); terms are ordered as R orders them (by degree, then as written).
    """
    if not isinstance(reml, (bool, np.bool_)):
        raise TypeError(f"reml must be True or False, not {reml!r}")
    with one_blas_thread():  # (the design's tall products too: a second BLAS thread's wake-up costs more)
        design = lformula(formula, data, contrasts, weights=weights, offset=offset)
        devfun = mk_devfun(design, reml=reml)
    if start is not None:  # lme4's start: θ, one value per covariance parameter, all finite
        try:
            start = np.asarray(start, dtype=float).ravel()
        except (TypeError, ValueError):
            raise TypeError(f"start must be numbers (a starting theta), not {start!r}") from None
        if len(start) != devfun.n_theta or not np.all(np.isfinite(start)):
            raise ValueError(f"start must be {devfun.n_theta} finite number(s), one per covariance parameter "
                             f"theta, got {start.tolist()}")
    opt = optimize_lmer(devfun, theta0=start, control=control)
    call = {"formula": design.formula.text, "data": data, "reml": reml, "contrasts": contrasts, "start": start,
            "weights": weights, "offset": offset, "control": control}
    model = LinearMixedModel(design, devfun, opt, call)
    if not opt.converged:
        warn_user(
            f"the optimiser did not converge: max |gradient| = {opt.gradient_norm:.3g} after {opt.n_iter} "
            f"iterations ({opt.message})")
    if model.is_singular:
        warn_user("boundary (singular) fit: see help('lmmteach.lmm.model.LinearMixedModel.is_singular')")
    return model
