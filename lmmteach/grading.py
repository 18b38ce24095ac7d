"""Checks for homework test cells that tell the student what went wrong.

nbgrader awards a test cell's points when the cell runs without an exception.  A bare
``assert abs(F - 2.51) < 1e-6`` fails with an empty ``AssertionError``; these helpers fail
with a message that names the quantity, what was expected, the tolerance and what was
found, e.g.::

    F: expected 2.510556 (within rtol=1e-06), got 2.48

Every helper returns ``None`` on success and raises ``AssertionError`` otherwise.

=====================================================  ==================================
``check_type(name, got, types)``                       ``got`` is an instance of ``types``
``check_shape(name, got, shape)``                      array-like with this shape
``check_close(name, got, expected, rtol, atol)``       number or array, elementwise
``check_equal(name, got, expected)``                   exact equality (ints, strings, labels)
``check_between(name, got, low, high)``                ``low <= got <= high``
``check_table(name, got, expected, rtol, atol, ...)``  DataFrame: index, columns and values
``check_true(name, condition, message)``               any other condition, with a message
``self_check(name, got, expected | between=...)``      lecture exercises: prints, never raises
=====================================================  ==================================

Tolerances follow ``numpy.isclose``: ``|got - expected| <= atol + rtol * |expected|``.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

__all__ = [
    "check_type",
    "check_shape",
    "check_close",
    "check_equal",
    "check_between",
    "check_table",
    "check_true",
    "self_check",
]


def _fmt(x) -> str:
    """Short, readable rendering of a number or a small array (7 significant digits)."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        return f"{float(x):.7g}"
    if isinstance(x, (np.ndarray, pd.Series, list, tuple)):
        arr = np.asarray(x)
        if arr.dtype.kind in "fc":
            with np.printoptions(precision=7, suppress=False, threshold=12, edgeitems=3):
                return np.array2string(arr, separator=", ")
        return np.array2string(arr, separator=", ", threshold=12, edgeitems=3)
    text = repr(x)
    return text if len(text) <= 80 else text[:77] + "..."


def _tolerance(rtol: float, atol: float) -> str:
    parts = []
    if rtol:
        parts.append(f"rtol={rtol:g}")
    if atol:
        parts.append(f"atol={atol:g}")
    return "exactly" if not parts else "within " + ", ".join(parts)


def _type_name(types) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ for t in types)
    return types.__name__


def _not_implemented(name: str, got) -> None:
    if got is None or got is NotImplemented or got is Ellipsis:
        raise AssertionError(f"{name}: no value yet (got {got!r}); did you fill in and run the cell above?")


def check_true(name: str, condition, message: str) -> None:
    """Fail with ``"name: message"`` unless ``condition`` is true."""
    if not bool(condition):
        raise AssertionError(f"{name}: {message}")


def check_type(name: str, got, types) -> None:
    """``got`` must be an instance of ``types`` (a type or a tuple of types).

    Python and numpy numbers count as ``float``/``int`` when ``types`` asks for them:
    ``check_type("F", np.float64(2.5), float)`` passes, and so does an ``int`` where a
    ``float`` is asked for.  ``bool`` is never accepted as a number.
    """
    _not_implemented(name, got)
    wanted = types if isinstance(types, tuple) else (types,)
    ok = isinstance(got, wanted)
    is_bool = isinstance(got, (bool, np.bool_))
    if not ok and not is_bool:
        if float in wanted and isinstance(got, numbers.Real):
            ok = True
        elif int in wanted and isinstance(got, numbers.Integral):
            ok = True
    if ok and is_bool and bool not in wanted and np.bool_ not in wanted:
        ok = False
    if not ok:
        raise AssertionError(f"{name}: expected a {_type_name(types)}, got a {type(got).__name__} ({_fmt(got)})")


def check_shape(name: str, got, shape: tuple) -> None:
    """``np.shape(got)`` must equal ``shape``; ``None`` in ``shape`` matches any length."""
    _not_implemented(name, got)
    actual = np.shape(got)
    shape = tuple(shape)
    if len(actual) != len(shape) or any(s is not None and s != a for s, a in zip(shape, actual)):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise AssertionError(f"{name}: expected shape {want}, got shape {actual}")


def _as_float_array(name: str, x, what: str) -> np.ndarray:
    if isinstance(x, (pd.DataFrame, pd.Series)):
        x = x.to_numpy()
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise AssertionError(f"{name}: expected {what}, got a {type(x).__name__} ({_fmt(x)})") from None
    return arr


def check_close(name: str, got, expected, rtol: float = 1e-6, atol: float = 0.0) -> None:
    """``got`` must equal ``expected`` to the tolerance, elementwise for arrays.

    ``expected`` may be a number or an array; ``got`` must then have the same shape (a
    pandas Series/DataFrame is compared by its values).  NaN matches NaN.  The message
    gives the expected value and tolerance, the value found, and for arrays the first
    entries that differ.
    """
    _not_implemented(name, got)
    exp = np.asarray(expected, dtype=float)
    what = "a number" if exp.ndim == 0 else f"an array of shape {exp.shape}"
    if isinstance(got, (str, bytes)):
        raise AssertionError(f"{name}: expected {what}, got a {type(got).__name__} ({got!r})")
    arr = _as_float_array(name, got, what)
    tol = _tolerance(rtol, atol)
    if exp.ndim == 0:
        if arr.size != 1:
            raise AssertionError(f"{name}: expected a single number, got {arr.size} values of shape {arr.shape}")
        value = float(arr.reshape(()))
        if not np.isclose(value, float(exp), rtol=rtol, atol=atol, equal_nan=True):
            raise AssertionError(f"{name}: expected {_fmt(float(exp))} ({tol}), got {_fmt(value)}")
        return
    if arr.shape != exp.shape:
        if arr.size == exp.size and arr.squeeze().shape == exp.squeeze().shape:
            arr = arr.reshape(exp.shape)
        else:
            raise AssertionError(f"{name}: expected {what}, got shape {arr.shape}")
    bad = ~np.isclose(arr, exp, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        idx = [tuple(int(i) for i in ix) for ix in zip(*np.nonzero(bad))]
        shown = "; ".join(
            f"[{', '.join(map(str, ix))}] expected {_fmt(exp[ix])}, got {_fmt(arr[ix])}" for ix in idx[:3]
        )
        more = f" (and {len(idx) - 3} more)" if len(idx) > 3 else ""
        raise AssertionError(f"{name}: {len(idx)} of {exp.size} entries differ ({tol}): {shown}{more}")


def check_equal(name: str, got, expected) -> None:
    """Exact equality, for counts, degrees of freedom, labels and strings.

    Sequences (lists, tuples, arrays, pandas Index/Series) are compared as lists.
    """
    _not_implemented(name, got)

    def norm(x):
        if isinstance(x, (np.ndarray, pd.Index, pd.Series, list, tuple)):
            return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(x, dtype=object).ravel()]
        return x.item() if isinstance(x, np.generic) else x

    g, e = norm(got), norm(expected)
    try:
        same = bool(g == e)
    except (TypeError, ValueError):
        same = False
    if not same:
        raise AssertionError(f"{name}: expected {_fmt(expected)}, got {_fmt(got)}")


def check_between(name: str, got, low: float, high: float) -> None:
    """A number in the closed interval ``[low, high]`` (for simulation results and bounds)."""
    _not_implemented(name, got)
    check_type(name, got, float)
    if not (low <= float(got) <= high):
        raise AssertionError(f"{name}: expected a value between {_fmt(low)} and {_fmt(high)}, got {_fmt(got)}")


def check_table(name: str, got, expected, rtol: float = 1e-6, atol: float = 0.0,
                check_index: bool = True, columns=None) -> None:
    """A DataFrame with the expected row labels, columns and (numeric) values.

    ``expected`` is a DataFrame (or a dict of columns, which becomes one).  ``columns``
    restricts the comparison to some columns of ``expected``; ``got`` may have extra
    columns.  With ``check_index=False`` rows are compared by position.  Numeric cells
    are compared with :func:`check_close` tolerances (NaN matches NaN, e.g. the empty
    F cell of the error row); other cells must be equal.
    """
    _not_implemented(name, got)
    if isinstance(expected, dict):
        expected = pd.DataFrame(expected)
    if not isinstance(got, pd.DataFrame):
        raise AssertionError(f"{name}: expected a pandas DataFrame, got a {type(got).__name__}")
    cols = list(expected.columns if columns is None else columns)
    missing = [c for c in cols if c not in got.columns]
    if missing:
        raise AssertionError(
            f"{name}: missing column(s) {missing}; expected columns {list(expected.columns)}, got {list(got.columns)}"
        )
    if len(got) != len(expected):
        raise AssertionError(f"{name}: expected {len(expected)} rows, got {len(got)}")
    if check_index and [str(i) for i in got.index] != [str(i) for i in expected.index]:
        raise AssertionError(f"{name}: expected rows {list(expected.index)}, got {list(got.index)}")
    tol = _tolerance(rtol, atol)
    problems = []
    for c in cols:
        e_col, g_col = expected[c], got[c]
        for k in range(len(expected)):
            row = expected.index[k]
            e, g = e_col.iloc[k], g_col.iloc[k]
            if isinstance(e, numbers.Number) and not isinstance(e, bool):
                try:
                    g_val = float(g)
                except (TypeError, ValueError):
                    problems.append(f"[{row!s}, {c!s}] expected {_fmt(e)}, got {g!r}")
                    continue
                if not np.isclose(g_val, float(e), rtol=rtol, atol=atol, equal_nan=True):
                    problems.append(f"[{row!s}, {c!s}] expected {_fmt(e)}, got {_fmt(g_val)}")
            elif not (pd.isna(e) and pd.isna(g)) and e != g:
                problems.append(f"[{row!s}, {c!s}] expected {e!r}, got {g!r}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise AssertionError(f"{name}: {len(problems)} cell(s) differ ({tol}): " + "; ".join(problems[:3]) + more)


def self_check(name: str, got, expected=None, *, rtol: float = 1e-4, atol: float = 0.0,
               between: tuple[float, float] | None = None) -> None:
    """Feedback for a lecture exercise: print whether the student's ``got`` is right, never the expected value.

    ``got`` is ``None`` when the student has not defined the variable yet (call it as
    ``self_check("p", globals().get("p"), expected)``): prints "not attempted yet".  Otherwise
    compares with :func:`check_close` (``expected``, ``rtol``, ``atol``), with :func:`check_equal` when
    ``expected`` is text (a string, or a dict or list of labels), or, for simulation results, with
    :func:`check_between` (``between=(low, high)``), and prints "right" or "not right yet" (with
    "too large"/"too small" for a single number).  Returns None (a notebook cell shows only the line);
    never raises.
    """
    if (expected is None) == (between is None):
        raise TypeError("self_check needs exactly one of `expected` or `between=(low, high)`")
    if got is None or got is Ellipsis or got is NotImplemented:
        print(f"{name}: not attempted yet (define `{name}` in your solution and run this cell again)")
        return None
    try:
        if between is not None:
            check_between(name, got, *between)
        elif isinstance(expected, (str, dict)) or (isinstance(expected, (list, tuple))
                                                    and any(isinstance(e, str) for e in expected)):
            check_equal(name, got, expected)
        else:
            check_close(name, got, expected, rtol=rtol, atol=atol)
    except AssertionError:
        hint = ""
        if isinstance(got, numbers.Real) and not isinstance(got, (bool, np.bool_)):
            if between is not None:
                hint = " (too small)" if got < between[0] else " (too large)"
            elif isinstance(expected, numbers.Real):
                hint = " (too small)" if got < expected else " (too large)"
        print(f"{name}: not right yet{hint}")
        return None
    print(f"{name}: right")
    return None
