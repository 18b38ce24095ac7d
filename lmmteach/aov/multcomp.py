r"""Pairwise comparisons among the ``a`` treatment levels of a one-way RM design.

For a pair of levels ``j < k`` the comparison is the contrast
:math:`L = \mu_k - \mu_j` (``c_k = 1``, ``c_j = -1``), estimated by
:math:`\hat L = \bar y_{.k} - \bar y_{.j}` (labelled ``"k-j"`` like R's
``TukeyHSD``).

Pooled (MSE-based) comparisons -- the notes' approach
-----------------------------------------------------
:math:`\hat L \sim N(L, \frac{\sigma^2}{n}\sum_j c_j^2)` with :math:`\sigma^2`
estimated by the MSE on :math:`df_E = (n-1)(a-1)` df, so
:math:`se(\hat L) = \sqrt{2\,MSE/n}`.  With ``m = a(a-1)/2`` pairs and
confidence level ``1 - alpha``:

* ``tukey``: :math:`q = \hat L / \sqrt{MSE/n}` is compared with the studentized
  range distribution :math:`q_{a, df_E}`; interval
  :math:`\hat L \pm q_{1-\alpha; a, df_E}\sqrt{MSE/n}`.  This is
  ``TukeyHSD(aov(y ~ factor + subject))``.
* ``bonferroni``: :math:`t = \hat L/se`, :math:`p_{adj} = \min(1, m\,p)`,
  interval :math:`\hat L \pm t_{1-\alpha/(2m); df_E}\, se`.
* ``holm``: Holm's step-down adjustment of the same ``t`` p-values (intervals
  are the Bonferroni ones; Holm has no matching intervals).
* ``scheffe``: :math:`F = t^2/(a-1)` on :math:`(a-1, df_E)` df, interval
  :math:`\hat L \pm \sqrt{(a-1)F_{1-\alpha; a-1, df_E}}\, se`.

Unpooled (paired t) comparisons -- robust to HOTDV violations
-------------------------------------------------------------
The notes warn that MSE-based comparisons are very sensitive to violations of
the homogeneity of treatment-difference variances: the MSE is an average over
all pairs, so it is a bad variance estimate for some of them.  With
``pooled=False`` each pair uses its own differences
:math:`d_i = y_{ik} - y_{ij}`: :math:`se = s_d/\sqrt n` on ``n - 1`` df (a
paired t test), adjusted by ``bonferroni`` or ``holm``.  This is
``pairwise.t.test(y, factor, paired = TRUE, p.adjust.method = ...)``.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from .rmanova import as_rm_matrix, rm_decomposition

__all__ = ["pairwise_comparisons", "p_adjust"]

POOLED_METHODS = ("tukey", "bonferroni", "holm", "scheffe")
PAIRED_METHODS = ("bonferroni", "holm")


def p_adjust(p, method: str) -> np.ndarray:
    """Bonferroni or Holm adjusted p-values (R's ``p.adjust``)."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if method == "bonferroni":
        return np.minimum(1.0, m * p)
    if method == "holm":
        order = np.argsort(p)
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
        adjusted = np.empty(m)
        adjusted[order] = np.minimum(1.0, stepped)
        return adjusted
    raise ValueError(f"unknown p-value adjustment {method!r}; use 'bonferroni' or 'holm'")


def _check_options(method: str, pooled: bool, conf_level: float) -> None:
    allowed = POOLED_METHODS if pooled else PAIRED_METHODS
    if method not in allowed:
        kind = "pooled (MSE-based)" if pooled else "paired (pooled=False)"
        raise ValueError(f"method {method!r} is not available for {kind} comparisons; use one of {allowed}")
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be between 0 and 1, got {conf_level}")


def _pairs(levels: list) -> list[tuple[int, int]]:
    return list(combinations(range(len(levels)), 2))


def _pooled_table(Y, levels, method, conf_level) -> dict:
    n, a = Y.shape
    df_error = (n - 1) * (a - 1)
    mse = rm_decomposition(Y)["SSE"] / df_error
    if mse <= 0:
        raise ValueError("the MSE is zero (the data are exactly additive); comparisons are undefined")
    means = Y.mean(axis=0)
    pairs = _pairs(levels)
    m = len(pairs)
    est = np.array([means[k] - means[j] for j, k in pairs])
    se = np.full(m, np.sqrt(2 * mse / n))
    t = est / se
    alpha = 1 - conf_level
    if method == "tukey":
        statistic = est / np.sqrt(mse / n)
        p_adj = stats.studentized_range.sf(np.abs(statistic), a, df_error)
        half = stats.studentized_range.ppf(conf_level, a, df_error) * np.sqrt(mse / n)
    elif method == "scheffe":
        statistic = t**2 / (a - 1)
        p_adj = stats.f.sf(statistic, a - 1, df_error)
        half = np.sqrt((a - 1) * stats.f.ppf(conf_level, a - 1, df_error)) * se
    else:  # bonferroni or holm on the pooled t statistics
        statistic = t
        p_adj = p_adjust(2 * stats.t.sf(np.abs(t), df_error), method)
        half = stats.t.ppf(1 - alpha / (2 * m), df_error) * se
    return dict(pairs=pairs, estimate=est, se=se, statistic=statistic,
                df=np.full(m, df_error), p_adj=p_adj, half=half)


def _paired_table(Y, levels, method, conf_level) -> dict:
    n, _ = Y.shape
    pairs = _pairs(levels)
    m = len(pairs)
    d = np.column_stack([Y[:, k] - Y[:, j] for j, k in pairs])
    est = d.mean(axis=0)
    se = d.std(axis=0, ddof=1) / np.sqrt(n)
    constant = [f"{levels[k]}-{levels[j]}" for (j, k), s in zip(pairs, se) if s <= 0]
    if constant:
        raise ValueError(
            "the differences are constant across subjects for pair(s) "
            f"{', '.join(constant)}, so their paired t statistics are undefined"
        )
    t = est / se
    p_adj = p_adjust(2 * stats.t.sf(np.abs(t), n - 1), method)
    half = stats.t.ppf(1 - (1 - conf_level) / (2 * m), n - 1) * se
    return dict(pairs=pairs, estimate=est, se=se, statistic=t,
                df=np.full(m, n - 1), p_adj=p_adj, half=half)


def pairwise_comparisons(X, method: str = "tukey", pooled: bool = True,
                         conf_level: float = 0.95) -> pd.DataFrame:
    r"""All pairwise comparisons :math:`\mu_k - \mu_j` (``j < k``) in a one-way RM design.

    Parameters
    ----------
    X : DataFrame or 2-D ndarray
        Wide data as for :func:`lmmteach.aov.rmanova.aov1rm` (subjects x levels).
    method : ``'tukey'``, ``'bonferroni'``, ``'scheffe'`` or ``'holm'``
        Family-wise adjustment.  ``pooled=False`` allows only
        ``'bonferroni'`` and ``'holm'``.
    pooled : bool
        ``True``: the notes' MSE-based comparisons (valid under sphericity).
        ``False``: paired t comparisons, each pair with its own variance.
    conf_level : float
        Simultaneous confidence level of the intervals.

    Returns
    -------
    DataFrame with columns ``pair`` (``"k-j"``), ``estimate``
    (:math:`\hat L`), ``se``, ``statistic`` (``q`` for Tukey, ``F`` for
    Scheffé, ``t`` otherwise), ``df``, ``p_adj``, ``lower``, ``upper``.
    ``attrs`` records ``method``, ``pooled``, ``conf_level`` and the
    statistic's name.  See the module docstring for the formulas.
    """
    _check_options(method, pooled, conf_level)
    Y, levels, _ = as_rm_matrix(X)
    parts = (_pooled_table if pooled else _paired_table)(Y, levels, method, conf_level)
    table = pd.DataFrame({
        "pair": [f"{levels[k]}-{levels[j]}" for j, k in parts["pairs"]],
        "estimate": parts["estimate"],
        "se": parts["se"],
        "statistic": parts["statistic"],
        "df": parts["df"].astype(int),
        "p_adj": parts["p_adj"],
        "lower": parts["estimate"] - parts["half"],
        "upper": parts["estimate"] + parts["half"],
    })
    statistic_name = {"tukey": "q", "scheffe": "F"}.get(method, "t") if pooled else "t"
    table.attrs.update(method=method, pooled=pooled, conf_level=conf_level, statistic=statistic_name)
    return table
