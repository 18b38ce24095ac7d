"""What every fitted model of the course shares (lme4's ``merMod`` accessors, nlme's ``gls`` ones).

A fitted model is an immutable result: the design (y, X and, for lmer and glmer, Z), the deviance function
and the optimum the optimiser found. Three classes hold what the kinds of fit share, each once:

* :class:`FittedModel` -- every fit (lmer, gls, glmer): θ, b̂, its standard errors and Wald statistics,
  the fit statistics and the fitted values, prediction and refitting plumbing,

      ℓ = −d/2,   AIC = −2ℓ + 2 npar,   BIC = −2ℓ + log(n) npar,   npar = p + n_θ (+ 1 for σ);

* :class:`ProfiledFit` -- the linear models (lmer, gls), whose deviance is profiled over b and σ: b̂, σ̂ and
  Cov(b̂) are read off the deviance's evaluation at θ̂,

      b̂ = (X'V⁻¹X)⁻¹ X'V⁻¹y,   Cov(b̂) = s² (X'V⁻¹X)⁻¹,   ℓ = −d(θ̂)/2;

* :class:`MixedModelFit` -- the models with random effects (lmer, glmer): ``ranef`` with conditional
  variances, ``coef``, ``varcorr``, ``ngroups``, ``is_singular``, ``simulate`` and Z v̂ in ``predict``.

The kinds of fit differ only where the models differ -- the scale s² of Cov(b̂) (σ̂² for lmer; nlme's
r'V⁻¹r / (n − p) for gls; glmer's Cov(β̂) is its own, from the Hessian), the n of the BIC, the fitted values
(lmer adds Z v̂, glmer is g⁻¹(η̃)) -- and say so by a hook. Printing lives in :mod:`lmmteach.lmm.display`
(and :mod:`lmmteach.glmm.display`).
"""

from __future__ import annotations

import copy
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from .control import DEFAULT_CONTROL, LmerControl
from .covariance import sd_correlation
from .design import _check_data, grouping_labels, model_matrix, variable_values
from .optimize import OptimizerResult, one_blas_thread, optimize_lmer
from .transforms import expression_variables

__all__ = ["FittedModel", "ProfiledFit", "MixedModelFit", "allowed_new_levels", "level_codes"]


class FittedModel:
    """The accessors, refits and printing hooks shared by every fitted model -- lmer's
    :class:`~lmmteach.lmm.model.LinearMixedModel`, gls's :class:`~lmmteach.lmm.gls.GLSFit` and glmer's
    :class:`~lmmteach.glmm.model.GeneralizedLinearMixedModel` (each a frozen dataclass with ``design``,
    ``devfun``, ``optimum``)."""

    design: Any
    devfun: Any
    optimum: Any

    statistic_name = "t value"
    """The name of b̂_k / se(b̂_k): a t statistic for the linear models, "z value" for glmer (σ = 1 is known)."""

    n_scale_parameters = 1
    """Parameters of the residual scale counted in ``npar``: σ for the linear models, none for glmer."""

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
    def _beta(self) -> np.ndarray:
        """b̂ as an array (each kind of fit knows where its estimate is kept)."""
        raise NotImplementedError

    @property
    def fixef(self) -> pd.Series:
        """b̂: the fixed effects (for a linear model the BLUE, b̂ = (X'Σ*⁻¹X)⁻¹ X'Σ*⁻¹ y at the estimated Σ*)."""
        return pd.Series(self._beta(), index=list(self.design.fixef_names), name="Estimate")

    @property
    def vcov(self) -> pd.DataFrame:
        """Cov(b̂)."""
        raise NotImplementedError

    @property
    def se(self) -> pd.Series:
        """Standard errors of the fixed effects, √diag Cov(b̂)."""
        return pd.Series(np.sqrt(np.diag(self.vcov.to_numpy())), index=self.fixef.index, name="Std. Error")

    @property
    def wald_statistics(self) -> pd.Series:
        """b̂_k / se(b̂_k): the t (linear models) or z (glmer) statistic of each fixed effect."""
        return (self.fixef / self.se).rename(self.statistic_name)

    # -- fit statistics ------------------------------------------------------------------------------------
    @property
    def deviance(self) -> float:
        """−2 × log-likelihood at the optimum."""
        raise NotImplementedError

    @property
    def loglik(self) -> float:
        """The maximised log-likelihood ℓ = −d/2 (the REML log-likelihood for a REML fit)."""
        return -0.5 * self.deviance

    @property
    def npar(self) -> int:
        """Number of parameters: fixed effects + covariance parameters (+ σ for the linear models)."""
        return self.design.p + self.devfun.n_theta + self.n_scale_parameters

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
    def gradient_norm(self) -> float:
        """The largest |gradient| of the deviance at the optimum (the convergence check)."""
        return float(np.max(np.abs(self.optimum.gradient)))

    def _fit_log_lines(self) -> list[str]:
        from .display import fit_log_lines

        return fit_log_lines(self)

    @property
    def fit_log(self) -> str:
        """What the optimiser did, step by step: start, searches, boundary handling, polish, the final
        convergence check (lme4's ``optinfo``, MixedModels.jl's ``OptSummary``); print it."""
        return "\n".join(self._fit_log_lines())

    # -- fitted values and prediction ---------------------------------------------------------------------
    def _fitted_values(self) -> np.ndarray:
        """ŷ (the fixed part X b̂; lmer adds the offset and Z v̂, glmer is g⁻¹(η̃))."""
        return self.design.X @ self._beta()

    @property
    def fitted(self) -> pd.Series:
        """ŷ, the fitted values."""
        return pd.Series(self._fitted_values(), index=self.design.index, name="fitted")

    def _random_part(self, newdata: pd.DataFrame, allow_new_levels) -> np.ndarray:
        """Z v̂ for the rows of ``newdata`` (models with random effects only)."""
        raise TypeError(f"a {type(self).__name__} has no random effects to predict")

    def _predict_newdata(self, newdata: pd.DataFrame, re: bool = False, allow_new_levels=False) -> pd.Series:
        """η = offset + X b̂ (+ Z v̂ with ``re=True``) for the rows of ``newdata``, built as the fitted data were
        (the same contrasts, factor levels and poly/scale/center parameters); a row with a missing value in a
        variable the prediction needs is NaN (as lme4's ``predict`` with ``na.action = na.pass``)."""
        newdata = _check_data(newdata)
        f, d = self.design.formula, self.design
        needed = [c for t in f.terms for v in t.variables for c in expression_variables(v)]
        needed += [c for o in f.offsets for c in expression_variables(o)]
        if re:
            needed += [v for r in f.random for t in r.terms for v in t.variables]
            needed += [v for r in f.random for v in r.grouping_variables]
        missing = [v for v in dict.fromkeys(needed) if v not in newdata.columns]
        if missing:
            raise ValueError(f"newdata has no column(s) {missing}, which the model uses")
        complete = newdata[list(dict.fromkeys(needed))].notna().all(axis=1).to_numpy()
        out = pd.Series(np.nan, index=newdata.index, name="predicted")
        newdata = newdata.loc[complete]
        state = copy.deepcopy(d.transform_state)  # the fitted data's poly/scale/center parameters
        names, X = model_matrix(newdata, f.intercept, f.terms, f.factor_vars, d.contrasts, dict(d.xlevels), state)
        X = X[:, [names.index(n) for n in d.fixef_names]]
        pred = X @ self._beta()
        for expr in f.offsets:
            pred = pred + np.asarray(variable_values(newdata, expr, state), dtype=float)
        if re:
            pred = pred + self._random_part(newdata, allow_new_levels)
        out[complete] = pred
        return out

    # -- refitting -----------------------------------------------------------------------------------------
    def _result(self, design, devfun, optimum, ml: bool = False):
        """A fitted model of this kind (``ml``: this model refitted by ML)."""
        raise NotImplementedError

    def _devfun_with_response(self, design):
        """This fit's deviance function for the same design with a new response."""
        raise NotImplementedError

    def _reoptimize(self, devfun, start: np.ndarray):
        """The optimum of ``devfun``, searched from ``start`` (a θ near the answer)."""
        raise NotImplementedError

    def refit_ml(self):
        """The same model fitted by ML (what ``anova`` does with a REML fit, as lme4 and nlme do); an ML fit
        is its own ML refit."""
        return self._refit_by_ml() if self.reml else self

    def _refit_by_ml(self):
        raise NotImplementedError

    def refit(self, y, theta0=None):
        """The same design fitted to a new response vector ``y`` (rows in the fitted order), as the fitting
        function would fit it (lme4's ``refit``); used by the parametric bootstrap and simulations. What does
        not involve y is reused (the design, its checks and every cross-product of X and Z); the search
        starts from ``theta0`` (default: this fit's θ)."""
        y = np.asarray(y, float)
        if y.shape != (self.nobs,):
            raise ValueError(f"y must have one value per observation ({self.nobs}), not shape {y.shape}")
        design = self.design.with_response(y)
        devfun = self._devfun_with_response(design)
        start = self.theta if theta0 is None else np.asarray(theta0, float)
        return self._result(design, devfun, self._reoptimize(devfun, start))


class ProfiledFit(FittedModel):
    """What the linear models (lmer, gls) share: the deviance is profiled over b and σ, so b̂, σ̂² and
    (X'V⁻¹X) are read off one evaluation of it at θ̂."""

    optimum: OptimizerResult
    control: LmerControl = DEFAULT_CONTROL
    """The optimiser's settings for refits (:meth:`refit_ml`, :meth:`refit`)."""

    @cached_property
    def _eval(self):
        kept = self.optimum.evaluation
        if kept is not None and kept.cp is self.devfun.cp and np.array_equal(kept.theta, self.optimum.theta):
            return kept
        return self.devfun.evaluate(self.optimum.theta)

    def _beta(self) -> np.ndarray:
        return self._eval.beta

    def _vcov_scale(self) -> float:
        """s² in Cov(b̂) = s² (X'V⁻¹X)⁻¹."""
        return float(self._eval.sigma2)

    @property
    def vcov(self) -> pd.DataFrame:
        """Cov(b̂) = s² (X'V⁻¹X)⁻¹ (s² = σ̂² for lmer, = (X'Σ̂*⁻¹X)⁻¹)."""
        names = list(self.design.fixef_names)
        return pd.DataFrame(self._vcov_scale() * np.linalg.inv(self._eval.A), index=names, columns=names)

    @property
    def tvalues(self) -> pd.Series:
        """t = b̂_k / se(b̂_k)."""
        return self.wald_statistics

    @property
    def sigma(self) -> float:
        """σ̂, the residual standard deviation."""
        return float(np.sqrt(self._eval.sigma2))

    @property
    def deviance(self) -> float:
        """−2 × log-likelihood (for a REML fit, the REML criterion, as lme4 reports it)."""
        return self._eval.deviance

    @property
    def gradient_norm(self) -> float:
        """max |projected gradient| of the deviance over θ at the optimum."""
        return self.optimum.gradient_norm

    @property
    def residuals(self) -> pd.Series:
        """ê = y − ŷ."""
        return pd.Series(self.design.y - self.fitted.to_numpy(), index=self.design.index, name="residuals")

    # -- refitting -----------------------------------------------------------------------------------------
    def _warm_refit(self, devfun, start) -> OptimizerResult | None:
        """A shortcut to the optimum of a refit from ``start`` (None: use the optimiser)."""
        return None

    def _refit_by_ml(self):
        devfun = self.devfun.with_reml(False)
        return self._result(self.design, devfun, optimize_lmer(devfun, theta0=self.theta, control=self.control),
                            ml=True)

    def _devfun_with_response(self, design):
        with one_blas_thread():
            return self.devfun.with_response(design)

    def _reoptimize(self, devfun, start: np.ndarray) -> OptimizerResult:
        opt = self._warm_refit(devfun, start)
        return optimize_lmer(devfun, theta0=start, control=self.control) if opt is None else opt

    def _repr_html_(self) -> str:
        import html

        return "<pre>" + html.escape(repr(self)) + "</pre>"


def allowed_new_levels(allow, factors: list[str]) -> dict[str, bool]:
    """``allow_new_levels`` as {factor: allowed}: True/False for all factors, or a collection of names."""
    if isinstance(allow, (bool, np.bool_)):
        return {f: bool(allow) for f in factors}
    if isinstance(allow, str):
        allow = [allow]
    try:
        names = set(allow)
    except TypeError:
        raise TypeError(f"allow_new_levels must be True, False or grouping-factor names, not {allow!r}") from None
    unknown = names - set(factors)
    if unknown:
        raise ValueError(f"allow_new_levels names {sorted(unknown)}, which are not grouping factors of the model "
                         f"({', '.join(factors)})")
    return {f: f in names for f in factors}


def level_codes(levels, labels) -> np.ndarray:
    """The index of each label among the fitted ``levels`` (−1 for a level the fit has not seen), matched by
    value or, failing that, by its text (R matches factor levels as text)."""
    by_value = {lev: i for i, lev in enumerate(levels)}
    by_text = {str(lev): i for i, lev in enumerate(levels)}
    return np.array([by_value.get(x, by_text.get(str(x), -1)) for x in labels], dtype=np.intp)


class MixedModelFit(FittedModel):
    """What the models with random effects (lmer, glmer) share: the random effects v of each grouping factor,
    their covariance Σ = s² Λ Λ' (s² = σ̂² for lmer, 1 for glmer) and their conditional modes/BLUPs."""

    # -- hooks ---------------------------------------------------------------------------------------------
    def _term_effects(self) -> list[np.ndarray]:
        """v̂ term by term: an (ℓ_j × q_j) array for every random term j (BLUPs, or glmer's conditional modes)."""
        raise NotImplementedError

    def _random_scale(self) -> float:
        """s² in Σ = s² Λ Λ'."""
        raise NotImplementedError

    def _residual_rows(self) -> list[tuple]:
        """The varcorr rows after the random terms' (lmer's residual; none for glmer)."""
        return []

    @property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def simulate_response(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    # -- random effects ------------------------------------------------------------------------------------
    def _factor_terms(self) -> dict[str, list[int]]:
        """{grouping factor: indices of its terms}, in lme4's order of the factors."""
        out: dict[str, list[int]] = {}
        for k, b in enumerate(self.design.blocks):
            out.setdefault(b.group_name, []).append(k)
        return out

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components in the shape of R's ``as.data.frame(VarCorr(m))``: columns grp, var1, var2,
        vcov, sdcor; Σ = s² Λ Λ' of each term, variances first within each term, then covariances (sdcor holds
        the correlation); for lmer the last row is the residual (binomial and Poisson models have σ = 1)."""
        rows: list[tuple] = []
        s2 = self._random_scale()
        for name, block, theta in zip(self.design.block_names, self.design.blocks, self.devfun.split(self.theta)):
            S = s2 * block.structure.relcov(theta)
            sd, R = sd_correlation(S)
            for k, v in enumerate(block.names):
                rows.append((name, v, None, S[k, k], sd[k]))
            for c in range(len(block.names)):
                for r in range(c + 1, len(block.names)):
                    rows.append((name, block.names[c], block.names[r], S[r, c], R[r, c]))
        rows += self._residual_rows()
        out = pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])
        return out.astype({"vcov": float, "sdcor": float})

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """The predicted random effects v̂ (lmer's BLUPs, glmer's conditional modes): {grouping factor:
        DataFrame (levels × the factor's terms)}, one entry per grouping factor as lme4's ``ranef``."""
        out = {}
        effects = self._term_effects()
        for name, ks in self._factor_terms().items():
            b0 = self.design.blocks[ks[0]]
            names = [n for k in ks for n in self.design.blocks[k].names]
            index = pd.Index(b0.levels, name=name)
            out[name] = pd.DataFrame(np.hstack([effects[k] for k in ks]), index=index, columns=names)
        return out

    @property
    def ranef_se(self) -> dict[str, pd.DataFrame]:
        """Conditional standard deviations of v̂ (square roots of the diagonal of ``ranef_condvar``)."""
        out = {}
        condvar = self.ranef_condvar
        for name, effects in self.ranef.items():
            var = np.diagonal(condvar[name], axis1=1, axis2=2)
            out[name] = pd.DataFrame(np.sqrt(np.clip(var, 0, None)), index=effects.index, columns=effects.columns)
        return out

    @property
    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-level coefficients b̂ + v̂ (lme4's ``coef``): fixed effects with each level's random effects
        added, one DataFrame per grouping factor."""
        out = {}
        for name, effects in self.ranef.items():
            c = pd.DataFrame(np.repeat(self.fixef.to_numpy()[None, :], len(effects), axis=0),
                             index=effects.index, columns=self.fixef.index)
            for col in effects.columns:
                if col in c.columns:
                    c[col] = c[col] + effects[col]
                else:
                    c[col] = effects[col]
            out[name] = c
        return out

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of each grouping factor (lme4's ``ngrps``)."""
        return {name: len(levels) for name, (_, levels) in self.design.factors.items()}

    @property
    def df_resid(self) -> int:
        return self.nobs - self.npar

    @property
    def is_singular(self) -> bool:
        """True when the fit is on the boundary (a variance ~0 or a correlation ~±1), as lme4's isSingular."""
        return any(b.structure.is_singular(t) for b, t in zip(self.design.blocks, self.devfun.split(self.theta)))

    # -- prediction and simulation -------------------------------------------------------------------------
    def _random_part(self, newdata: pd.DataFrame, allow_new_levels) -> np.ndarray:
        """Z v̂ for the rows of ``newdata``: a level not in the fitted data has no v̂; with
        ``allow_new_levels`` (True, or the names of the factors where it is allowed) it gets v̂ = 0 (the
        population level), otherwise it is an error."""
        f, d = self.design.formula, self.design
        new_ok = allowed_new_levels(allow_new_levels, list(d.factors))
        out = np.zeros(len(newdata))
        for b, v in zip(d.blocks, self._term_effects()):
            Z = model_matrix(newdata, b.term.intercept, b.term.terms, f.factor_vars, d.contrasts, dict(d.xlevels))[1]
            labels = grouping_labels(newdata, b.term.grouping_variables)
            codes = level_codes(b.levels, labels)
            if (codes < 0).any() and not new_ok[b.group_name]:
                new = sorted({str(x) for x, c in zip(labels, codes) if c < 0})
                raise ValueError(f"new level(s) of {b.group_name!r} not in the fitted data: {new[:5]}; use "
                                 "allow_new_levels=True (or a set of factor names) to predict them with v = 0, "
                                 "at the population level")
            V = np.where((codes >= 0)[:, None], v[np.maximum(codes, 0)], 0.0)
            out = out + np.einsum("nq,nq->n", Z, V)
        return out

    def simulate(self, nsim: int = 1, seed=None) -> pd.DataFrame:
        """lme4's ``simulate(m, nsim, seed)``: ``nsim`` responses drawn from the fitted model, new random
        effects v* ~ N(0, Σ̂) each time (:meth:`simulate_response`); columns ``sim_1, ..., sim_nsim``, rows
        the fitted observations."""
        if isinstance(nsim, bool) or not isinstance(nsim, (int, np.integer)) or nsim < 1:
            raise ValueError(f"nsim must be a whole number >= 1, not {nsim!r}")
        rng = np.random.default_rng(seed)
        sims = {f"sim_{k + 1}": self.simulate_response(rng) for k in range(int(nsim))}
        return pd.DataFrame(sims, index=self.design.index)
