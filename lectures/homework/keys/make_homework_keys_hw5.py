"""Write the answer keys of homework 5 (the numbers in its hidden tests) from the data.

The hidden tests of ``lectures/homework/source/hw5_glmm/hw5_glmm.ipynb`` (the lines between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` of its graded cells) are generated here:

    python lectures/homework/keys/make_homework_keys_hw5.py            # rewrite the hidden tests in the source notebook
    python lectures/homework/keys/make_homework_keys_hw5.py --check    # exit 1 if the notebook's hidden tests are out of date

tests/course/test_homework_keys_hw5.py runs the check. Where the keys come from (data: the SIMULATED
``bird_counts_simulated.csv`` of ``make_homework_data_hw5.py``):

    * Part 1 (the GLM by hand): the working weights and response at the given start by their formulas, and the
      Poisson GLM by ``lmmteach.glmm.pirls.glm_start`` (IRLS, as R's glm.fit); R's glm gives the same.
    * Part 2 (one site's integral by hand): ``lmmteach.glmm.textbook`` (Newton for the mode, the Laplace
      Gaussian, numerical integration) at the given (sigma, beta), tested equal to glmer's fast path.
    * Part 3: ``lmmteach.glmer`` (Laplace); lme4 1.1-31 gives the same (tests/course/test_homework_keys_hw5.py).

"A wrong number costs once": a hidden test that builds on an earlier answer accepts either the key or the value
the student's own earlier numbers imply (``_right_or_consistent``), as in the other homework.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[3]  # lectures/homework/keys/ -> the repository
NOTEBOOK = ROOT / "lectures" / "homework" / "source" / "hw5_glmm" / "hw5_glmm.ipynb"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_homework_keys import HELPER, arr, num, same_block  # noqa: E402,F401  (one writer of keys)
from make_homework_keys_hw4 import hidden_blocks, write_or_check  # noqa: E402,F401  (the same notebook surgery)

FORMULA = "count ~ temp + (1 | site)"
SIGMA_GIVEN, BETA_GIVEN, SITE, NODES = 0.6, (1.0, 0.4), "s01", 10  # Part 2's given parameters, as the notebook


def birds():
    import pandas as pd

    import lmmteach

    return pd.read_csv(lmmteach.datasets.dataset_path("bird_counts_simulated.csv"), dtype={"site": str})


def keys() -> dict:
    import lmmteach
    from lmmteach.glmm import textbook
    from lmmteach.glmm.pirls import glm_start
    from lmmteach.glmm.quadrature import gauss_hermite

    counts = birds()
    y, temp = counts["count"].to_numpy(float), counts["temp"].to_numpy()
    X = np.column_stack([np.ones(len(y)), temp])
    k: dict = {}
    eta0 = np.full(len(y), np.log(y.mean()))            # the start beta = (log ybar, 0)
    k["w0"] = np.exp(eta0)[:5]                           # w = mu for the log link
    k["z0"] = (eta0 + (y - np.exp(eta0)) / np.exp(eta0))[:5]
    k["beta_glm"], _ = glm_start(X, lmmteach.poisson(), y, np.ones(len(y)), np.zeros(len(y)))
    k["loglik_glm"] = float(stats.poisson.logpmf(y, np.exp(X @ k["beta_glm"])).sum())

    devfun = lmmteach.glmer_devfun(FORMULA, counts, family="poisson")
    level = list(devfun.design.blocks[0].levels).index(SITE)
    u, s, height = textbook.laplace_gaussian(devfun, SIGMA_GIVEN, np.array(BETA_GIVEN), level)
    k["u_mode"], k["s_mode"] = u, s
    k["loglik_laplace"] = float(np.log(height * s * np.sqrt(2 * np.pi)))
    x, w = gauss_hermite(NODES)
    values = textbook.integrand(devfun, SIGMA_GIVEN, np.array(BETA_GIVEN), level, u + s * x) / stats.norm.pdf(x)
    k["loglik_agq"] = float(np.log(s * np.sum(w * values)))
    # the integral runs over all u: far out, a Poisson mean exp(eta) overflows and its density is 0, as it should be
    with np.errstate(over="ignore"):
        exact = textbook.group_likelihood(devfun, SIGMA_GIVEN, np.array(BETA_GIVEN), level)
    k["loglik_exact"] = float(np.log(exact))

    m = lmmteach.glmer(FORMULA, counts, family="poisson")
    k["sigma_site"] = float(m.theta[0])
    k["rate_ratio"] = float(np.exp(m.fixef["temp"]))
    k["loglik_glmm"] = m.loglik
    k["D"] = 2 * (m.loglik - k["loglik_glm"])
    k["p_boundary"] = float(0.5 * stats.chi2.sf(k["D"], 1))
    return k


def rendered() -> dict:
    """The hidden block of every graded cell, by grade_id."""
    k = keys()
    return {
        "test_working": f"""check_close("w0[:5]", np.asarray(w0)[:5], {arr(k["w0"])}, rtol=1e-8)
check_close("z0[:5]", np.asarray(z0)[:5], {arr(k["z0"])}, rtol=1e-8)
""",
        "test_irls": HELPER + f"""check_close("beta_glm", beta_glm, {arr(k["beta_glm"])}, rtol=1e-6)
# right, or right for your own beta_glm (a wrong IRLS was charged just above)
_right_or_consistent("loglik_glm", loglik_glm, {num(k["loglik_glm"])},
                     stats.poisson.logpmf(counts["count"], np.exp(beta_glm[0] + beta_glm[1] * counts["temp"])).sum())
""",
        "test_laplace": f"""check_close("u_mode", u_mode, {num(k["u_mode"])}, rtol=1e-6)
check_close("s_mode", s_mode, {num(k["s_mode"])}, rtol=1e-6)
check_close("loglik_laplace", loglik_laplace, {num(k["loglik_laplace"])}, rtol=1e-6)
check_close("loglik_agq (10 nodes are within 1e-6 of the exact integral)", loglik_agq, {num(k["loglik_exact"])},
            rtol=1e-6)
""",
        "test_glmer": HELPER + f"""check_close("sigma_site", sigma_site, {num(k["sigma_site"])}, rtol=1e-4)
check_close("rate_ratio", rate_ratio, {num(k["rate_ratio"])}, rtol=1e-4)
# right, or right for your own GLM log-likelihood (a wrong one was charged in test_irls)
_right_or_consistent("D", D, {num(k["D"])}, 2 * ({num(k["loglik_glmm"])} - loglik_glm), rtol=1e-5)
_right_or_consistent("p_boundary", p_boundary, {num(k["p_boundary"])}, 0.5 * stats.chi2.sf(D, 1), rtol=1e-4,
                     atol=1e-300)
""",
    }


def main(argv=None) -> int:
    return write_or_check(NOTEBOOK, rendered(), Path(__file__).name, argv)


if __name__ == "__main__":
    sys.exit(main())
