"""The optimiser's control object (lme4's lmerControl) and the fit log on the model."""

import numpy as np
import pytest

import _shared as shared
import lmmteach as lt
from lmmteach.lmm.control import DEFAULT_CONTROL, LmerControl


def test_defaults_are_the_documented_numbers():
    c = LmerControl()
    assert (c.gtol, c.sd_floor, c.sd_cap, c.decrement_tol, c.df_final_radius) == (1e-6, 1e-6, 1e4, 1e-6, 1e-6)
    assert DEFAULT_CONTROL == c


@pytest.mark.parametrize("change, error", [({"gtol": 0}, ValueError), ({"maxiter": "many"}, TypeError),
                                           ({"df_final_radius": 1.0}, ValueError), ({"optimizer": "bobyqa"}, ValueError)])
def test_bad_control_is_named(change, error):
    with pytest.raises(error, match="LmerControl"):
        LmerControl(**change)
    with pytest.raises(TypeError, match="control must be an LmerControl"):
        lt.lmer("Reaction ~ Days + (1 | Subject)", shared.data("sleepstudy"), control={"gtol": 1e-8})


def test_control_reaches_the_optimiser():
    sleep = shared.data("sleepstudy")
    with pytest.warns(UserWarning, match="did not converge"):
        loose = lt.lmer("Reaction ~ Days + (Days | Subject)", sleep, control=LmerControl(maxiter=1, newton_steps=1))
    tight = lt.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    assert loose.optimum.n_iter < tight.optimum.n_iter
    assert tight.loglik >= loose.loglik
    assert loose.call["control"].maxiter == 1
    pen = shared.data("penicillin")
    with pytest.warns(UserWarning, match="did not converge"):
        coarse = lt.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", pen,
                         control=LmerControl(optimizer="COBYQA", df_initial_radius=0.5, df_final_radius=0.1))
    assert "COBYQA (derivative-free)" in coarse.fit_log
    fine = shared.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", control=LmerControl(optimizer="COBYQA"))
    assert "COBYQA (derivative-free)" in fine.fit_log and fine.converged
    assert coarse.optimum.n_eval < fine.optimum.n_eval


def test_fit_log_says_what_ran():
    m = shared.fit("Reaction ~ Days + (Days | Subject)", "sleepstudy")
    log = m.fit_log
    assert "L-BFGS-B (exact gradient)" in log and "Newton polish" in log and "converged" in log
    assert "staged (variance components first)" in log
    d2 = shared.fit("Yield ~ 1 + (1 | Batch)", "dyestuff2")
    assert "snap: theta[0] set to 0" in d2.fit_log
    pen = shared.fit("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin")
    assert "L-BFGS-B (exact gradient)" in pen.fit_log and "one-factor fits" in pen.fit_log
    assert f"{pen.optimum.n_eval} deviance evaluations" in pen.fit_log
    assert np.isfinite(pen.optimum.gradient).all()
