"""From a formula and a DataFrame to the model's matrices (lme4's ``lFormula`` stage).

For subject (group) i the notes write  y_i = X_i b + Z_i v_i + e_i.  This module builds the stacked
response y, the fixed-effects design matrix X (R's column names, e.g. ``storeB``, ``grade4``,
``gendergirl``), the random-effects design Z (one block of columns per random term) and the group
index of every row. It checks the data and says what is wrong in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
import pandas as pd

from ..aov.contrasts import CONTRASTS
from .covariance import CovarianceStructure, make_structure
from .formula import Formula, RandomTerm, Term, parse_formula
from .transforms import evaluate
from .._util import factor_levels, warn_user

__all__ = ["RandomBlock", "Design", "model_frame", "coding_matrix", "model_matrix", "lformula"]


@dataclass(frozen=True)
class RandomBlock:
    """The columns of Z for one random term, with its covariance structure."""

    term: RandomTerm
    names: tuple[str, ...]  # column names, lme4 style: "(Intercept)", "x", "fB"
    Z: np.ndarray  # n × q_k: the term's columns (row t multiplies the random effects of its level)
    structure: CovarianceStructure
    group_name: str = ""  # the grouping factor, named as lme4 names it ("plate", "cask:batch")
    group: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))  # level (0..ℓ-1) of every row
    levels: tuple = ()  # the factor's level labels

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)


@dataclass(frozen=True)
class Design:
    """Everything the likelihood needs, and what a fitted model reports back.

    ``X`` is n × p, ``y`` has n entries, ``blocks`` hold the columns of Z term by term (in lme4's order:
    by number of levels, decreasing), each with its grouping factor; ``factors`` lists the grouping factors.
    ``group``, ``group_name``, ``levels`` and ``n_groups`` read the first term's grouping factor from its block
    -- with one grouping factor (the notes' case) the only one: a view, not a second copy.
    """

    formula: Formula
    y: np.ndarray
    X: np.ndarray
    fixef_names: tuple[str, ...]
    blocks: tuple[RandomBlock, ...]
    frame: pd.DataFrame  # the rows used (after dropping missing values), model variables only
    index: pd.Index  # row labels of the caller's data that were used
    n_dropped: int = 0
    dropped_columns: tuple[str, ...] = field(default=())
    data_id: str = ""
    xlevels: dict = field(default_factory=dict)  # factor -> levels (None for numeric variables)
    contrasts: dict = field(default_factory=dict)
    weights: np.ndarray | None = None  # prior weights w_i: Var(e_i) = σ² / w_i (lme4's weights)
    offset: np.ndarray | None = None  # known part of the mean: y = offset + X b + Z v + e
    transform_state: dict = field(default_factory=dict)  # fitted parameters of poly/scale/center
    assign: tuple[int, ...] = field(default=())  # term number of each column of X (0 = intercept), as R's

    def fitting_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """X, Z and y − offset with row i multiplied by √w_i: the weighted model then has Var(e_i) = σ²,
        so the unweighted likelihood code applies (its log-likelihood gains ½ Σ log w_i)."""
        y = self.fitting_response(self.y)
        if self.weights is None:
            return self.X, self.Z, y
        sw = np.sqrt(self.weights)
        return self.X * sw[:, None], self.Z * sw[:, None], y

    def fitting_response(self, y: np.ndarray) -> np.ndarray:
        """(y − offset) √w, row by row, for a response (or a stack of them, shape (K, n)) of this design."""
        y = np.asarray(y, float)
        y = y if self.offset is None else y - self.offset
        return y if self.weights is None else y * np.sqrt(self.weights)

    @property
    def log_weights(self) -> float:
        """Σ log w_i (0 without weights): lme4's logLik adds half of it."""
        return 0.0 if self.weights is None else float(np.log(self.weights).sum())

    def with_response(self, y: np.ndarray) -> "Design":
        """The same design with a new response vector (rows in the fitted order): y, the model frame's
        response column and the data fingerprint all follow the new y."""
        y = np.asarray(y, float)
        frame = self.frame.copy(deep=False)  # the other columns are shared; the response column is replaced
        frame[self.formula.response] = y
        return replace(self, y=y, frame=frame, data_id=_fingerprint(y))

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def group_name(self) -> str:
        """The first term's grouping factor (the notes' one grouping factor)."""
        return self.blocks[0].group_name

    @property
    def group(self) -> np.ndarray:
        """The level index of each row in the first term's grouping factor."""
        return self.blocks[0].group

    @property
    def levels(self) -> tuple:
        """The level labels of the first term's grouping factor."""
        return self.blocks[0].levels

    @property
    def n_groups(self) -> int:
        return self.blocks[0].n_levels

    @property
    def factors(self) -> dict[str, tuple[np.ndarray, tuple]]:
        """{grouping factor: (level index of each row, level labels)}, in the order of the terms."""
        out: dict = {}
        for b in self.blocks:
            out.setdefault(b.group_name, (b.group, b.levels))
        return out

    @property
    def single_factor(self) -> bool:
        """True when every random term has the same grouping factor (the notes' block-diagonal case)."""
        return len(self.factors) == 1

    @cached_property
    def Z(self) -> np.ndarray:
        """All random-effects columns for one group, side by side (n × q)."""
        return np.hstack([b.Z for b in self.blocks])

    @property
    def q(self) -> int:
        return sum(b.Z.shape[1] for b in self.blocks)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def block_names(self) -> list[str]:
        """lme4's names for the terms (R's ``make.unique`` of their grouping factors): g, g.1, g.2, ..., h"""
        seen: dict[str, int] = {}
        out = []
        for b in self.blocks:
            k = seen.get(b.group_name, 0)
            out.append(b.group_name if k == 0 else f"{b.group_name}.{k}")
            seen[b.group_name] = k + 1
        return out

    def structures(self) -> list[CovarianceStructure]:
        return [b.structure for b in self.blocks]


# -- checking the data ---------------------------------------------------------------------------
def _check_data(data) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    if len(data) == 0:
        raise ValueError("data has no rows")
    return data


def _is_factor(series: pd.Series, forced: bool) -> bool:
    if forced:
        return True
    return isinstance(series.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(series) or \
        pd.api.types.is_bool_dtype(series)


def _codes(series: pd.Series, levels: list) -> np.ndarray:
    """Integer code of each value's level (its position in ``levels``)."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        position = {c: i for i, c in enumerate(levels)}
        to_level = np.array([position.get(c, -1) for c in series.cat.categories] + [-1])
        return to_level[series.cat.codes.to_numpy()]  # code -1 (missing) picks the trailing -1
    return pd.Categorical(series, categories=levels).codes


def model_frame(formula: Formula, data: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The model's columns with incomplete rows removed (R's na.omit), and how many were removed."""
    data = _check_data(data)
    wanted = formula.variables()
    missing = [v for v in wanted if v not in data.columns]
    if missing:
        kind = []
        for v in missing:
            role = "response" if v == formula.response else (
                "grouping factor" if any(v in r.grouping_variables for r in formula.random) else "variable")
            kind.append(f"{role} {v!r}")
        raise ValueError(
            f"the formula names {', '.join(kind)} but data has no such column "
            f"(columns are: {', '.join(map(str, data.columns))})"
        )
    repeated = [v for v in wanted if (data.columns == v).sum() > 1]
    if repeated:
        raise ValueError(f"data has more than one column named {', '.join(map(repr, repeated))}; "
                         "rename them so that the formula's names are unambiguous")
    for v in wanted:
        if pd.api.types.is_datetime64_any_dtype(data[v]) or pd.api.types.is_timedelta64_dtype(data[v]):
            raise ValueError(f"variable {v!r} holds dates or times ({data[v].dtype}); convert it to a number "
                             "first, e.g. days since the start: (d - d.min()).dt.days")
    frame = data.loc[:, wanted]
    complete = frame.notna().all(axis=1)
    n_dropped = int((~complete).sum())
    if n_dropped:
        per_col = frame.isna().sum()
        where = ", ".join(f"{c}: {k}" for c, k in per_col.items() if k)
        warn_user(f"{n_dropped} of {len(frame)} rows have missing values and were dropped ({where})")
        frame = frame.loc[complete]
    if len(frame) == 0:
        raise ValueError("no complete rows are left after dropping rows with missing values")
    return frame, n_dropped


def _response(frame: pd.DataFrame, name: str) -> np.ndarray:
    col = frame[name]
    if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col) or \
            pd.api.types.is_complex_dtype(col):
        raise ValueError(f"the response {name!r} must be real numbers, but its type is {col.dtype}")
    y = col.to_numpy(dtype=float)
    _check_finite(y, name, "the response")
    if np.ptp(y) == 0:
        raise ValueError(f"the response {name!r} is constant (every value is {y[0]:g}): there is no variation "
                         "to model")
    if np.abs(y).max() > MAX_ABS_VALUE:
        raise ValueError(f"the response {name!r} has values as large as {np.abs(y).max():.3g}; rescale it "
                         "(e.g. divide by a power of ten) so that its squares stay within floating point")
    return y


# -- building model matrices ---------------------------------------------------------------------
def check_contrasts(contrasts, f: Formula) -> dict:
    """``contrasts=``: a dict {factor name: "treatment" | "sum" | "helmert" | "poly" | DataFrame} for variables
    of the formula (None: none given). A factor not named gets R's default: treatment coding, or
    orthogonal polynomials (``.L``, ``.Q``, ...) for an ordered pd.Categorical."""
    if contrasts is None:
        return {}
    if not isinstance(contrasts, dict):
        raise TypeError(f"contrasts must be a dict mapping factor names to codings, e.g. contrasts={{'store': "
                        f"'sum'}}, not {contrasts!r}")
    for v in contrasts:
        if v not in f.variables():
            raise ValueError(f"contrasts given for {v!r}, which is not a variable of the formula")
    return dict(contrasts)


def default_contrasts(values) -> str:
    """R's default coding: ``"poly"`` for an ordered factor (an ordered pd.Categorical), else ``"treatment"``."""
    dtype = getattr(values, "dtype", None)
    return "poly" if isinstance(dtype, pd.CategoricalDtype) and dtype.ordered else "treatment"


def coding_matrix(levels: list, spec, var: str) -> pd.DataFrame:
    """The coding (contrast) matrix of factor ``var``: a name of :data:`CONTRASTS` (``"treatment"``,
    ``"sum"``, ``"helmert"``, ``"poly"``, or R's ``"contr.sum"`` ...) or a given DataFrame."""
    choices = "'" + "', '".join(CONTRASTS) + "' or a DataFrame"
    if isinstance(spec, str):
        coding = CONTRASTS.get(spec.removeprefix("contr."))
        if coding is None:
            raise ValueError(f"unknown contrasts {spec!r} for factor {var!r}; use {choices}")
        return coding(levels)
    if isinstance(spec, pd.DataFrame):
        if list(spec.index) != list(levels):
            raise ValueError(f"contrast matrix for {var!r} must have one row per level, in order: {levels}")
        return spec
    raise TypeError(f"contrasts for {var!r} must be {choices}, not {type(spec).__name__}")


def _check_finite(x: np.ndarray, var: str, role: str = "variable") -> None:
    """A clear error for infinite values or NaN (an expression such as log(0) or sqrt(-1) on a complete row)."""
    bad_nan, bad_inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    if bad_inf:
        raise ValueError(f"{role} {var!r} has {bad_inf} infinite value(s)")
    if bad_nan:
        raise ValueError(f"{role} {var!r} is not a number (NaN) on {bad_nan} complete row(s) of the data "
                         "(e.g. the log or square root of a negative number)")


def variable_values(frame: pd.DataFrame, var: str, state: dict | None = None):
    """The values of a term's variable: the column ``var``, or the expression ``var`` (``log(x)``,
    ``poly(x, 2)``) evaluated on the frame with the stateful transforms' parameters in ``state``
    (a Series for one column, a DataFrame for several)."""
    if var in frame.columns:
        return frame[var]
    value = evaluate(var, frame, {} if state is None else state)
    if isinstance(value, pd.DataFrame):
        return value.set_axis(frame.index, axis=0)
    return pd.Series(value, index=frame.index, name=var)


def _variable_columns(frame, var, factor_vars, contrasts, full, xlevels, state=None) -> tuple[list[str], np.ndarray]:
    """Columns for one variable inside a term: numeric -> itself; factor -> contrasts or indicators;
    a matrix-valued expression (``poly(x, 2)``) -> its columns, named as R names them (``poly(x, 2)1``).
    ``xlevels`` records each factor's levels (when building a model) or supplies them (when predicting);
    a numeric variable is recorded as ``None``."""
    col = variable_values(frame, var, state)
    if isinstance(col, pd.DataFrame):
        x = col.to_numpy(dtype=float)
        _check_finite(x, var)
        xlevels[var] = None
        return [f"{var}{c}" for c in col.columns], x
    numeric = xlevels[var] is None if var in xlevels else not _is_factor(col, var in factor_vars)
    if numeric:
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise ValueError(f"variable {var!r} must be numeric, but its type is {col.dtype}")
        x = col.to_numpy(dtype=float)
        _check_finite(x, var)
        xlevels[var] = None
        return [var], x[:, None]
    if var in xlevels:
        levels = list(xlevels[var])
        new = sorted(set(col.unique()) - set(levels), key=str)
        if new:
            raise ValueError(f"factor {var!r} has level(s) {new} that were not in the data the model was fitted to")
    else:
        levels = factor_levels(col)
        xlevels[var] = tuple(levels)
    if len(levels) < 2 and not full:
        raise ValueError(f"factor {var!r} has only one level ({levels[0]!r}) in the rows used; "
                         "a factor needs at least 2 levels to have an effect")
    codes = _codes(col, levels)
    if full:
        names = [f"{var}{lev}" for lev in levels]
        M = np.eye(len(levels))
    else:
        C = coding_matrix(levels, contrasts.get(var, default_contrasts(col)), var)
        names = [f"{var}{c}" for c in C.columns]
        M = C.to_numpy(dtype=float)
    return names, M[codes]


def model_matrix(frame, intercept: bool, terms: tuple[Term, ...], factor_vars, contrasts,
                 xlevels: dict | None = None, state: dict | None = None,
                 assign: list | None = None) -> tuple[list, np.ndarray]:
    """R's ``model.matrix``: intercept, then each term's columns; a factor in a term is coded by contrasts
    when the term without it is also in the model (always true for main effects with an intercept),
    else by one indicator per level. ``state`` holds the parameters of stateful transforms (filled when
    fitting, reused when predicting); ``assign``, when given, receives each column's term number (R's
    ``attr(X, "assign")``: 0 for the intercept, k for the k-th term)."""
    n = len(frame)
    xlevels = {} if xlevels is None else xlevels
    names, cols = [], []
    assign = [] if assign is None else assign
    if intercept:
        names.append("(Intercept)")
        cols.append(np.ones((n, 1)))
        assign.append(0)
    present: set[tuple[str, ...]] = {()} if intercept else set()
    present |= {t.variables for t in terms}
    for k, term in enumerate(terms, start=1):
        term_names, term_cols = [""], np.ones((n, 1))
        for var in term.variables:
            rest = tuple(v for v in term.variables if v != var)
            values = variable_values(frame, var, state)
            is_fac = not isinstance(values, pd.DataFrame) and _is_factor(values, var in factor_vars)
            full = is_fac and rest not in present
            vnames, vcols = _variable_columns(frame, var, factor_vars, contrasts, full, xlevels, state)
            # R's order: the first variable's columns vary fastest (A2:B2, A3:B2, A2:B3, ...)
            term_names = [f"{a}:{b}" if a else b for b in vnames for a in term_names]
            term_cols = (vcols[:, :, None] * term_cols[:, None, :]).reshape(n, -1)
        names += term_names
        cols.append(term_cols)
        assign += [k] * len(term_names)
    X = np.hstack(cols) if cols else np.zeros((n, 0))
    return names, X


MAX_ABS_VALUE = 1e100
"""Largest |value| of the response or of a model-matrix column: beyond it, sums of squares over a few
thousand rows leave double precision (1e308), and a column would be dropped as 'rank deficient' or give inf."""


def check_column_scale(X: np.ndarray, names: list[str]) -> None:
    """A clear error for a model-matrix column too large (or, non-zero, too small) for double precision's
    sums of squares (:data:`MAX_ABS_VALUE`)."""
    if X.shape[1] == 0:
        return
    size = np.abs(X).max(axis=0)
    bad = np.flatnonzero((size > MAX_ABS_VALUE) | ((size > 0) & (size < 1 / MAX_ABS_VALUE)))
    if len(bad):
        k = int(bad[0])
        raise ValueError(f"the fixed-effect column {names[k]!r} has values as {'large' if size[k] > 1 else 'small'} "
                         f"as {size[k]:.3g}; rescale it by a power of ten (in the data, or I(x / 1e160) in the formula) so "
                         "that its squares stay within floating point")


def _drop_rank_deficient(X: np.ndarray, names: list[str]) -> tuple[np.ndarray, list[str], tuple[str, ...]]:
    """Keep a full-rank set of columns and warn about the others, as lme4 does: a column is dropped when
    it is (numerically) a combination of the columns before it -- |R_jj| of the QR decomposition, which is
    what is left of column j after projecting out columns 1..j-1, is below 1e-7 of the column's length."""
    check_column_scale(X, names)
    if X.shape[1] == 0:
        return X, names, ()
    R = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    keep = np.zeros(X.shape[1], bool)  # with fewer rows than columns, the columns past the n-th are dependent
    k = min(X.shape)
    keep[:k] = np.abs(np.diag(R)[:k]) > 1e-7 * np.where(norms[:k] > 0, norms[:k], 1.0)
    if keep.all():
        return X, names, ()
    dropped = tuple(n for n, k in zip(names, keep) if not k)
    warn_user(f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} column"
              f"{'s' if len(dropped) > 1 else ''}: {', '.join(dropped)}")
    return X[:, keep], [n for n, k in zip(names, keep) if k], dropped


def _grouping(frame: pd.DataFrame, variables) -> tuple[np.ndarray, tuple]:
    """Level index of every row, and the level labels, of the grouping factor formed by ``variables``.
    One variable: its levels (R's order). Several (``a:b``): the combinations that occur, labelled
    "a_level:b_level" and ordered as R's ``factor(a:b)`` orders them (a's levels slowest)."""
    if isinstance(variables, str):
        variables = (variables,)
    if len(variables) == 1:
        col = frame[variables[0]]
        levels = factor_levels(col)
        return _codes(col, levels).astype(np.intp), tuple(levels)
    combined = np.zeros(len(frame), dtype=np.int64)
    all_levels = []
    for v in variables:
        levels = factor_levels(frame[v])
        combined = combined * len(levels) + _codes(frame[v], levels)
        all_levels.append(levels)
    present, codes = np.unique(combined, return_inverse=True)
    labels = []
    for c in present:
        parts = []
        for levels in reversed(all_levels):
            c, k = divmod(int(c), len(levels))
            parts.append(str(levels[k]))
        labels.append(":".join(reversed(parts)))
    return codes.astype(np.intp), tuple(labels)


def grouping_labels(frame: pd.DataFrame, variables) -> pd.Series:
    """The grouping-factor label of every row of ``frame`` (for prediction): the value itself for one
    variable, "a_value:b_value" for several."""
    if len(variables) == 1:
        return frame[variables[0]]
    parts = [frame[v].astype(str) for v in variables]
    out = parts[0]
    for p in parts[1:]:
        out = out + ":" + p
    return out


def lme4_term_order(n_levels: list[int]) -> list[int]:
    """The order in which lme4 keeps random terms: if some term has more levels than the one before it, all
    are sorted by number of levels, decreasing (R: ``rev(order(nl))``, so that ties end up reversed);
    otherwise the formula's order."""
    if not any(b > a for a, b in zip(n_levels, n_levels[1:])):
        return list(range(len(n_levels)))
    ascending = sorted(range(len(n_levels)), key=lambda k: n_levels[k])  # stable, like R's order()
    return ascending[::-1]


def row_values(value, data: pd.DataFrame, name: str) -> pd.Series:
    """An argument holding one value per row of ``data`` (lme4's ``weights``, ``offset``), as a Series on
    data's index: a column name; a pandas Series, aligned on data's index by label (refused when its labels
    are not data's); or an array-like, by position."""
    if isinstance(value, str):
        if value not in data.columns:
            raise ValueError(f"{name}={value!r} names no column of data (columns are: "
                             f"{', '.join(map(str, data.columns))})")
        return data[value]
    if isinstance(value, pd.DataFrame):
        if value.shape[1] != 1:
            raise ValueError(f"{name} must be one column, not a DataFrame with {value.shape[1]} columns")
        value = value.iloc[:, 0]
    if isinstance(value, pd.Series):
        if value.index.has_duplicates:
            raise ValueError(f"{name} is a pandas Series with repeated index labels, so it cannot be matched to "
                             "data's rows; pass it as an array (.to_numpy()) to use it by position")
        missing = data.index.difference(value.index)
        if len(missing):
            raise ValueError(f"{name} is a pandas Series whose index does not hold data's row labels (e.g. "
                             f"{missing[0]!r} is missing): Series are matched to data by index; pass "
                             ".to_numpy() to use it by position")
        return value.reindex(data.index)
    try:
        arr = np.asarray(value)
    except Exception:  # noqa: BLE001 - anything numpy cannot read is a wrong type
        raise TypeError(f"{name} must be a column name, a pandas Series or an array, not "
                        f"{type(value).__name__}") from None
    if arr.ndim > 1 and arr.size == len(data):
        arr = arr.ravel()
    if arr.ndim != 1:
        raise TypeError(f"{name} must be a column name, a pandas Series or a 1-d array, not {value!r}")
    if len(arr) != len(data):
        raise ValueError(f"{name} has {len(arr)} value(s) but data has {len(data)} rows")
    return pd.Series(arr, index=data.index)


def _numeric_values(values: pd.Series, name: str) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise ValueError(f"{name} must be numbers, but their type is {values.dtype}")
    return values.astype(float)


def _prior_weights(weights, data: pd.DataFrame, rows: pd.Index) -> np.ndarray | None:
    """lme4's ``weights`` (:func:`row_values`); each used row's weight must be present and > 0. Returns the
    weights of ``rows``."""
    if weights is None:
        return None
    w = _numeric_values(row_values(weights, data, "weights"), "weights").loc[rows]
    if w.isna().any():
        raise ValueError(f"weights has {int(w.isna().sum())} missing value(s); give every row a weight "
                         "(or drop those rows from data first)")
    if (~np.isfinite(w)).any() or (w <= 0).any():
        bad = w[(~np.isfinite(w)) | (w <= 0)]
        raise ValueError(f"weights must be positive and finite; {len(bad)} are not (e.g. row {bad.index[0]!r}: "
                         f"{bad.iloc[0]:g})")
    return w.to_numpy()


def response_values(frame: pd.DataFrame, response: str, state: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The response vector y; an expression such as ``log(weight)`` is evaluated and added to the frame."""
    if response not in frame.columns:
        value = variable_values(frame, response, state)
        if isinstance(value, pd.DataFrame):
            raise ValueError(f"the response {response!r} must be one column, not {value.shape[1]}")
        frame = frame.assign(**{response: value})
    return frame, _response(frame, response)


def _offset(f: Formula, frame: pd.DataFrame, offset, data: pd.DataFrame, state: dict) -> np.ndarray | None:
    """The sum of the formula's ``offset(...)`` terms and the ``offset`` argument (one value per row of
    data), on the rows used."""
    parts = []
    for expr in f.offsets:
        x = np.asarray(variable_values(frame, expr, state), dtype=float)
        if x.ndim != 1:
            raise ValueError(f"{expr} must give one value per row, not {x.shape[1]} columns")
        _check_finite(x, expr, "offset")
        parts.append(x)
    if offset is not None:
        o = _numeric_values(row_values(offset, data, "offset"), "offset").loc[frame.index].to_numpy()
        _check_finite(o, "offset", "the")
        parts.append(o)
    return np.sum(parts, axis=0) if parts else None


def lformula(formula: str | Formula, data: pd.DataFrame, contrasts: dict | None = None, weights=None,
             offset=None) -> Design:
    """Parse ``formula`` and build the design (lme4's ``lFormula``).

    ``contrasts`` maps factor names to ``"treatment"`` (default, R's ``contr.treatment``), ``"sum"``
    (R's ``contr.sum``, as in the grocery example) or a DataFrame (levels × columns).
    ``weights`` are prior weights, Var(e_i) = σ²/w_i; ``offset`` is added to the formula's ``offset(...)``
    terms; each is a column name, a pandas Series (matched to data by index) or an array (by position).
    """
    f = formula if isinstance(formula, Formula) else parse_formula(formula, getattr(data, "columns", None))
    if not f.random:
        raise ValueError(
            f"the formula {f.text!r} has no random-effects term such as (1 | group); "
            "for a model without random effects use ordinary least squares"
        )
    contrasts = check_contrasts(contrasts, f)
    frame, n_dropped = model_frame(f, data)
    w = _prior_weights(weights, data, frame.index)
    state: dict = {}
    frame, y = response_values(frame, f.response, state)
    xlevels: dict = {}
    assign: list = []
    names, X = model_matrix(frame, f.intercept, f.terms, f.factor_vars, contrasts, xlevels, state, assign)
    all_names = names
    X, names, dropped = _drop_rank_deficient(X, names)
    assign = [a for name, a in zip(all_names, assign) if name not in dropped]

    n = len(y)
    factors: dict[str, tuple[np.ndarray, tuple]] = {}
    for r in f.random:
        if r.group in factors:
            continue
        codes, levels = _grouping(frame, r.grouping_variables)
        if len(levels) < 2:
            raise ValueError(f"grouping factor {r.group!r} has {len(levels)} level in the rows used; "
                             "it must have at least 2 (grouping factors must have > 1 sampled level)")
        if len(levels) >= n:
            raise ValueError(
                f"number of levels of grouping factor {r.group!r} ({len(levels)}) must be < number of "
                f"observations ({n}): each level has one observation, so the random effect and the residual "
                "cannot be told apart"
            )
        factors[r.group] = (codes, levels)
    _check_factors(f, factors)
    blocks = []
    for r in f.random:
        znames, Z = model_matrix(frame, r.intercept, r.terms, f.factor_vars, contrasts, xlevels)
        q = Z.shape[1]
        codes, levels = factors[r.group]
        if q * len(levels) >= n and r.structure not in PER_OBSERVATION_IDENTIFIABLE:
            raise ValueError(
                f"number of observations (={n}) <= number of random effects (={q * len(levels)}) for term "
                f"{r.text}: the random-effects parameters and the residual variance are unidentifiable, because "
                f"with one effect per observation a {r.structure}() covariance "
                f"{_CONFOUNDED_WITH_RESIDUAL.get(r.structure, 'cannot be told apart from the residual')}; "
                "use ar1(), which stays identifiable (its lag-0 variance decays geometrically, a residual's "
                "does not), or lmmteach.gls to model the covariance of the errors directly"
            )
        blocks.append(RandomBlock(r, tuple(znames), Z, make_structure(r.structure, q), r.group, codes, levels))
    blocks = [blocks[k] for k in lme4_term_order([b.n_levels for b in blocks])]
    q_total = sum(b.q * b.n_levels for b in blocks)
    if len(factors) == 1 and len(blocks) > 1 and q_total >= n and not all(
            b.structure.name in PER_OBSERVATION_IDENTIFIABLE for b in blocks):
        raise ValueError(
            f"number of observations (={n}) <= number of random effects (={q_total}) of the "
            f"terms on {blocks[0].group_name!r} together ({q_total // blocks[0].n_levels} per group); the "
            "random-effects parameters and the residual variance are probably unidentifiable"
        )
    if len(factors) > 1 and q_total >= n:
        warn_user(f"there are more random effects ({q_total}) than observations ({n}); the variance "
                  "components may be poorly determined")
    return Design(
        formula=f, y=y, X=X, fixef_names=tuple(names), blocks=tuple(blocks), frame=frame, index=frame.index, n_dropped=n_dropped,
        dropped_columns=dropped, data_id=_fingerprint(y), xlevels=xlevels, contrasts=contrasts,
        weights=w, offset=_offset(f, frame, offset, data, state),
        transform_state=state, assign=tuple(assign),
    )


REPLICATE_CELLS = 1.5
"""Mean rows per occupied (a, b) cell above which reused labels of b within a look like nesting."""


def _check_factors(f: Formula, factors: dict) -> None:
    """Two grouping factors that split the rows into the same groups cannot have separate variances: an
    error. Labels of one factor that repeat inside the levels of another, with replicate rows per cell, look
    like a nested factor written as crossed (``(1|batch) + (1|cask)`` for casks 'a', 'b', 'c' in every
    batch): a warning, as lme4's documentation warns."""
    names = list(factors)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ca, la = factors[a]
            cb, lb = factors[b]
            if len(la) != len(lb):
                continue
            pairs = np.unique(ca.astype(np.int64) * len(lb) + cb)
            if len(pairs) == len(la):
                raise ValueError(
                    f"grouping factors {a!r} and {b!r} split the rows into the same {len(la)} groups, so their "
                    f"variances cannot be told apart; use one name for both (e.g. (... | {a}) in every term)")
    written = {r.group for r in f.random if len(r.grouping_variables) == 1}
    for a in names:
        for b in names:
            if a == b or a not in written or b not in written:
                continue
            ca, la = factors[a]
            cb, lb = factors[b]
            if len(lb) >= len(la):
                continue
            cells = np.unique(ca.astype(np.int64) * len(lb) + cb)
            per_parent = np.bincount(cells // len(lb), minlength=len(la))
            parents_per_label = np.bincount(cells % len(lb), minlength=len(lb))
            if per_parent.min() > 1 and parents_per_label.max() > 1 and len(ca) / len(cells) >= REPLICATE_CELLS:
                warn_user(
                    f"the labels of {b!r} repeat within the levels of {a!r} (e.g. {b} {lb[0]!r} occurs in "
                    f"{parents_per_label[0]} levels of {a}); (1 | {a}) + (1 | {b}) treats them as crossed. If "
                    f"each {b} belongs to one {a} (nested), write (1 | {a}/{b}) or give {b} unique labels")
                return


PER_OBSERVATION_IDENTIFIABLE = ("ar1",)
"""Structures that stay identifiable beside a residual when each observation has its own random effect
(AR(1) plus a nugget, which glmmTMB fits); every other structure has a diagonal that absorbs σ²."""

_CONFOUNDED_WITH_RESIDUAL = {
    "us": "has a free variance per effect, and each of them adds to σ² on the same diagonal",
    "diag": "has a free variance per effect, and each of them adds to σ² on the same diagonal",
    "cs": "adds its within-group variance σ_d² to σ² on the diagonal (only the sum is identified)",
    "toep": "has a lag-0 variance that adds to σ² on the diagonal (only the sum is identified)",
}


def _fingerprint(y: np.ndarray) -> str:
    """A short digest of the response, so that ``anova`` can refuse models fitted to different data."""
    import hashlib

    return hashlib.sha1(np.ascontiguousarray(y).tobytes()).hexdigest()[:16]
