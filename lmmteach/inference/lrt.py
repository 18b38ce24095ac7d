"""Likelihood-ratio tests between nested models (notes: "Likelihood Ratio Tests", "Inference for Random Effects").

    D = −2 ln(L(M0) / L(M1)) = 2 [LL(M1) − LL(M0)]  ~  χ²_k   (Wilks, as n → ∞),

with k the difference in the number of parameters. When the null hypothesis puts a *variance* on the
boundary of its parameter space (σ_k² = 0 cannot be approached from below), the large-sample reference is
instead a mixture of χ² distributions, the χ̄² ("chi-bar-squared"): for one variance tested, ½χ²_0 + ½χ²_1;
for one variance added together with its m covariances with variances already in the model,
½χ²_m + ½χ²_{m+1} (Self & Liang 1987; Stram & Lee 1994).
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy import stats

from .._util import warn_user
from ..lmm.display import AnovaTable

__all__ = ["chibar_sf", "lrt_statistic", "boundary_mixture", "reference_distribution", "anova"]


def chibar_sf(x: float, weights, dfs) -> float:
    """P(X ≥ x) for the mixture Σ_j w_j χ²_{df_j} (χ²_0 is a point mass at 0)."""
    x = float(x)
    total = 0.0
    for w, df in zip(weights, dfs):
        if df == 0:
            total += w * (1.0 if x <= 0 else 0.0)
        else:
            total += w * stats.chi2.sf(max(x, 0.0), df)
    return float(total)


def _check_keywords(named: dict) -> None:
    """Keywords of :func:`anova` name fitted models; anything else is a misspelt option (``bounday=True``)."""
    for key, value in named.items():
        if not hasattr(value, "loglik") or not hasattr(value, "npar"):
            raise TypeError(
                f"anova() got an unexpected keyword argument {key!r} (= {value!r}): keywords label fitted "
                "models, as in anova(amod=amod, nmod=nmod); the options are refit=, boundary=, type= and ddf="
            )


def _check_models(models):
    from ..lmm.model import LinearMixedModel

    if len(models) < 2:
        raise ValueError("anova needs at least two fitted models to compare (likelihood-ratio tests); for "
                         "F tests of one model's terms use anova(m, type=3, ddf='Satterthwaite')")
    from ..glmm.model import GeneralizedLinearMixedModel

    for m in models:
        if not isinstance(m, (LinearMixedModel, GeneralizedLinearMixedModel)):
            raise TypeError(f"anova compares models returned by lmmteach.lmer or lmmteach.glmer, not {type(m).__name__}")
    if len({type(m) for m in models}) > 1:
        raise TypeError("anova compares lmer fits with lmer fits, and glmer fits with glmer fits")
    if isinstance(models[0], GeneralizedLinearMixedModel) and len({str(m.family) for m in models}) > 1:
        raise ValueError("glmer fits with different families (or links) are not nested: "
                         + ", ".join(sorted({str(m.family) for m in models})))
    n0, id0 = models[0].nobs, models[0].design.data_id
    for m in models[1:]:
        if m.nobs != n0 or m.design.data_id != id0:
            raise ValueError(
                f"models were not all fitted to the same data: {models[0].formula!r} uses {n0} "
                f"observations, {m.formula!r} uses {m.nobs} (or a different response); "
                "a likelihood-ratio test needs the same rows and response"
            )


def lrt_statistic(m1, m0):
    """The likelihood-ratio statistic  χ² = 2(ℓ₁ − ℓ₀) ≥ 0  of M0 ⊂ M1 (a tiny negative value from a
    slightly-short optimum is reported as 0). For two fitted models a float; for two
    :class:`~lmmteach.lmm.model.Refits` of the same responses, one statistic per response."""
    d = np.maximum(2.0 * (np.asarray(m1.loglik) - m0.loglik), 0.0)
    return float(d) if d.ndim == 0 else d


def _variance_structures(model) -> dict:
    """{(grouping factor, term name): structure name} for every random effect of a model."""
    return {(block.group_name, name): block.structure.name
            for block in model.design.blocks for name in block.names}


def boundary_mixture(m0, m1):
    """The χ̄² reference for M0 ⊂ M1 when the null puts one variance on the boundary, else None.

    Simple cases only (the notes': "Mixture of χ²_k and 0 if j = k (for simple cases)"): the fixed effects
    are the same, M1 has every random effect of M0 and exactly one more, in an unstructured (``us``) or
    variance-components (``diag``) block, so that H0: σ_k² = 0 against H1: σ_k² > 0. The other k − 1 added
    parameters (its covariances, or covariances among the old effects) are interior, so

        D ~ ½ χ²_{k−1} + ½ χ²_k    (k = 1: ½ χ²_0 + ½ χ²_1, χ²_0 being a point mass at 0).

    Returns (weights, dfs, label).
    """
    if list(m0.design.fixef_names) != list(m1.design.fixef_names):
        return None
    v0, v1 = _variance_structures(m0), _variance_structures(m1)
    added = set(v1) - set(v0)
    if len(added) != 1 or not set(v0) <= set(v1):
        return None
    if v1[next(iter(added))] not in ("us", "diag") or any(v0[k] not in ("us", "diag") for k in v0):
        return None
    k = m1.npar - m0.npar
    m = k - 1
    return (0.5, 0.5), (m, m + 1), f"0.5*chisq({m}) + 0.5*chisq({m + 1})"


def reference_distribution(m0, m1, boundary: bool = True):
    """The large-sample distribution of D for M0 ⊂ M1 (notes: "Inference for Random Effects"):

    * fixed effects or covariances added (interior parameters):  χ²_k, k = npar(M1) − npar(M0);
    * one variance added (with ``boundary=True``): the χ̄² mixture of :func:`boundary_mixture`.

    Returns (weights, dfs, label); ``label`` is what ``anova`` prints in its ``ref`` column.
    """
    mix = boundary_mixture(m0, m1) if boundary else None
    if mix is not None:
        return mix
    k = m1.npar - m0.npar
    return (1.0,), (k,), f"chisq({k})"


def _anova_terms(models, type_, ddf):
    from ..lmm.model import LinearMixedModel
    from .ftest import anova_terms

    if len(models) != 1:
        raise ValueError("type= and ddf= ask for F tests of one model's terms: anova(m, type=3, "
                         f"ddf='Satterthwaite'); got {len(models)} models")
    if not isinstance(models[0], LinearMixedModel):
        raise TypeError(f"F tests need a model returned by lmmteach.lmer, not {models[0].__class__.__name__}")
    return anova_terms(models[0], type=3 if type_ is None else type_, ddf="Satterthwaite" if ddf is None else ddf)


def anova(*models, refit: bool = True, boundary: bool = False, type=None, ddf=None, **named) -> pd.DataFrame:
    """lme4's ``anova(m1, m0, ...)``: likelihood-ratio tests of nested models; with one model and ``type``
    and/or ``ddf``, lmerTest's F tests of its terms: ``anova(m, type=3, ddf="Satterthwaite")`` (or
    ``ddf="Kenward-Roger"``, ``type=1``; see :func:`lmmteach.inference.ftest.anova_terms`).

    Models given by keyword are labelled by their names, as lme4 labels rows by the objects' names:
    ``anova(rimod=rimod, ramod=ramod)``; positional ones are labelled ``model1``, ``model2``, ...

    Rows are ordered by the number of parameters; columns ``npar, AIC, BIC, logLik, deviance, Chisq, Df,
    Pr(>Chisq)``. REML fits are refitted by ML first (as lme4 does, and says so), because REML
    likelihoods of models with different fixed effects are not comparable.

    With ``boundary=True``, a test that adds one random-effect variance (with its covariances) is referred
    to the χ̄² mixture ½χ²_m + ½χ²_{m+1} instead of χ²_{m+1} (see :func:`reference_distribution`), and the
    column ``ref`` names the reference distribution used on each row. For small samples, or boundary cases
    beyond these simple ones, use the parametric bootstrap (:func:`lmmteach.bootstrap_lrt`).
    """
    _check_keywords(named)
    if type is not None or ddf is not None:  # lmerTest's F tests of one model's terms
        return _anova_terms(tuple(models) + tuple(named.values()), type, ddf)
    if any(_is_gls(m) for m in tuple(models) + tuple(named.values())):
        if boundary:
            raise ValueError("for gls fits anova gives likelihood-ratio tests with the chisq reference only "
                             "(no boundary=); use lmmteach.satterthwaite for t tests")
        return anova_gls(*models, refit=refit, **named)
    names = [f"model{i + 1}" for i in range(len(models))] + list(named)
    models = tuple(models) + tuple(named.values())
    _check_models(models)
    if refit and any(m.reml for m in models):
        warn_user("refitting model(s) with ML (instead of REML)")
        models = tuple(m.refit_ml() for m in models)
    order = sorted(range(len(models)), key=lambda i: (models[i].npar, i))
    rows = []
    prev = None
    for i in order:
        m = models[i]
        row = {"npar": m.npar, "AIC": m.aic, "BIC": m.bic, "logLik": m.loglik, "deviance": -2 * m.loglik,
               "Chisq": np.nan, "Df": np.nan, "Pr(>Chisq)": np.nan, "ref": ""}
        if prev is not None:
            chisq = lrt_statistic(m, prev)
            df = m.npar - prev.npar
            row["Chisq"], row["Df"] = chisq, df
            if df > 0:
                w, dfs, label = reference_distribution(prev, m, boundary)
                row["Pr(>Chisq)"], row["ref"] = chibar_sf(chisq, w, dfs), label
        rows.append(row)
        prev = m
    out = pd.DataFrame(rows, index=[names[i] for i in order])
    out["Df"] = out["Df"].astype("Int64")
    if not boundary:
        out = out.drop(columns="ref")
    out = AnovaTable(out)  # prints in full in a terminal
    out.attrs["formulas"] = {names[i]: models[i].formula for i in order}
    return out


# -- gls fits (nlme's anova.gls), alone or beside lmer fits ----------------------------------------------------
def _is_gls(model) -> bool:
    from ..lmm.gls import GLSFit

    return isinstance(model, GLSFit)


def _same_fixed_part(a, b) -> bool:
    Xa, Xb = a.design.X, b.design.X
    return list(a.design.fixef_names) == list(b.design.fixef_names) and Xa.shape == Xb.shape and np.allclose(Xa, Xb)


def anova_gls(*models, refit: bool = True, **named) -> pd.DataFrame:
    """Likelihood-ratio tests between nested fits of which at least one is a :func:`lmmteach.gls` fit (the
    others may be ``lmer`` fits with the same fixed part: a random intercept is compound symmetry with
    ω ≥ 0). The rules of :func:`anova`: with ``refit=True`` REML fits are refitted by ML; with
    ``refit=False`` REML likelihoods are compared only when every fit is REML with the same fixed-effects
    design (nlme's rule: REML likelihoods of different fixed parts are not comparable). The reference is
    χ²_k, k the difference in the number of parameters (nlme's; a covariance parameter on the boundary of
    the null makes it conservative). Columns as :func:`anova`."""
    from ..lmm.gls import GLSFit
    from ..lmm.model import LinearMixedModel

    names = [f"model{i + 1}" for i in range(len(models))] + list(named)
    models = tuple(models) + tuple(named.values())
    if len(models) < 2:
        raise ValueError("anova needs at least two fitted models to compare")
    for m in models:
        if not isinstance(m, (GLSFit, LinearMixedModel)):
            raise TypeError(f"anova compares models returned by lmmteach.lmer or lmmteach.gls, not {type(m).__name__}")
    n0, id0 = models[0].nobs, models[0].design.data_id
    for m in models[1:]:
        if m.nobs != n0 or m.design.data_id != id0:
            raise ValueError(f"models were not all fitted to the same data: {models[0].formula!r} uses {n0} "
                             f"observations, {m.formula!r} uses {m.nobs} (or a different response); "
                             "a likelihood-ratio test needs the same rows and response")
    reml = [m.reml for m in models]
    if refit and any(reml):
        warn_user("refitting model(s) with ML (instead of REML)")
        models = tuple(m.refit_ml() for m in models)
    elif any(reml):
        if not all(reml):
            raise ValueError("refit=False compares REML with ML likelihoods; fit every model by the same method")
        if not all(_same_fixed_part(models[0], m) for m in models[1:]):
            raise ValueError("REML likelihoods of models with different fixed effects are not comparable; "
                             "use refit=True (ML) to compare them")
    order = sorted(range(len(models)), key=lambda i: (models[i].npar, i))
    rows, prev = [], None
    for i in order:
        m = models[i]
        row = {"npar": m.npar, "AIC": m.aic, "BIC": m.bic, "logLik": m.loglik, "deviance": -2 * m.loglik,
               "Chisq": np.nan, "Df": np.nan, "Pr(>Chisq)": np.nan}
        if prev is not None:
            chisq, df = lrt_statistic(m, prev), m.npar - prev.npar
            row["Chisq"], row["Df"] = chisq, df
            if df > 0:
                row["Pr(>Chisq)"] = float(stats.chi2.sf(chisq, df))
        rows.append(row)
        prev = m
    out = pd.DataFrame(rows, index=[names[i] for i in order])
    out["Df"] = out["Df"].astype("Int64")
    out.attrs["formulas"] = {names[i]: models[i].formula for i in order}
    return out
