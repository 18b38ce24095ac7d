"""A wrong number costs once: a mistake in one answer fails its own test cell and no later one.

Runs a homework source notebook in-process (the instructor's solution, hidden tests included), with one
answer made wrong right after the cell that computes it, and records which graded test cells fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmmteach.grading import ShortcutWatch

SOURCE = Path(__file__).resolve().parents[2] / "lectures" / "homework" / "source"


def failing_tests(notebook: Path, after: str | None = None, mistake: str = "") -> list[str]:
    """grade_ids of the graded cells that raise when ``mistake`` runs right after cell ``after``."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    namespace: dict = {"__name__": "__main__"}
    failed = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        meta = cell["metadata"]["nbgrader"]
        source = "".join(cell["source"])
        if meta.get("grade"):
            try:
                exec(compile(source, meta["grade_id"], "exec"), namespace)
            except AssertionError:
                failed.append(meta["grade_id"])
        else:
            exec(compile(source, meta["grade_id"], "exec"), namespace)
        if meta["grade_id"] == after:
            exec(mistake, namespace)
    for value in namespace.values():  # the notebook's ShortcutWatch: give the library its functions back
        if isinstance(value, ShortcutWatch):
            value.stop()
    return failed


HW1 = SOURCE / "hw1_rm_anova" / "hw1_rm_anova.ipynb"
HW2 = SOURCE / "hw2_random_effects" / "hw2_random_effects.ipynb"


def test_the_solution_passes_every_test():
    assert failing_tests(HW1) == []


@pytest.mark.parametrize(
    ("after", "mistake", "charged"),
    [
        # the example: a wrong Huynh-Feldt epsilon used to fail test_compare too
        ("sphericity", "eps_hf = 1.05 * eps_hf", ["test_epsilons"]),
        ("sphericity", "eps_gg = 0.9 * eps_gg", ["test_epsilons"]),
        ("estimates", "rho_hat = 1.1 * rho_hat", ["test_estimates"]),
        ("sums_of_squares", "SSE = 1.1 * SSE", ["test_sums_of_squares"]),
        ("anova_table", "F_a = 1.1 * F_a; table.loc['Treatment', 'F'] = F_a", ["test_anova_table"]),
        ("compare", "sigma2_rho = 1.1 * sigma2_rho", ["test_compare"]),
    ],
)
def test_hw1_a_wrong_number_costs_once(after, mistake, charged):
    assert failing_tests(HW1, after, mistake) == charged


@pytest.mark.parametrize(
    ("after", "mistake", "charged"),
    [
        ("lrt", "D_slope = 1.2 * D_slope", ["test_lrt_slope"]),
        ("lrt", "loglik_ols = loglik_ols - 1.0", ["test_lrt_intercept"]),
        ("random_intercept", "sigma2_v = 1.1 * sigma2_v", ["test_random_intercept"]),
    ],
)
def test_hw2_a_wrong_number_costs_once(after, mistake, charged):
    assert failing_tests(HW2, after, mistake) == charged


HW5 = SOURCE / "hw5_glmm" / "hw5_glmm.ipynb"


def test_hw5_the_solution_passes_every_test():
    assert failing_tests(HW5) == []


@pytest.mark.parametrize(
    ("after", "mistake", "charged"),
    [
        ("working", "z0 = z0 + 0.1", ["test_working"]),
        # a wrong GLM costs in test_irls only: the LRT accepts D computed from the student's own GLM log-likelihood
        ("irls", "beta_glm = beta_glm * 1.05; loglik_glm = float(stats.poisson.logpmf(y, np.exp(X @ beta_glm)).sum())",
         ["test_irls"]),
        ("laplace", "u_mode = 1.1 * u_mode", ["test_laplace"]),
        ("glmer", "rate_ratio = 1.1 * rate_ratio", ["test_glmer"]),
    ],
)
def test_hw5_a_wrong_number_costs_once(after, mistake, charged):
    assert failing_tests(HW5, after, mistake) == charged
