"""Homework 5's answer keys (the numbers in its hidden tests) are the ones lectures/homework/keys/make_homework_keys_hw5.py
computes from the data, and they are R's: glm and lme4's glmer on the same CSV."""

from __future__ import annotations

import numpy as np
import _shared as shared


KEYS = shared.keys_script("make_homework_keys_hw5.py")


def test_hw5_keys_are_rs():
    # R 4.2, lme4 1.1-31 on datasets/bird_counts_simulated.csv (site as a factor):
    #   glm(count ~ temp, poisson): coef 1.280529865694 0.371881547626, logLik -307.468523860209
    #   glmer(count ~ temp + (1 | site), poisson, glmerControl(tolPwrss = 1e-13)), best of bobyqa+Nelder_Mead,
    #   bobyqa, nloptwrap (logLik -245.398965668, -245.398965667, -245.398965682): theta 0.6015113719,
    #   fixef 1.0777979214 0.4650709370
    k = KEYS.keys()
    np.testing.assert_allclose(k["beta_glm"], [1.280529865694, 0.371881547626], rtol=1e-9)
    np.testing.assert_allclose(k["loglik_glm"], -307.468523860209, rtol=1e-10)
    np.testing.assert_allclose(k["loglik_glmm"], -245.398965667, rtol=1e-6)
    np.testing.assert_allclose(k["sigma_site"], 0.6015113719, rtol=1e-4)
    np.testing.assert_allclose(np.log(k["rate_ratio"]), 0.4650709370, rtol=1e-4)


def test_hw5_ten_nodes_reach_the_exact_integral_and_laplace_does_not():
    k = KEYS.keys()
    assert abs(k["loglik_agq"] - k["loglik_exact"]) < 1e-6 * abs(k["loglik_exact"])
    assert abs(k["loglik_laplace"] - k["loglik_exact"]) > 1e-4  # the hidden test can tell Laplace from quadrature
