"""Lecture 7 asserts lme4's numbers written into its `LME4 = {...}` cell (students get no tests/reference); they
must be the numbers tests/reference/lecture07_reference.R wrote, and the lme4 output it prints must be lme4's."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).parents[2]
LECTURE = ROOT / "lectures" / "07_glmm.ipynb"
REF = json.loads((ROOT / "tests" / "reference" / "lecture07_reference.json").read_text())


@pytest.fixture(scope="module")
def notebook():
    return nbformat.read(LECTURE, as_version=4)


@pytest.fixture(scope="module")
def lme4_cell(notebook) -> dict:
    cells = [c for c in notebook.cells if c.cell_type == "code" and c.source.lstrip("# \n").find("LME4 = {") >= 0]
    assert len(cells) == 1, "lecture 7 should define its reference numbers in one `LME4 = {...}` cell"
    namespace: dict = {}
    exec(cells[0].source, namespace)  # a literal dict: no imports, no side effects
    return namespace["LME4"]


def test_the_lectures_numbers_are_the_reference(lme4_cell):
    lap, agq, herd, whole = REF["laplace"], REF["agq25"], REF["herd"], REF["whole"]
    expected = {
        "lmm_fixef": REF["lmm"]["fixef"], "lmm_sd": [REF["lmm"]["sd_herd"], REF["lmm"]["sigma"]],
        "glm_coef": REF["glm"]["coef"], "glm_loglik": REF["glm"]["loglik"],
        "herd14_loglik": herd["exact_loglik"], "herd14_agq": herd["agq_loglik"][:5],
        "laplace_loglik": lap["loglik"], "laplace_theta": lap["theta"], "laplace_fixef": lap["fixef"],
        "laplace_se": lap["se"], "laplace_ranef": lap["ranef_herd"],
        "agq25_loglik_printed": agq["loglik"], "saturated_loglik": agq["saturated_loglik"],
        "agq25_theta": agq["theta"], "agq25_fixef": agq["fixef"],
        "path_loglik": [whole["loglik"][k - 1] for k in lme4_cell["path_nodes"]],
        "marginal": REF["marginal"]["marginal"],
    }
    assert herd["label"] == "14", "the lecture draws herd 14, the reference's worst Laplace herd"
    assert set(lme4_cell) == set(expected) | {"path_nodes"}
    for key, value in expected.items():
        np.testing.assert_allclose(lme4_cell[key], value, rtol=1e-14, err_msg=key)


def test_the_printed_lme4_output_is_lme4s(notebook):
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for fit in ("laplace", "agq25"):
        assert REF[fit]["summary"] in markdown, f"lme4's printed summary ({fit}) is not in the lecture as R prints it"
