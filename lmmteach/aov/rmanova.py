r"""One-way repeated-measures (RM) ANOVA, following Helwig's notes.

Model
-----
Each of ``n`` subjects is measured under each of ``a`` treatment levels:

.. math::

    y_{ij} = \rho_i + \mu_j + e_{ij}, \qquad i = 1..n,\; j = 1..a,

with :math:`\rho_i \overset{iid}{\sim} N(0, \sigma_\rho^2)` the random subject
effect and :math:`e_{ij} \overset{iid}{\sim} N(0, \sigma_e^2)` the error.
Writing :math:`\mu_j = \mu + \alpha_j` with :math:`\sum_j \alpha_j = 0`, the OLS
estimates are the balanced two-way ANOVA ones:

.. math::

    \hat\mu = \bar y_{..}, \quad
    \hat\rho_i = \bar y_{i.} - \bar y_{..}, \quad
    \hat\alpha_j = \bar y_{.j} - \bar y_{..}, \quad
    \hat e_{ij} = y_{ij} - \bar y_{i.} - \bar y_{.j} + \bar y_{..}.

Sums of squares: :math:`SSS = a\sum_i \hat\rho_i^2` (subjects, df ``n-1``),
:math:`SSA = n\sum_j \hat\alpha_j^2` (treatment, df ``a-1``),
:math:`SSE = \sum_{ij} \hat e_{ij}^2` (error, df ``(n-1)(a-1)``) and
:math:`SST = SSS + SSA + SSE` (df ``na-1``).  The treatment test is
:math:`F_a^* = MSA/MSE \sim F_{a-1,(n-1)(a-1)}` under sphericity.

Sphericity
----------
The F test needs the *homogeneity of treatment-difference variances* (HOTDV):
:math:`\mathrm{Var}(y_{ij} - y_{ik}) = \theta` for all ``j != k``.  Box's
measure :math:`\epsilon = (\sum_j\lambda_j)^2 / ((a-1)\sum_j\lambda_j^2)` lies in
``[1/(a-1), 1]``; under a violation :math:`F_a^* \sim F_{\epsilon(a-1),
\epsilon(a-1)(n-1)}`.  The Geisser-Greenhouse estimate :math:`\hat\epsilon` uses
the eigenvalues of the double-centred sample covariance
:math:`\hat\Sigma_c = C_a \hat\Sigma C_a`; the Huynh-Feldt estimate is

.. math::

    \tilde\epsilon = \frac{n(a-1)\hat\epsilon - 2}{(a-1)[n - 1 - (a-1)\hat\epsilon]}.

Functions
---------
``aov1rm(X)``        the notes' R function ``aov1rm``, returning an :class:`RMAnova`.
``box_epsilon(S)``   Box's epsilon of an ``a x a`` covariance matrix.
``huynh_feldt_epsilon(eps_gg, n, a)``  the HF correction above.
``mauchly(X)``       Mauchly's sphericity test as R's ``car::Anova`` reports it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._util import fmt, warn_user
from scipy import stats

__all__ = [
    "RMAnova",
    "MauchlyTest",
    "aov1rm",
    "box_epsilon",
    "huynh_feldt_epsilon",
    "mauchly",
    "format_rmanova",
    "rmanova_html",
]


# ---------------------------------------------------------------------------
# Input checking: wide data -> (Y, level names, subject names)
# ---------------------------------------------------------------------------

def _is_numeric_column(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _wide_from_dataframe(X: pd.DataFrame):
    """Split a wide DataFrame into values, level names and subject labels."""
    if X.shape[1] == 0:
        raise ValueError("X has no columns; expected one numeric column per treatment level")
    subjects = X.index
    first = X.columns[0]
    if not _is_numeric_column(X[first]) or str(first).lower() == "subject":
        subjects = pd.Index(X[first].to_numpy(), name=str(first))
        X = X.drop(columns=[first])
    bad = [str(c) for c in X.columns if not _is_numeric_column(X[c])]
    if bad:
        raise ValueError(
            "X must have one numeric column per treatment level (a non-numeric first column is "
            f"taken as subject labels); non-numeric level column(s): {', '.join(bad)}"
        )
    return X.to_numpy(dtype=float), list(X.columns), subjects


def _wide_from_array(X: np.ndarray):
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (subjects x levels), got an array with {X.ndim} dimension(s)")
    if not (np.issubdtype(X.dtype, np.number) and not np.issubdtype(X.dtype, np.bool_)):
        raise ValueError(f"X must hold numbers, got an array of dtype {X.dtype}")
    n, a = X.shape
    return X.astype(float), list(range(1, a + 1)), pd.RangeIndex(1, n + 1)


def _describe_cells(mask: np.ndarray, levels, subjects, limit: int = 5) -> str:
    rows, cols = np.nonzero(mask)
    cells = [f"subject {subjects[i]!r} at level {levels[j]!r}" for i, j in zip(rows, cols)]
    more = f" and {len(cells) - limit} more" if len(cells) > limit else ""
    return "; ".join(cells[:limit]) + more


def as_rm_matrix(X):
    """Check wide RM data and return ``(Y, levels, subjects)``.

    ``X`` is a DataFrame (numeric columns = levels; a non-numeric *first*
    column, or a first column named ``subject`` even if it holds numbers, gives
    the subject labels, otherwise the index does) or a 2-D numpy array (subjects x levels, labelled 1..a and 1..n).
    ``Y`` is the ``n x a`` float matrix.  Raises ``TypeError`` for other types
    and ``ValueError`` naming the problem for bad contents.
    """
    if isinstance(X, pd.DataFrame):
        Y, levels, subjects = _wide_from_dataframe(X)
    elif isinstance(X, np.ndarray):
        Y, levels, subjects = _wide_from_array(X)
    else:
        raise TypeError(
            "X must be a pandas DataFrame (one column per level) or a 2-D numpy array "
            f"(subjects x levels), got {type(X).__name__}"
        )
    n, a = Y.shape
    if a < 2:
        raise ValueError(f"a one-way RM design needs at least 2 treatment levels (columns), got {a}")
    if n < 2:
        raise ValueError(f"a one-way RM design needs at least 2 subjects (rows), got {n}")
    if np.isnan(Y).any():
        raise ValueError("X has missing cells (every subject needs every level): "
                         + _describe_cells(np.isnan(Y), levels, subjects))
    if np.isinf(Y).any():
        raise ValueError("X has infinite values: " + _describe_cells(np.isinf(Y), levels, subjects))
    return Y, levels, subjects


# ---------------------------------------------------------------------------
# Sums of squares
# ---------------------------------------------------------------------------

def rm_decomposition(Y: np.ndarray) -> dict:
    r"""Estimates and sums of squares of :math:`y_{ij} = \rho_i + \mu + \alpha_j + e_{ij}`.

    Returns a dict with ``mu``, ``rhos``, ``alphas`` (arrays), ``residuals``
    and ``SSS, SSA, SSE, SST`` (floats), using the notes' formulas
    :math:`SSS = a\sum\hat\rho_i^2`, :math:`SSA = n\sum\hat\alpha_j^2`,
    :math:`SSE = \sum\hat e_{ij}^2`, :math:`SST = \sum (y_{ij}-\bar y_{..})^2`.
    """
    n, a = Y.shape
    mu = Y.mean()
    rhos = Y.mean(axis=1) - mu
    alphas = Y.mean(axis=0) - mu
    residuals = Y - (mu + rhos[:, None] + alphas[None, :])
    return {
        "mu": mu,
        "rhos": rhos,
        "alphas": alphas,
        "residuals": residuals,
        "SSS": a * np.sum(rhos**2),
        "SSA": n * np.sum(alphas**2),
        "SSE": np.sum(residuals**2),
        "SST": np.sum((Y - mu) ** 2),
    }


# ---------------------------------------------------------------------------
# Sphericity: Box's epsilon, Huynh-Feldt, Mauchly
# ---------------------------------------------------------------------------

def centering_matrix(m: int) -> np.ndarray:
    r""":math:`C_m = I_m - \frac{1}{m} 1_m 1_m'`."""
    return np.eye(m) - np.full((m, m), 1.0 / m)


def box_epsilon(Sigma) -> float:
    r"""Box's (1954) sphericity measure of an ``a x a`` covariance matrix.

    .. math::

        \epsilon = \frac{(\sum_{j=1}^a \lambda_j)^2}{(a-1)\sum_{j=1}^a \lambda_j^2}

    where :math:`\lambda_j` are the eigenvalues of the double-centred matrix
    :math:`\Sigma_c = C_a \Sigma C_a`.  ``epsilon = 1`` is perfect sphericity
    and the smallest possible value is ``1/(a-1)``.  Given the sample
    covariance :math:`\hat\Sigma` this is the Geisser-Greenhouse
    :math:`\hat\epsilon`.
    """
    S = np.asarray(Sigma, dtype=float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"Sigma must be a square a x a matrix, got shape {S.shape}")
    a = S.shape[0]
    if a < 2:
        raise ValueError("Sigma must be at least 2 x 2 (epsilon needs a >= 2 levels)")
    if not np.all(np.isfinite(S)):
        raise ValueError("Sigma has missing or infinite entries")
    if not np.allclose(S, S.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(S).max())):
        raise ValueError("Sigma must be symmetric (a covariance matrix)")
    C = centering_matrix(a)
    lambdas = np.linalg.eigvalsh(C @ S @ C)
    sum_sq = np.sum(lambdas**2)
    if sum_sq <= 1e-14 * max(1.0, np.abs(S).max()) ** 2:
        raise ValueError(
            "the double-centred covariance matrix is zero (all treatment differences are "
            "constant), so Box's epsilon is undefined"
        )
    return float(np.sum(lambdas) ** 2 / ((a - 1) * sum_sq))


def huynh_feldt_epsilon(eps_gg: float, n: int, a: int) -> float:
    r"""Huynh-Feldt :math:`\tilde\epsilon` from the GG :math:`\hat\epsilon`.

    .. math::

        \tilde\epsilon = \frac{n(a-1)\hat\epsilon - 2}{(a-1)[n-1-(a-1)\hat\epsilon]}

    Not capped at 1 (like the notes and like the ``HF eps`` that ``car``
    prints).  Undefined (``nan``) when the denominator is not positive, which
    happens when ``n`` is tiny (e.g. ``n = 2``).
    """
    denominator = (a - 1) * (n - 1 - (a - 1) * eps_gg)
    if denominator <= 1e-12 * (a - 1) * n:
        return float("nan")
    return float((n * (a - 1) * eps_gg - 2) / denominator)


@dataclass(frozen=True, eq=False)
class MauchlyTest:
    """Mauchly's test of sphericity: statistic ``W``, chi-square ``chisq`` on ``df``, ``p``."""

    W: float
    chisq: float
    df: int
    p: float


def orthonormal_contrasts(a: int) -> np.ndarray:
    r"""An ``a x (a-1)`` matrix ``P`` with orthonormal columns orthogonal to :math:`1_a`.

    Column ``k`` is the normalised Helmert contrast
    ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k(k+1))``.  Any such ``P`` gives the
    same Mauchly statistic.
    """
    P = np.zeros((a, a - 1))
    for k in range(1, a):
        P[:k, k - 1] = 1.0
        P[k, k - 1] = -k
        P[:, k - 1] /= np.sqrt(k * (k + 1))
    return P


def _mauchly_from_matrix(Y: np.ndarray) -> MauchlyTest:
    n, a = Y.shape
    p = a - 1  # number of orthonormal contrasts
    nu = n - 1  # error df of the multivariate model  Y ~ 1
    P = orthonormal_contrasts(a)
    Z = (Y - Y.mean(axis=0)) @ P
    S = Z.T @ Z / nu  # covariance of the contrasts, P' Sigma-hat P
    df = p * (p + 1) // 2 - 1
    sign, logdet = np.linalg.slogdet(S)
    trace = np.trace(S)
    if sign <= 0 or nu < p or trace <= 0:
        # singular contrast covariance (n - 1 < a - 1, or degenerate data)
        return MauchlyTest(W=0.0, chisq=float("nan"), df=df, p=float("nan"))
    log_W = logdet - p * np.log(trace / p)
    rho = 1 - (2 * p**2 + p + 2) / (6 * p * nu)
    # R (stats::mauchly.test and car) writes "3 * a" where Anderson's formula has "3 * p";
    # we copy R so that the p-values agree (it only touches the small w2 correction).
    w2 = (p + 2) * (p - 1) * (p - 2) * (2 * p**3 + 6 * p**2 + 3 * a + 2) / (288 * (nu * p * rho) ** 2)
    z = -nu * rho * log_W
    Pr1 = stats.chi2.sf(z, df)
    Pr2 = stats.chi2.sf(z, df + 4)
    return MauchlyTest(W=float(np.exp(log_W)), chisq=float(z), df=df, p=float(Pr1 + w2 * (Pr2 - Pr1)))


def mauchly(X) -> MauchlyTest:
    r"""Mauchly's test of sphericity, as ``car::Anova(...)`` / ``mauchly.test`` report it.

    With ``P`` an ``a x (a-1)`` orthonormal contrast matrix and
    :math:`S = P'\hat\Sigma P` (``p = a-1``, error df :math:`\nu = n-1`):

    .. math::

        W = \frac{\det S}{(\mathrm{tr}\,S / p)^p}, \qquad
        z = -\nu\rho\log W, \quad \rho = 1 - \frac{2p^2+p+2}{6p\nu},

    and the p-value is :math:`P_1 + \omega_2(P_2 - P_1)` with
    :math:`P_1 = P(\chi^2_f > z)`, :math:`P_2 = P(\chi^2_{f+4} > z)`,
    :math:`f = p(p+1)/2 - 1` and
    :math:`\omega_2 = (p+2)(p-1)(p-2)(2p^3+6p^2+3a+2)/(288(\nu p\rho)^2)`.
    (Anderson's textbook formula has :math:`3p` where R has :math:`3a`, i.e.
    ``3 * p`` with R's ``p`` = number of columns; we follow R -- both
    ``stats::mauchly.test`` and ``car`` -- so the p-values match.  It only
    changes the second-order term and matters only when ``a >= 4``.)
    ``W = 1`` is perfect sphericity.  When ``n - 1 < a - 1`` the test is
    undefined: ``W = 0`` and ``p = nan``.
    """
    Y, _, _ = as_rm_matrix(X)
    return _mauchly_from_matrix(Y)


# ---------------------------------------------------------------------------
# The one-way RM ANOVA result
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False, repr=False)
class RMAnova:
    """Result of :func:`aov1rm` (immutable).  See :func:`aov1rm` for the fields."""

    mu: float
    alphas: pd.Series
    rhos: pd.Series
    F: float
    df1: int
    df2: int
    p: float
    eps_gg: float
    eps_hf: float
    p_gg: float
    p_hf: float
    sigma2_e: float
    sigma2_rho: float
    mauchly_W: float
    mauchly_p: float
    table: pd.DataFrame
    n: int
    a: int
    cap_hf: bool

    def __str__(self) -> str:
        return format_rmanova(self)

    def __repr__(self) -> str:
        return (f"RMAnova(n={self.n}, a={self.a}, F={self.F:.6g}, df1={self.df1}, df2={self.df2}, "
                f"p={self.p:.6g}, eps_gg={self.eps_gg:.6g}, eps_hf={self.eps_hf:.6g})")

    def _repr_html_(self) -> str:
        return rmanova_html(self)


def anova_table(ss: dict, n: int, a: int) -> pd.DataFrame:
    r"""The notes' extended ANOVA table (rows Subjects, Treatment, Error, Total).

    :math:`MSS = SSS/(n-1)`, :math:`MSA = SSA/(a-1)`, :math:`MSE = SSE/((n-1)(a-1))`;
    :math:`F_s^* = MSS/MSE` on ``(n-1, (n-1)(a-1))`` df (the not-quite-valid
    test of :math:`\sigma_\rho^2 = 0`) and :math:`F_a^* = MSA/MSE` on
    ``(a-1, (n-1)(a-1))`` df.
    """
    df = {"Subjects": n - 1, "Treatment": a - 1, "Error": (n - 1) * (a - 1), "Total": n * a - 1}
    SS = {"Subjects": ss["SSS"], "Treatment": ss["SSA"], "Error": ss["SSE"], "Total": ss["SST"]}
    MS = {k: SS[k] / df[k] for k in ("Subjects", "Treatment", "Error")}
    F = {k: MS[k] / MS["Error"] for k in ("Subjects", "Treatment")}
    p = {k: stats.f.sf(F[k], df[k], df["Error"]) for k in F}
    rows = ["Subjects", "Treatment", "Error", "Total"]
    return pd.DataFrame(
        {
            "SS": [SS[r] for r in rows],
            "df": [df[r] for r in rows],
            "MS": [MS.get(r, np.nan) for r in rows],
            "F": [F.get(r, np.nan) for r in rows],
            "p": [p.get(r, np.nan) for r in rows],
        },
        index=pd.Index(rows, name="Source"),
    )


def _adjusted_p(F: float, eps: float, df1: int, df2: int) -> float:
    r""":math:`P(F_{\epsilon\,df_1, \epsilon\,df_2} > F)`; ``nan`` if ``eps`` is ``nan``."""
    if not np.isfinite(eps):
        return float("nan")
    return float(stats.f.sf(F, eps * df1, eps * df2))


def aov1rm(X, cap_hf: bool = True) -> RMAnova:
    r"""One-way repeated-measures ANOVA -- the notes' R function ``aov1rm``.

    Parameters
    ----------
    X : DataFrame or 2-D ndarray
        Wide data, one row per subject and one column per treatment level.
        In a DataFrame a non-numeric first column (or a first column named
        ``subject``) holds the subject labels; all other columns must be
        numeric.  No missing cells.
    cap_hf : bool, default True
        Whether the Huynh-Feldt p-value uses :math:`\min(1, \tilde\epsilon)`.
        ``car::Anova`` does this (and warns "HF eps > 1 treated as 1"); the
        notes' ``aov1rm`` does not.  ``eps_hf`` itself is always *uncapped*,
        as in both.  The two agree whenever :math:`\tilde\epsilon \le 1`
        (e.g. the grocery data).  Use ``cap_hf=False`` for the notes' exact
        numbers.

    Model and formulas
    ------------------
    :math:`y_{ij} = \rho_i + \mu_j + e_{ij}` with :math:`\mu_j = \mu + \alpha_j`:

    * ``mu`` :math:`= \hat\mu = \bar y_{..}`; ``alphas`` :math:`= \hat\alpha_j = \bar y_{.j} - \bar y_{..}`;
      ``rhos`` :math:`= \hat\rho_i = \bar y_{i.} - \bar y_{..}`.
    * ``F`` :math:`= F_a^* = MSA/MSE` on ``df1 = a-1``, ``df2 = (n-1)(a-1)``;
      ``p`` :math:`= P(F_{a-1,(n-1)(a-1)} > F_a^*)` (``scipy.stats.f.sf``).
    * ``eps_gg`` :math:`= \hat\epsilon` = :func:`box_epsilon` of the sample
      covariance :math:`\hat\Sigma = Z'Z/(n-1)`, :math:`Z = C_nY`;
      ``eps_hf`` :math:`= \tilde\epsilon` (:func:`huynh_feldt_epsilon`).
    * ``p_gg``/``p_hf``: the F test on :math:`\epsilon(a-1)` and
      :math:`\epsilon(a-1)(n-1)` df with :math:`\epsilon = \hat\epsilon` / :math:`\tilde\epsilon`.
    * ``sigma2_e`` :math:`= MSE`, ``sigma2_rho`` :math:`= (MSS - MSE)/a` (as in
      the notes' function; negative when MSS < MSE, a sign that
      :math:`\sigma_\rho^2` is near 0).
    * ``mauchly_W``, ``mauchly_p``: Mauchly's test (:func:`mauchly`).
    * ``table``: the extended ANOVA table (:func:`anova_table`).

    Example (grocery data): ``F = 4.344209`` on (3, 27), ``p = 0.01273035``,
    GG ``0.6391090`` (p ``0.03093080``), HF ``0.8082292`` (p ``0.02033859``).
    """
    Y, levels, subjects = as_rm_matrix(X)
    n, a = Y.shape
    ss = rm_decomposition(Y)
    if ss["SSE"] <= 1e-24 * max(1.0, ss["SST"]):
        raise ValueError(
            "the error sum of squares SSE is zero (the data are exactly additive, "
            "y_ij = rho_i + mu_j), so the F test and epsilon are undefined"
        )
    table = anova_table(ss, n, a)
    df1, df2 = a - 1, (n - 1) * (a - 1)
    F = float(table.loc["Treatment", "F"])
    mse = float(table.loc["Error", "MS"])
    mss = float(table.loc["Subjects", "MS"])
    Sigma_hat = np.cov(Y, rowvar=False)
    eps_gg = box_epsilon(Sigma_hat)
    eps_hf = huynh_feldt_epsilon(eps_gg, n, a)
    eps_hf_used = min(1.0, eps_hf) if (cap_hf and np.isfinite(eps_hf)) else eps_hf
    sphericity = _mauchly_from_matrix(Y)
    undefined = [what for what, value in (("the Huynh-Feldt epsilon and p", eps_hf),
                                          ("Mauchly's test", sphericity.p)) if not np.isfinite(value)]
    if undefined:
        warn_user(f"{' and '.join(undefined)}: undefined (NaN) with n = {n} subjects for a = {a} levels: "
                  + (f"fewer subjects than levels, so the sample covariance of the {a - 1} contrasts has rank at "
                     f"most n - 1 = {n - 1} and is singular" if n < a else
                     "the Huynh-Feldt denominator n - 1 - (a - 1) eps_GG is not positive")
                  + "; the F test and Greenhouse-Geisser stand, but more subjects are needed for the others")
    return RMAnova(
        mu=float(ss["mu"]),
        alphas=pd.Series(ss["alphas"], index=pd.Index(levels), name="alpha"),
        rhos=pd.Series(ss["rhos"], index=pd.Index(subjects), name="rho"),
        F=F,
        df1=df1,
        df2=df2,
        p=float(table.loc["Treatment", "p"]),
        eps_gg=eps_gg,
        eps_hf=eps_hf,
        p_gg=_adjusted_p(F, eps_gg, df1, df2),
        p_hf=_adjusted_p(F, eps_hf_used, df1, df2),
        sigma2_e=mse,
        sigma2_rho=(mss - mse) / a,
        mauchly_W=sphericity.W,
        mauchly_p=sphericity.p,
        table=table,
        n=n,
        a=a,
        cap_hf=cap_hf,
    )


# ---------------------------------------------------------------------------
# Formatting (kept separate from the data)
# ---------------------------------------------------------------------------



def _table_strings(table: pd.DataFrame) -> pd.DataFrame:
    return table.apply(lambda col: col.map(lambda v: fmt(v, 6))).astype(str)


def _summary_lines(res: RMAnova) -> list[str]:
    hf_note = " (p uses min(1, HF))" if res.cap_hf and res.eps_hf > 1 else ""
    return [
        f"F = {fmt(res.F, 6)} on ({res.df1}, {res.df2}) df, p = {fmt(res.p, 6)}",
        f"Greenhouse-Geisser: eps = {fmt(res.eps_gg, 6)}, p = {fmt(res.p_gg, 6)}",
        f"Huynh-Feldt:        eps = {fmt(res.eps_hf, 6)}, p = {fmt(res.p_hf, 6)}{hf_note}",
        f"Mauchly's test:     W = {fmt(res.mauchly_W, 6)}, p = {fmt(res.mauchly_p, 6)}",
        f"Variance components: sigma2_e = {fmt(res.sigma2_e, 6)}, sigma2_rho = {fmt(res.sigma2_rho, 6)}",
    ]


def format_rmanova(res: RMAnova) -> str:
    """Plain-text report of an :class:`RMAnova` (used by ``str(result)``)."""
    header = f"One-way RM ANOVA: n = {res.n} subjects, a = {res.a} levels"
    table = _table_strings(res.table).to_string()
    return "\n".join([header, "", table, ""] + _summary_lines(res))


def rmanova_html(res: RMAnova) -> str:
    """HTML report of an :class:`RMAnova` (used by Jupyter)."""
    header = f"<p><b>One-way RM ANOVA</b>: n = {res.n} subjects, a = {res.a} levels</p>"
    table = _table_strings(res.table).to_html()
    items = "".join(f"<li>{html.escape(line)}</li>" for line in _summary_lines(res))
    return f"<div>{header}{table}<ul>{items}</ul></div>"
