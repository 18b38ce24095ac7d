"""Printing a fitted GLMM the way lme4 prints ``summary(glmer(...))`` (kept apart from the fitting code)."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ..lmm.display import _obs_line, fixef_correlation_lines

__all__ = ["glmer_header_lines", "glmer_varcorr_lines", "coefficient_lines", "format_glmer", "GlmerSummary",
           "significance_stars"]


def glmer_header_lines(model) -> list[str]:
    """Method, family, formula and the fit statistics AIC, BIC, logLik, deviance, df.resid."""
    method = "Laplace\n  Approximation" if model.nAGQ == 1 else \
        f"Adaptive\n  Gauss-Hermite Quadrature, nAGQ = {model.nAGQ}"
    out = [f"Generalized linear mixed model fit by maximum likelihood ({method}) ['lmmteach']",
           f" Family: {model.family}", f"Formula: {model.formula}", ""]
    stats = pd.DataFrame([[model.aic, model.bic, model.loglik, model.deviance, model.df_resid]],
                         columns=["AIC", "BIC", "logLik", "deviance", "df.resid"])
    out.append(stats.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    if not model.converged:
        out.append(f"Warning: did not converge (max |gradient| {np.max(np.abs(model.optimum.gradient)):.3g})")
    if model.is_singular:
        out.append("boundary (singular) fit: see help('isSingular')")
    return out


def glmer_varcorr_lines(model) -> list[str]:
    """'Random effects': Groups, Name, Variance, Std.Dev., Corr (no residual row: σ = 1)."""
    vc = model.varcorr
    rows = []
    for grp, block in zip(model.design.block_names, model.design.blocks):
        part = vc[vc.grp == grp]
        var, cov = part[part.var2.isna()], part[part.var2.notna()]
        names = list(block.names)
        for k, (_, r) in enumerate(var.iterrows()):
            cors = []
            for j in range(k):
                c = cov[(cov.var1 == names[j]) & (cov.var2 == names[k])]
                cors.append(f"{c.sdcor.iloc[0]:5.2f}" if len(c) else "")
            rows.append([grp if k == 0 else "", r.var1, f"{r.vcov:.4f}", f"{r.sdcor:.4f}", " ".join(cors)])
    header = ["Groups", "Name", "Variance", "Std.Dev.", "Corr" if any(r[4] for r in rows) else ""]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    return [" " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]


def significance_stars(p: float) -> str:
    """R's significance codes: *** < 0.001 ≤ ** < 0.01 ≤ * < 0.05 ≤ . < 0.1."""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "." if p < 0.1 else ""


def coefficient_lines(model) -> list[str]:
    """'Fixed effects': Estimate, Std. Error, z value, Pr(>|z|) and the significance codes."""
    t = model.coef_table()
    shown = pd.DataFrame({"Estimate": t["Estimate"].map(lambda v: f"{v:.5g}"),
                          "Std. Error": t["Std. Error"].map(lambda v: f"{v:.4g}"),
                          "z value": t["z value"].map(lambda v: f"{v:.3f}"),
                          "Pr(>|z|)": t["Pr(>|z|)"].map(lambda v: f"{v:.3g}"),
                          "": t["Pr(>|z|)"].map(significance_stars)})
    return (["Fixed effects:"] + shown.to_string().splitlines() + ["---",
            "Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1"])


def _scaled_residual_lines(model) -> list[str]:
    q = np.quantile(model.residuals("pearson"), [0, 0.25, 0.5, 0.75, 1])
    values = [f"{v:.4f}" for v in q]
    heads = ["Min", "1Q", "Median", "3Q", "Max"]
    w = max(len(t) for t in values + heads)
    return ["Scaled residuals:", " ".join(h.rjust(w) for h in heads), " ".join(v.rjust(w) for v in values)]


def format_glmer(model) -> str:
    """A short print like lme4's ``print(m)``."""
    return "\n".join(glmer_header_lines(model) + ["Random effects:"] + glmer_varcorr_lines(model)
                     + [_obs_line(model), "Fixed Effects:", model.fixef.round(4).to_frame().T.to_string(index=False)])


class GlmerSummary:
    """``summary(m)`` of a glmer fit: header, scaled (Pearson) residuals, random effects, z tests,
    correlation of the fixed effects."""

    def __init__(self, model):
        self.model = model

    @property
    def coefficients(self) -> pd.DataFrame:
        return self.model.coef_table()

    def __str__(self) -> str:
        m = self.model
        return "\n".join(glmer_header_lines(m) + [""] + _scaled_residual_lines(m) + ["", "Random effects:"]
                         + glmer_varcorr_lines(m) + [_obs_line(m), ""] + coefficient_lines(m)
                         + fixef_correlation_lines(m))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"
