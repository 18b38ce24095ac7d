"""Write the homework answer keys (the numbers in the hidden tests) from the homework data.

The hidden tests of ``lectures/homework/source/*/*.ipynb`` (the lines between ``### BEGIN HIDDEN TESTS``
and ``### END HIDDEN TESTS`` of the graded cells) are generated here, from the data files that
``datasets/make_homework_data.py`` writes: regenerating the data and then running

    python lectures/homework/keys/make_homework_keys.py            # rewrite the hidden tests in the source notebooks
    python lectures/homework/keys/make_homework_keys.py --check    # exit 1 if a notebook's hidden tests are out of date

regenerates the keys. tests/course/test_homework_keys.py runs the check.

Where the keys come from:
    * hw1 (RM ANOVA): numpy/scipy formulas of the notes on ``reaction_times_simulated.csv``.
    * hw2 (lmer fits): ``lmmteach.lmer`` fits of ``classrooms_simulated.csv`` (what a student reading
      ``lmer``'s output must find), and numpy/scipy for OLS and the chi-bar-square p-values.
    * hw3 (likelihoods by hand): the stacked (n_T x n_T) forms of the notes: ML from
      ``slogdet``/``solve`` of Sigma_*, REML from the error contrasts w = K'y with K an orthonormal basis
      of the null space of X' (the notes' definition, not the per-group identity the students use; minus
      the constant 1/2 ln|X'X| that the notes' identity drops), maximised with ``scipy.optimize`` to a
      tight tolerance (the optimiser and the simulation use closed forms of the same likelihoods for
      speed, checked against the stacked definitions).

"A wrong number costs once": a hidden test checks a quantity either against its key or against the
value the student's own earlier numbers imply (``_right_or_consistent`` below), so a mistake in one part is
not charged again in the parts that build on it.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import textwrap
from pathlib import Path

import numpy as np
from scipy import linalg, optimize, stats

ROOT = Path(__file__).resolve().parents[3]  # lectures/homework/keys/ -> the repository
SOURCE = ROOT / "lectures" / "homework" / "source"
NOTEBOOKS = {
    "hw1": SOURCE / "hw1_rm_anova" / "hw1_rm_anova.ipynb",
    "hw2": SOURCE / "hw2_random_effects" / "hw2_random_effects.ipynb",
    "hw3": SOURCE / "hw3_estimation" / "hw3_estimation.ipynb",
}
BEGIN, END = "### BEGIN HIDDEN TESTS\n", "### END HIDDEN TESTS"
DIGITS = 10  # significant digits written into the notebooks (every tolerance used is >= 1e-8)

# The helper every hidden block that builds on earlier answers uses (defined in the block itself, so the
# test cells stay self-contained when nbgrader runs them one by one).
HELPER = '''def _right_or_consistent(name, got, key, own, rtol=1e-6, atol=0.0):
    """Full marks if got equals the key, or equals what the student's own earlier numbers imply."""
    if not np.allclose(np.asarray(got, dtype=float), np.asarray(own, dtype=float), rtol=rtol, atol=atol):
        check_close(name, got, key, rtol=rtol, atol=atol)
'''


def num(x) -> str:
    """A number as written into a notebook (``DIGITS`` significant digits)."""
    return f"{float(x):.{DIGITS}g}"


def arr(a) -> str:
    """A 1-d list of numbers as written into a notebook."""
    return "[" + ", ".join(num(v) for v in np.ravel(a)) + "]"


KEY_MARGIN = 0.01
"""A key is out of date only when it moved by more than this share of what its grading call can see,
``atol + rtol * |key|`` (numpy's ``allclose`` rule, which ``check_close`` follows). A key's last digits move with
the BLAS kernel, the order of floating-point sums, a Monte Carlo draw's rounding and, for several grouping
factors, the optimiser's last step (all ~1e-7 relative or less); a real change of a key is far larger. A key
of zero graded with ``atol=0`` must stay exactly zero; an eigenvalue that is zero up to rounding
(±1e-13, graded with ``atol=1e-6``) is compared absolutely."""
OTHER_NUMBER_RTOL = 1e-6
"""Numbers outside a grading call's expected value (tolerances, seeds, shapes, and keys fed back into a
recomputation) must agree to this relative tolerance; integers exactly. The only non-integers there are hw3's ML
estimates, passed to ``loglik_ml`` to check the student's maximum: the key script's optimiser stops within ~2e-7
of the maximum (1.5e-7 measured between OpenBLAS kernels), and at a maximum a 1e-6 move changes the
log-likelihood by ~1e-12 relative, far below the 1e-6 the test allows."""
GRADERS = {"check_close": (2, 1e-6, 0.0), "_right_or_consistent": (2, 1e-6, 0.0), "allclose": (1, 1e-5, 1e-8)}
"""Grading calls of the hidden tests: name -> (position of the expected value, default rtol, default atol)."""


def _graded_numbers(code: str) -> tuple[str, list[tuple[float | int, tuple[float, float] | None]]]:
    """The block's code with its numbers blanked out, and each number with the (rtol, atol) of the grading call
    whose expected value holds it (None for a number outside any expected value)."""
    tree = ast.parse(textwrap.dedent(code))
    numbers: list[tuple[float | int, tuple[float, float] | None]] = []

    def number(node: ast.AST) -> float | int | None:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = number(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        return None

    def tolerance(call: ast.Call, default_rtol: float, default_atol: float) -> tuple[float, float]:
        given = {kw.arg: number(kw.value) for kw in call.keywords}
        rtol, atol = given.get("rtol"), given.get("atol")
        return (default_rtol if rtol is None else float(rtol), default_atol if atol is None else float(atol))

    class Blank(ast.NodeTransformer):
        context: tuple[float, float] | None = None

        def visit(self, node):
            value = number(node)
            if value is not None:  # a signed number is one number: a key may cross zero
                numbers.append((value, self.context))
                return ast.Constant(value=0)
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name in GRADERS and len(node.args) > GRADERS[name][0]:
                    position, default_rtol, default_atol = GRADERS[name]
                    outer, tol = self.context, tolerance(node, default_rtol, default_atol)
                    node.func = self.visit(node.func)
                    for i, arg in enumerate(node.args):
                        self.context = tol if i == position else outer
                        node.args[i] = self.visit(arg)
                    self.context = outer
                    node.keywords = [self.visit(kw) for kw in node.keywords]
                    return node
            return self.generic_visit(node)

    return ast.dump(Blank().visit(tree)), numbers


def _same_number(x: float | int, y: float | int, tol: tuple[float, float] | None) -> bool:
    if isinstance(x, int) and isinstance(y, int):
        return x == y
    if tol is None:
        return bool(np.isclose(x, y, rtol=OTHER_NUMBER_RTOL, atol=0.0))
    rtol, atol = tol
    return abs(x - y) <= KEY_MARGIN * (atol + rtol * max(abs(x), abs(y)))


def same_block(a: str, b: str) -> bool:
    """The same hidden tests: the same code apart from the numbers, every expected value within ``KEY_MARGIN`` of
    what its grading call can see, and every other number as ``OTHER_NUMBER_RTOL`` says."""
    try:
        code_a, numbers_a = _graded_numbers(a)
        code_b, numbers_b = _graded_numbers(b)
    except SyntaxError:
        return a == b
    return code_a == code_b and all(
        tol_a == tol_b and _same_number(x, y, tol_a) for (x, tol_a), (y, tol_b) in zip(numbers_a, numbers_b)
    )


# ---------------------------------------------------------------------------------------------------------
# hw1: one-way RM ANOVA of the reaction times
# ---------------------------------------------------------------------------------------------------------
def hw1_keys() -> dict:
    import lmmteach

    rt = lmmteach.load_reaction_times()
    Y = rt[["cond1", "cond2", "cond3", "cond4"]].to_numpy()
    n, a = Y.shape
    mu = Y.mean()
    alpha = Y.mean(axis=0) - mu
    rho = Y.mean(axis=1) - mu
    e = Y - Y.mean(axis=1, keepdims=True) - Y.mean(axis=0, keepdims=True) + mu
    ss = {"SSS": a * np.sum(rho**2), "SSA": n * np.sum(alpha**2), "SSE": np.sum(e**2), "SST": np.sum((Y - mu) ** 2)}
    df = {"S": n - 1, "A": a - 1, "E": (n - 1) * (a - 1), "T": n * a - 1}
    ms = {"S": ss["SSS"] / df["S"], "A": ss["SSA"] / df["A"], "E": ss["SSE"] / df["E"]}
    F_a, F_s = ms["A"] / ms["E"], ms["S"] / ms["E"]
    Z = Y - Y.mean(axis=0)
    Sigma = Z.T @ Z / (n - 1)
    C = np.eye(a) - 1 / a
    Sigma_c = C @ Sigma @ C
    lam = np.linalg.eigvalsh(Sigma_c)
    eps_gg = lam.sum() ** 2 / ((a - 1) * np.sum(lam**2))
    eps_hf = (n * (a - 1) * eps_gg - 2) / ((a - 1) * (n - 1 - (a - 1) * eps_gg))
    sigma2_rho = (ms["S"] - ms["E"]) / a
    return {
        "mu_hat": mu, "alpha_hat": alpha, "rho_hat": rho, "e_hat": e, **ss, "df": df, "MS": ms,
        "F_a": F_a, "p_a": stats.f.sf(F_a, df["A"], df["E"]), "F_s": F_s, "p_s": stats.f.sf(F_s, df["S"], df["E"]),
        "Sigma_c": Sigma_c, "lambdas": np.sort(lam), "eps_gg": eps_gg, "eps_hf": eps_hf,
        "p_gg": stats.f.sf(F_a, eps_gg * df["A"], eps_gg * df["E"]),
        "p_hf": stats.f.sf(F_a, eps_hf * df["A"], eps_hf * df["E"]),
        "sigma2_rho": sigma2_rho, "icc": sigma2_rho / (sigma2_rho + ms["E"]),
    }  # fmt: skip


def hw1_hidden(k: dict) -> dict:
    return {
        "test_estimates": f"""check_close("mu_hat", mu_hat, {num(k["mu_hat"])}, rtol=1e-8)
check_close("alpha_hat", alpha_hat, {arr(k["alpha_hat"])}, rtol=1e-6, atol=1e-8)
check_close("rho_hat", rho_hat, {arr(k["rho_hat"])}, rtol=1e-6, atol=1e-8)
check_close("e_hat", e_hat, np.reshape({arr(k["e_hat"])}, (n, a)), rtol=1e-6, atol=1e-6)
""",
        "test_sums_of_squares": HELPER
        + f"""# each sum of squares: right, or right for your estimates of Part 1 (a wrong estimate costs once)
_right_or_consistent("SSS", SSS, {num(k["SSS"])}, a * np.sum(np.asarray(rho_hat) ** 2))
_right_or_consistent("SSA", SSA, {num(k["SSA"])}, n * np.sum(np.asarray(alpha_hat) ** 2))
_right_or_consistent("SSE", SSE, {num(k["SSE"])}, np.sum(np.asarray(e_hat) ** 2))
check_close("SST", SST, {num(k["SST"])}, rtol=1e-6)
check_equal("df_S", df_S, {k["df"]["S"]})
check_equal("df_A", df_A, {k["df"]["A"]})
check_equal("df_E", df_E, {k["df"]["E"]})
check_equal("df_T", df_T, {k["df"]["T"]})
""",
        "test_anova_table": """# the table must hold your sums of squares; MS, F and p are checked against what they imply
check_close("table SS column (your SSS, SSA, SSE, SST)", table["SS"], [SSS, SSA, SSE, SST], rtol=1e-10)
_ss, _df = table["SS"].to_numpy(dtype=float), table["df"].to_numpy(dtype=float)
_ms = _ss[:3] / _df[:3]
_F = np.array([_ms[0] / _ms[2], _ms[1] / _ms[2]])
_p = np.array([stats.f.sf(_F[0], _df[0], _df[2]), stats.f.sf(_F[1], _df[1], _df[2])])
check_close("table MS column", table["MS"], [*_ms, np.nan], rtol=1e-6)
check_close("table F column", table["F"], [*_F, np.nan, np.nan], rtol=1e-6)
check_close("table p column", table["p"], [*_p, np.nan, np.nan], rtol=1e-5)
check_close("F_a", F_a, _F[1], rtol=1e-6)
check_close("p_a", p_a, _p[1], rtol=1e-5)
check_close("F_s", F_s, _F[0], rtol=1e-6)
check_close("p_s", p_s, _p[0], rtol=1e-5)
""",
        "test_covariance": f"""check_close("lambdas (sorted)", np.sort(lambdas), {arr(k["lambdas"])}, rtol=1e-6, atol=1e-6)
check_close("Sigma_c", Sigma_c, np.reshape({arr(k["Sigma_c"])}, (a, a)), rtol=1e-6, atol=1e-8)
""",
        "test_epsilons": HELPER
        + f"""# right, or right for your own eigenvalues, epsilons and F (a wrong earlier number costs once)
_l = np.asarray(lambdas, dtype=float)
_right_or_consistent("eps_gg", eps_gg, {num(k["eps_gg"])}, _l.sum() ** 2 / ((a - 1) * np.sum(_l**2)))
_right_or_consistent("eps_hf", eps_hf, {num(k["eps_hf"])},
                     (n * (a - 1) * eps_gg - 2) / ((a - 1) * (n - 1 - (a - 1) * eps_gg)))
_right_or_consistent("p_gg", p_gg, {num(k["p_gg"])}, stats.f.sf(F_a, eps_gg * (a - 1), eps_gg * (n - 1) * (a - 1)),
                     rtol=1e-5)
_right_or_consistent("p_hf", p_hf, {num(k["p_hf"])}, stats.f.sf(F_a, eps_hf * (a - 1), eps_hf * (n - 1) * (a - 1)),
                     rtol=1e-5)
""",
        "test_compare": HELPER
        + f"""# max_difference as computed from YOUR numbers (a wrong epsilon was charged in its own test)
_mine = np.array([F_a, p_a, eps_gg, eps_hf, p_gg, p_hf], dtype=float)
_lib = np.array([fit.F, fit.p, fit.eps_gg, fit.eps_hf, fit.p_gg, fit.p_hf], dtype=float)
check_close("max_difference (largest |yours - aov1rm's|)", max_difference, np.max(np.abs(_mine - _lib)),
            rtol=1e-6, atol=1e-12)
_ms_s, _ms_e = float(table.loc["Subjects", "MS"]), float(table.loc["Error", "MS"])
_right_or_consistent("sigma2_e", sigma2_e, {num(k["MS"]["E"])}, _ms_e)
_right_or_consistent("sigma2_rho", sigma2_rho, {num(k["sigma2_rho"])}, (_ms_s - _ms_e) / a)
_right_or_consistent("icc", icc, {num(k["icc"])}, sigma2_rho / (sigma2_rho + sigma2_e))
""",
    }


# ---------------------------------------------------------------------------------------------------------
# hw2: random intercepts and slopes of the classrooms data
# ---------------------------------------------------------------------------------------------------------
def hw2_keys() -> dict:
    import warnings

    import lmmteach

    cl = lmmteach.load_classrooms()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m_ri = lmmteach.lmer("score ~ ses + (1 | class)", cl)
        m_empty = lmmteach.lmer("score ~ 1 + (1 | class)", cl)
        m_rs = lmmteach.lmer("score ~ ses + (ses | class)", cl)
        m_ri_ml = lmmteach.lmer("score ~ ses + (1 | class)", cl, reml=False)
        m_rs_ml = lmmteach.lmer("score ~ ses + (ses | class)", cl, reml=False)
    vc = m_ri.varcorr.set_index("grp")["vcov"]
    levels = cl["class"].cat.categories
    means = cl.groupby("class", observed=True)["score"].mean().reindex(levels).to_numpy()
    m_i = cl.groupby("class", observed=True).size().reindex(levels).to_numpy()
    vc0 = m_empty.varcorr.set_index("grp")["vcov"]
    b0 = m_empty.fixef["(Intercept)"]
    lam = vc0["class"] / (vc0["class"] + vc0["Residual"] / m_i)
    rs = m_rs.varcorr
    rs = rs[rs["grp"] == "class"]
    X = np.column_stack([np.ones(len(cl)), cl["ses"].to_numpy()])
    y = cl["score"].to_numpy()
    rss = np.sum((y - X @ np.linalg.lstsq(X, y, rcond=None)[0]) ** 2)
    loglik_ols = -len(y) / 2 * (np.log(2 * np.pi * rss / len(y)) + 1)
    D_slope = 2 * (m_rs_ml.loglik - m_ri_ml.loglik)
    D_intercept = 2 * (m_ri_ml.loglik - loglik_ols)
    return {
        "b_ses": m_ri.fixef["ses"], "sigma2_v": vc["class"], "sigma2_e": vc["Residual"],
        "icc": vc["class"] / (vc["class"] + vc["Residual"]),
        "raw_dev": means - b0, "blup": m_empty.ranef["class"]["(Intercept)"].reindex(levels).to_numpy(), "lam": lam,
        "most_shrunk": str(levels[np.argmin(lam)]),
        "sd_intercept": rs.loc[(rs["var1"] == "(Intercept)") & rs["var2"].isna(), "sdcor"].item(),
        "sd_slope": rs.loc[(rs["var1"] == "ses") & rs["var2"].isna(), "sdcor"].item(),
        "corr": rs.loc[rs["var2"].notna(), "sdcor"].item(),
        "slopes": m_rs.coef["class"]["ses"].to_numpy(),
        "D_slope": D_slope, "p_slope_chi2": stats.chi2.sf(D_slope, 2),
        "p_slope_mixture": 0.5 * stats.chi2.sf(D_slope, 1) + 0.5 * stats.chi2.sf(D_slope, 2),
        "loglik_ols": loglik_ols, "D_intercept": D_intercept, "p_intercept_mixture": 0.5 * stats.chi2.sf(D_intercept, 1),
    }  # fmt: skip


def hw2_hidden(k: dict) -> dict:
    return {
        "test_random_intercept": HELPER
        + f"""check_close("b_ses", b_ses, {num(k["b_ses"])}, rtol=1e-4)
check_close("sigma2_v", sigma2_v, {num(k["sigma2_v"])}, rtol=1e-4)
check_close("sigma2_e", sigma2_e, {num(k["sigma2_e"])}, rtol=1e-4)
_right_or_consistent("icc", icc, {num(k["icc"])}, sigma2_v / (sigma2_v + sigma2_e), rtol=1e-4)
""",
        "test_blups": f"""check_close("raw_dev", raw_dev, {arr(k["raw_dev"])}, rtol=1e-4, atol=1e-4)
check_close("blup", blup, {arr(k["blup"])}, rtol=1e-4, atol=1e-4)
check_close("lam", lam, {arr(k["lam"])}, rtol=1e-4)
check_equal("most_shrunk", str(most_shrunk), {k["most_shrunk"]!r})
""",
        "test_random_slope": f"""check_close("sd_intercept", sd_intercept, {num(k["sd_intercept"])}, rtol=1e-3)
check_close("sd_slope", sd_slope, {num(k["sd_slope"])}, rtol=1e-3)
check_close("corr", corr, {num(k["corr"])}, rtol=1e-3, atol=1e-3)
check_close("slopes", slopes, {arr(k["slopes"])}, rtol=1e-3)
""",
        "test_lrt_slope": HELPER
        + f"""check_close("D_slope", D_slope, {num(k["D_slope"])}, rtol=1e-3)
# the p-values: right, or right for your D (a wrong D costs once)
_right_or_consistent("p_slope_chi2", p_slope_chi2, {num(k["p_slope_chi2"])}, stats.chi2.sf(D_slope, 2), rtol=1e-3)
_right_or_consistent("p_slope_mixture", p_slope_mixture, {num(k["p_slope_mixture"])},
                     0.5 * stats.chi2.sf(D_slope, 1) + 0.5 * stats.chi2.sf(D_slope, 2), rtol=1e-3)
""",
        "test_lrt_intercept": HELPER
        + f"""check_close("loglik_ols", loglik_ols, {num(k["loglik_ols"])}, rtol=1e-8)
_right_or_consistent("D_intercept", D_intercept, {num(k["D_intercept"])}, 2 * (m_ri_ml.loglik - loglik_ols), rtol=1e-4)
_right_or_consistent("p_intercept_mixture", p_intercept_mixture, {num(k["p_intercept_mixture"])},
                     0.5 * stats.chi2.sf(D_intercept, 1), rtol=0.05)
""",
    }


# ---------------------------------------------------------------------------------------------------------
# hw3: ML and REML by hand (keys from the stacked forms of the notes)
# ---------------------------------------------------------------------------------------------------------
def _stacked(y_list, X_list, sigma2_v, sigma2_e):
    """y, X and Sigma_* = bdiag(sigma2_v J + sigma2_e I) of the whole data set."""
    y, X = np.concatenate(y_list), np.vstack(X_list)
    S = linalg.block_diag(*[sigma2_v * np.ones((len(v), len(v))) + sigma2_e * np.eye(len(v)) for v in y_list])
    return y, X, S


def _gls(y, X, S):
    SiX = np.linalg.solve(S, X)
    return np.linalg.solve(X.T @ SiX, SiX.T @ y)


def ml_stacked(sigma2_v, sigma2_e, y_list, X_list) -> float:
    """ln L = -n_T/2 ln(2 pi) - 1/2 ln|Sigma_*| - 1/2 r' Sigma_*^-1 r with r = y - X b_GLS (notes' appendix)."""
    y, X, S = _stacked(y_list, X_list, sigma2_v, sigma2_e)
    r = y - X @ _gls(y, X, S)
    return float(-len(y) / 2 * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(S)[1] - 0.5 * r @ np.linalg.solve(S, r))


_NULL_SPACES: dict = {}


def _null_space(X: np.ndarray) -> np.ndarray:
    """An orthonormal K with K'X = 0 (cached: the optimiser asks for the same X many times)."""
    key = (X.shape, X.tobytes())
    if key not in _NULL_SPACES:
        _NULL_SPACES[key] = linalg.null_space(X.T)
    return _NULL_SPACES[key]


def reml_contrasts(sigma2_v, sigma2_e, y_list, X_list) -> float:
    """The REML log-likelihood as hw3 (the notes, lme4) defines it, from the notes' definition.

    The log-likelihood of the error contrasts w = K'y ~ N(0, K' Sigma_* K) (K'X = 0, K'K = I) equals the
    notes' formula plus 1/2 ln|X'X| (the notes' identity ln|K' Sigma_* K| = ln|Sigma_*| + ln|X' Sigma_*^-1 X|
    omits -ln|X'X|, a constant); hw3 uses the notes' formula, so the constant is removed here.
    """
    y, X, S = _stacked(y_list, X_list, sigma2_v, sigma2_e)
    K = _null_space(X)
    w, V = K.T @ y, K.T @ S @ K
    contrasts = -len(w) / 2 * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(V)[1] - 0.5 * w @ np.linalg.solve(V, w)
    return float(contrasts - 0.5 * np.linalg.slogdet(X.T @ X)[1])


def _cs_parts(sigma2_v, sigma2_e, y_list, X_list):
    """Closed forms for Sigma_i = sigma2_v J + sigma2_e I (no matrix solves): sum of ln|Sigma_i|, the GLS
    estimate, r' Sigma_*^-1 r and X' Sigma_*^-1 X, with Sigma_i^-1 = (I - c_i J) / sigma2_e,
    c_i = sigma2_v / (sigma2_e + m_i sigma2_v), and |Sigma_i| = sigma2_e^(m_i - 1) (sigma2_e + m_i sigma2_v)."""
    p = X_list[0].shape[1]
    logdet, XtSX, XtSy = 0.0, np.zeros((p, p)), np.zeros(p)
    for y, X in zip(y_list, X_list):
        m = len(y)
        c = sigma2_v / (sigma2_e + m * sigma2_v)
        logdet += (m - 1) * np.log(sigma2_e) + np.log(sigma2_e + m * sigma2_v)
        sx, sy = X.sum(axis=0), y.sum()
        XtSX += (X.T @ X - c * np.outer(sx, sx)) / sigma2_e
        XtSy += (X.T @ y - c * sx * sy) / sigma2_e
    b = np.linalg.solve(XtSX, XtSy)
    quad = 0.0
    for y, X in zip(y_list, X_list):
        r = y - X @ b
        c = sigma2_v / (sigma2_e + len(y) * sigma2_v)
        quad += (r @ r - c * r.sum() ** 2) / sigma2_e
    return logdet, b, quad, XtSX


def ml_closed(sigma2_v, sigma2_e, y_list, X_list) -> float:
    """The ML log-likelihood from the closed forms of ``_cs_parts`` (for the optimiser)."""
    logdet, _, quad, _ = _cs_parts(sigma2_v, sigma2_e, y_list, X_list)
    n_T = sum(len(y) for y in y_list)
    return float(-n_T / 2 * np.log(2 * np.pi) - 0.5 * logdet - 0.5 * quad)


def reml_closed(sigma2_v, sigma2_e, y_list, X_list) -> float:
    """The notes' REML log-likelihood from the closed forms of ``_cs_parts`` (for the optimiser)."""
    logdet, _, quad, XtSX = _cs_parts(sigma2_v, sigma2_e, y_list, X_list)
    n_T, p = sum(len(y) for y in y_list), X_list[0].shape[1]
    return float(-(n_T - p) / 2 * np.log(2 * np.pi) - 0.5 * logdet - 0.5 * np.linalg.slogdet(XtSX)[1] - 0.5 * quad)


def _maximise(loglik, y_list, X_list, polish: bool = True) -> np.ndarray:
    """(sigma2_v, sigma2_e) maximising loglik over the SDs (sigma_v >= 0), to a tight tolerance: L-BFGS-B,
    then Nelder-Mead from its end point (which also settles a maximum on the boundary sigma_v = 0)."""
    sd = np.std(np.concatenate(y_list))
    f = lambda s: -loglik(s[0] ** 2, s[1] ** 2, y_list, X_list)  # noqa: E731
    res = optimize.minimize(f, [sd / 2, sd / 2], method="L-BFGS-B", bounds=[(0, None), (1e-6, None)],
                            options={"ftol": 1e-15, "gtol": 1e-10})  # fmt: skip
    if not polish:
        return res.x**2
    polished = optimize.minimize(lambda s: f(np.abs(s)), res.x, method="Nelder-Mead",
                               options={"xatol": 1e-9, "fatol": 1e-12})  # fmt: skip
    best = np.abs(polished.x) if polished.fun < res.fun else res.x
    return best**2


def _hw3_simulated(rng, n_groups=6, m=4, b=(10.0, 1.0), sigma2_v=4.0, sigma2_e=1.0):
    """hw3's ``simulate_dataset``: the same draws in the same order."""
    x = np.arange(m, dtype=float)
    X = np.column_stack([np.ones(m), x])
    y_sim, X_sim = [], []
    for _ in range(n_groups):
        v = rng.normal(0.0, np.sqrt(sigma2_v))
        e = rng.normal(0.0, np.sqrt(sigma2_e), size=m)
        y_sim.append(X @ np.asarray(b) + v + e)
        X_sim.append(X)
    return y_sim, X_sim


HW3_TOY = ([np.array([1.0, 2.0]), np.array([4.0, 3.0, 5.0])], [np.ones((2, 1)), np.ones((3, 1))])
HW3_SIM_SEED, HW3_SIM_R = 2017, 200
HW3_TRUTH = np.array([4.0, 1.0])


def hw3_keys() -> dict:
    import lmmteach

    cl = lmmteach.load_classrooms()
    y_list, X_list = [], []
    for _, g in cl.groupby("class", observed=True):
        y_list.append(g["score"].to_numpy())
        X_list.append(np.column_stack([np.ones(len(g)), g["ses"].to_numpy()]))
    gls = lambda v, e: _gls(*_stacked(y_list, X_list, v, e))  # noqa: E731
    # the closed forms agree with the stacked definitions (checked at one point: the stacked forms are slow)
    assert np.isclose(ml_closed(20.0, 40.0, y_list, X_list), ml_stacked(20.0, 40.0, y_list, X_list), rtol=1e-11, atol=0)
    assert np.isclose(reml_closed(20.0, 40.0, y_list, X_list), reml_contrasts(20.0, 40.0, y_list, X_list), rtol=1e-11,
                      atol=0)  # fmt: skip
    ml = lambda v, e: ml_closed(v, e, y_list, X_list)  # noqa: E731
    reml = lambda v, e: reml_closed(v, e, y_list, X_list)  # noqa: E731
    est_ml = _maximise(ml_closed, y_list, X_list)
    est_reml = _maximise(reml_closed, y_list, X_list)
    rng = np.random.default_rng(HW3_SIM_SEED)
    sim_ml, sim_reml = np.empty((HW3_SIM_R, 2)), np.empty((HW3_SIM_R, 2))
    for r in range(HW3_SIM_R):
        ys, Xs = _hw3_simulated(rng)
        sim_ml[r] = _maximise(ml_closed, ys, Xs, polish=False)
        sim_reml[r] = _maximise(reml_closed, ys, Xs, polish=False)
    return {
        "gls_20_40": gls(20.0, 40.0), "gls_5_30": gls(5.0, 30.0),
        "ml_20_40": ml(20.0, 40.0), "ml_5_30": ml(5.0, 30.0), "ml_0_37": ml(0.0, 37.0),
        "ml_toy": ml_stacked(1.0, 2.0, *HW3_TOY),
        "reml_20_40": reml(20.0, 40.0), "reml_5_30": reml(5.0, 30.0), "reml_9_33": reml(9.0, 33.0),
        "reml_toy": reml_contrasts(1.0, 2.0, *HW3_TOY),
        "est_ml": est_ml, "est_reml": est_reml,
        "bias_ml": sim_ml.mean(axis=0) - HW3_TRUTH, "bias_reml": sim_reml.mean(axis=0) - HW3_TRUTH,
        "sim_reml0": sim_reml[0],
    }  # fmt: skip


def hw3_hidden(k: dict) -> dict:
    return {
        "test_make_Sigma_i": """check_close("make_Sigma_i(0.5, 1, 1)", make_Sigma_i(0.5, 1.0, 1), [[1.5]])
check_shape("make_Sigma_i(1, 1, 7)", make_Sigma_i(1.0, 1.0, 7), (7, 7))
""",
        "test_gls_b": f"""with no_library_shortcuts():  # hidden checks
    check_close("gls_b(20, 40, ...)", gls_b(20.0, 40.0, y_list, X_list), {arr(k["gls_20_40"])}, rtol=1e-7)
    check_close("gls_b(5, 30, ...)", gls_b(5.0, 30.0, y_list, X_list), {arr(k["gls_5_30"])}, rtol=1e-7)
""",
        "test_loglik_ml": f"""small = ([np.array([1.0, 2.0]), np.array([4.0, 3.0, 5.0])], [np.ones((2, 1)), np.ones((3, 1))])
with no_library_shortcuts():  # hidden checks
    check_close("loglik_ml(5, 30, ...)", loglik_ml(5.0, 30.0, y_list, X_list), {num(k["ml_5_30"])}, rtol=1e-9)
    check_close("loglik_ml(0, 37, ...)", loglik_ml(0.0, 37.0, y_list, X_list), {num(k["ml_0_37"])}, rtol=1e-9)
    check_close("loglik_ml(1, 2, ...) on a 2-group toy data set", loglik_ml(1.0, 2.0, *small), {num(k["ml_toy"])},
                rtol=1e-9)
""",
        "test_loglik_reml": f"""small = ([np.array([1.0, 2.0]), np.array([4.0, 3.0, 5.0])], [np.ones((2, 1)), np.ones((3, 1))])
with no_library_shortcuts():  # hidden checks
    check_close("loglik_reml(5, 30, ...)", loglik_reml(5.0, 30.0, y_list, X_list), {num(k["reml_5_30"])}, rtol=1e-9)
    check_close("loglik_reml(9, 33, ...)", loglik_reml(9.0, 33.0, y_list, X_list), {num(k["reml_9_33"])}, rtol=1e-9)
    check_close("loglik_reml(1, 2, ...) on a 2-group toy data set", loglik_reml(1.0, 2.0, *small),
                {num(k["reml_toy"])}, rtol=1e-9)
""",
        "test_fit_ri": f"""check_close("est_ml", est_ml, {arr(k["est_ml"])}, rtol=1e-3)
check_close("est_reml", est_reml, {arr(k["est_reml"])}, rtol=1e-3)
# your maximum is at least as high as the true one under your own log-likelihood (costs nothing extra when
# loglik_ml itself is wrong)
_at_key = loglik_ml({num(k["est_ml"][0])}, {num(k["est_ml"][1])}, y_list, X_list)
assert loglik_ml(*est_ml, y_list, X_list) >= _at_key - 1e-6 * abs(_at_key), "est_ml: not the maximum of your loglik_ml"
""",
        "test_simulation": f"""# the bias is the mean of your replicates minus the truth, and replicate 1 is your fit_ri of the first draw
check_close("bias_ml (sim_ml.mean(axis=0) - truth)", bias_ml, np.mean(sim_ml, axis=0) - truth, rtol=1e-8, atol=1e-10)
check_close("bias_reml (sim_reml.mean(axis=0) - truth)", bias_reml, np.mean(sim_reml, axis=0) - truth, rtol=1e-8,
            atol=1e-10)
_y0, _X0 = simulate_dataset(np.random.default_rng({HW3_SIM_SEED}))
check_close("sim_reml[0] (fit_ri of the first simulated data set)", sim_reml[0], fit_ri(_y0, _X0, reml=True),
            rtol=1e-3, atol=1e-4)
# the numbers themselves, when your fit_ri is right (a wrong fit_ri was charged in test_fit_ri)
if np.allclose(fit_ri(y_list, X_list, reml=False), {arr(k["est_ml"])}, rtol=1e-3):
    check_close("bias_ml", bias_ml, {arr(k["bias_ml"])}, rtol=1e-2, atol=2e-3)
    check_close("bias_reml", bias_reml, {arr(k["bias_reml"])}, rtol=1e-2, atol=2e-3)
    check_close("sim_reml[0]", sim_reml[0], {arr(k["sim_reml0"])}, rtol=1e-3, atol=1e-4)
""",
    }


# ---------------------------------------------------------------------------------------------------------
# writing the hidden blocks
# ---------------------------------------------------------------------------------------------------------
HIDDEN = {"hw1": (hw1_keys, hw1_hidden), "hw2": (hw2_keys, hw2_hidden), "hw3": (hw3_keys, hw3_hidden)}


def rendered(name: str) -> dict:
    """{grade_id: the text between the hidden-test markers} for one homework, computed from the data."""
    keys, hidden = HIDDEN[name]
    return hidden(keys())


def _cell_text(cell) -> str:
    return "".join(cell["source"])


def update(name: str, write: bool) -> list[str]:
    """Put the rendered hidden tests into the notebook; returns the grade_ids whose block changed."""
    path = NOTEBOOKS[name]
    nb = json.loads(path.read_text(encoding="utf-8"))
    blocks = rendered(name)
    changed, seen = [], set()
    for cell in nb["cells"]:
        gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid not in blocks:
            continue
        seen.add(gid)
        text = _cell_text(cell)
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), flags=re.S)
        if not pattern.search(text):
            raise ValueError(f"{path.name}, cell {gid}: no hidden-test block to fill")
        replacement = BEGIN + blocks[gid] + END
        new = pattern.sub(lambda _, r=replacement: r, text)
        if not same_block(new, text):
            changed.append(gid)
            lines = new.split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
    missing = set(blocks) - seen
    if missing:
        raise ValueError(f"{path.name}: no graded cell with grade_id {sorted(missing)}")
    if write and changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks whose keys are out of date")
    args = parser.parse_args(argv)
    stale = {}
    for name in NOTEBOOKS:
        changed = update(name, write=not args.check)
        if changed:
            stale[name] = changed
            print(f"{name}: {'out of date' if args.check else 'rewrote'} {', '.join(changed)}")
    if not stale:
        print("every hidden test holds the keys computed from the data")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
