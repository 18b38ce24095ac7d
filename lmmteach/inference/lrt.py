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


def _check_models(models):
    from ..lmm.model import LinearMixedModel

    if len(models) < 2:
        raise ValueError("anova needs at least two fitted models to compare")
    for m in models:
        if not isinstance(m, LinearMixedModel):
            raise TypeError(f"anova compares models returned by lmmteach.lmer, not {type(m).__name__}")
    n0, id0 = models[0].nobs, models[0].design.data_id
    for m in models[1:]:
        if m.nobs != n0 or m.design.data_id != id0:
            raise ValueError(
                f"models were not all fitted to the same data: {models[0].formula!r} uses {n0} "
                f"observations, {m.formula!r} uses {m.nobs} (or a different response); "
                "a likelihood-ratio test needs the same rows and response"
            )


def lrt_statistic(m1, m0) -> float:
    """The likelihood-ratio statistic  χ² = 2(ℓ₁ − ℓ₀) ≥ 0  of M0 ⊂ M1 (a tiny negative value from a
    slightly-short optimum is reported as 0)."""
    return max(2.0 * (m1.loglik - m0.loglik), 0.0)


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


def anova(*models, refit: bool = True, boundary: bool = False, **named) -> pd.DataFrame:
    """lme4's ``anova(m1, m0, ...)``: likelihood-ratio tests of nested models.

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
    out.attrs["formulas"] = {names[i]: models[i].formula for i in order}
    return out
