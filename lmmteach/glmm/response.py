"""glmer's response, as lme4 reads it, checked against the family's support.

* binomial, ``cbind(successes, failures) ~ ...``: y = successes / (successes + failures), prior weights the
  numbers of trials; both expressions must be whole numbers ≥ 0;
* binomial, a 0/1 column, a boolean, or a factor (its first level is failure, every other level success, as
  in R); or a proportion with ``weights=`` the numbers of trials (proportion × trials must be whole);
* Poisson: whole numbers ≥ 0.

:func:`glmm_data` returns the data with the response as one numeric column (and the trials as another), so
that the linear mixed model's design code (:func:`lmmteach.lmm.design.lformula`) builds X and Z unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..lmm.transforms import evaluate
from .._util import factor_levels
from .family import Family

__all__ = ["GlmmResponse", "glmm_data", "RESPONSE_COLUMN", "TRIALS_COLUMN"]

RESPONSE_COLUMN = "_glmer_y"
"""The column holding y (a proportion for binomial models, a count for Poisson) in the design's frame."""
TRIALS_COLUMN = "_glmer_trials"
"""The column holding the prior weights (numbers of trials for binomial models)."""

WHOLE_NUMBER_TOL = 1e-7
"""Successes (proportion × trials) and counts may differ from a whole number by this much (rounding in a CSV)."""

_CBIND = re.compile(r"^\s*cbind\s*\((.*)\)\s*$", flags=re.S)


@dataclass(frozen=True)
class GlmmResponse:
    """How the response was given: its text in the formula and the formula with the response replaced."""

    text: str  # as written: "cbind(incidence, size - incidence)", "r2", "TICKS"
    formula: str  # the formula with RESPONSE_COLUMN as its response
    has_trials: bool  # True when prior weights (trials or weights=) were given


def _split_cbind(inner: str, response: str) -> tuple[str, str]:
    depth, parts, start = 0, [], 0
    for i, ch in enumerate(inner):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ValueError(f"cbind() in the response {response!r} needs two expressions: "
                         "cbind(successes, failures)")
    return parts[0].strip(), parts[1].strip()


def _values(expr: str, data: pd.DataFrame, role: str) -> pd.Series:
    if expr in data.columns:
        return data[expr]
    try:
        value = evaluate(expr, data, {})
    except Exception as err:  # noqa: BLE001 -- formulaic raises many kinds; the message names the expression
        raise ValueError(f"cannot evaluate the {role} {expr!r} on data: {err}") from None
    return pd.Series(np.asarray(value, dtype=float).ravel(), index=data.index)


def _numeric(values: pd.Series, expr: str, role: str) -> pd.Series:
    """The values as floats (missing stay missing); text or other non-numbers are an error naming the column."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float)
    if not pd.api.types.is_numeric_dtype(values):
        raise ValueError(f"{role} {expr!r} must be numbers, but its type is {values.dtype} (e.g. "
                         f"{values.dropna().iloc[0]!r})" if values.notna().any() else
                         f"{role} {expr!r} has no values")
    return values.astype(float)


def _whole(x: np.ndarray) -> np.ndarray:
    return np.abs(x - np.round(x)) <= WHOLE_NUMBER_TOL * np.maximum(1.0, np.abs(x))


def _first_bad(mask: np.ndarray, index: pd.Index, values: np.ndarray) -> str:
    k = int(np.flatnonzero(mask)[0])
    return f"{int(mask.sum())} row(s), e.g. row {index[k]!r}: {values[k]:g}"


def glmm_data(formula: str, data: pd.DataFrame, family: Family, weights=None) -> tuple[pd.DataFrame, GlmmResponse]:
    """``data`` with the response (and trials) as numeric columns, checked against the family's support."""
    if not isinstance(formula, str) or "~" not in formula:
        raise ValueError(f"formula must be a string 'response ~ terms', not {formula!r}")
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, not {type(data).__name__}")
    lhs, rhs = formula.split("~", 1)
    response = lhs.strip()
    if not response:
        raise ValueError(f"the formula {formula!r} has no response left of '~'")
    columns: dict[str, pd.Series] = {}
    m = _CBIND.match(response)
    if weights is not None:
        if isinstance(weights, str):
            if weights not in data.columns:
                raise ValueError(f"weights={weights!r} names no column of data")
            trials = pd.to_numeric(data[weights], errors="coerce")
        else:
            w = np.asarray(weights, dtype=float).ravel()
            if len(w) != len(data):
                raise ValueError(f"weights has {len(w)} value(s) but data has {len(data)} rows")
            trials = pd.Series(w, index=data.index)
        bad = trials.notna() & ~(trials > 0)
        if bad.any():
            raise ValueError(f"weights must be positive; {_first_bad(bad.to_numpy(), data.index, trials.to_numpy())}")
    else:
        trials = None
    if m:
        if family.name != "binomial":
            raise ValueError(f"cbind(successes, failures) is a binomial response; the family is {family.name}")
        if weights is not None:
            raise ValueError("give the numbers of trials either by cbind(successes, failures) or by weights=, "
                             "not both")
        s_expr, f_expr = _split_cbind(m.group(1), response)
        succ = _numeric(_values(s_expr, data, "number of successes"), s_expr, "cbind(): the number of successes")
        fail = _numeric(_values(f_expr, data, "number of failures"), f_expr, "cbind(): the number of failures")
        for expr, v in ((s_expr, succ), (f_expr, fail)):
            x = v.to_numpy()
            ok = np.isnan(x)
            bad = ~ok & ((x < 0) | ~_whole(np.nan_to_num(x)))
            if bad.any():
                raise ValueError(f"cbind(): {expr!r} must hold whole numbers >= 0 (counts of successes and "
                                 f"failures); {_first_bad(bad, data.index, x)}")
        total = succ + fail
        zero = (total == 0).to_numpy()
        if zero.any():
            raise ValueError(f"cbind(): {int(zero.sum())} row(s) have no trials ({s_expr} + {f_expr} = 0), e.g. row "
                             f"{data.index[int(np.flatnonzero(zero)[0])]!r}; drop them (they carry no information)")
        columns[RESPONSE_COLUMN] = succ / total
        columns[TRIALS_COLUMN] = total
    else:
        if response not in data.columns:
            y = _values(response, data, "response")
        else:
            y = data[response]
        if family.name == "binomial" and (isinstance(y.dtype, pd.CategoricalDtype) or not
                                          pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y)):
            levels = factor_levels(y)
            if len(levels) > 2 and not pd.api.types.is_bool_dtype(y):
                raise ValueError(f"the response {response!r} has {len(levels)} levels; a binomial response has "
                                 "two (the first is failure, as in R), or is 0/1, a proportion, or cbind()")
            y = y.map({lev: float(k > 0) for k, lev in enumerate(levels)}) if not pd.api.types.is_bool_dtype(y) \
                else y.astype(float)
        y = _numeric(y, response, f"the {family.name} response")
        x = y.to_numpy()
        present = ~np.isnan(x)
        if family.name == "binomial":
            outside = present & ((x < 0) | (x > 1))
            if outside.any():
                raise ValueError(f"the binomial response {response!r} must be 0/1 or a proportion in [0, 1]; "
                                 f"{_first_bad(outside, data.index, x)} (for counts of successes use "
                                 "cbind(successes, failures))")
            n = np.ones_like(x) if trials is None else trials.to_numpy()
            s = x * n
            bad = present & ~np.isnan(n) & ~_whole(np.nan_to_num(s))
            if bad.any():
                what = "0 or 1" if trials is None else "a whole number of successes (proportion × weights)"
                raise ValueError(f"the binomial response {response!r} must give {what}; "
                                 f"{_first_bad(bad, data.index, np.nan_to_num(s))} non-integer successes")
        else:
            bad = present & ((x < 0) | ~_whole(np.nan_to_num(x)))
            if bad.any():
                raise ValueError(f"the Poisson response {response!r} must hold counts (whole numbers >= 0); "
                                 f"{_first_bad(bad, data.index, x)}")
        columns[RESPONSE_COLUMN] = y
        columns[TRIALS_COLUMN] = trials if trials is not None else pd.Series(1.0, index=data.index)
    for name in (RESPONSE_COLUMN, TRIALS_COLUMN):
        if name in data.columns:
            raise ValueError(f"data may not have a column named {name!r} (glmer uses it internally)")
    out = data.assign(**columns)
    return out, GlmmResponse(response, f"{RESPONSE_COLUMN} ~ {rhs}", m is not None or weights is not None)
