"""Parse lme4-style model formulas.

A formula such as ``science ~ 1 + grpCmath + grade + (grpCmath + grpChoursTV | idschool)`` has

* a **response** (left of ``~``);
* **fixed-effects terms** -- ``1``/``0``/``-1``, variables ``x``, interactions ``x:f`` and crossings
  ``x*f`` (``= x + f + x:f``), ``(a + b)^2``; ``C(x)`` or ``factor(x)`` treats a numeric column as a factor;
  expressions such as ``log(x)``, ``I(x**2)``, ``poly(x, 2)``, ``scale(x)``, ``center(x)`` (see
  :mod:`lmmteach.lmm.transforms`) and ``offset(expr)``. The fixed part is read by formulaic, a maintained
  implementation of Wilkinson formulas, which orders terms as R does (by degree, then as written: ``Time:Diet
  + Diet + Time`` gives ``Diet, Time, Time:Diet``);
* **random-effects terms** ``(expr | g)``; ``(expr || g)`` expands, as in lme4, into independent terms
  ``(1 | g) + (0 + x | g) + ...``; the grouping factor may be built on the fly: ``(1 | a:b)`` groups by
  the combinations of a and b, and ``(1 | a/b)`` (b nested in a) expands as lme4 does into
  ``(1 | b:a) + (1 | a)``; a covariance structure may wrap the bar, glmmTMB style:
  ``us(expr | g)``, ``diag(expr | g)``, ``cs(expr | g)``, ``ar1(expr | g)``, ``toep(expr | g)``.

This module only reads the text. Turning variables into columns is :mod:`lmmteach.lmm.design`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .covariance import STRUCTURES
from .transforms import BACKTICK_ADVICE, FACTOR_FUNCTIONS, check_expression, expression_variables

__all__ = ["Term", "RandomTerm", "Formula", "FormulaError", "parse_formula"]

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
_STRUCTURE_CALL = re.compile(r"^(" + "|".join(STRUCTURES) + r")?\s*\((.*)\)$", flags=re.S)
_FACTOR_CALL = re.compile(r"^(C|factor)\(\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*\)$")


@dataclass(frozen=True)
class Term:
    """One fixed-effects term: a tuple of variables (column names or expressions such as ``poly(x, 2)``)
    multiplied together (``()`` is the intercept)."""

    variables: tuple[str, ...]

    @property
    def label(self) -> str:
        return ":".join(self.variables) if self.variables else "(Intercept)"


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``structure(terms | group)``."""

    intercept: bool
    terms: tuple[Term, ...]  # non-intercept terms, in order
    group: str  # the grouping factor's name as lme4 writes it: "g", "cask:batch", "c:(b:a)"
    structure: str = "us"
    text: str = ""
    group_vars: tuple[str, ...] = ()  # the data columns whose combinations form the groups ((group,) if empty)

    @property
    def n_terms(self) -> int:
        return int(self.intercept) + len(self.terms)

    @property
    def grouping_variables(self) -> tuple[str, ...]:
        return self.group_vars or (self.group,)


@dataclass(frozen=True)
class Formula:
    """A parsed formula: response, fixed part (intercept flag and terms), random terms."""

    text: str
    response: str
    intercept: bool
    terms: tuple[Term, ...]
    random: tuple[RandomTerm, ...] = field(default=())
    factor_vars: frozenset = field(default=frozenset())  # variables wrapped in C()/factor()
    offsets: tuple[str, ...] = field(default=())  # offset(...) expressions of the fixed part

    @property
    def fixed_text(self) -> str:
        parts = ["1" if self.intercept else "0"] + [t.label for t in self.terms] + list(self.offsets)
        return f"{self.response} ~ " + " + ".join(parts)

    def variables(self) -> list[str]:
        """Every data column the formula uses (response, fixed, offsets, random, grouping), in order of
        appearance; an expression contributes the columns it reads (``log(weight)`` -> ``weight``)."""
        out: list[str] = expression_variables(self.response)
        for t in self.terms:
            for v in t.variables:
                out += expression_variables(v)
        for o in self.offsets:
            out += expression_variables(o)
        for r in self.random:
            for t in r.terms:
                out += t.variables
            out += r.grouping_variables
        seen: dict[str, None] = {}
        for v in out:
            seen.setdefault(v, None)
        return list(seen)


class FormulaError(ValueError):
    """A malformed formula; the message says where."""


def _top_level(text: str):
    """Positions in ``text`` outside any parentheses (checking that they balance)."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced ')' at position {i} in {text!r}")
        elif depth == 0:
            yield i
    if depth != 0:
        raise FormulaError(f"unbalanced '(' in {text!r}")


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` on ``sep`` where it stands outside parentheses."""
    parts, start = [], 0
    for i in _top_level(text):
        if i >= start and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
    parts.append(text[start:])
    return parts


def _split_terms(rhs: str) -> list[tuple[str, str]]:
    """Split a right-hand side into (sign, term) pairs on top-level ``+`` and ``-``."""
    out, start, sign = [], 0, "+"
    for i in _top_level(rhs):
        if rhs[i] not in "+-":
            continue
        piece = rhs[start:i].strip()
        if piece:
            out.append((sign, piece))
        elif i > 0 and rhs[:i].strip():
            raise FormulaError(f"empty term before {rhs[i]!r} at position {i} in {rhs!r}")
        sign, start = rhs[i], i + 1
    piece = rhs[start:].strip()
    if not piece:
        raise FormulaError(f"formula ends with {sign!r} and no term after it: {rhs!r}")
    out.append((sign, piece))
    return out


def _variable(token: str, factor_vars: set[str], where: str) -> str:
    token = token.strip()
    m = _FACTOR_CALL.match(token)
    if m:
        factor_vars.add(m.group(2))
        return m.group(2)
    if token.startswith("`") and token.endswith("`") and len(token) > 2:
        return token[1:-1]
    if not _NAME.match(token):
        raise FormulaError(f"cannot read {token!r} as a variable name in {where!r}{BACKTICK_ADVICE}")
    return token


def _expand_term(text: str, factor_vars: set[str], where: str) -> list[Term]:
    """``a*b`` -> a, b, a:b; ``a:b`` -> a:b; ``a`` -> a."""
    factors = [f for f in _split_top(text, "*")]
    if any(not f.strip() for f in factors):
        raise FormulaError(f"'*' needs a term on both sides in {where!r}")
    groups = []
    for f in factors:
        pieces = _split_top(f, ":")
        if any(not p.strip() for p in pieces):
            raise FormulaError(f"':' needs a variable on both sides in {where!r}")
        groups.append(tuple(_variable(p, factor_vars, where) for p in pieces))
    if len(groups) == 1:
        return [Term(groups[0])]
    # full crossing: every non-empty subset of the '*' operands, lower orders first
    from itertools import combinations

    out = []
    for k in range(1, len(groups) + 1):
        for combo in combinations(groups, k):
            vars_: list[str] = []
            for g in combo:
                vars_ += [v for v in g if v not in vars_]
            out.append(Term(tuple(vars_)))
    return out


def _parse_linear(rhs: str, factor_vars: set[str], where: str) -> tuple[bool, list[Term]]:
    """Parse a sum of terms without random parts; return (intercept, terms)."""
    intercept = True
    terms: list[Term] = []
    for sign, piece in _split_terms(rhs):
        if piece in ("1", "0"):
            if sign == "-" and piece == "1" or piece == "0":
                intercept = False
            else:
                intercept = True
            continue
        if sign == "-":
            drop = set(t.variables for t in _expand_term(piece, factor_vars, where))
            terms = [t for t in terms if t.variables not in drop]
            continue
        for t in _expand_term(piece, factor_vars, where):
            if t.variables not in [u.variables for u in terms]:
                terms.append(t)
    return intercept, terms


_FORMULAIC_OPERATOR = re.compile(r"Operator `([^`]+)`")


def _parse_fixed(rhs: str, factor_vars: set[str], where: str) -> tuple[bool, list[Term], list[str]]:
    """Read the fixed part with formulaic: (intercept, terms in R's order, offset expressions)."""
    from formulaic import Formula as _Formulaic
    from formulaic.errors import FormulaicError

    try:
        parsed = _Formulaic(rhs)
    except FormulaicError as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        m = _FORMULAIC_OPERATOR.search(message)
        if m and m.group(1) == ":":
            raise FormulaError(f"':' needs a variable on both sides in {where!r}") from None
        if m:
            raise FormulaError(f"'{m.group(1)}' needs a term on both sides in {where!r}") from None
        raise FormulaError(f"cannot read the fixed part {rhs!r} of {where!r}: {message.rstrip('.')}"
                           f"{BACKTICK_ADVICE}") from None
    intercept, terms, offsets = False, [], []
    for term in parsed:
        exprs = [f.expr for f in term.factors]
        if exprs == ["1"]:
            intercept = True
            continue
        if exprs == ["0"]:
            continue
        if any(e.startswith("offset(") for e in exprs):
            if len(exprs) > 1:
                raise FormulaError(f"an offset cannot be part of an interaction: {term!s} in {where!r}")
            offsets.append(exprs[0])
            check_expression(exprs[0])
            continue
        terms.append(Term(tuple(_fixed_variable(e, f.eval_method.value, factor_vars, where)
                                for e, f in zip(exprs, term.factors))))
    return intercept, terms, offsets


def _fixed_variable(expr: str, method: str, factor_vars: set[str], where: str) -> str:
    """A factor of a fixed term: a column name, ``C(x)``/``factor(x)`` (x as a factor) or an expression."""
    m = _FACTOR_CALL.match(expr)
    if m:
        factor_vars.add(m.group(2))
        return m.group(2)
    if method == "lookup":
        if _NAME.match(expr) or f"`{expr}`" in where:
            return expr
        raise FormulaError(f"cannot read {expr!r} as a variable name in {where!r}{BACKTICK_ADVICE}")
    if expr.split("(")[0].strip() in FACTOR_FUNCTIONS:
        raise FormulaError(f"{expr!r} in {where!r}: C()/factor() take one column name, e.g. C(k)")
    try:
        check_expression(expr)
    except ValueError as err:
        raise FormulaError(f"{err} (in {where!r})") from None
    return expr


def _parse_random(inner: str, structure: str, text: str, factor_vars: set[str]) -> list[RandomTerm]:
    double = "||" in inner
    parts = _split_top(inner, "||" if double else "|")
    if len(parts) != 2:
        raise FormulaError(f"a random term needs exactly one '|' (or '||'): {text!r}")
    lhs, group = parts[0].strip(), parts[1].strip()
    if not lhs:
        raise FormulaError(f"nothing left of '|' in {text!r}; write (1 | {group or 'g'})")
    if not group:
        raise FormulaError(f"no grouping factor right of '|' in {text!r}")
    factors = _grouping_factors(group, text)
    intercept, terms = _parse_linear(lhs, factor_vars, text)
    if not double:
        if not intercept and not terms:
            raise FormulaError(f"random term {text!r} has no terms")
        if len(factors) == 1:
            return [RandomTerm(intercept, tuple(terms), factors[0][0], structure, text, factors[0][1])]
        return [RandomTerm(intercept, tuple(terms), name, structure, f"({lhs} | {name})", vars_)
                for name, vars_ in factors]
    if structure != "us":
        raise FormulaError(f"'||' cannot be combined with {structure}(): {text!r}")
    out = []
    if intercept:
        out += [RandomTerm(True, (), name, "us", f"(1 | {name})", vars_) for name, vars_ in factors]
    for t in terms:
        out += [RandomTerm(False, (t,), name, "us", f"(0 + {t.label} | {name})", vars_) for name, vars_ in factors]
    return out


def _grouping_factors(group: str, text: str) -> list[tuple[str, tuple[str, ...]]]:
    """The grouping factors right of the bar, as (lme4 name, data columns): ``g`` -> [("g", (g,))];
    ``a:b`` -> [("a:b", (a, b))]; ``a/b`` -> [("b:a", (b, a)), ("a", (a,))] (lme4's ``expandSlash``: the
    inner factor is the interaction with its parent, listed first); ``a/b/c`` adds ``c:(b:a)``."""
    nested = _split_top(group, "/")
    levels: list[tuple[str, tuple[str, ...]]] = []
    for part in nested:
        pieces = [p.strip() for p in _split_top(part, ":")]
        if any(not p for p in pieces):
            raise FormulaError(f"grouping factor {group!r} in {text!r} has an empty name around ':' or '/'")
        vars_ = []
        for p in pieces:
            name = p[1:-1] if p.startswith("`") and p.endswith("`") and len(p) > 2 else p
            if not (_NAME.match(name) or p.startswith("`")):
                raise FormulaError(f"grouping factor {group!r} in {text!r}: {p!r} is not a column name "
                                   f"(use a, a:b or a/b){BACKTICK_ADVICE}")
            vars_.append(name)
        if len(set(vars_)) < len(vars_):
            raise FormulaError(f"grouping factor {group!r} in {text!r} repeats a variable")
        if not levels:
            levels.append((":".join(vars_), tuple(vars_)))
        else:
            parent_name, parent_vars = levels[-1]
            inner = ":".join(vars_)
            name = f"{inner}:({parent_name})" if ":" in parent_name else f"{inner}:{parent_name}"
            levels.append((name, tuple(vars_) + parent_vars))
    return levels[::-1]


_DOT = re.compile(r"(?<![\w.])\.(?![\w.])")


def _pieces_text(pieces) -> list[str]:
    return [piece for _, piece in pieces]


def _quoted(name) -> str:
    name = str(name)
    return name if _NAME.match(name) else f"`{name}`"


def _expand_dot(text: str, columns) -> str:
    """``y ~ . + (1 | g)``: the ``.`` term replaced by every column of the data that the formula does not
    use elsewhere (response, other terms, random terms and grouping factors), in the data's order. (R's ``.``
    also adds the grouping factor as a fixed effect; "all other columns" is what is meant.)"""
    sides = _split_top(text, "~")
    if len(sides) != 2:
        return text
    pieces = _split_terms(sides[1].strip()) if sides[1].strip() else []
    dots = [k for k, (_, piece) in enumerate(pieces) if piece == "."]
    inside = [piece for piece in _pieces_text(pieces) if piece != "." and _DOT.search(re.sub(r"`[^`]*`", "", piece))]
    if inside:
        raise FormulaError(f"'.' (all other columns) can only be a term of its own, as in 'y ~ . + (1 | g)', "
                           f"not part of {inside[0]!r} in {text!r}; write the columns out")
    if not dots:
        return text
    if columns is None:
        raise FormulaError(f"'.' (all other columns) in {text!r} needs the data's columns")
    rest = [f"{sign} {piece}" for k, (sign, piece) in enumerate(pieces) if k not in dots]
    used = set(parse_formula(f"{sides[0]} ~ {' '.join(rest).lstrip('+ ') or '1'}").variables())
    others = [_quoted(c) for c in columns if str(c) not in used]
    if not others:
        raise FormulaError(f"'.' in {text!r} stands for the data's other columns, and there are none left")
    parts = [f"{sign} {piece}" if k not in dots else f"{sign} " + " + ".join(others)
             for k, (sign, piece) in enumerate(pieces)]
    return f"{sides[0].strip()} ~ {' '.join(parts).lstrip('+ ')}"


def parse_formula(text: str, columns=None) -> Formula:
    """Read an lme4-style formula. Raises :class:`FormulaError` (a ``ValueError``) saying what is wrong.
    ``columns`` (the data's column names) is needed for ``.``, "all other columns" (:func:`_expand_dot`)."""
    if not isinstance(text, str):
        raise TypeError(f"formula must be a string such as 'y ~ x + (1 | g)', not {type(text).__name__}")
    text = _expand_dot(text, columns)
    sides = _split_top(text, "~")
    if len(sides) != 2:
        raise FormulaError(f"a formula needs exactly one '~' (response ~ terms): {text!r}")
    response = sides[0].strip()
    if not response:
        raise FormulaError(f"no response left of '~' in {text!r}")
    factor_vars: set[str] = set()
    if _FACTOR_CALL.match(response):
        raise FormulaError(f"the response cannot be a factor: {text!r}")
    if response.startswith("`") and response.endswith("`") and len(response) > 2:
        response = response[1:-1]
    elif not _NAME.match(response):
        try:
            check_expression(response)
        except ValueError as err:
            raise FormulaError(f"{err} (the response of {text!r})") from None
    rhs = sides[1].strip()
    if not rhs:
        raise FormulaError(f"no terms right of '~' in {text!r}")
    fixed_parts, random_terms = [], []
    pieces = _split_terms(rhs)
    while pieces:
        sign, piece = pieces.pop(0)
        inner = piece[1:-1] if piece.startswith("(") and piece.endswith(")") else None
        if inner is not None and len(_split_top(inner, "|")) == 1 and len(_split_terms(inner)) > 1 and sign == "+":
            pieces = _split_terms(inner) + pieces  # redundant parentheses around a sum, as R's deparse writes
            continue
        m = _STRUCTURE_CALL.match(piece)
        if m and "|" in m.group(2):
            if sign == "-":
                raise FormulaError(f"a random term cannot be subtracted: {piece!r}")
            random_terms += _parse_random(m.group(2), m.group(1) or "us", piece, factor_vars)
        elif "|" in piece:
            raise FormulaError(f"a random term must be in parentheses, e.g. (1 | g): {piece!r}")
        else:
            fixed_parts.append(f"{sign} {piece}")
    fixed_rhs = " ".join(fixed_parts).strip() or "1"
    if fixed_rhs.startswith("+"):
        fixed_rhs = fixed_rhs[1:]
    intercept, terms, offsets = _parse_fixed(fixed_rhs, factor_vars, text)
    return Formula(text, response, intercept, tuple(terms), tuple(random_terms), frozenset(factor_vars),
                   tuple(offsets))
