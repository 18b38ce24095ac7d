"""One deviance interface behind every engine (issue 22): the engines implement it, the callers do not ask
which engine they hold, and what the interface promises holds for each engine."""

import re
from pathlib import Path

import numpy as np
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.lmm.blocked import BlockedDeviance
from lmmteach.lmm.deviance import ProfiledDeviance
from lmmteach.lmm.gls import GLSDeviance
from lmmteach.lmm.profiled import DevianceFunction, RandomEffectsDeviance, StackedDeviance

ROOT = Path(__file__).resolve().parents[2] / "lmmteach"
CALLERS = ["lmm/model.py", "lmm/fitted.py", "lmm/optimize.py", "inference/profile.py", "inference/bootstrap.py",
           "inference/satterthwaite.py", "inference/confint.py", "glmm/pirls.py", "glmm/laplace.py"]
ENGINE_QUESTION = re.compile(r"isinstance\([^)]*(Deviance|Crossproducts|Evaluation)|hasattr\(|getattr\([^)]*(gradient|"
                             r"condvar|n_responses)|single_factor|has_gradient|exact_gradient")


def test_every_engine_implements_the_interface():
    assert issubclass(ProfiledDeviance, RandomEffectsDeviance) and issubclass(BlockedDeviance, RandomEffectsDeviance)
    assert issubclass(GLSDeviance, DevianceFunction)


@pytest.mark.parametrize("path", CALLERS)
def test_callers_do_not_ask_which_engine(path):
    text = (ROOT / path).read_text()
    found = [m.group(0) for m in ENGINE_QUESTION.finditer(text)]
    assert not found, f"{path} asks which engine it holds: {found}"


def _models():
    return {
        "one factor": shared.fit("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        "blocked": shared.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
        "gls": lt.gls("distance ~ age", lt.load_orthodont(), group="Subject", time="age", correlation="ar1"),
    }


@pytest.mark.parametrize("name", ["one factor", "blocked", "gls"])
def test_stacked_responses_are_the_responses_one_by_one(name):
    """``with_y`` of K responses evaluates K θ's, each as the deviance of its own response (natively for the
    one-factor engine, one at a time for the others: :class:`StackedDeviance`)."""
    m = _models()[name]
    rng = np.random.default_rng(3)
    y = m.design.y
    Y = y + rng.normal(scale=0.1 * y.std(), size=(3, len(y)))
    thetas = m.theta + rng.uniform(0.01, 0.1, size=(3, len(m.theta)))
    stacked = m.devfun.with_y(m.design.fitting_response(Y))
    assert stacked.n_responses == 3
    assert isinstance(stacked, StackedDeviance) == (name != "one factor")
    e = stacked.evaluate(thetas, gradient=True)
    for k in range(3):
        one = m.devfun.with_y(m.design.fitting_response(Y[k])).evaluate(thetas[k], gradient=True)
        assert e.deviance[k] == pytest.approx(one.deviance, rel=1e-12)
        np.testing.assert_allclose(e.gradient[k], one.gradient, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(e.beta[k], one.beta, rtol=1e-10)


@pytest.mark.parametrize("name", ["one factor", "blocked", "gls"])
def test_reml_switch_and_the_one_formula(name):
    """``with_reml`` flips the criterion; ML and REML deviances differ by log|X'V⁻¹X| and the dof terms,
    written once in :func:`profiled_deviance`."""
    from lmmteach.lmm.profiled import profiled_deviance

    m = _models()[name]
    for reml in (False, True):
        f = m.devfun.with_reml(reml)
        e = f.evaluate(m.theta)
        n, p = f.cp.n, f.p
        logdet_A = np.linalg.slogdet(e.A)[1]
        expected = profiled_deviance(e.logdet_V, e.pwrss, n, p, reml, logdet_A, getattr(f.cp, "log_weights", 0.0))
        assert e.deviance == pytest.approx(expected, rel=1e-10)


def test_too_large_a_dense_schur_complement_is_a_clear_error(monkeypatch):
    """The dense blocked engine, asked for a Schur complement that would not fit, stops with a ValueError
    naming the factor and the size (not a MemoryError); ``mk_devfun`` gives such designs the sparse Schur
    complement long before (tests/lmm/test_sparse_schur.py)."""
    import lmmteach.lmm.blocked as blocked

    monkeypatch.setattr(blocked, "MAX_SCHUR_BYTES", 8 * 5**2)  # 5 columns of block r at most
    with pytest.raises(ValueError, match=r"sample \(6 levels x 1\).*Schur complement"):
        lt.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", shared.data("penicillin"))


def _crossed_data(n_subj: int, n_item: int, seed: int = 7):
    import pandas as pd

    rng = np.random.default_rng(seed)
    subj, item = np.repeat(np.arange(n_subj), 2 * n_item), np.tile(np.repeat(np.arange(n_item), 2), n_subj)
    x = np.tile([-1.0, 1.0], n_subj * n_item)  # two rows per subject × item cell: x sums to zero there, x weighted not
    return pd.DataFrame({"y": rng.normal(size=len(subj)), "x": x, "s": subj.astype(str), "i": item.astype(str),
                         "g": rng.integers(0, 7, len(subj)).astype(str)})


@pytest.mark.filterwarnings("ignore:the labels of")  # crossed on purpose
@pytest.mark.parametrize("formula, shape", [
    ("y ~ x + (x | s)", (40, 6)),  # one factor, vector-valued
    ("y ~ x + (1 | s) + (1 | i)", (60, 12)),  # scalar terms: the level pairs
    ("y ~ x + (1 | s) + (1 | i)", (520, 30)),  # fully crossed, 241,800 level pairs: reweighted dense
    ("y ~ x + (x | s) + (1 | i)", (50, 10)),  # a vector term: Z_r'Z₁ dense
    ("y ~ x + (1 | s) + (0 + x | i) + (1 | g)", (45, 8)),  # three factors, a slope whose cells sum to zero
])
def test_reweighted_equals_the_engine_of_the_weighted_design(formula, shape):
    """What PIRLS asks of an engine built once (``reweighted``) equals a new engine of the weighted design."""
    from dataclasses import replace

    from lmmteach.lmm.design import lformula

    design = lformula(formula, _crossed_data(*shape))
    rng = np.random.default_rng(3)
    w, z = rng.uniform(0.02, 0.25, design.nobs), rng.normal(size=design.nobs)
    base = lt.mk_devfun(design, reml=False)
    theta = rng.uniform(0.4, 1.3, base.n_theta)
    fresh = lt.mk_devfun(replace(design, y=z, weights=w), reml=False).evaluate(theta)
    for _ in range(2):  # the second call reuses the index structure
        again = base.reweighted(w, z).evaluate(theta)
        assert again.deviance == pytest.approx(fresh.deviance, rel=1e-12)
        assert again.logdet_V == pytest.approx(fresh.logdet_V, rel=1e-12)
        np.testing.assert_allclose(again.beta, fresh.beta, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(again.u_vector, fresh.u_vector, rtol=1e-10, atol=1e-12)


REWEIGHT_RTOL = 1e-11
"""Cross-products summed in another order (weighted bincounts versus sparse products of the weighted rows):
equal to rounding, a few units of 1e-16 per term summed."""
REWEIGHT_GRADIENT_RTOL = 1e-8
"""The gradient from them: differences such as W = Z'Z − T'T cancel some of those digits (and a dense Z_r'WZ₁ of
scalar terms takes the general blocks where from_design's sparse one takes the level pairs)."""


@pytest.mark.filterwarnings("ignore:the labels of")  # crossed on purpose
@pytest.mark.parametrize("formula, shape, kept, dense_r1, sparse_schur", [
    ("y ~ x + (1 | s) + (1 | i)", (60, 12), 0.08, False, False),  # scalar, crossed, few cells filled: level pairs
    ("y ~ x + (1 | s) + (1 | i)", (60, 12), 0.08, False, True),  # the same for the sparse Schur complement
    ("y ~ x + (x | s) + (1 | i)", (50, 10), 1.0, False, True),  # a vector term, sparse Schur complement
    ("y ~ x + (1 | s) + (1 | i)", (40, 6), 1.0, True, False),  # scalar, fully crossed: Z_r'WZ₁ dense
    ("y ~ x + (x | s) + (1 | i)", (50, 10), 1.0, True, False),  # a vector term, crossed
    ("y ~ x + (x | s) + (1 | i)", (60, 12), 0.08, False, False),  # a vector term, few cells filled
    ("y ~ x + (1 | i/g)", (30, 8), 1.0, False, False),  # nested: g within i (i:g has the more levels, it is block 1)
    ("y ~ x + (1 + x | i/g)", (30, 8), 1.0, False, False),  # nested, vector terms
    ("y ~ x + (1 | s) + (0 + x | i) + (1 | g)", (45, 8), 1.0, None, False),  # three factors
])
def test_reweighted_crossproducts_equal_those_of_the_weighted_design(formula, shape, kept, dense_r1, sparse_schur):
    """``BlockedCrossproducts.reweighted`` (precomputed slots, Z never copied) gives the cross-products that
    ``from_design`` builds from scratch for the design with those prior weights and response: Z'WZ by blocks,
    Z'WX, Z'We (e the weighted OLS residual, the same in any basis of X), e'We, b_ols and Σ log w."""
    from dataclasses import replace

    import scipy.sparse as sp

    from lmmteach.lmm.blocked import BlockedCrossproducts
    from lmmteach.lmm.design import lformula
    from lmmteach.lmm.sparse_schur import SparseSchurDeviance

    data = _crossed_data(*shape)
    data = data.sample(frac=kept, random_state=5) if kept < 1 else data
    design = lformula(formula, data)
    rng = np.random.default_rng(11)
    w, z = rng.uniform(0.02, 0.25, design.nobs), rng.normal(size=design.nobs)
    base = BlockedCrossproducts.from_design(design, sparse_schur)
    fresh = BlockedCrossproducts.from_design(replace(design, y=z, weights=w), sparse_schur)
    for _ in range(2):  # the second call reuses the index structure
        again = base.reweighted(w, z)
        if dense_r1 is not None:
            assert sp.issparse(again.A_r1) != dense_r1
        assert sp.issparse(again.Arr) == sparse_schur
        for name in ("A11", "A_r1", "Arr"):
            np.testing.assert_allclose(_dense(getattr(again, name)), _dense(getattr(fresh, name)),
                                       rtol=REWEIGHT_RTOL, atol=REWEIGHT_RTOL * np.abs(_dense(getattr(fresh, name))).max())
        p = fresh.p
        for name in ("Z1Xy", "ZrXy"):  # Z'W^½[Q e]: Z'WX = (Z'W^½Q) R, and Z'W^½e
            a, f = getattr(again, name), getattr(fresh, name)
            scale = np.abs(f).max()
            np.testing.assert_allclose(a[..., :p] @ again.R, f[..., :p] @ fresh.R, rtol=REWEIGHT_RTOL,
                                       atol=REWEIGHT_RTOL * np.abs(f[..., :p] @ fresh.R).max())
            np.testing.assert_allclose(a[..., p], f[..., p], rtol=REWEIGHT_RTOL, atol=REWEIGHT_RTOL * scale)
        np.testing.assert_allclose(again.R.T @ again.R, fresh.R.T @ fresh.R, rtol=REWEIGHT_RTOL)  # X'WX
        assert again.yty == pytest.approx(fresh.yty, rel=REWEIGHT_RTOL)
        np.testing.assert_allclose(again.b_ols, fresh.b_ols, rtol=REWEIGHT_RTOL, atol=REWEIGHT_RTOL)
        assert again.log_weights == pytest.approx(fresh.log_weights, rel=REWEIGHT_RTOL)
        np.testing.assert_allclose(again.col_rms, fresh.col_rms, rtol=REWEIGHT_RTOL)  # (for starting values)
        # and what the evaluation reads from them (the level pairs' products of scalar terms, too)
        theta = rng.uniform(0.4, 1.3, sum(s.n_params for s in design.structures()))
        engine = SparseSchurDeviance if sparse_schur else BlockedDeviance
        dev_again, dev_fresh = (engine(c, design.structures(), reml=False).evaluate(theta).deviance
                                for c in (again, fresh))
        assert dev_again == pytest.approx(dev_fresh, rel=REWEIGHT_RTOL)
        if not sparse_schur:  # the exact gradient too (a dense Z_r'WZ₁ of scalar terms takes the general blocks)
            grad_again, grad_fresh = (BlockedDeviance(c, design.structures(), reml=False).evaluate(theta, True).gradient
                                      for c in (again, fresh))
            np.testing.assert_allclose(grad_again, grad_fresh, rtol=REWEIGHT_GRADIENT_RTOL,
                                       atol=REWEIGHT_GRADIENT_RTOL * np.abs(grad_fresh).max())


def _dense(a):
    return a.toarray() if hasattr(a, "toarray") else np.asarray(a)
