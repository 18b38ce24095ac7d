"""F tests of the fixed-effect terms of one model (lmerTest's ``anova(m, type, ddf)`` and ``contest``).

A term of the model is tested by a hypothesis H0: L b = 0 (q = rank L rows, one per column the term adds):

    F = (L b̂)' (L Ĉ L')⁻¹ (L b̂) / q,        Ĉ = Cov(b̂) = σ̂² (X'V⁻¹X)⁻¹,

referred to an F(q, ν) distribution. The denominator df ν comes from

* **Satterthwaite** (:mod:`lmmteach.inference.satterthwaite`): L Ĉ L' = P D P' (eigenvectors), one t test
  per row of P'L with its own ν_m; with E = Σ ν_m / (ν_m − 2), ν = 2E / (E − q) (lmerTest's
  ``get_Fstat_ddf``);
* **Kenward–Roger** (:mod:`lmmteach.inference.kenward_roger`): Ĉ replaced by the adjusted Φ_A, F scaled.

lmerTest reports ``Sum Sq`` = F q σ̂² and ``Mean Sq`` = F σ̂² (the unscaled F for Kenward–Roger).

Which L tests a term:

* **type 1** (sequential): rows of the unit upper-triangular U with X'X = U' D U (the Doolittle
  factorisation), so each term is adjusted for the terms before it;
* **type 3** (marginal, SAS's type III): with X coded by treatment contrasts, the estimable functions of
  the over-parameterised (full indicator) design, each term's made orthogonal to the terms that contain it
  (lmerTest's ``get_contrasts_type3``); they do not depend on the coding, and are mapped to the model's own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..lmm.display import AnovaTable
from .kenward_roger import kenward_roger, kr_test
from .satterthwaite import satterthwaite, varpar_covariance, vcov_jacobian

__all__ = ["anova_terms", "contest", "contrasts_type1", "contrasts_type3", "DDF_METHODS"]

#: denominator degrees of freedom methods (lmerTest's names)
DDF_METHODS = ("Satterthwaite", "Kenward-Roger")
#: eigenvalues of L Ĉ L' below this fraction of the largest are dropped (lmerTest: √machine epsilon)
RANK_TOLERANCE = np.sqrt(np.finfo(float).eps)
#: ν_m closer than this are treated as equal (lmerTest's ``get_Fstat_ddf``)
DDF_TOLERANCE = 1e-8
_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def _ddf_method(ddf: str) -> str:
    names = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger", "kr": "Kenward-Roger",
             "kenward_roger": "Kenward-Roger"}
    if not isinstance(ddf, str) or ddf.lower() not in names:
        raise ValueError(f"ddf must be one of {', '.join(map(repr, DDF_METHODS))}, not {ddf!r}")
    return names[ddf.lower()]


def _check_L(model, L) -> tuple[np.ndarray, list]:
    p = len(model.fixef)
    index = list(L.index) if isinstance(L, pd.DataFrame) else None
    try:
        Lm = np.atleast_2d(np.asarray(L, dtype=float))
    except (TypeError, ValueError):
        raise TypeError("L must be a numeric matrix (one contrast per row)") from None
    if Lm.ndim != 2 or Lm.shape[1] != p:
        raise ValueError(f"each contrast needs {p} coefficients (one per fixed effect: "
                         f"{', '.join(model.fixef.index)}), got {Lm.shape[-1]}")
    if not np.all(np.isfinite(Lm)):
        raise ValueError("L has missing or infinite entries")
    zero = np.flatnonzero(~Lm.any(axis=1))
    if len(zero):
        raise ValueError(f"row {zero[0] + 1} of L is all zeros, so it tests nothing (L b = 0 holds for every b); "
                         "give each contrast at least one non-zero coefficient")
    return Lm, index or [f"L{k + 1}" for k in range(Lm.shape[0])]


def _fstat_ddf(nu: np.ndarray) -> float:
    """lmerTest's ``get_Fstat_ddf``: one ν from the ν_m of q independent t tests."""
    if len(nu) == 1 or np.all(np.abs(nu - nu[0]) < DDF_TOLERANCE):
        return float(nu[0])
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2))
    return float(2 * E / (E - len(nu)))


def _row(F: float, q: int, ddf: float, sigma: float, scale: float = 1.0) -> dict:
    ms = F * sigma**2
    F = F * scale
    return {"Sum Sq": ms * q, "Mean Sq": ms, "NumDF": q, "DenDF": ddf, "F value": F,
            "Pr(>F)": float(stats.f.sf(F, q, ddf))}


def _satterthwaite_F(model, L, cache) -> dict:
    b = model.fixef.to_numpy()
    C = model.vcov.to_numpy()
    d, P = np.linalg.eigh(L @ C @ L.T)
    d, P = d[::-1], P[:, ::-1]
    q = int(np.sum(d > max(RANK_TOLERANCE * d[0], 0)))
    if q == 0:
        return dict.fromkeys(_COLUMNS, np.nan)
    PtL = (P.T @ L)[:q]
    F = float(np.sum((PtL @ b) ** 2 / d[:q]) / q)
    if "J" not in cache:
        cache["J"], cache["A"] = vcov_jacobian(model), varpar_covariance(model)
    g = np.einsum("mp,pqk,mq->mk", PtL, cache["J"], PtL)
    nu = 2 * d[:q] ** 2 / np.einsum("mk,kl,ml->m", g, cache["A"], g)
    return _row(F, q, _fstat_ddf(nu), model.sigma)


def _kr_F(model, L, cache) -> dict:
    if "KR" not in cache:
        cache["KR"] = kenward_roger(model)
    r = kr_test(model, L, cache["KR"])
    return _row(r["F_unscaled"], r["NumDF"], r["DenDF"], model.sigma, r["scaling"])


def _ftest(model, L, ddf, cache) -> dict:
    return (_satterthwaite_F if ddf == "Satterthwaite" else _kr_F)(model, L, cache)


# -- the hypotheses of type 1 and type 3 tests ---------------------------------------------------------------
def _terms(model) -> tuple[list[str], list[np.ndarray]]:
    """Term labels as R writes them and the columns of X each term owns (from the design's ``assign``)."""
    d = model.design
    assign = np.asarray(d.assign)
    labels = [t.label for t in d.formula.terms]
    cols = [np.flatnonzero(assign == k) for k in range(1, len(labels) + 1)]
    keep = [i for i, c in enumerate(cols) if len(c)]
    return [labels[i] for i in keep], [cols[i] for i in keep]


def contrasts_type1(model) -> dict[str, np.ndarray]:
    """Type 1 (sequential) hypotheses: for each term, the rows of U (X'X = U'DU, U unit upper triangular)
    that belong to its columns."""
    X = model.design.X
    R = np.linalg.cholesky(X.T @ X).T  # X'X = R'R, R upper triangular
    U = R / np.diag(R)[:, None]
    labels, cols = _terms(model)
    return {lab: U[c] for lab, c in zip(labels, cols)}


def _design_matrices(model, contrasts: dict):
    """(X, assign) of the model's fixed part rebuilt on the fitted rows with the given factor codings."""
    from ..lmm.design import model_matrix

    d, f = model.design, model.design.formula
    assign: list = []
    state = {k: dict(v) for k, v in d.transform_state.items()}
    names, X = model_matrix(d.frame, f.intercept, f.terms, f.factor_vars, contrasts, dict(d.xlevels), state,
                            assign)
    return names, X, np.asarray(assign)


def contrasts_type3(model) -> dict[str, np.ndarray]:
    """Type 3 (marginal) hypotheses, as lmerTest's ``get_contrasts_type3``."""
    from ..lmm.design import model_matrix

    d, f = model.design, model.design.formula
    labels, _ = _terms(model)
    if d.p <= 1 or len(labels) <= 1:
        return contrasts_type1(model)
    # the design in treatment coding (full rank: the columns the fit kept)
    names_t, Xt, assign_t = _design_matrices(model, {})
    keep = [i for i, n in enumerate(names_t) if n not in d.dropped_columns]
    Xt, assign_t, names_t = Xt[:, keep], assign_t[keep], [names_t[i] for i in keep]
    # the over-parameterised design: every term with one indicator per level of each of its factors
    blocks, names_rd = [np.ones((d.nobs, 1))] if f.intercept else [], ["(Intercept)"] if f.intercept else []
    state = {k: dict(v) for k, v in d.transform_state.items()}
    for term in f.terms:
        nm, Xk = model_matrix(d.frame, False, (term,), f.factor_vars, {}, dict(d.xlevels), state)
        blocks.append(Xk)
        names_rd += nm
    rdX = np.hstack(blocks)
    Lfull = np.linalg.pinv(Xt) @ rdX  # p × m
    Lfull = _zapsmall(Lfull.T)  # rows: columns of rdX, columns: columns of Xt
    # containment: term A is in term B when B has all of A's variables and more, and the same numeric ones
    numeric = {v for v, lev in d.xlevels.items() if lev is None}
    term_vars = {t.label: set(t.variables) for t in f.terms}
    contained = {a: [b for b in term_vars if term_vars[a] < term_vars[b]
                     and term_vars[a] & numeric == term_vars[b] & numeric] for a in term_vars}
    cols = {t.label: np.flatnonzero(assign_t == k) for k, t in enumerate(f.terms, start=1)}
    degree = {t.label: len(t.variables) for t in f.terms}
    for term in sorted(term_vars, key=lambda t: -degree[t]):  # higher-order terms first (stable)
        if not contained[term] or not len(cols[term]):
            continue
        cc = np.unique(np.concatenate([cols[b] for b in contained[term]]))
        A = Lfull[:, cc]
        coef, *_ = np.linalg.lstsq(A, Lfull[:, cols[term]], rcond=None)
        Lfull[:, cols[term]] = _zapsmall(Lfull[:, cols[term]] - A @ coef)
    missing = [n for n in names_t if n not in names_rd]
    if missing:  # a coding whose names differ (not expected for treatment coding)
        raise ValueError(f"cannot line up the treatment-coded and over-parameterised designs at {missing}")
    L = Lfull[[names_rd.index(n) for n in names_t]]  # p × p
    mapping = _zapsmall(np.linalg.pinv(Xt) @ d.X)  # treatment coding -> the model's own coding
    out = {}
    for lab in labels:
        out[lab] = L[:, cols[lab]].T @ mapping
    return out


def _zapsmall(a: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` decimals relative to the largest |entry|."""
    big = np.max(np.abs(a)) if a.size else 0.0
    if big == 0:
        return a
    decimals = max(0, digits - int(np.ceil(np.log10(big))))
    return np.round(a, decimals)


# -- the tables -----------------------------------------------------------------------------------------------
def anova_terms(model, type: int = 3, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's ``anova(m, type, ddf)``: one F test per fixed-effect term, columns
    ``Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F)``, indexed by R's term labels."""
    ddf = _ddf_method(ddf)
    if type in (1, "1", "I"):
        Ls, title = contrasts_type1(model), "Type I"
    elif type in (3, "3", "III"):
        Ls, title = contrasts_type3(model), "Type III"
    else:
        raise ValueError(f"type must be 1 or 3 (type 2 is not available), not {type!r}")
    cache: dict = {}
    rows = {lab: _ftest(model, L, ddf, cache) for lab, L in Ls.items()}
    out = AnovaTable(pd.DataFrame.from_dict(rows, orient="index", columns=_COLUMNS).astype({"NumDF": int}))
    out.attrs["heading"] = f"{title} Analysis of Variance Table with {ddf}'s method"
    return out


def contest(model, L, joint: bool = True, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's ``contest``: tests of contrasts L b = 0 (one per row of ``L``), of an lmer or a gls fit (for gls,
    Kenward–Roger in the parametrisation of :func:`~lmmteach.inference.kenward_roger.gls_parameter_matrices`).

    ``joint=True``: one F test of all rows together (columns as :func:`anova_terms`); ``joint=False``: a
    t test per row (``Estimate, Std. Error, df, t value, Pr(>|t|)``), with Kenward–Roger's adjusted
    covariance and df when ``ddf="Kenward-Roger"``.
    """
    from ..lmm.gls import GLSFit
    from ..lmm.model import LinearMixedModel

    if not isinstance(model, (LinearMixedModel, GLSFit)):
        raise TypeError(f"contest tests a model returned by lmmteach.lmer or lmmteach.gls, not {type(model).__name__}")
    ddf = _ddf_method(ddf)
    Lm, index = _check_L(model, L)
    if joint:
        out = AnovaTable(pd.DataFrame([_ftest(model, Lm, ddf, {})], columns=_COLUMNS).astype({"NumDF": int}))
        out.attrs["heading"] = f"F test of {Lm.shape[0]} contrast(s) jointly with {ddf}'s method"
        return out
    if ddf == "Satterthwaite":
        return satterthwaite(model, pd.DataFrame(Lm, index=index, columns=model.fixef.index))
    kr = kenward_roger(model)
    est = Lm @ model.fixef.to_numpy()
    se = np.sqrt(np.einsum("kp,pq,kq->k", Lm, kr.vcov_adjusted, Lm))
    df = np.array([kr_test(model, l[None, :], kr)["DenDF"] for l in Lm])
    t = est / se
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                         "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df)}, index=index)
