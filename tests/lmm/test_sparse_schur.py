"""The sparse Schur complement (lmmteach/lmm/sparse_schur.py): the same deviance as the dense blocked
engine to rounding, and lme4's fits of a clustered crossed design (tests/reference/sparse_schur_reference.R
wrote the numbers and the data: 3,000 visits, 300 patients x 300 doctors within 20 clinics, 2% of the
visits to another clinic's doctor). Its 300 columns would go dense; the tests lower the switch-over."""

import numpy as np
import pandas as pd
import scipy.sparse as sp
import pytest

import _shared as shared
import lmmteach as lt
import lmmteach.lmm.engine as engine
import lmmteach.lmm.sparse_schur as sparse_schur
from lmmteach.lmm.blocked import BlockedDeviance
from lmmteach.lmm.sparse_schur import SparseSchurDeviance

REF = shared.reference("sparse_schur_reference")
DATA = pd.read_csv(shared.REFERENCE / "sparse_schur_data.csv")
LOGLIK_RTOL = 1e-6
EST_RTOL = 1e-4
DEVFUN_RTOL = 1e-9  # lme4's devFunOnly against ours at a fixed θ: no optimiser involved (as test_crossed.py)


@pytest.fixture
def sparse_engine(monkeypatch):
    """Every multi-factor design gets the sparse Schur complement."""
    monkeypatch.setattr(engine, "SPARSE_SCHUR_COLUMNS", 0)


def _devfuns(formula, reml, monkeypatch):
    design = lt.lformula(formula, DATA)
    dense = lt.mk_devfun(design, reml=reml)
    monkeypatch.setattr(engine, "SPARSE_SCHUR_COLUMNS", 0)
    sparse = lt.mk_devfun(design, reml=reml)
    assert type(dense) is BlockedDeviance and isinstance(sparse, SparseSchurDeviance)
    return dense, sparse


@pytest.mark.parametrize("formula", ["y ~ x + (1 | patient) + (1 | doctor)", "y ~ x + (1 | patient) + (x | doctor)",
                                     "y ~ x + (x | patient) + (1 | doctor)"])
@pytest.mark.parametrize("reml", [True, False])
def test_sparse_and_dense_schur_complements_agree_to_rounding(formula, reml, monkeypatch):
    dense, sparse = _devfuns(formula, reml, monkeypatch)
    for theta in (dense.theta0, 0.3 * dense.theta0 + 0.05, 3.0 * dense.theta0):
        e1, e2 = dense.evaluate(theta), sparse.evaluate(theta)
        assert e2.deviance == pytest.approx(e1.deviance, rel=shared.ROUNDING_RTOL)
        np.testing.assert_allclose(e2.beta, e1.beta, rtol=shared.ROUNDING_RTOL, atol=shared.ZERO_ATOL)
        assert e2.sigma2 == pytest.approx(e1.sigma2, rel=shared.ROUNDING_RTOL)
        for b1, b2 in zip(e1.term_blups, e2.term_blups):
            np.testing.assert_allclose(b2, b1, rtol=shared.ROUNDING_RTOL, atol=shared.ZERO_ATOL)
    factors = {name: [k for k, t in enumerate(dense.cp.terms) if t[0] == name] for name in ("patient", "doctor")}
    v1, v2 = e1.condvar(factors), e2.condvar(factors)
    for name in factors:
        np.testing.assert_allclose(v2[name], v1[name], rtol=shared.ROUNDING_RTOL, atol=shared.ZERO_ATOL)


@pytest.mark.parametrize("name", sorted(REF["fits"]))
def test_sparse_schur_fit_matches_lme4(name, sparse_engine):
    r = REF["fits"][name]
    m = shared.fit(r["formula"], DATA, reml=r["REML"])
    assert isinstance(m.devfun, SparseSchurDeviance) and m.converged
    assert m.fit_log.count("COBYQA") >= 1  # no exact gradient here: the derivative-free search
    assert m.loglik == pytest.approx(r["logLik"], rel=LOGLIK_RTOL)
    np.testing.assert_allclose(m.fixef.to_numpy(), r["beta"], rtol=EST_RTOL)
    assert m.sigma == pytest.approx(r["sigma"], rel=EST_RTOL)


@pytest.mark.parametrize("name", ["intercepts_ml", "intercepts_reml"])
def test_sparse_schur_deviance_matches_lme4_devfun(name, sparse_engine):
    r = REF["fits"][name]
    f = lt.mk_devfun(lt.lformula(r["formula"], DATA), reml=r["REML"])
    assert f(np.array(r["theta_fixed"])) == pytest.approx(r["devfun_at_theta_fixed"], rel=DEVFUN_RTOL)


def test_sparse_schur_has_no_gradient_and_says_so(sparse_engine):
    f = lt.mk_devfun(lt.lformula("y ~ x + (1 | patient) + (1 | doctor)", DATA))
    with pytest.raises(NotImplementedError, match="sparse.*no exact gradient"):
        f.evaluate(f.theta0, gradient=True)


def test_symbolic_factor_count_is_superlus(sparse_engine):
    """cholesky_cost counts the non-zeros of the factor from the pattern alone: SuperLU's L and U (both with
    the diagonal) hold twice as many in the same order."""
    from scipy.sparse.linalg import splu

    f = lt.mk_devfun(lt.lformula("y ~ x + (1 | patient) + (x | doctor)", DATA))
    captured = {}

    class Capture(sparse_schur.SparseCholesky):
        def __init__(self, M, order):
            captured["M"] = M
            super().__init__(M, order)

    sparse_schur.SparseCholesky, original = Capture, sparse_schur.SparseCholesky
    try:
        f(f.theta0)
    finally:
        sparse_schur.SparseCholesky = original
    M = sp.csc_matrix(captured["M"])[f.order][:, f.order]
    lu = splu(M, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    nnz, flops = sparse_schur.cholesky_cost(M)
    assert 2 * nnz == lu.L.nnz + lu.U.nnz
    assert nnz < M.shape[0] ** 2 / 10 and flops > nnz  # sparse (clustered), and more flops than entries


def test_a_factor_without_cluster_structure_is_a_clear_error(sparse_engine, monkeypatch):
    monkeypatch.setattr(sparse_schur, "MAX_FACTOR_FLOPS", 1e3)
    with pytest.raises(ValueError, match=r"doctor .*no cheap exact factor.*MAX_FACTOR_FLOPS"):
        lt.lmer("y ~ x + (1 | patient) + (1 | doctor)", DATA)
