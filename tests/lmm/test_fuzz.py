"""Fuzzing the fitting functions with awkward inputs (hypothesis, derandomised so CI is stable and fast):
data shapes (one group, groups of one row, one-level factors), missing values in every column, infinite
values, scales from 1e-120 to 1e120, constant columns, and a set of formulas and gls correlation structures.

Every example must end in one of two ways:

* a fit whose estimates are finite and equal to a reference: the dense textbook likelihood of
  :mod:`lmmteach.textbook` at the reported estimates, the same fit on the data with the incomplete rows
  removed by hand, and (ML) a log-likelihood at least that of ordinary least squares, which is in the
  parameter space;
* a ``ValueError``/``TypeError`` raised by lmmteach itself (the last frame of the traceback is lmmteach's
  code), never a NumPy/pandas/SciPy error, a RuntimeWarning (an error in this suite), a NaN or a hang.
"""

from __future__ import annotations

import traceback
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import lmmteach as lt
from lmmteach import textbook as tb

SETTINGS = settings(derandomize=True, max_examples=150, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
LOGLIK_RTOL = 1e-6  # our profiled likelihood against the dense textbook one at the same estimates
OLS_SLACK = 1e-6  # relative: an ML fit may not be below ordinary least squares (a point of its parameter space)
SCALES = [1.0, 1e-6, 1e6, 1e-120, 1e120]
LMER_FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x + f + (1 | g)",
    "y ~ f * x + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ log(x) + (1 | g)",
    "y ~ poly(x, 2) + (1 | g)",
    "y ~ x + (1 | g) + (1 | f)",
    "y ~ 0 + f + (1 | g)",
    "y ~ . + (1 | g)",
]
GLS_FORMULAS = ["y ~ x", "y ~ x + f", "y ~ 1"]


def _scale(draw) -> float:
    """1 half of the time, else one of :data:`SCALES` (1e±120 are beyond what a column may hold)."""
    return 1.0 if draw(st.booleans()) else draw(st.sampled_from(SCALES))


@st.composite
def messy_data(draw):
    """y, x (numeric), f (factor), g (groups), t (time within group): small, unbalanced, possibly broken."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    G = draw(st.integers(1, 9))
    sizes = rng.integers(1, draw(st.integers(2, 8)), size=G)
    g = np.repeat(np.arange(G), sizes)
    n = len(g)
    x = rng.normal(size=n)
    kind = draw(st.sampled_from(["normal", "constant", "integer", "positive"]))
    if kind == "constant":
        x = np.full(n, 1.5)
    elif kind == "integer":
        x = rng.integers(0, 4, size=n).astype(float)
    elif kind == "positive":
        x = np.exp(x)
    y = 1.0 + 0.5 * x + rng.normal(size=G)[g] + rng.normal(size=n)
    if draw(st.integers(0, 9)) == 0:
        y[:] = 3.0
    n_levels = draw(st.integers(1, 3))
    f = rng.choice(list("abc")[:n_levels], size=n)
    times = draw(st.sampled_from(["positions", "integers", "continuous"]))
    t = np.concatenate([np.sort(rng.choice(10, size=k, replace=False)) if times == "integers" else
                        np.sort(rng.uniform(0, 5, size=k)).round(3) if times == "continuous" else np.arange(k)
                        for k in sizes]).astype(float)
    d = pd.DataFrame({"y": y * _scale(draw), "x": x * _scale(draw), "f": pd.Categorical(f),
                      "g": [f"s{i}" for i in g], "t": t})
    if draw(st.booleans()):  # missing values in one or two columns
        for col in draw(st.lists(st.sampled_from(["y", "x", "f", "g", "t"]), min_size=1, max_size=2, unique=True)):
            d.loc[d.index[rng.integers(0, n, size=max(1, n // 8))], col] = np.nan
    if draw(st.integers(0, 14)) == 0:
        d.loc[d.index[0], draw(st.sampled_from(["y", "x", "t"]))] = np.inf
    return d


def _assert_clear_error(err: BaseException) -> None:
    """A ValueError/TypeError of lmmteach's own, raised in lmmteach's code."""
    event(f"refused: {str(err)[:40]}")
    assert isinstance(err, (ValueError, TypeError)), f"{type(err).__name__}: {err}"
    assert type(err) in (ValueError, TypeError) or type(err).__module__.startswith("lmmteach"), type(err)
    last = traceback.extract_tb(err.__traceback__)[-1]
    assert "lmmteach" in last.filename, f"raised in {last.filename}: {err}"
    assert "raise" in (last.line or ""), f"not raised by lmmteach (line {last.lineno}: {last.line}): {err}"
    assert str(err)


def _ols_loglik(y, X) -> float:
    n = len(y)
    rss = float(np.sum((y - X @ np.linalg.lstsq(X, y, rcond=None)[0]) ** 2)) if X.shape[1] else float(y @ y)
    return -0.5 * n * (1 + np.log(2 * np.pi * rss / n))


def _fit_quietly(fun, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # rows dropped, singular fits: said, and allowed here
        return fun(*args, **kwargs)


def _cleaned(data, columns):
    """The rows a fit should keep: complete in the columns it uses (by hand, not by lmmteach)."""
    return data.dropna(subset=[c for c in columns if c in data.columns])


@SETTINGS
@given(messy_data(), st.sampled_from(LMER_FORMULAS), st.booleans())
def test_lmer_gives_a_checked_fit_or_a_clear_error(data, formula, reml):
    try:
        m = _fit_quietly(lt.lmer, formula, data.drop(columns="t"), reml=reml)
    except (ValueError, TypeError) as err:
        _assert_clear_error(err)
        return
    event("fitted")
    assert np.isfinite(m.loglik) and np.all(np.isfinite(m.fixef)) and np.isfinite(m.sigma) and m.sigma > 0
    d, dev = m.design, m.devfun
    Sigmas = [m.sigma**2 * s.relcov(t) for s, t in zip(dev.structures, dev.split(m.theta))]
    y, X, _, _, S = tb.general_design_matrices(d, Sigmas, m.sigma**2)
    dense = tb.loglik_reml(y, X, S) if reml else tb.loglik_ml(y, X, S)
    assert m.loglik == pytest.approx(dense, rel=LOGLIK_RTOL)
    if not reml:
        ols = _ols_loglik(d.y, d.X)
        assert m.loglik >= ols - OLS_SLACK * abs(ols)
    clean = _cleaned(data.drop(columns="t"), lt.parse_formula(m.formula).variables())
    if len(clean) < len(data):
        again = _fit_quietly(lt.lmer, formula, clean, reml=reml)
        assert again.nobs == m.nobs
        assert again.loglik == pytest.approx(m.loglik, rel=1e-8)


@SETTINGS
@given(messy_data(), st.sampled_from(GLS_FORMULAS), st.sampled_from([None, "cs", "ar1", "car1", "toep", "un"]),
       st.booleans(), st.booleans())
def test_gls_gives_a_checked_fit_or_a_clear_error(data, formula, correlation, heteroscedastic, reml):
    try:
        m = _fit_quietly(lt.gls, formula, data, group="g", time="t", correlation=correlation,
                         heteroscedastic=heteroscedastic, reml=reml)
    except (ValueError, TypeError) as err:
        _assert_clear_error(err)
        return
    event("fitted")
    assert np.isfinite(m.loglik) and np.all(np.isfinite(m.fixef)) and np.isfinite(m.sigma) and m.sigma > 0
    d = m.design
    V = m.devfun.covariance.matrix(m.theta)
    S = tb.gls_covariance(d.group, d.time, V, m.sigma**2)
    dense = tb.loglik_reml(d.y, d.X, S) if reml else tb.loglik_ml(d.y, d.X, S)
    assert m.loglik == pytest.approx(dense, rel=LOGLIK_RTOL)
    if not reml and correlation != "car1":  # car1's independence is the limit φ → 0, not a point of (0, 1)
        ols = _ols_loglik(d.y, d.X)
        assert m.loglik >= ols - OLS_SLACK * abs(ols)
    clean = _cleaned(data, lt.parse_formula(formula).variables() + ["g", "t"])
    if len(clean) < len(data):
        again = _fit_quietly(lt.gls, formula, clean, group="g", time="t", correlation=correlation,
                             heteroscedastic=heteroscedastic, reml=reml)
        assert again.loglik == pytest.approx(m.loglik, rel=1e-8)
