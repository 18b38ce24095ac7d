"""Printing a fitted GLMM the way lme4 prints ``summary(glmer(...))`` (kept apart from the fitting code).

The pieces shared with lmer's print -- the random-effects table, the fit statistics, the status lines,
the scaled residuals, the correlation of the fixed effects -- are :mod:`lmmteach.lmm.display`'s; what is
glmer's own is here: the header naming the approximation and the family, the z table with its
significance codes, the optimiser's log."""

from __future__ import annotations

import pandas as pd

from ..lmm.display import (Summary, _obs_line, fit_statistics_line, fixef_correlation_lines, numbered_steps,
                           scaled_residual_lines, short_lines, status_lines, table_lines, term_rows)

__all__ = ["glmer_header_lines", "glmer_varcorr_lines", "coefficient_lines", "format_glmer", "GlmerSummary",
           "glmer_fit_log_lines", "significance_stars"]


def glmer_header_lines(model) -> list[str]:
    """Method, family, formula and the fit statistics AIC, BIC, logLik, deviance, df.resid."""
    method = "Laplace\n  Approximation" if model.nAGQ == 1 else \
        f"Adaptive\n  Gauss-Hermite Quadrature, nAGQ = {model.nAGQ}"
    out = [f"Generalized linear mixed model fit by maximum likelihood ({method}) ['lmmteach']",
           f" Family: {model.family}", f"Formula: {model.formula}", ""]
    return out + [fit_statistics_line(model, 1)] + status_lines(model)


def glmer_varcorr_lines(model) -> list[str]:
    """'Random effects': Groups, Name, Variance, Std.Dev., Corr (no residual row: σ = 1)."""
    rows = [row for _, _, term in term_rows(model, ".4f") for row in term]
    return table_lines(["Groups", "Name", "Variance", "Std.Dev.", "Corr" if any(r[4] for r in rows) else ""], rows)


def glmer_fit_log_lines(model) -> list[str]:
    """What the optimiser did: PIRLS runs, the final deviance, each step."""
    o = model.optimum
    return [f"{o.n_eval} PIRLS runs; converged: {o.converged}; deviance {o.deviance:.10g}"] + numbered_steps(o.log)


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


def format_glmer(model) -> str:
    """A short print like lme4's ``print(m)``."""
    return "\n".join(short_lines(model, glmer_header_lines(model), glmer_varcorr_lines(model)))


class GlmerSummary(Summary):
    """``summary(m)`` of a glmer fit: header, scaled (Pearson) residuals, random effects, z tests,
    correlation of the fixed effects."""

    def __str__(self) -> str:
        m = self.model
        return "\n".join(glmer_header_lines(m) + [""] + scaled_residual_lines(m, m.residuals("pearson"))
                         + ["", "Random effects:"] + glmer_varcorr_lines(m) + [_obs_line(m), ""]
                         + coefficient_lines(m) + fixef_correlation_lines(m))

    __repr__ = __str__
