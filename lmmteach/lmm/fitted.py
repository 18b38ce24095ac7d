"""What every fitted model of the course shares (lme4's ``merMod`` accessors, nlme's ``gls`` ones).

A fitted model is an immutable result: the design (y, X and, for lmer, Z), the deviance function of θ
(:class:`~lmmteach.lmm.profiled.DevianceFunction`) and the optimum the optimiser found. Everything else is
read off the deviance's evaluation at the optimum, by the same formulas for ``lmer`` and ``gls`` fits:

    b̂ = (X'V⁻¹X)⁻¹ X'V⁻¹y,   Cov(b̂) = s² (X'V⁻¹X)⁻¹,   ℓ = −d(θ̂)/2,
    AIC = −2ℓ + 2 npar,   BIC = −2ℓ + log(n) npar,   npar = p + n_θ + 1 (the fixed effects, θ and σ).

The two kinds of fit differ only where the models differ — the scale s² of Cov(b̂) (σ̂² for lmer; nlme's
r'V⁻¹r / (n − p) for gls), the n of the BIC, the fitted values (lmer adds Z v̂) — and say so by a hook.
Printing lives in :mod:`lmmteach.lmm.display`.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .control import DEFAULT_CONTROL, LmerControl
from .optimize import OptimizerResult, one_blas_thread, optimize_lmer

__all__ = ["FittedModel"]


class FittedModel:
    """The accessors, refits and printing hooks shared by :class:`~lmmteach.lmm.model.LinearMixedModel`
    and :class:`~lmmteach.lmm.gls.GLSFit` (each a frozen dataclass with ``design``, ``devfun``, ``optimum``)."""

    design: Any
    devfun: Any
    optimum: OptimizerResult
    control: LmerControl = DEFAULT_CONTROL
    """The optimiser's settings for refits (:meth:`refit_ml`, :meth:`refit`)."""

    # -- the evaluation at the optimum -------------------------------------------------------------------
    @cached_property
    def _eval(self):
        kept = self.optimum.evaluation
        if kept is not None and kept.cp is self.devfun.cp and np.array_equal(kept.theta, self.optimum.theta):
            return kept
        return self.devfun.evaluate(self.optimum.theta)

    @property
    def reml(self) -> bool:
        return self.devfun.reml

    @property
    def formula(self) -> str:
        return self.design.formula.text

    @property
    def theta(self) -> np.ndarray:
        """The covariance parameters θ at the optimum (lme4's ``getME(m, "theta")``)."""
        return self.optimum.theta.copy()

    # -- fixed effects -----------------------------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        """b̂: the fixed effects (BLUE), b̂ = (X'Σ*⁻¹X)⁻¹ X'Σ*⁻¹ y at the estimated Σ*."""
        return pd.Series(self._eval.beta, index=list(self.design.fixef_names), name="Estimate")

    def _vcov_scale(self) -> float:
        """s² in Cov(b̂) = s² (X'V⁻¹X)⁻¹."""
        return float(self._eval.sigma2)

    @property
    def vcov(self) -> pd.DataFrame:
        """Cov(b̂) = s² (X'V⁻¹X)⁻¹ (s² = σ̂² for lmer, = (X'Σ̂*⁻¹X)⁻¹)."""
        names = list(self.design.fixef_names)
        return pd.DataFrame(self._vcov_scale() * np.linalg.inv(self._eval.A), index=names, columns=names)

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.fixef.index, name="Std. Error")

    @property
    def tvalues(self) -> pd.Series:
        """t = b̂_k / se(b̂_k)."""
        return (self.fixef / self.se).rename("t value")

    @property
    def sigma(self) -> float:
        """σ̂, the residual standard deviation."""
        return float(np.sqrt(self._eval.sigma2))

    # -- fit statistics ------------------------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """The maximised log-likelihood (the REML log-likelihood for a REML fit)."""
        return -0.5 * self._eval.deviance

    @property
    def deviance(self) -> float:
        """−2 × log-likelihood (for a REML fit, the REML criterion, as lme4 reports it)."""
        return self._eval.deviance

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects + covariance parameters + σ."""
        return self.design.p + self.devfun.n_theta + 1

    @property
    def aic(self) -> float:
        return self.deviance + 2 * self.npar

    def _bic_nobs(self) -> int:
        """The n of the BIC's log(n)."""
        return self.nobs

    @property
    def bic(self) -> float:
        return self.deviance + np.log(self._bic_nobs()) * self.npar

    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def converged(self) -> bool:
        return self.optimum.converged

    @property
    def fit_log(self) -> str:
        """What the optimiser did, step by step: start, searches, boundary handling, polish, the final
        convergence check (lme4's ``optinfo``, MixedModels.jl's ``OptSummary``); print it."""
        from .display import fit_log_lines

        return "\n".join(fit_log_lines(self))

    # -- fitted values -------------------------------------------------------------------------------------
    def _fitted_values(self) -> np.ndarray:
        """ŷ (the fixed part X b̂; lmer adds the offset and Z v̂)."""
        return self.design.X @ self._eval.beta

    @property
    def fitted(self) -> pd.Series:
        """ŷ, the fitted values."""
        return pd.Series(self._fitted_values(), index=self.design.index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        """ê = y − ŷ."""
        return pd.Series(self.design.y - self.fitted.to_numpy(), index=self.design.index, name="residuals")

    # -- refitting -----------------------------------------------------------------------------------------
    def _result(self, design, devfun, optimum, ml: bool = False):
        """A fitted model of this kind (``ml``: this model refitted by ML)."""
        raise NotImplementedError

    def _warm_refit(self, devfun, start) -> OptimizerResult | None:
        """A shortcut to the optimum of a refit from ``start`` (None: use the optimiser)."""
        return None

    def refit_ml(self):
        """The same model fitted by ML (what ``anova`` does with a REML fit, as lme4 and nlme do)."""
        if not self.reml:
            return self
        devfun = self.devfun.with_reml(False)
        return self._result(self.design, devfun, optimize_lmer(devfun, theta0=self.theta, control=self.control),
                            ml=True)

    def refit(self, y: np.ndarray, theta0=None):
        """The same design fitted to a new response vector ``y`` (rows in the fitted order), as the fitting
        function would fit it; used by the parametric bootstrap and simulations. What does not involve y
        is reused (the design, its checks and every cross-product of X and Z); the search starts from
        ``theta0`` (default: this fit's θ)."""
        design = self.design.with_response(y)
        with one_blas_thread():
            devfun = self.devfun.with_response(design)
        start = self.theta if theta0 is None else np.asarray(theta0, float)
        opt = self._warm_refit(devfun, start)
        if opt is None:
            opt = optimize_lmer(devfun, theta0=start, control=self.control)
        return self._result(design, devfun, opt)

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(repr(self)) + "</pre>"
