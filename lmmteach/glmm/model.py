"""The fitted generalised linear mixed model and ``glmer`` itself (lme4's ``glmer``).

``glmer`` is a short composition of stages, as lme4's:

    devfun = glmer_devfun(formula, data, family, nAGQ, weights)   # (θ, β) ↦ −2 log L  (lme4's devFunOnly):
             #   glmm_data   -- y, trials, support checks                         (response)
             #   lformula    -- X, Z, grouping factors, as for lmer               (lmm.design)
             #   mk_glmer_devfun -- PIRLS + Laplace / quadrature                   (laplace)
    opt    = optimize_glmer(devfun)                                # lme4's two stages  (optimize)
    model  = GeneralizedLinearMixedModel(...)                      # estimates, modes, statistics

The model is  g(E[y | b]) = η = offset + Xβ + Zb,  b ~ N(0, Σ_θ),  y | b from the family; the scale σ is 1.
A fitted model is an immutable result; printing is :mod:`lmmteach.glmm.display`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from ..lmm.design import Design, lformula, model_matrix, _check_data
from ..lmm.fitted import MixedModelFit
from ..lmm.optimize import one_blas_thread
from .._util import warn_user
from .family import Family, make_family
from .laplace import GlmerDeviance, mk_glmer_devfun
from .optimize import GlmerControl, GlmerOptimum, difference_derivatives, optimize_glmer
from .pirls import PIRLS_MAXIT, PirlsResult
from .quadrature import marginal_mean
from .response import RESPONSE_COLUMN, TRIALS_COLUMN, GlmmResponse, glmm_data

__all__ = ["GeneralizedLinearMixedModel", "glmer", "glmer_devfun", "overdispersion"]

SINGULAR_TOL = 1e-4
"""A relative SD below this (or a correlation this close to ±1) is a singular fit (lme4's isSingular)."""


@dataclass(frozen=True, eq=False)
class GeneralizedLinearMixedModel(MixedModelFit):
    """A fitted GLMM  g(μ) = offset + Xβ + Zb,  b ~ N(0, Σ),  y | b ~ family(μ) (the accessors shared with
    lmer and gls fits are in :class:`~lmmteach.lmm.fitted.FittedModel`, the random effects' in
    :class:`~lmmteach.lmm.fitted.MixedModelFit`)."""

    design: Design
    family: Family
    devfun: GlmerDeviance
    optimum: GlmerOptimum
    response: GlmmResponse
    call: dict = field(default_factory=dict, repr=False)

    statistic_name = "z value"  # σ = 1 is known: Wald z tests, as lme4's summary
    n_scale_parameters = 0  # no σ to estimate in binomial and Poisson models

    # -- the conditional modes at the optimum --------------------------------------------------------
    @cached_property
    def modes(self) -> PirlsResult:
        """PIRLS at (θ̂, β̂): the conditional modes of the random effects, η, μ, the working weights (the
        optimiser's last PIRLS run, which the deviance function keeps, when it ended there)."""
        return self.devfun.modes(self.optimum.theta, self.optimum.beta)

    @property
    def reml(self) -> bool:
        """False: a GLMM is fitted by maximum likelihood (``anova`` asks)."""
        return False

    @property
    def nAGQ(self) -> int:
        return self.devfun.nAGQ

    def _beta(self) -> np.ndarray:
        """β̂ (kept in the optimum: the GLMM's deviance is not profiled over β)."""
        return self.optimum.beta

    @property
    def hessian(self) -> np.ndarray:
        """∂²(−2 log L)/∂(θ, β)² at the optimum by central differences (lme4's ``optinfo$derivs$Hessian``): the
        fit's own (of the exact gradient, :func:`lmmteach.glmm.optimize.gradient_hessian`, or of the deviance,
        :func:`~lmmteach.glmm.optimize.newton_polish`), else second differences of the deviance here."""
        if self.optimum.hessian is not None:
            return self.optimum.hessian
        x = np.r_[self.optimum.theta, self.optimum.beta]
        with one_blas_thread():
            return difference_derivatives(self.devfun, x, self.devfun(x), 1e-3 * np.maximum(1.0, np.abs(x)))[1]

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Cov(β̂): the β block of 2 H⁻¹ with H the Hessian of −2 log L in (θ, β) (lme4's default,
        ``use.hessian = TRUE``); if θ sits on a bound, the β block of H alone (θ held fixed); for nAGQ = 0, as
        lme4, the inverse of X'WX − R_ZX'R_ZX from PIRLS's factor (θ held fixed)."""
        names = list(self.design.fixef_names)
        if self.nAGQ == 0:  # lme4: no Hessian in (θ, β) for nAGQ = 0; (X'WX − R_ZX'R_ZX)⁻¹ from PIRLS's factor
            joint = self.devfun.modes(self.theta, warm=False)
            return pd.DataFrame(np.linalg.inv(joint.solve.evaluation.A), index=names, columns=names)
        n = self.devfun.n_theta
        H = self.hessian
        on_bound = any(abs(t - lo) < SINGULAR_TOL for t, (lo, _) in zip(self.theta, self.devfun.theta_bounds))
        try:
            V = 2 * np.linalg.inv(H[n:, n:] if on_bound else H)[-len(names):, -len(names):]
            if np.any(np.diag(V) <= 0):
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            V = 2 * np.linalg.pinv(H[n:, n:])
        return pd.DataFrame(V, index=names, columns=names)

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value, Pr(>|z|) (Wald z tests, as lme4's summary)."""
        z = self.wald_statistics
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.se, "z value": z,
                             "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))})

    def confint(self, level: float = 0.95, method: str = "Wald", parm=None) -> pd.DataFrame:
        """Intervals for the fixed effects: ``method="Wald"``, β̂ ± z_{1−α/2} SE (lme4's ``method = "Wald"``),
        or ``"profile"`` for the random-effects SDs ``.sig01, ...`` and the fixed effects by profiling the
        deviance (:mod:`lmmteach.glmm.profile`; scalar random-effects terms only)."""
        if not 0 < level < 1:
            raise ValueError(f"level must be between 0 and 1, not {level!r}")
        if method.lower() == "profile":
            from .profile import profile_confint

            return profile_confint(self, level, parm)
        if method.lower() != "wald":
            raise ValueError(f"method must be 'Wald' or 'profile', not {method!r}")
        z = stats.norm.ppf(0.5 + level / 2)
        lo, hi = f"{50 * (1 - level):.1f} %", f"{100 - 50 * (1 - level):.1f} %"
        out = pd.DataFrame({lo: self.fixef - z * self.se, hi: self.fixef + z * self.se})
        return out if parm is None else out.loc[list(parm)]

    # -- random effects ------------------------------------------------------------------------------
    def _term_effects(self) -> list[np.ndarray]:
        """The conditional modes b̃ of every term (PIRLS at the estimates)."""
        return self.modes.b_terms

    def _random_scale(self) -> float:
        """1: Σ = λλ' (binomial and Poisson models have σ = 1)."""
        return 1.0

    @property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariances Λ (Λ'Z'WZΛ + I)⁻¹ Λ' of each level's effects at the mode (the inverse
        curvature of the Laplace approximation; lme4's ``ranef(m, condVar = TRUE)``): {factor: (ℓ, q, q)}."""
        return self.modes.solve.evaluation.condvar(self._factor_terms())

    # -- fit statistics --------------------------------------------------------------------------------
    def loglik_at(self, theta=None, beta=None, nAGQ: int | None = None) -> float:
        """log L at (θ, β) (default: the estimates) with ``nAGQ`` quadrature nodes (default: the fit's) -- e.g.
        the log-likelihood of the fitted parameters as the number of nodes grows from 1 (Laplace) to 25."""
        theta = self.theta if theta is None else np.atleast_1d(np.asarray(theta, float))
        beta = self.optimum.beta if beta is None else np.asarray(beta, float)
        d = self.devfun
        other = mk_glmer_devfun(d.design, self.family, d.y, d.prior_weights, d.offset, nAGQ or self.nAGQ)
        return -0.5 * other(np.r_[theta, beta])

    @property
    def saturated_loglik(self) -> float:
        """Σ log p(y_i | μ_i = y_i): what lme4's logLik leaves out when nAGQ > 1."""
        d = self.devfun
        return float(np.sum(self.family.loglik_terms(d.y, d.y, d.prior_weights)))

    @property
    def deviance(self) -> float:
        """−2 log L (lme4's ``deviance`` of a glmer fit is the same number, with the same caveat for nAGQ > 1)."""
        return self.optimum.deviance

    def _fit_log_lines(self) -> list[str]:
        from .display import glmer_fit_log_lines

        return glmer_fit_log_lines(self)

    # -- fitted values and residuals ---------------------------------------------------------------------
    @property
    def linear_predictor(self) -> pd.Series:
        """η̃ = offset + Xβ̂ + Zb̃ (at the conditional modes)."""
        return pd.Series(self.modes.eta, index=self.design.index, name="eta")

    def _fitted_values(self) -> np.ndarray:
        """μ̃ = g⁻¹(η̃): fitted means (proportions for binomial models) given the conditional modes."""
        return self.modes.mu

    def residuals(self, type: str = "deviance") -> pd.Series:  # noqa: A002 -- R's argument name
        """Residuals of the conditional fit: "deviance" (sign(y − μ)√d_i, lme4's default), "pearson"
        ((y − μ)/√(V(μ)/w)) or "response" (y − μ)."""
        d, mu = self.devfun, self.modes.mu
        if type == "response":
            r = d.y - mu
        elif type == "pearson":
            r = self.family.pearson_residuals(d.y, mu, d.prior_weights)
        elif type == "deviance":
            r = np.sign(d.y - mu) * np.sqrt(np.clip(self.family.deviance_residuals(d.y, mu, d.prior_weights), 0, None))
        else:
            raise ValueError(f"type must be 'deviance', 'pearson' or 'response', not {type!r}")
        return pd.Series(r, index=self.design.index, name=f"{type} residuals")

    def predict(self, newdata: pd.DataFrame | None = None, type: str = "link", re: bool = True,  # noqa: A002
                allow_new_levels=False) -> pd.Series:
        """Predictions η = offset + Xβ̂ (+ Zb̃ with ``re=True``) for ``newdata`` (default: the data fitted), on
        the link scale (``type="link"``) or as means g⁻¹(η) (``type="response"``). A level not in the fitted
        data gets b = 0 with ``allow_new_levels=True`` (or a set of factor names), otherwise it is an error."""
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', not {type!r}")
        if newdata is None:
            eta = self.modes.eta if re else self.devfun.offset + self.design.X @ self.optimum.beta
            out = pd.Series(eta, index=self.design.index, name="predicted")
        else:
            out = self._predict_newdata(newdata, re, allow_new_levels)
        if type == "link":
            return out
        return pd.Series(self.family.link.linkinv(out.to_numpy()), index=out.index, name="predicted").where(out.notna())

    def marginal_predict(self, newdata: pd.DataFrame | None = None, nodes: int = 25) -> pd.Series:
        """Population-averaged means E[y] = ∫ g⁻¹(offset + x'β̂ + z'b) dN(b; 0, Σ̂) for the rows of ``newdata``
        (default: the data fitted), by Gauss-Hermite quadrature over s = √(z'Σ̂z) (:func:`marginal_mean`):
        the marginal curve, beside the conditional ``predict(..., re=False, type="response")`` of a group with
        b = 0."""
        frame = self.design.frame if newdata is None else _check_data(newdata)
        eta = self.predict(newdata, re=False)
        f, d = self.design.formula, self.design
        var = np.zeros(len(frame))
        for block, lam in zip(d.blocks, self.devfun.lambdas(self.theta)):
            Z = block.Z if newdata is None else model_matrix(frame, block.term.intercept, block.term.terms,
                                                             f.factor_vars, d.contrasts, dict(d.xlevels))[1]
            var = var + np.einsum("nq,qr,nr->n", Z, lam @ lam.T, Z)
        mean = marginal_mean(self.family, eta.to_numpy(), np.sqrt(var), nodes)
        return pd.Series(mean, index=eta.index, name="marginal mean")

    # -- simulating and refitting ----------------------------------------------------------------------------
    def simulate_response(self, rng: np.random.Generator) -> np.ndarray:
        """One simulated response (see :meth:`simulate`), rows in the fitted order; the parametric bootstrap
        (:func:`lmmteach.bootstrap_lrt`) draws its responses with it."""
        d = self.devfun
        eta = d.offset + self.design.X @ self.optimum.beta
        for block, lam in zip(self.design.blocks, d.lambdas(self.theta)):
            b = rng.standard_normal((block.n_levels, block.q)) @ lam.T
            eta = eta + np.einsum("nq,nq->n", block.Z, b[block.group])
        return self.family.simulate(self.family.link.linkinv(eta), d.prior_weights, rng)

    def refit_many(self, Y, theta0=None) -> "GlmerRefits":
        """The model refitted to each row of ``Y`` (K × n), one after another (:meth:`refit`), each from θ =
        ``theta0`` (default: this fit's θ̂) and this fit's β̂; a refit that fails has log-likelihood NaN."""
        Y = np.atleast_2d(np.asarray(Y, float))
        logliks = []
        for y in Y:
            try:
                logliks.append(self.refit(y, theta0).loglik)
            except (ValueError, np.linalg.LinAlgError):
                logliks.append(np.nan)
        return GlmerRefits(np.array(logliks))

    def _devfun_with_response(self, design) -> GlmerDeviance:
        d = self.devfun
        return mk_glmer_devfun(design, self.family, design.y, d.prior_weights, d.offset, self.nAGQ)

    def _reoptimize(self, devfun, start: np.ndarray) -> GlmerOptimum:
        """The optimum from θ = ``start`` and this fit's β̂, without lme4's first stage (lme4's ``refit``; a
        response is given as proportions for binomial models with trials)."""
        control = replace(self.call.get("control") or GlmerControl(), stage1=False)  # start at the estimates
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a simulated response may be singular: the caller decides
            return optimize_glmer(devfun, control, theta0=start, beta0=self.optimum.beta)

    def _result(self, design, devfun, optimum, ml: bool = False) -> "GeneralizedLinearMixedModel":
        return GeneralizedLinearMixedModel(design, self.family, devfun, optimum, self.response, self.call)

    def summary(self):
        from .display import GlmerSummary

        return GlmerSummary(self)

    def __repr__(self) -> str:
        from .display import format_glmer

        return format_glmer(self)


@dataclass(frozen=True)
class GlmerRefits:
    """Log-likelihoods of refits to simulated responses (NaN where a refit failed)."""

    loglik: np.ndarray

    def __len__(self) -> int:
        return len(self.loglik)


def overdispersion(model: GeneralizedLinearMixedModel) -> pd.Series:
    """The overdispersion check of a Poisson (or binomial with trials) GLMM: the Pearson statistic
    χ² = Σ r_i² (r_i the Pearson residuals (y_i − μ̃_i)/√(V(μ̃_i)/w_i)) against its residual degrees of freedom
    n − (number of parameters); a ratio χ²/df well above 1 (with a small p = P(χ²_df > χ²)) says that the data
    vary more than the family allows -- a missing covariate or grouping factor, an observation-level random
    effect (not offered by lmmteach's glmer yet) or another family. (An approximate check, as in Bolker's GLMM
    FAQ: the df of a mixed model are not exact.) Returns chisq, ratio, rdf and p."""
    if not isinstance(model, GeneralizedLinearMixedModel):
        raise TypeError(f"overdispersion() takes a fitted glmer model, not {type(model).__name__}")
    chi2 = float(np.sum(model.residuals("pearson") ** 2))
    df = model.df_resid
    return pd.Series({"chisq": chi2, "ratio": chi2 / df, "rdf": df, "p": float(stats.chi2.sf(chi2, df))})


def glmer_devfun(formula: str, data: pd.DataFrame, family="binomial", nAGQ: int = 1, weights=None, offset=None,
                 contrasts: dict | None = None) -> GlmerDeviance:
    """The deviance function (θ, β) ↦ −2 log L of a GLMM, without fitting (lme4's ``glmer(..., devFunOnly =
    TRUE)``): call it with ``np.r_[theta, beta]``; ``.modes(theta, beta)`` gives the PIRLS result, ``.stage1(theta)``
    lme4's first-stage criterion, and setting ``.nAGQ`` changes the number of quadrature nodes."""
    fam = make_family(family)
    data = _check_data(data)
    frame_data, response = glmm_data(formula, data, fam, weights)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            design = lformula(response.formula, frame_data, contrasts=contrasts, weights=TRIALS_COLUMN,
                              offset=offset)
        except ValueError as err:
            if "must be < number of observations" in str(err) or "number of random effects" in str(err):
                raise ValueError(f"{err.args[0].split(':')[0]}: an observation-level random effect (one level per "
                                 "row, as lme4's (1 | obs) for overdispersion) is identifiable in a binomial or "
                                 "Poisson model, but lmmteach's glmer does not offer it yet") from None
            raise
    for w in caught:  # the design's warnings, with glmer's internal column names replaced by the response's
        text = str(w.message)
        if "there are more random effects" not in text:
            warn_user(text.replace(RESPONSE_COLUMN, response.text).replace(TRIALS_COLUMN, "trials"), w.category)
    design = replace(design, formula=replace(design.formula, text=formula))
    if np.ptp(design.y) == 0:
        raise ValueError(f"the response {response.text!r} is constant ({design.y[0]:g}) in the rows used: "
                         "nothing to model")
    devfun = mk_glmer_devfun(replace(design, weights=None, offset=None), fam, design.y, design.weights,
                             design.offset, nAGQ)
    devfun.response = response
    return devfun


def glmer(formula: str, data: pd.DataFrame, family="binomial", nAGQ: int = 1, weights=None, offset=None,
          control: GlmerControl | None = None, contrasts: dict | None = None) -> GeneralizedLinearMixedModel:
    """Fit a generalised linear mixed model by maximum likelihood (lme4's ``glmer``).

    ``family``: "binomial" (logit), "poisson" (log) or a family object, e.g. ``binomial("probit")``,
    ``binomial("cloglog")``. A binomial response is 0/1 (or a two-level factor), a proportion with
    ``weights=`` the numbers of trials, or ``cbind(successes, failures)``. ``nAGQ=1`` is the Laplace
    approximation (any random effects); up to 25 adaptive Gauss-Hermite nodes for one scalar random effect.
    ``offset`` (one value per row) adds to the formula's ``offset(...)`` terms; ``control`` a
    :class:`GlmerControl`. Warns when the fit is singular or the fixed effects separate the data.

    The stages, as lme4's: :func:`glmer_devfun` (response, design, deviance function) →
    :func:`~lmmteach.glmm.optimize.optimize_glmer` → :class:`GeneralizedLinearMixedModel`.
    """
    with one_blas_thread():  # small products: a second BLAS thread's wake-up costs more than it gives
        devfun = glmer_devfun(formula, data, family, nAGQ, weights, offset, contrasts)
    opt = optimize_glmer(devfun, control)
    call = {"formula": formula, "family": devfun.family, "nAGQ": nAGQ, "control": control}
    assert devfun.response is not None  # set by glmer_devfun
    model = GeneralizedLinearMixedModel(devfun.design, devfun.family, devfun, opt, devfun.response, call)
    _warn_about(model)
    return model


def _warn_about(model: GeneralizedLinearMixedModel) -> None:
    """lme4's messages, in words: a singular fit, a failed convergence check, separation."""
    if model.is_singular:
        terms = [name for name, b, t in zip(model.design.block_names, model.design.blocks,
                                            model.devfun.split(model.theta)) if b.structure.is_singular(t, SINGULAR_TOL)]
        warn_user(f"boundary (singular) fit: the random effects of {', '.join(terms)} have a variance estimated as "
                  "zero (or a correlation of ±1); the data show no variation between those levels beyond the "
                  "fixed effects -- consider a simpler random-effects structure")
    if not model.converged:
        warn_user(f"the model failed to converge: max|gradient| = {np.max(np.abs(model.optimum.gradient)):.3g} "
                  f"({model.optimum.message})")
    if not model.modes.converged:
        warn_user(f"PIRLS did not converge at the estimates (within {PIRLS_MAXIT} iterations): the conditional "
                  "modes, and so the likelihood, are not reliable")
    separated = model.devfun.separated
    if model.family.name == "binomial":
        eta_fixed = model.design.X @ model.optimum.beta
        separated = separated or bool(np.any(np.abs(eta_fixed) > 15.0))
    if separated:
        warn_user("complete or quasi-complete separation: the fixed effects predict some responses perfectly "
                  "(fitted probabilities numerically 0 or 1), so some estimates run off towards ±infinity and their "
                  "standard errors are meaningless; look for a factor level or range of a covariate where every "
                  "response is the same")
