"""The fitted-model base shared by lmer, gls and glmer fits (issue 22 item 2, issue 24): each accessor is
written once, in :mod:`lmmteach.lmm.fitted`, and glmer's fit offers what lmer's does (``coef``, ``refit_ml``,
``refit(y, theta0)``), checked against lme4's numbers (tests/reference/glmm_reference.json)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.glmm.model import GeneralizedLinearMixedModel
from lmmteach.lmm.fitted import FittedModel, MixedModelFit, ProfiledFit, level_codes
from lmmteach.lmm.gls import GLSFit
from lmmteach.lmm.model import LinearMixedModel

REF_DIR = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REF_DIR / "glmm_reference.json").read_text())
MODE_ATOL = 1e-4  # conditional modes against lme4's (as tests/glmm/test_glmer.py)
ESTIMATE_ATOL = 1e-4

FITS = (LinearMixedModel, GLSFit, GeneralizedLinearMixedModel)
SHARED = {  # the base class that defines them: accessors no kind of fit below it may write again
    FittedModel: ["fixef", "se", "wald_statistics", "loglik", "npar", "aic", "bic", "nobs", "converged", "fit_log",
                  "fitted", "refit", "refit_ml", "_predict_newdata"],
    MixedModelFit: ["varcorr", "ranef", "ranef_se", "coef", "ngroups", "df_resid", "is_singular", "simulate",
                    "_factor_terms", "_random_part"],
    ProfiledFit: ["vcov", "sigma", "deviance", "residuals", "tvalues", "_refit_by_ml", "_eval"],
}


@lru_cache(maxsize=None)
def cbpp_fit() -> GeneralizedLinearMixedModel:
    cbpp = pd.read_csv(REF_DIR / "glmm_cbpp.csv", dtype={"period": str})
    return lt.glmer(REF["cbpp"]["formula"], cbpp, "binomial")


def test_every_fit_is_a_fitted_model_and_the_shared_accessors_are_written_once():
    assert issubclass(GeneralizedLinearMixedModel, MixedModelFit) and issubclass(GLSFit, ProfiledFit)
    assert issubclass(LinearMixedModel, ProfiledFit) and issubclass(LinearMixedModel, MixedModelFit)
    for base, names in SHARED.items():
        for name in names:
            assert name in vars(base), f"{base.__name__} should define {name}"
            for kind in (k for k in FITS if issubclass(k, base)):
                assert name not in vars(kind), f"{kind.__name__} writes {name} again (the base has it)"


def test_glmer_coef_is_lme4s_fixef_plus_modes():
    """lme4's ``coef(m)``: β̂ with each level's conditional modes added (lme4's numbers for both)."""
    ref, m = REF["cbpp"], cbpp_fit()
    coef = m.coef["herd"]
    modes = ref["ranef"]["herd"]
    levels = [type(coef.index[0])(v) for v in modes["levels"]]
    expected = np.tile(ref["fixef"], (len(levels), 1))
    expected[:, 0] += np.asarray(modes["values"]).ravel()
    np.testing.assert_allclose(coef.loc[levels].to_numpy(), expected, atol=MODE_ATOL + ESTIMATE_ATOL)
    assert list(coef.columns) == ref["fixef_names"]


def test_glmer_is_its_own_ml_refit_and_refits_from_a_given_theta():
    m = cbpp_fit()
    assert m.refit_ml() is m  # fitted by ML already (anova asks for the ML fit)
    y = m.simulate(1, seed=3)["sim_1"].to_numpy()
    a, b = m.refit(y), m.refit(y, theta0=2 * m.theta)
    assert a.converged and b.converged
    assert b.loglik == pytest.approx(a.loglik, rel=1e-6)  # the same optimum from another start
    with pytest.raises(ValueError, match="one value per observation"):
        m.refit(y[:-1])


def test_z_statistics_are_named_for_glmer_and_t_for_lmer():
    m = cbpp_fit()
    assert m.wald_statistics.name == "z value"
    np.testing.assert_allclose(m.wald_statistics, m.coef_table()["z value"], rtol=shared.ROUNDING_RTOL)
    lm = lt.lmer("Reaction ~ Days + (Days | Subject)", lt.load_sleepstudy())
    assert lm.tvalues.name == "t value" and list(lm.coef_table().columns)[-1] == "t value"


def test_level_codes_match_by_value_then_by_text():
    assert level_codes([1, 2, 3], [2.0, "3", 4, 1]).tolist() == [1, 2, -1, 0]
    assert level_codes(["a:x", "b:y"], pd.Series(["b:y", "c:z"])).tolist() == [1, -1]


def test_glmer_predicts_new_levels_given_as_text():
    """A herd written "1" in new data is herd 1 of the fit (R matches factor levels as text)."""
    m = cbpp_fit()
    as_int = pd.DataFrame({"period": ["1", "2"], "herd": [1, 5]})
    as_text = as_int.assign(herd=["1", "5"])
    np.testing.assert_allclose(m.predict(as_text), m.predict(as_int), rtol=shared.ROUNDING_RTOL)
