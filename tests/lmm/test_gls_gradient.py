"""The gls residual covariance's exact ∂V/∂φ against central differences (every correlation structure,
with and without one SD per time point)."""

import numpy as np
import pytest

from lmmteach.lmm.gls import ResidualCovariance

GRAD_ATOL = 1e-8
"""Central differences of V at step 1e-6 carry ~1e-10 truncation and roundoff."""


@pytest.mark.parametrize("correlation", ["cs", "ar1", "toep", "un", None])
@pytest.mark.parametrize("heteroscedastic", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_matrix_grad_is_the_derivative(correlation, heteroscedastic, seed):
    if correlation is None and not heteroscedastic:
        pytest.skip("no parameters")
    r = ResidualCovariance(correlation, 4, heteroscedastic)
    phi = np.random.default_rng(seed).normal(scale=0.7, size=r.n_params)
    h = 1e-6
    steps = h * np.eye(r.n_params)
    fd = np.stack([(r.matrix(phi + e) - r.matrix(phi - e)) / (2 * h) for e in steps])
    np.testing.assert_allclose(r.matrix_grad(phi), fd, atol=GRAD_ATOL, rtol=0)
