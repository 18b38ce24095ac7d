r"""Classical ANOVA tables for a one-way RM design, as the grocery example prints them.

All three functions take *long* data (one row per observation) with a numeric
``response``, a treatment ``factor`` and a ``subject`` (block) column, and need a
balanced, complete design: every subject observed exactly once at every level.

* :func:`anova_twoway_additive` -- ``summary(aov(price ~ store + item))``: the
  RM design analysed as a two-way additive *fixed*-effects model
  :math:`y_{ij} = \mu + \alpha_j + \beta_i + e_{ij}`, by least squares
  (sequential sums of squares from nested fits).
* :func:`anova_error_strata` -- ``summary(aov(price ~ store + Error(item/store)))``:
  the same sums of squares split into the *subject* stratum (SSS) and the
  *subject:treatment* stratum (SSA and SSE).
* :func:`univariate_rm_table` -- ``car``'s
  ``summary(Anova(lm(Y ~ 1), idata, idesign, type = "III"), multivariate = FALSE)$univariate``:
  the intercept tested against subjects and the treatment against error.

:func:`long_to_wide` turns the long data into the subjects x levels table that
:func:`lmmteach.aov.rmanova.aov1rm` takes; :func:`as_printed` prints any ANOVA or LRT table as R does,
with blanks where a row has no test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .._util import factor_levels
from .contrasts import contr_treatment
from .rmanova import rm_decomposition

__all__ = [
    "as_printed",
    "long_to_wide",
    "anova_twoway_additive",
    "anova_error_strata",
    "univariate_rm_table",
]

AOV_COLUMNS = ["Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)"]


# ---------------------------------------------------------------------------
# Checking long data
# ---------------------------------------------------------------------------

def _check_columns(data, response: str, factor: str, subject: str) -> None:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame in long format, got {type(data).__name__}")
    names = {"response": response, "factor": factor, "subject": subject}
    absent = [f"{role} {col!r}" for role, col in names.items() if col not in data.columns]
    if absent:
        raise ValueError(f"data has no column for {', '.join(absent)}; columns are {list(data.columns)}")
    if len({response, factor, subject}) < 3:
        raise ValueError("response, factor and subject must be three different columns")
    y = data[response]
    if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        raise ValueError(f"the response {response!r} must be numeric, but its type is {y.dtype}")
    for col in (factor, subject):
        if data[col].isna().any():
            raise ValueError(f"column {col!r} has {int(data[col].isna().sum())} missing label(s)")
    bad = ~np.isfinite(y.to_numpy(dtype=float))
    if bad.any():
        rows = data.loc[bad, [subject, factor]].head(5)
        where = "; ".join(f"{subject} {s!r} at {factor} {f!r}" for s, f in rows.itertuples(index=False))
        raise ValueError(f"the response {response!r} has {int(bad.sum())} missing or infinite value(s): {where}")


def _check_balance(data, factor: str, subject: str, levels: list, subjects: list) -> None:
    counts = pd.crosstab(
        pd.Categorical(data[subject], categories=subjects),
        pd.Categorical(data[factor], categories=levels),
        dropna=False,
    )
    problems = [
        f"{subject} {s!r} has {counts.iloc[i, j]} observations at {factor} {lev!r}"
        for i, s in enumerate(subjects)
        for j, lev in enumerate(levels)
        if counts.iloc[i, j] != 1
    ]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ValueError(
            "the design must be balanced and complete (each subject exactly once at each level): "
            + "; ".join(problems[:5]) + more
        )


def long_to_wide(data, response: str, factor: str, subject: str) -> pd.DataFrame:
    """Long RM data -> wide table (index = subjects, columns = factor levels).

    Levels and subjects follow R's factor order (categories of a categorical
    column, else sorted values).  Raises ``ValueError`` naming the problem if a
    column is absent, the response is not numeric/finite, a factor has fewer
    than 2 levels, there are fewer than 2 subjects, or some subject x level cell
    does not have exactly one observation.
    """
    _check_columns(data, response, factor, subject)
    levels, subjects = factor_levels(data[factor]), factor_levels(data[subject])
    if len(levels) < 2:
        raise ValueError(f"factor {factor!r} needs at least 2 levels, got {levels}")
    if len(subjects) < 2:
        raise ValueError(f"subject column {subject!r} needs at least 2 subjects, got {subjects}")
    _check_balance(data, factor, subject, levels, subjects)
    wide = data.pivot(index=subject, columns=factor, values=response)
    wide = wide.reindex(index=subjects, columns=levels).astype(float)
    wide.index = pd.Index(subjects, name=subject)
    wide.columns = pd.Index(levels, name=factor)
    return wide


# ---------------------------------------------------------------------------
# Building tables
# ---------------------------------------------------------------------------

def _aov_frame(rows: list[str], df: list, ss: list, test_against: int | None) -> pd.DataFrame:
    """An aov-style table; every row but the last is tested against the last (the error row)."""
    ms = [s / d for s, d in zip(ss, df)]
    F = [np.nan] * len(rows)
    p = [np.nan] * len(rows)
    if test_against is not None:
        for k in range(len(rows) - 1):
            F[k] = ms[k] / ms[test_against]
            p[k] = stats.f.sf(F[k], df[k], df[test_against])
    return pd.DataFrame(
        {"Df": df, "Sum Sq": ss, "Mean Sq": ms, "F value": F, "Pr(>F)": p},
        index=pd.Index(rows),
    )


def _rss(X: np.ndarray, y: np.ndarray) -> float:
    """Residual sum of squares of the least-squares fit of ``y`` on ``X``."""
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return float(np.sum((y - X @ beta) ** 2))


def _coded(col: pd.Series, levels: list) -> np.ndarray:
    """Treatment-coded columns of a factor (R's default contrasts)."""
    C = contr_treatment(levels).to_numpy(dtype=float)
    return C[pd.Categorical(col, categories=levels).codes]


def _checked_wide(data, response, factor, subject) -> tuple[pd.DataFrame, dict, int, int]:
    wide = long_to_wide(data, response, factor, subject)
    n, a = wide.shape
    ss = rm_decomposition(wide.to_numpy())
    if ss["SSE"] <= 1e-24 * max(1.0, ss["SST"]):
        raise ValueError("the residual sum of squares is zero (the data are exactly additive); "
                         "F tests are undefined")
    return wide, ss, n, a


def anova_twoway_additive(data, response: str, factor: str, block: str) -> pd.DataFrame:
    r"""``summary(aov(response ~ factor + block))`` by least squares.

    Fits the nested models ``1``, ``1 + factor`` and ``1 + factor + block``
    (treatment coding) with ``numpy.linalg.lstsq``; the sequential sums of
    squares are the drops in residual sum of squares.  For balanced data these
    equal the cell-mean formulas :math:`SSA = n\sum_j\hat\alpha_j^2`,
    :math:`SSS = a\sum_i\hat\rho_i^2` and
    :math:`SSE = \sum_{ij}(y_{ij}-\bar y_{i.}-\bar y_{.j}+\bar y_{..})^2`.

    Returns a DataFrame with rows ``factor``, ``block``, ``"Residuals"`` and
    columns ``Df, Sum Sq, Mean Sq, F value, Pr(>F)``; both effects are tested
    against the residual mean square (as ``aov`` does, treating the block as fixed).
    """
    wide, _, n, a = _checked_wide(data, response, factor, block)
    y = data[response].to_numpy(dtype=float)
    ones = np.ones((len(y), 1))
    X_factor = _coded(data[factor], list(wide.columns))
    X_block = _coded(data[block], list(wide.index))
    rss0 = _rss(ones, y)
    rss1 = _rss(np.hstack([ones, X_factor]), y)
    rss2 = _rss(np.hstack([ones, X_factor, X_block]), y)
    df_error = n * a - 1 - (a - 1) - (n - 1)
    return _aov_frame(
        [factor, block, "Residuals"],
        [a - 1, n - 1, df_error],
        [rss0 - rss1, rss1 - rss2, rss2],
        test_against=2,
    )


def anova_error_strata(data, response: str, factor: str, subject: str) -> dict[str, pd.DataFrame]:
    r"""``summary(aov(response ~ factor + Error(subject/factor)))``.

    Returns ``{subject: table, f"{subject}:{factor}": table}``:

    * stratum ``subject``: row ``Residuals`` with :math:`SSS` on ``n-1`` df
      (no F test: the treatment does not appear in this stratum);
    * stratum ``subject:factor``: rows ``factor`` (:math:`SSA`, ``a-1`` df) and
      ``Residuals`` (:math:`SSE`, ``(n-1)(a-1)`` df), with
      :math:`F_a^* = MSA/MSE`.

    Columns ``Df, Sum Sq, Mean Sq, F value, Pr(>F)``.
    """
    _, ss, n, a = _checked_wide(data, response, factor, subject)
    between = _aov_frame(["Residuals"], [n - 1], [ss["SSS"]], test_against=None)
    within = _aov_frame([factor, "Residuals"], [a - 1, (n - 1) * (a - 1)], [ss["SSA"], ss["SSE"]],
                        test_against=1)
    return {subject: between, f"{subject}:{factor}": within}


def univariate_rm_table(data, response: str, factor: str, subject: str) -> pd.DataFrame:
    r"""``car``'s univariate type-III RM table for a one-way design.

    Rows ``(Intercept)`` and ``factor``; columns
    ``SS, num Df, Error SS, den Df, F, Pr(>F)``:

    * ``(Intercept)``: :math:`SS = na\bar y_{..}^2` on 1 df against
      :math:`SSS` on ``n-1`` df (does the grand mean differ from 0?);
    * ``factor``: :math:`SSA` on ``a-1`` df against :math:`SSE` on
      ``(n-1)(a-1)`` df -- the same F test as :func:`lmmteach.aov.rmanova.aov1rm`.
    """
    _, ss, n, a = _checked_wide(data, response, factor, subject)
    rows = pd.DataFrame(
        {
            "SS": [n * a * ss["mu"] ** 2, ss["SSA"]],
            "num Df": [1, a - 1],
            "Error SS": [ss["SSS"], ss["SSE"]],
            "den Df": [n - 1, (n - 1) * (a - 1)],
        },
        index=pd.Index(["(Intercept)", factor]),
    )
    rows["F"] = (rows["SS"] / rows["num Df"]) / (rows["Error SS"] / rows["den Df"])
    rows["Pr(>F)"] = stats.f.sf(rows["F"], rows["num Df"], rows["den Df"])
    return rows


def as_printed(table: pd.DataFrame) -> str:
    """``table`` as text, as R prints an ANOVA or LRT table: a cell with no value (the residual row's F and p,
    the first model's Chisq and Df) is blank, where pandas would print ``NaN`` (floats) or ``<NA>`` (nullable
    integers such as ``Df``). The numbers themselves are printed as pandas prints them (round first)."""
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"as_printed: table must be a pandas DataFrame, not {type(table).__name__}")
    out = table.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.api.extensions.ExtensionDtype) and out[col].isna().any():
            out[col] = out[col].astype(object).where(out[col].notna(), "")
    return out.to_string(na_rep="")

