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

* **Helmert coding** -- R's ``contr.helmert``: column k contrasts level k + 1 with the mean of the levels
  before it (entries -1 above, k on the level, 0 below).

* **Orthogonal polynomials** -- R's ``contr.poly``, the default for an *ordered* factor: column k is the
  degree-k polynomial in the level's position 1..a, orthonormal; columns named ``.L``, ``.Q``, ``.C``, ``^4``,
  ``^5``, ... as R names them (so a coefficient prints as ``temperature.L``).

Each function takes a list of level names and returns a ``pandas.DataFrame`` (levels x coded columns);
:data:`CONTRASTS` maps the names ``contrasts=`` accepts to them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["contr_treatment", "contr_sum", "contr_helmert", "contr_poly", "CONTRASTS", "POLY_NAMES"]


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


def contr_helmert(levels) -> pd.DataFrame:
    """Helmert coding (R's ``contr.helmert``): column k (1..a-1) is -1 on levels 1..k, k on level k + 1,
    0 after; columns labelled 1, 2, ... as R.

    >>> contr_helmert(["A", "B", "C"])
       1  2
    A -1 -1
    B  1 -1
    C  0  2
    """
    levels = _check_levels(levels)
    a = len(levels)
    matrix = np.zeros((a, a - 1), dtype=int)
    for k in range(1, a):
        matrix[:k, k - 1] = -1
        matrix[k, k - 1] = k
    return pd.DataFrame(matrix, index=levels, columns=list(range(1, a)))


POLY_NAMES = (".L", ".Q", ".C")
"""R's names of the first three orthogonal polynomial contrasts (linear, quadratic, cubic); then ^4, ^5, ..."""


def contr_poly(levels) -> pd.DataFrame:
    """Orthogonal polynomial coding (R's ``contr.poly``): with scores x = 1..a centred, the columns of
    Q·diag(R) from the QR decomposition of [1, x, x², ..., x^(a-1)], scaled to unit length, the constant
    dropped. Columns ``.L``, ``.Q``, ``.C``, ``^4``, ...

    >>> contr_poly(["lo", "mid", "hi"]).round(4) + 0.0  # + 0.0: no "-0.0"
             .L      .Q
    lo  -0.7071  0.4082
    mid  0.0000 -0.8165
    hi   0.7071  0.4082
    """
    levels = _check_levels(levels)
    a = len(levels)
    x = np.arange(1, a + 1) - (a + 1) / 2
    Q, R = np.linalg.qr(np.vander(x, a, increasing=True))
    Z = Q * np.diag(R)  # independent of the signs the QR chose
    Z = Z / np.linalg.norm(Z, axis=0)
    names = [*POLY_NAMES, *(f"^{k}" for k in range(4, a))][: a - 1]
    return pd.DataFrame(Z[:, 1:], index=levels, columns=names)


CONTRASTS = {"treatment": contr_treatment, "sum": contr_sum, "helmert": contr_helmert, "poly": contr_poly}
"""The codings ``contrasts=`` accepts by name (also as R's ``"contr.sum"`` etc.)."""
