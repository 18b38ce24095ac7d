"""Homework 4's answer keys (the numbers in its hidden tests) are the ones lectures/homework/keys/make_homework_keys_hw4.py
computes from the data: rerunning the script regenerates them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import _shared as shared


ROOT = Path(__file__).resolve().parents[2]
KEYS = shared.keys_script("make_homework_keys_hw4.py")


def test_hw4_keys_are_the_gls_fits_nlme_gives():
    # nlme 3.1 gls(log(weight) ~ Diet * factor(Time), subset Time in 0, 4, ..., 20, REML) on R's ChickWeight:
    # corCompSymm, corAR1, corARMA(p = 5) (= Toeplitz on 6 days), corSymm + varIdent(~ 1 | day)
    k = KEYS.keys()
    nlme = [53.47028, 160.8644, 205.1924, 308.7839]  # logLik as R prints it (7 significant digits)
    for got, ref in zip(k["loglik"], nlme):
        assert abs(got - ref) <= 5e-5, (got, ref)  # R printed 7 significant digits: at most 5e-5 off
    assert k["npar"] == [26, 26, 30, 45]


def _failing_tests():
    spec = importlib.util.spec_from_file_location("_lmmteach_homework_independence",
                                                  ROOT / "tests" / "course" / "test_homework_independence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.failing_tests


@pytest.mark.parametrize(
    ("after", "mistake", "charged"),
    [
        (None, "", []),  # the instructor's solution passes every test, hidden ones included
        # a wrong log-likelihood in the table: the LRT built on it is still right for the student's numbers
        ("structures", "aic_table.loc['Toeplitz', 'logLik'] += 2.0; "
                       "aic_table['AIC'] = -2 * aic_table['logLik'] + 2 * aic_table['npar']", ["test_structures"]),
        ("lrt", "D = 1.2 * D; p_lrt = stats.chi2.sf(D, df_lrt)", ["test_lrt"]),
        # a wrong centring: the slopes fitted on the student's own columns are accepted
        ("centring", "hsb['ses_mean'] = 1.1 * hsb['ses_mean']; hsb['ses_within'] = hsb['SES'] - hsb['ses_mean']",
         ["test_centring"]),
        ("within_between", "b_within = 1.1 * b_within; contextual = b_between - b_within", ["test_within_between"]),
        ("nested", "D_nested = 1.1 * D_nested; p_nested = 0.5 * stats.chi2.sf(D_nested, 1)", ["test_lrt_nested"]),
    ],
)
def test_hw4_a_wrong_number_costs_once(after, mistake, charged):
    assert _failing_tests()(KEYS.NOTEBOOK, after, mistake) == charged


def test_hw4_nested_keys_are_lme4s():
    # lme4 1.1: lmer(score ~ Machine + (1 | Worker/Machine), nlme::Machines) -- as.data.frame(VarCorr(m))$vcov (REML),
    # and anova(ML fits without / with Machine:Worker)$Chisq
    k = KEYS.keys()
    assert k["vc_nested"] == pytest.approx([13.9094569, 22.8584444, 0.9246296], rel=1e-6)
    assert k["D_nested"] == pytest.approx(68.434, abs=5e-4)  # R printed 3 decimals
