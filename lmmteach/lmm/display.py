"""Printing fitted models the way lme4 prints them (kept apart from the fitting code)."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd



def varcorr_lines(model) -> list[str]:
    """The 'Random effects' block: Groups, Name, Variance, Std.Dev., Corr."""
    vc = model.varcorr
    rows = []
    for grp, block, theta in zip(model.design.block_names, model.design.blocks, model.devfun.split(model.theta)):
        part = vc[vc.grp == grp]
        var = part[part.var2.isna()]
        cov = part[part.var2.notna()]
        names = list(block.names)
        for k, (_, r) in enumerate(var.iterrows()):
            cors = []
            for j in range(k):
                c = cov[(cov.var1 == names[j]) & (cov.var2 == names[k])]
                cors.append(f"{c.sdcor.iloc[0]:5.2f}" if len(c) else "")
            rows.append([grp if k == 0 else "", r.var1, f"{r.vcov:.5g}", f"{r.sdcor:.5g}", " ".join(cors)])
        extra = [f"{n}={v:.4g}" for n, v in block.structure.parameters(theta, model.sigma ** 2)
                 if n.startswith(("rho", "omega"))]
        if extra:
            rows.append(["", f"[{block.structure.name}: {', '.join(extra)}]", "", "", ""])
    rows.append(["Residual", "", f"{model.sigma ** 2:.5g}", f"{model.sigma:.5g}", ""])
    header = ["Groups", "Name", "Variance", "Std.Dev.", "Corr"]
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(5)]
    def line(r):
        return " " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()

    return [line(header)] + [line(r) for r in rows]


def format_model(model) -> str:
    """A short print like lme4's ``print(m)``."""
    return "\n".join(_header(model) + ["Random effects:"] + varcorr_lines(model) + [
        _obs_line(model), "Fixed Effects:", model.fixef.round(4).to_frame().T.to_string(index=False)])


def _header(model) -> list[str]:
    kind = "REML" if model.reml else "maximum likelihood"
    out = [f"Linear mixed model fit by {kind}  ['lmmteach']", f"Formula: {model.formula}"]
    if model.reml:
        out.append(f"REML criterion at convergence: {model.deviance:.4f}")
    else:
        stats = pd.DataFrame([[model.aic, model.bic, model.loglik, model.deviance, model.df_resid]],
                             columns=["AIC", "BIC", "logLik", "deviance", "df.resid"])
        out += [stats.to_string(index=False, float_format=lambda v: f"{v:.2f}")]
    if not model.converged:
        out.append(f"Warning: did not converge (max |gradient| {model.optimum.gradient_norm:.3g})")
    if model.is_singular:
        out.append("boundary (singular) fit: see help('isSingular')")
    return out


def _obs_line(model) -> str:
    groups = "; ".join(f"{name}, {n}" for name, n in model.ngroups.items())
    return f"Number of obs: {model.nobs}, groups:  {groups}"


def fixef_correlation_lines(model, max_p: int = 12) -> list[str]:
    """lme4's "Correlation of Fixed Effects": the lower triangle of corr(b̂), from Cov(b̂) = σ̂²(X'V⁻¹X)⁻¹."""
    p = len(model.fixef)
    if p < 2 or p > max_p:
        return []
    V = model.vcov.to_numpy()
    sd = np.sqrt(np.diag(V))
    R = V / np.outer(sd, sd)
    names = list(model.fixef.index)
    short = [n[:6] for n in names]
    width = max(len(n) for n in names)
    lines = ["", "Correlation of Fixed Effects:", " " * (width + 1) + " ".join(f"{s:>6}" for s in short[:-1])]
    for i in range(1, p):
        lines.append(f"{names[i]:<{width}} " + " ".join(f"{R[i, j]:6.3f}" for j in range(i)))
    return lines


class Summary:
    """``summary(m)``: header, scaled residuals, random effects, fixed-effects table."""

    def __init__(self, model):
        self.model = model

    @property
    def coefficients(self) -> pd.DataFrame:
        return self.model.coef_table()

    def __str__(self) -> str:
        m = self.model
        q = np.quantile(m.residuals / m.sigma, [0, 0.25, 0.5, 0.75, 1])
        res = pd.DataFrame([q], columns=["Min", "1Q", "Median", "3Q", "Max"]).to_string(
            index=False, float_format=lambda v: f"{v:.4f}")
        coefs = m.coef_table().to_string(float_format=lambda v: f"{v:.5g}")
        return "\n".join(_header(m) + ["", "Scaled residuals:", res, "", "Random effects:"] + varcorr_lines(m)
                         + [_obs_line(m), "", "Fixed effects:", coefs] + fixef_correlation_lines(m))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"


def model_html(model) -> str:
    return "<pre>" + html.escape(format_model(model)) + "</pre>"
