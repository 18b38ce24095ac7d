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
=====================================================  ==================================

Lecture self-checks (after an exercise, they print instead of raising, and never show the answer):

=====================================================  ==================================
``answer_key(value)``                                  the key an instructor stores for an answer
``self_check(name, namespace, key)``                   "not attempted yet" / "right" / "not right yet"
``self_check_between(name, namespace, low, high)``     the same for a simulated number in a range
=====================================================  ==================================

Homework tasks done by hand (the library would do them in one call):

=====================================================  ==================================
``ShortcutWatch(*functions, task=..., family=True)``   records calls; ``.check(name)`` fails if any
                                                       (a module stands for its public functions and
                                                       classes, a class for its constructor and methods;
                                                       ``family=False``: not its library bases and
                                                       subclasses, which other models share)
``switched_off(*functions, reason=...)``               a ``with`` block in which they refuse to run
=====================================================  ==================================

Both reach every public path to a function: each module attribute that holds it (``lmmteach.aov1rm``,
``lmmteach.aov.rmanova.aov1rm``, ...) and each name a student bound to it (``from lmmteach.textbook
import gls as g``), found by identity, not by name; and a class by its constructor and methods, so that
neither ``LinearMixedModel(design, devfun, opt)`` nor ``model.devfun.loglik(theta, sigma2)`` of a model fitted
before gets round them.

Tolerances follow ``numpy.isclose``: ``|got - expected| <= atol + rtol * |expected|``.
"""

from __future__ import annotations

import functools
import hashlib
import numbers
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from .._util import fmt

__all__ = [
    "check_type",
    "check_shape",
    "check_close",
    "check_equal",
    "check_between",
    "check_table",
    "check_true",
    "SELF_CHECK_DIGITS",
    "answer_key",
    "self_check",
    "self_check_between",
    "ShortcutWatch",
    "switched_off",
]

SELF_CHECK_DIGITS = 4     # a lecture answer is right when it agrees to this many significant digits
_ROUNDING_SLACK = 1e-7    # relative nudge tried both ways, so a value on a rounding boundary still matches




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
        raise AssertionError(f"{name}: expected a {_type_name(types)}, got a {type(got).__name__} ({fmt(got)})")


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
        raise AssertionError(f"{name}: expected {what}, got a {type(x).__name__} ({fmt(x)})") from None
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
            raise AssertionError(f"{name}: expected {fmt(float(exp))} ({tol}), got {fmt(value)}")
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
            f"[{', '.join(map(str, ix))}] expected {fmt(exp[ix])}, got {fmt(arr[ix])}" for ix in idx[:3]
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
        raise AssertionError(f"{name}: expected {fmt(expected)}, got {fmt(got)}")


def check_between(name: str, got, low: float, high: float) -> None:
    """A number in the closed interval ``[low, high]`` (for simulation results and bounds)."""
    _not_implemented(name, got)
    check_type(name, got, float)
    if not (low <= float(got) <= high):
        raise AssertionError(f"{name}: expected a value between {fmt(low)} and {fmt(high)}, got {fmt(got)}")


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
            if isinstance(e, numbers.Real) and not isinstance(e, bool):
                try:
                    g_val = float(g)
                except (TypeError, ValueError):
                    problems.append(f"[{row!s}, {c!s}] expected {fmt(e)}, got {g!r}")
                    continue
                if not np.isclose(g_val, float(e), rtol=rtol, atol=atol, equal_nan=True):
                    problems.append(f"[{row!s}, {c!s}] expected {fmt(e)}, got {fmt(g_val)}")
            elif not (pd.isna(e) and pd.isna(g)) and e != g:
                problems.append(f"[{row!s}, {c!s}] expected {e!r}, got {g!r}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise AssertionError(f"{name}: {len(problems)} cell(s) differ ({tol}): " + "; ".join(problems[:3]) + more)


# -- lecture self-checks --------------------------------------------------------------------------------
# A lecture exercise is followed by a cell such as
#     grading.self_check("lam", globals(), "3f5c0a1b9d2e")
# The key is a hash of the answer rounded to SELF_CHECK_DIGITS significant digits, so the cell tells the
# student whether their number is right without printing (or containing) the number itself.


def _rounded_text(value, digits: int, nudge: float = 0.0) -> str:
    arr = np.atleast_1d(np.asarray(value, dtype=float)) * (1.0 + nudge)
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    arr = np.where(np.abs(arr) <= _ROUNDING_SLACK * scale, 0.0, arr) + 0.0  # rounding noise around 0 is 0
    return ",".join(f"{x:.{digits - 1}e}" for x in arr.ravel()) + f"|{np.shape(value)}"


def answer_key(value, digits: int = SELF_CHECK_DIGITS) -> str:
    """The key of an answer (a number or an array): the first 12 hex digits of the SHA-256 of
    ``value`` rounded to ``digits`` significant digits. Store it in the self-check cell."""
    return hashlib.sha256(_rounded_text(value, digits).encode()).hexdigest()[:12]


def _lookup(name: str, namespace: dict):
    """The student's value, or None with the message to print when there is none yet."""
    if name not in namespace or namespace[name] is None or namespace[name] is Ellipsis:
        return None, f"{name}: not attempted yet (assign {name} = ... in a cell above and run this cell again)"
    got = namespace[name]
    if isinstance(got, (str, bytes, bool, np.bool_)):
        return None, f"{name}: expected a number, got a {type(got).__name__}"
    try:
        np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return None, f"{name}: expected a number or an array of numbers, got a {type(got).__name__}"
    return got, None


def self_check(name: str, namespace: dict, key: str, digits: int = SELF_CHECK_DIGITS) -> bool | None:
    """Print whether ``namespace[name]`` matches the answer whose :func:`answer_key` is ``key``.

    Prints "not attempted yet" (and returns None) while the variable is undefined, else "right" or
    "not right yet" (returns True/False). The answer is never shown."""
    got, problem = _lookup(name, namespace)
    if problem is not None:
        print(problem)
        return None
    keys = {hashlib.sha256(_rounded_text(got, digits, nudge).encode()).hexdigest()[:12]
            for nudge in (-_ROUNDING_SLACK, 0.0, _ROUNDING_SLACK)}
    if key in keys:
        print(f"{name}: right (agrees to {digits} significant digits)")
        return True
    shape = f"; yours has shape {np.shape(got)}" if np.ndim(got) else ""
    print(f"{name}: not right yet (it does not agree to {digits} significant digits{shape})")
    return False


def self_check_between(name: str, namespace: dict, low: float, high: float) -> bool | None:
    """Like :func:`self_check` for a simulated number, which is right when it lies in [low, high]
    (a range of Monte Carlo error around the answer; the message does not print the range)."""
    got, problem = _lookup(name, namespace)
    if problem is not None:
        print(problem)
        return None
    if np.size(got) != 1:
        print(f"{name}: expected a single number, got shape {np.shape(got)}")
        return False
    if low <= float(np.asarray(got, dtype=float).reshape(())) <= high:
        print(f"{name}: plausible (within Monte Carlo error of the expected value)")
        return True
    print(f"{name}: not right yet (further from the expected value than Monte Carlo error allows)")
    return False


def _functions(items) -> list[Callable]:
    """The functions given, a module standing for the public functions defined in it."""
    out: list[Callable] = []
    for item in items:
        if isinstance(item, types.ModuleType):
            out += [f for f in _public_members(item) if isinstance(f, types.FunctionType)]
        elif not isinstance(item, type):
            out.append(item)
    return out


def _public_members(module: types.ModuleType) -> list:
    """The public functions and classes defined in ``module``; a former flat name (lmmteach.textbook) holds
    the wing module's (lmmteach.lmm.textbook)."""
    homes = {module.__name__, f"{module.__package__}.{module.__name__.rpartition('.')[2]}"}
    return [f for name, f in vars(module).items() if isinstance(f, (types.FunctionType, type))
            and not name.startswith("_") and f.__module__ in homes]


def _classes(items, family: bool = True) -> list[type]:
    """The classes given (a module: the public classes defined in it), each with the library classes it
    inherits from and every subclass: where its constructor and methods live. ``family=False``: the classes
    alone (their own constructor and methods: a base they share with other models, e.g. ``FittedModel`` of
    ``GLSFit`` and ``LinearMixedModel``, stays untouched)."""
    given = [c for item in items
             for c in (_public_members(item) if isinstance(item, types.ModuleType) else [item])
             if isinstance(c, type)]
    package = __name__.partition(".")[0]
    out: dict[type, None] = {}
    while given:
        cls = given.pop()
        if cls in out:
            continue
        out[cls] = None
        if not family:
            continue
        given += [c for c in cls.__mro__[1:] if c.__module__.partition(".")[0] == package]
        given += cls.__subclasses__()
    return list(out)


def _replace_methods(classes, replacement: Callable[[Callable], Callable]) -> list[tuple[type, str, object]]:
    """Put ``replacement(f)`` in place of every method of ``classes`` defined in them (``__init__`` and
    ``__call__`` included, properties not): constructing the class, or calling a method of an instance made
    before, goes through it. Returns what was replaced, for the undo."""
    replaced = []
    for cls in classes:
        for attr, value in list(vars(cls).items()):
            if attr.startswith("__") and attr not in ("__init__", "__call__"):
                continue
            if isinstance(value, types.FunctionType):
                stand_in: object = replacement(value)
            elif isinstance(value, (staticmethod, classmethod)):
                stand_in = type(value)(replacement(value.__func__))
            else:
                continue
            type.__setattr__(cls, attr, stand_in)
            replaced.append((cls, attr, value))
    return replaced


def _shown(function: Callable) -> str:
    """How a student calls it: ``gls``, ``LinearMixedModel.loglik``, ``LinearMixedModel(...)`` (constructing)."""
    name = function.__qualname__
    return name[:-len(".__init__")] + "(...)" if name.endswith(".__init__") else name


def _replace_everywhere(functions, replacement: Callable[[Callable], Callable],
                        family: bool = True) -> Callable[[], None]:
    """Put ``replacement(f)`` in place of each of ``functions`` (modules: their public functions and classes)
    wherever a loaded module holds it (by identity: every alias and import path, the notebook's own names in
    ``__main__`` included), and in place of every method of each class given (its constructor, and the
    methods of instances made before: ``model.devfun.loglik``), in it, its library base classes and its
    subclasses (``family=False``: in it alone, :func:`_classes`); return an undo."""
    wanted = {id(f): f for f in _functions(functions)}
    stand_in = {key: replacement(f) for key, f in wanted.items()}
    replaced: list[tuple[dict, str, object]] = []
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attr, value in list(namespace.items()):
            if id(value) in wanted and value is wanted[id(value)]:
                namespace[attr] = stand_in[id(value)]
                replaced.append((namespace, attr, value))
    methods = _replace_methods(_classes(functions, family), replacement)

    def undo() -> None:
        for namespace, attr, value in replaced:
            namespace[attr] = value
        for cls, attr, value in methods:
            type.__setattr__(cls, attr, value)
    return undo


class ShortcutWatch:
    """Records every call of ``functions`` from now on (through any module or alias), so a test cell can tell
    that a task asked for by hand was not done by the library: ``check(name)`` raises ``AssertionError``
    naming the function if any was called. Created in a homework's locked setup cell. ``family=False`` watches
    the classes given without their library bases and subclasses (:func:`_classes`): a homework that fits
    ``lmer`` models may watch ``GLSFit`` without recording the ``FittedModel`` methods both share."""

    def __init__(self, *functions: Callable | types.ModuleType, task: str, family: bool = True):
        self.task = task
        self.called: list[str] = []
        self.stop = _replace_everywhere(functions, self._recording, family)  # stop(): put the library's functions back

    def _recording(self, function: Callable) -> Callable:
        @functools.wraps(function)
        def recorded(*args, **kwargs):
            self.called.append(f"{function.__module__}.{_shown(function)}")
            return function(*args, **kwargs)
        return recorded

    def check(self, name: str) -> None:
        """Fail if a watched function has been called so far."""
        if self.called:
            raise AssertionError(f"{name}: {self.task}, but {self.called[0]} was called; do this step by hand "
                                 "(Kernel > Restart Kernel and Run All Cells after removing the call)")


@contextmanager
def switched_off(*functions: Callable | types.ModuleType, reason: str) -> Iterator[None]:
    """Inside the ``with`` block, calling any of ``functions`` (by any path or alias) raises ``AssertionError``
    with ``reason``: a test runs the student's own functions with the library's versions out of reach."""
    def refusing(function: Callable) -> Callable:
        @functools.wraps(function)
        def refuse(*args, **kwargs):
            raise AssertionError(f"{_shown(function)} is switched off here: {reason}")
        return refuse

    undo = _replace_everywhere(functions, refusing)
    try:
        yield
    finally:
        undo()
