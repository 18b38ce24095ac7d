"""Helpers shared by every wing of lmmteach: one definition of each small idea.

- :data:`LOG_2PI` — the constant log(2π) of every Gaussian log-likelihood.
- :func:`factor_levels` — the levels of a factor in R's order.
- :func:`fmt` — the one number formatter for printed tables and messages.
- :func:`fd_hessian` — a finite-difference Hessian of a scalar function.
- :func:`warn_user` — warnings that point at the student's own line of code.
"""

from __future__ import annotations

import numbers
import sys
import warnings
from pathlib import Path
from types import FrameType
from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["LOG_2PI", "factor_levels", "fmt", "fd_hessian", "warn_user"]

LOG_2PI = float(np.log(2 * np.pi))
"""log(2π), the constant in n/2·log(2πσ²) of the notes' log-likelihoods."""

_PACKAGE = str(Path(__file__).resolve().parent)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside the lmmteach package."""
    level = 2  # level 2 is the function that called warn_user
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def factor_levels(values) -> list:
    """The levels of a factor as R's ``factor()`` orders them.

    A pandas Categorical keeps its own category order (only the categories present); otherwise the
    distinct non-missing values, sorted (numbers numerically, strings as text: "10" < "2"); values of
    mixed types sort by their text.
    """
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        present = np.bincount(codes[codes >= 0], minlength=len(series.cat.categories)) > 0
        return [c for c, keep in zip(series.cat.categories, present) if keep]
    distinct = series.dropna().unique()
    try:
        return sorted(distinct)
    except TypeError:
        return sorted(distinct, key=str)


def fmt(x, digits: int = 7, fixed: bool = False) -> str:
    """One number formatter: ``digits`` significant digits (R's default print is 7), or ``digits``
    decimals with ``fixed=True``; integers and booleans as they are, missing values as ''; arrays
    element-wise (short), anything else by its repr (cut to 80 characters)."""
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        x = float(x)
        if np.isnan(x):
            return ""
        return f"{x:.{digits}f}" if fixed else f"{x:.{digits}g}"
    if isinstance(x, (np.ndarray, pd.Series, list, tuple)):
        arr = np.asarray(x)
        if arr.dtype.kind in "fc":
            with np.printoptions(precision=digits, suppress=False, threshold=12, edgeitems=3):
                return np.array2string(arr, separator=", ")
        return np.array2string(arr, separator=", ", threshold=12, edgeitems=3)
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def fd_hessian(f: Callable[[np.ndarray], float] | None, x: np.ndarray, h: np.ndarray,
               gradient: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Second derivatives H_jk = ∂²f/∂x_j∂x_k at x by finite differences with steps h.

    With the exact ``gradient`` g: forward differences of g, H[:, j] ≈ (g(x + h_j e_j) − g(x)) / h_j,
    symmetrised (k gradient calls). Without it: central differences of f, Richardson-extrapolated over
    h and h/2 (an O(h⁴) error, 4k² function calls). A negative h_j steps backwards (next to a bound).
    """
    x = np.asarray(x, float)
    h = np.asarray(h, float)
    k = len(x)
    if gradient is not None:
        g0 = gradient(x)
        H = np.empty((k, k))
        for j in range(k):
            xp = x.copy()
            xp[j] += h[j]
            H[:, j] = (gradient(xp) - g0) / h[j]
        return 0.5 * (H + H.T)

    if f is None:
        raise TypeError("fd_hessian needs f or its gradient")
    fun = f

    def central(h):
        H = np.empty((k, k))
        f0 = fun(x)
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (fun(x + ei) - 2 * f0 + fun(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (fun(x + ei + ej) - fun(x + ei - ej) - fun(x - ei + ej) + fun(x - ei - ej)) / (
                    4 * h[i] * h[j])
        return H

    return (4 * central(h / 2) - central(h)) / 3
