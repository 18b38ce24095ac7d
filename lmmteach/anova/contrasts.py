"""Contrast (coding) matrices for a factor, as R's ``contrasts()`` prints them.

A factor with levels ``A, B, C, D`` enters a linear model through ``a - 1``
coded columns.  The coding matrix has one row per level and one column per
coded variable; row ``j`` is what observations at level ``j`` contribute.

* **Treatment (dummy) coding** -- R's ``contr.treatment``, the default::

        > contrasts(grocery$store)
          B C D
        A 0 0 0
        B 1 0 0
        C 0 1 0
        D 0 0 1

  The first level is the baseline; each coefficient is ``mu_j - mu_1``.

* **Sum-to-zero (effect) coding** -- R's ``contr.sum``::

        > contrasts(grocery$store) <- contr.sum(4)
          [,1] [,2] [,3]
        A    1    0    0
        B    0    1    0
        C    0    0    1
        D   -1   -1   -1

  Coefficient ``j`` is the effect ``alpha_j = mu_j - mu`` (with
  ``sum_j alpha_j = 0``, so ``alpha_a = -(alpha_1 + ... + alpha_{a-1})``).

Both functions take a list of level names and return a ``pandas.DataFrame``
(levels x coded columns) of integers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["contr_treatment", "contr_sum"]


def _check_levels(levels) -> list:
    """Return ``levels`` as a list, checking there are >= 2 distinct names.

    An integer ``a`` is accepted as shorthand for levels ``1, ..., a``
    (like R's ``contr.treatment(4)``).
    """
    if isinstance(levels, (bool, np.bool_)):
        raise TypeError("levels must be a list of level names or an integer, not a bool")
    if isinstance(levels, (int, np.integer)):
        levels = list(range(1, int(levels) + 1))
    elif isinstance(levels, (str, bytes)) or not isinstance(levels, (Sequence, np.ndarray, pd.Index)):
        raise TypeError(
            f"levels must be a list of level names (or an integer), got {type(levels).__name__}"
        )
    levels = list(levels)
    if len(levels) < 2:
        raise ValueError(f"a factor needs at least 2 levels to be coded, got {len(levels)}")
    duplicated = pd.Index(levels)[pd.Index(levels).duplicated()].unique().tolist()
    if duplicated:
        raise ValueError(f"level names must be distinct; repeated: {duplicated}")
    return levels


def contr_treatment(levels) -> pd.DataFrame:
    """Treatment (dummy) coding: rows = levels, columns = levels[1:].

    Entry ``(j, k)`` is 1 when level ``j`` is the ``k``-th non-baseline level,
    else 0; the first level (baseline) is a row of zeros.

    >>> contr_treatment(["A", "B", "C", "D"])
       B  C  D
    A  0  0  0
    B  1  0  0
    C  0  1  0
    D  0  0  1
    """
    levels = _check_levels(levels)
    a = len(levels)
    matrix = np.vstack([np.zeros((1, a - 1), dtype=int), np.eye(a - 1, dtype=int)])
    return pd.DataFrame(matrix, index=levels, columns=levels[1:])


def contr_sum(levels) -> pd.DataFrame:
    """Sum-to-zero coding: rows = levels, columns ``1, ..., a-1``.

    The first ``a - 1`` rows are the identity and the last row is all ``-1``,
    so every column sums to zero.  Columns are labelled 1, 2, ... as R prints
    ``[,1] [,2] [,3]``.

    >>> contr_sum(["A", "B", "C", "D"])
       1  2  3
    A  1  0  0
    B  0  1  0
    C  0  0  1
    D -1 -1 -1
    """
    levels = _check_levels(levels)
    a = len(levels)
    matrix = np.vstack([np.eye(a - 1, dtype=int), -np.ones((1, a - 1), dtype=int)])
    return pd.DataFrame(matrix, index=levels, columns=list(range(1, a)))
