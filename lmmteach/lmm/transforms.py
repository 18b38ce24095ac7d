"""The functions a formula's fixed part may call, and evaluating its expressions on data.

In ``log(weight) ~ poly(Time, 2) * Diet + scale(dose) + I(Time**2) + offset(log(n)) + (Time | Chick)`` each
factor of a term is either a column (``Diet``) or an expression (``poly(Time, 2)``). Expressions are
evaluated by formulaic's stateful evaluator with the functions listed in :data:`FUNCTIONS`:

* numpy functions by name: ``log``, ``exp``, ``sqrt``, ``abs``, ... (and ``np.<anything>``);
* ``I(expr)``: Python arithmetic kept as one column (``I(Time**2)``; R's ``^`` is read as ``**``);
* ``poly(x, k)``: R's orthogonal polynomials of degree 1..k (unit length, orthogonal to each other and
  to the intercept); ``poly(x, k, raw=True)`` gives x, x², ..., xᵏ;
* ``scale(x)`` = (x − mean) / sd and ``center(x)`` = x − mean;
* ``offset(expr)``: a term with a known coefficient 1 (handled by :mod:`lmmteach.lmm.design`).

``poly``, ``scale`` and ``center`` are *stateful*: their parameters (means, sds, polynomial recurrence
coefficients) come from the data the model is fitted to and are kept in a ``state`` dict, so that
``predict(newdata)`` evaluates the same functions rather than re-standardising the new rows.
"""

from __future__ import annotations

import ast
import re

import numpy as np
import pandas as pd

__all__ = ["FUNCTIONS", "FACTOR_FUNCTIONS", "CONSTANTS", "BACKTICK_ADVICE", "supported_functions", "expression_variables", "check_expression",
           "evaluate", "to_python"]

_NUMPY_NAMES = ("log", "log10", "log2", "log1p", "exp", "exp2", "expm1", "sqrt", "square", "abs", "sign",
                "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "floor", "ceil",
                "round", "mean", "median", "min", "max", "sum", "clip", "where", "minimum", "maximum")
#: functions that mark a column as a factor (kept by lmmteach's own coding of factors)
FACTOR_FUNCTIONS = ("C", "factor")


BACKTICK_ADVICE = ("; a column name with characters other than ASCII letters, digits, '_' and '.' (accents, "
                   "other alphabets, spaces) goes in backticks, e.g. y ~ `größe` + (1 | `Schüler id`)")
"""Appended to the errors of names the formula cannot read."""


def _identity(x):
    return x


def _make_functions() -> dict:
    from formulaic.transforms import TRANSFORMS
    from formulaic.utils.stateful_transforms import stateful_transform

    formulaic_poly = TRANSFORMS["poly"]

    @stateful_transform
    def poly(x, degree: int = 1, raw: bool = False, _state: dict = {}):  # noqa: B006 (formulaic's convention)
        """R's ``poly``: orthogonal polynomials (``raw=False``) or powers x, ..., xᵏ (``raw=True``)."""
        x = np.asarray(x, dtype=float)
        if not isinstance(degree, (int, np.integer)) or degree < 1:
            raise ValueError(f"poly(): the degree must be a whole number >= 1, not {degree!r}")
        distinct = len(np.unique(x[~np.isnan(x)]))
        if not _state and not raw and degree >= distinct:
            raise ValueError(f"poly(): degree {degree} must be less than the number of distinct values of "
                             f"the variable ({distinct})")
        return formulaic_poly(x, degree, raw, _state=_state)

    functions = {name: getattr(np, name) for name in _NUMPY_NAMES}
    functions.update({"np": np, "numpy": np, "I": _identity, "offset": _identity, "poly": poly,
                      "scale": TRANSFORMS["scale"], "center": TRANSFORMS["center"]})
    return functions


#: name -> function available inside a formula's expressions
FUNCTIONS: dict = _make_functions()


def supported_functions() -> str:
    """The functions a formula may call, as text for error messages."""
    return ", ".join(sorted(set(FUNCTIONS) - {"np", "numpy"}) + list(FACTOR_FUNCTIONS)) + ", np.<name>"


CONSTANTS = {"pi": np.pi}
"""Names a formula's expressions read as constants, as R does (``I(Days * pi)``)."""

_R_NAME = re.compile(r"(?<![\w.`])((?:[A-Za-z_]|\.[A-Za-z_])[\w]*(?:\.[\w]*)+)(?![\w.`(])|`([^`]+)`")
"""A dotted R name (``y.val``, ``grp.id``, not a call such as ``np.log(``) or a backticked name (`` `größe` ``)."""


def _placeholders(expr: str) -> tuple[str, dict[str, str]]:
    """``expr`` with each dotted or backticked column name replaced by a Python identifier, and the map
    identifier -> name (``np.`` / ``numpy.`` attributes are left alone)."""
    names: dict[str, str] = {}

    def sub(m):
        name = m.group(1) or m.group(2)
        if m.group(1) and name.split(".")[0] in ("np", "numpy"):
            return name
        key = next((k for k, v in names.items() if v == name), f"_lmm_col{len(names)}_")
        names[key] = name
        return key

    return _R_NAME.sub(sub, expr), names


def to_python(expr: str) -> str:
    """R's power operator ``^`` written as Python's ``**`` (``^`` is bitwise xor in Python)."""
    return expr.replace("^", "**")


def expression_variables(expr: str) -> list[str]:
    """The data columns an expression reads (names that are not called as functions, nor constants such as
    ``pi``; dotted and backticked names are column names), in order."""
    code, names = _placeholders(expr)
    try:
        tree = ast.parse(to_python(code), mode="eval")
    except SyntaxError:
        return [expr]
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    out: dict[str, None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and id(node) not in called and node.id not in ("np", "numpy", *CONSTANTS):
            out.setdefault(names.get(node.id, node.id), None)
    return list(out)


def check_expression(expr: str) -> None:
    """Raise ``ValueError`` naming the problem when ``expr`` is not Python or calls an unknown function."""
    try:
        tree = ast.parse(to_python(_placeholders(expr)[0]), mode="eval")
    except SyntaxError:
        raise ValueError(f"cannot read {expr!r} as a variable name or expression{BACKTICK_ADVICE}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.func.id
            if name not in FUNCTIONS and name not in FACTOR_FUNCTIONS:
                raise ValueError(f"unknown function {name!r} in {expr!r}; a formula may use "
                                 f"{supported_functions()}")


def evaluate(expr: str, frame: pd.DataFrame, state: dict):
    """The value of expression ``expr`` on the rows of ``frame``: a 1-d array (one column) or a DataFrame
    (several columns, e.g. ``poly(x, 2)`` with columns ``1``, ``2``). ``state`` holds the stateful
    transforms' parameters: empty when fitting (it is filled), the fitted parameters when predicting."""
    from formulaic.utils.stateful_transforms import stateful_eval

    env = {**FUNCTIONS, **CONSTANTS}
    code, placeholders = _placeholders(expr)
    keys = {name: key for key, name in placeholders.items()}
    for name in expression_variables(expr):
        if name in frame.columns:
            col = frame[name]
            env[keys.get(name, name)] = col.to_numpy(dtype=float) if pd.api.types.is_numeric_dtype(col) and \
                not pd.api.types.is_bool_dtype(col) else col.to_numpy()
    try:
        with np.errstate(all="ignore"):
            value = stateful_eval(to_python(code), env, None, state.setdefault(expr, {}), None)
    except ValueError as err:
        raise ValueError(f"cannot evaluate {expr!r}: {err}") from None
    except Exception as err:  # the student's expression: say which one failed and why
        raise ValueError(f"cannot evaluate {expr!r}: {type(err).__name__}: {err}") from None
    names = getattr(getattr(value, "__formulaic_metadata__", None), "column_names", None)
    if isinstance(value, pd.DataFrame):
        return value.set_axis([str(c) for c in value.columns], axis=1)
    if isinstance(value, pd.Series):
        value = value.to_numpy()
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.full(len(frame), arr.item())
    if arr.shape[0] != len(frame):
        raise ValueError(f"{expr!r} has {arr.shape[0]} value(s) but the data has {len(frame)} rows")
    if arr.ndim == 2:
        cols = list(names) if names is not None and len(names) == arr.shape[1] else \
            [str(k + 1) for k in range(arr.shape[1])]
        return pd.DataFrame(arr, columns=cols)
    return arr
