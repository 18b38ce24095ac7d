"""Printing fitted models the way lme4 prints them (kept apart from the fitting code)."""
from __future__ import annotations

import html
import shutil
from typing import Any

import numpy as np
import pandas as pd

from .._util import fmt

__all__ = ["varcorr_lines", "format_model", "fit_log_lines", "fixef_correlation_lines", "scaled_residual_lines", "abbreviate",
           "term_rows", "table_lines", "numbered_steps", "short_lines", "fit_statistics_line", "status_lines",
           "Summary", "model_html", "gls_covariance_lines", "format_gls", "GLSSummary", "AnovaTable"]



def term_rows(model, number: str) -> list[tuple[str, Any, list[list[str]]]]:
    """The rows of the 'Random effects' table term by term -- (group, block, rows), each row Groups, Name,
    Variance, Std.Dev., Corr with the numbers in the format ``number`` -- from ``model.varcorr``."""
    vc = model.varcorr
    out = []
    for grp, block in zip(model.design.block_names, model.design.blocks):
        part = vc[vc.grp == grp]
        var = part[part.var2.isna()]
        cov = part[part.var2.notna()]
        names = list(block.names)
        rows = []
        for k, (_, r) in enumerate(var.iterrows()):
            cors = []
            for j in range(k):
                c = cov[(cov.var1 == names[j]) & (cov.var2 == names[k])]
                cors.append(f"{c.sdcor.iloc[0]:5.2f}" if len(c) else "")
            rows.append([grp if k == 0 else "", r.var1, f"{r.vcov:{number}}", f"{r.sdcor:{number}}", " ".join(cors)])
        out.append((grp, block, rows))
    return out


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """lme4's left-aligned text table: each column as wide as its widest cell, two spaces apart."""
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    return [" " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header] + rows]


def varcorr_lines(model) -> list[str]:
    """The 'Random effects' block: Groups, Name, Variance, Std.Dev., Corr, each structure's own parameters
    (ρ, ω) under its term, and the residual."""
    rows = []
    for (_, block, term), theta in zip(term_rows(model, ".5g"), model.devfun.split(model.theta)):
        rows += term
        extra = [f"{n}={v:.4g}" for n, v in block.structure.parameters(theta, model.sigma ** 2)
                 if n.startswith(("rho", "omega"))]
        if extra:
            rows.append(["", f"[{block.structure.name}: {', '.join(extra)}]", "", "", ""])
    rows.append(["Residual", "", f"{model.sigma ** 2:.5g}", f"{model.sigma:.5g}", ""])
    return table_lines(["Groups", "Name", "Variance", "Std.Dev.", "Corr"], rows)


def numbered_steps(log) -> list[str]:
    """The optimiser's steps, one a line: "  1. ...", "  2. ..."."""
    return [f"  {k + 1}. {step}" for k, step in enumerate(log)]


def fit_log_lines(model) -> list[str]:
    """The optimiser's log of a fitted model: method, evaluations, each step it took, the final gradient."""
    o = model.optimum
    lines = [f"optimizer: {o.method}; {o.n_iter} iterations, {o.n_eval} deviance evaluations",
             f"converged: {o.converged}; max |projected gradient| {o.gradient_norm:.3g}; deviance {o.deviance:.10g}"]
    return lines + numbered_steps(o.log)


def short_lines(model, header: list[str], random_effects: list[str]) -> list[str]:
    """lme4's ``print(m)`` below the header: random effects, numbers of observations and groups, b̂."""
    return header + ["Random effects:"] + random_effects + [
        _obs_line(model), "Fixed Effects:", model.fixef.round(4).to_frame().T.to_string(index=False)]


def format_model(model) -> str:
    """A short print like lme4's ``print(m)``."""
    return "\n".join(short_lines(model, _header(model), varcorr_lines(model)))


def fit_statistics_line(model, digits: int) -> str:
    """AIC, BIC, logLik, deviance, df.resid under their names, ``digits`` decimals."""
    stats = pd.DataFrame([[model.aic, model.bic, model.loglik, model.deviance, model.df_resid]],
                         columns=["AIC", "BIC", "logLik", "deviance", "df.resid"])
    return stats.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")


def status_lines(model) -> list[str]:
    """A failed convergence check and a singular fit, said under the header."""
    out = []
    if not model.converged:
        out.append(f"Warning: did not converge (max |gradient| {model.gradient_norm:.3g})")
    if model.is_singular:
        out.append("boundary (singular) fit: see help('isSingular')")
    return out


def _header(model) -> list[str]:
    kind = "REML" if model.reml else "maximum likelihood"
    out = [f"Linear mixed model fit by {kind}  ['lmmteach']", f"Formula: {model.formula}"]
    if model.reml:
        out.append(f"REML criterion at convergence: {model.deviance:.4f}")
    else:
        out.append(fit_statistics_line(model, 2))
    return out + status_lines(model)


def _obs_line(model) -> str:
    groups = "; ".join(f"{name}, {n}" for name, n in model.ngroups.items())
    return f"Number of obs: {model.nobs}, groups:  {groups}"


def _abbreviate_one(name: str, minlength: int) -> str:
    """R's ``abbreviate``: drop lower-case vowels from the right (word ends first), then lower-case letters
    (word ends first), then any character but a word's first, until ``minlength`` characters are left."""
    s = list(name.strip())
    if len(s) <= minlength:
        return "".join(s)
    first = lambda i: s[i - 1].isspace()  # noqa: E731
    last = lambda i: not s[i - 1].isspace() and (i + 1 == len(s) or s[i + 1].isspace())  # noqa: E731
    rules = [lambda i: s[i] in "aeiou" and last(i), lambda i: s[i] in "aeiou" and not first(i),
             lambda i: s[i].islower() and last(i), lambda i: s[i].islower() and not first(i),
             lambda i: not first(i) and not s[i].isspace()]
    for rule in rules:
        for i in range(len(s) - 1, 0, -1):
            if i < len(s) and rule(i):
                del s[i]
            if len([c for c in s if not c.isspace()]) <= minlength:
                return "".join(c for c in s if not c.isspace())
    return "".join(c for c in s if not c.isspace())


def abbreviate(names, minlength: int) -> list[str]:
    """R's ``abbreviate(names, minlength)`` ("(Intercept)" -> "(Intr)"): while abbreviations repeat, every
    name sharing a repeated one is abbreviated again with ``minlength`` one larger, as R does."""
    given = list(names)
    names = list(dict.fromkeys(given))  # a repeated name has one abbreviation
    out = [_abbreviate_one(n, minlength) for n in names]
    longest = max(map(len, names), default=0)
    while len(set(out)) < len(out) and minlength < longest:
        minlength += 1
        repeated = {a for a in out if out.count(a) > 1}
        out = [_abbreviate_one(n, minlength) if a in repeated else a for n, a in zip(names, out)]
    short = dict(zip(names, out))
    return [short[n] for n in given]


def fixef_correlation_lines(model, max_p: int = 12) -> list[str]:
    """lme4's "Correlation of Fixed Effects": the lower triangle of corr(b̂), from Cov(b̂) = σ̂²(X'V⁻¹X)⁻¹;
    rows named by ``abbreviate(names, 11)``, columns by ``abbreviate(names, 6)``, as lme4 prints them."""
    p = len(model.fixef)
    if p < 2 or p > max_p:
        return []
    V = model.vcov.to_numpy()
    sd = np.sqrt(np.diag(V))
    R = V / np.outer(sd, sd)
    names = list(model.fixef.index)
    rows, cols = abbreviate(names, 11), abbreviate(names, 6)
    width = max(len(r) for r in rows[1:])
    cw = max(6, *(len(c) for c in cols[:-1]))
    lines = ["", "Correlation of Fixed Effects:", " " * (width + 1) + " ".join(f"{c:>{cw}}" for c in cols[:-1])]
    for i in range(1, p):
        lines.append(f"{rows[i]:<{width}} " + " ".join(f"{R[i, j]:{cw}.3f}" for j in range(i)))
    return lines


def scaled_residual_lines(model, residuals=None) -> list[str]:
    """lme4's "Scaled residuals": quantiles of ``residuals`` (default (y − ŷ)/σ̂; glmer's are its Pearson
    residuals), each header right-aligned over its value."""
    q = np.quantile(model.residuals / model.sigma if residuals is None else residuals, [0, 0.25, 0.5, 0.75, 1])
    values = [f"{v:.4f}" for v in q]
    heads = ["Min", "1Q", "Median", "3Q", "Max"]
    w = max(len(t) for t in values + heads)
    return ["Scaled residuals:", " ".join(h.rjust(w) for h in heads), " ".join(v.rjust(w) for v in values)]


class Summary:
    """``summary(m)``: header, scaled residuals, random effects, fixed-effects table."""

    def __init__(self, model):
        self.model = model

    @property
    def coefficients(self) -> pd.DataFrame:
        return self.model.coef_table()

    def __str__(self) -> str:
        m = self.model
        coefs = m.coef_table().to_string(float_format=lambda v: f"{v:.5g}")
        return "\n".join(_header(m) + [""] + scaled_residual_lines(m) + ["", "Random effects:"] + varcorr_lines(m)
                         + [_obs_line(m), "", "Fixed effects:", coefs] + fixef_correlation_lines(m))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return "<pre>" + html.escape(str(self)) + "</pre>"


def model_html(model) -> str:
    return "<pre>" + html.escape(format_model(model)) + "</pre>"


# -- gls fits (nlme's print.summary.gls) ---------------------------------------------------------------------
_GLS_STRUCTURES = {"cs": "Compound symmetry", "ar1": "AR(1)", "car1": "Continuous AR(1)", "toep": "Toeplitz", "un": "General"}


def gls_covariance_lines(fit) -> list[str]:
    """nlme's "Correlation Structure" and "Variance function" blocks of a gls fit."""
    d, out = fit.design, []
    if fit.correlation is not None:
        out += [f"Correlation Structure: {_GLS_STRUCTURES[fit.correlation]}",
                f" Formula: ~ {d.time_name} | {d.group_name}", " Parameter estimate(s):"]
        if fit.correlation == "un":
            R = fit.cor_matrix().to_numpy()
            labels = [fmt(v) for v in d.time_levels]
            w = max(6, max(len(s) for s in labels))
            out.append(" Correlation:")
            out.append(" " * (w + 1) + " ".join(f"{s:>6}" for s in labels[:-1]))
            for i in range(1, len(labels)):
                out.append(f" {labels[i]:<{w}}" + " ".join(f"{R[i, j]:6.3f}" for j in range(i)))
        else:
            cp = fit.correlation_parameters
            out.append(" " + "  ".join(f"{n:>8}" for n in cp.index))
            out.append(" " + "  ".join(f"{v:8.4f}" for v in cp))
    if fit.heteroscedastic:
        delta = fit.variance_parameters
        out += ["Variance function:", " Structure: Different standard deviations per stratum",
                f" Formula: ~1 | {d.time_name}", " Parameter estimates:",
                " " + "  ".join(f"{fmt(n):>8}" for n in delta.index),
                " " + "  ".join(f"{v:8.4f}" for v in delta)]
    return out


def _gls_header(fit) -> list[str]:
    kind = "REML" if fit.reml else "maximum likelihood"
    stats = pd.DataFrame([[fit.aic, fit.bic, fit.loglik]], columns=["AIC", "BIC", "logLik"])
    out = [f"Generalized least squares fit by {kind}", f"  Model: {fit.formula}",
           "  " + stats.to_string(index=False, float_format=lambda v: f"{v:.4g}").replace("\n", "\n  ")]
    if not fit.converged:
        out.append("Warning: the optimiser did not converge")
    return out


def _gls_footer(fit) -> list[str]:
    return [f"Residual standard error: {fit.sigma:.4g}",
            f"Degrees of freedom: {fit.nobs} total; {fit.nobs - fit.design.p} residual"]


def format_gls(fit) -> str:
    """A short print like nlme's ``print(gls_fit)``."""
    coefs = fit.fixef.to_frame().T.to_string(index=False, float_format=lambda v: f"{v:.4g}")
    return "\n".join(_gls_header(fit) + [""] + gls_covariance_lines(fit) + ["", "Coefficients:", coefs, ""]
                     + _gls_footer(fit))


class GLSSummary(Summary):
    """``summary(gls_fit)``: header, covariance structure, coefficient table with t tests, σ̂."""

    @property
    def fit(self):
        """The gls fit summarised (nlme's name for it)."""
        return self.model

    def __str__(self) -> str:
        f = self.fit
        table = f.coef_table()
        text = table.to_string(formatters={"Value": "{:.5g}".format, "Std.Error": "{:.5g}".format,
                                           "t-value": "{:.4g}".format, "p-value": "{:.4f}".format})
        return "\n".join(_gls_header(f) + [""] + gls_covariance_lines(f) + ["", "Coefficients:", text, ""]
                         + fixef_correlation_lines(f)[1:] + [""] + _gls_footer(f))

    __repr__ = __str__


class AnovaTable(pd.DataFrame):
    """A test table (``lt.anova``) that prints in full: where pandas would cut columns to ``...`` (a plain
    terminal), the whole table is printed, wrapped to the terminal's width; ``attrs["heading"]`` (the F
    tables' "Type III Analysis of Variance Table with Satterthwaite's method") is printed above it.
    Anything computed from the table is a plain DataFrame again."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def __repr__(self) -> str:
        heading = self.attrs.get("heading")
        text = super().__repr__()
        if heading or "..." in text:
            text = self.to_string(line_width=shutil.get_terminal_size((100, 20)).columns)
        return f"{heading}\n{text}" if heading else text

    def _repr_html_(self) -> str:
        heading = self.attrs.get("heading")
        table = super()._repr_html_()
        return f"<p>{html.escape(heading)}</p>{table}" if heading else table
