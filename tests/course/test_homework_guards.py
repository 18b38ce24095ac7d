"""A homework step asked for by hand cannot be done by the library's one-liner: the guards of the homework's
locked setup cells (``lmmteach.grading.ShortcutWatch`` and ``switched_off``) reach every public path to a
function, including a name the student gave it on import. Run in a real Jupyter kernel, as nbgrader does."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

SOURCE = Path(__file__).resolve().parents[2] / "lectures" / "homework" / "source"


def setup_cell(assignment: str) -> str:
    nb = json.loads(next((SOURCE / assignment).glob("*.ipynb")).read_text(encoding="utf-8"))
    return next("".join(c["source"]) for c in nb["cells"] if c["metadata"]["nbgrader"]["grade_id"] == "setup")


def run_cells(*sources: str) -> list[str]:
    """Run the cells in one kernel; the error of each cell ("" when it ran)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3").execute()
    return [next((f"{o['ename']}: {o['evalue']}" for o in c.outputs if o.output_type == "error"), "")
            for c in nb.cells]


HW1_PATHS = [
    "fit = lmmteach.aov1rm(rt)",
    "from lmmteach.anova.rmanova import aov1rm as one_liner\nfit = one_liner(rt)",
    "fit = lmmteach.rmanova.aov1rm(rt)",
    "import lmmteach as lt\neps = lt.box_epsilon(np.cov(Y, rowvar=False))",
    "from lmmteach import univariate_rm_table as u\nu",  # bound but not called: no charge
]


@pytest.fixture(scope="module")
def hw1_runs():
    cells = []
    for path in HW1_PATHS:
        cells += [path, 'by_hand.check("Part 1")', "by_hand.called.clear()"]
    return run_cells(setup_cell("hw1_rm_anova"), *cells)


@pytest.mark.parametrize("i", range(len(HW1_PATHS)))
def test_hw1_watch_sees_every_path(hw1_runs, i):
    assert hw1_runs[0] == "", hw1_runs[0]
    student, check = hw1_runs[1 + 3 * i], hw1_runs[2 + 3 * i]
    assert student == ""
    if i == len(HW1_PATHS) - 1:
        assert check == ""
    else:
        assert check.startswith("AssertionError: Part 1: Parts 1-4 are done by hand"), check


def test_hw3_switch_reaches_a_renamed_import():
    """The issue's hole: `from lmmteach.textbook import gls as g` inside the student's gls_b."""
    student = """from lmmteach.textbook import gls as g
import lmmteach.textbook as tb
def gls_b(sigma2_v, sigma2_e, y_list, X_list):
    return g(y_list, X_list, sigma2_v, sigma2_e)
def via_module(*args):
    return tb.loglik_ml(*args)
def via_lmer():
    return lmmteach.lmer("score ~ ses + (1 | class)", classrooms)
"""
    errors = run_cells(setup_cell("hw3_estimation"), student,
                       "with no_library_shortcuts():\n    gls_b(1.0, 1.0, y_list, X_list)",
                       "with no_library_shortcuts():\n    via_module(1.0, 1.0, y_list, X_list)",
                       "with no_library_shortcuts():\n    via_lmer()",
                       "assert g.__name__ == 'gls' and via_lmer().reml  # outside the block: the library is back")
    assert errors[:2] == ["", ""], errors
    for error in errors[2:5]:
        assert error.startswith("AssertionError:") and "switched off here" in error, error
    assert errors[5] == "", errors[5]


@pytest.mark.parametrize(("assignment", "part"), [("hw2_random_effects", "Part 4"), ("hw4_beyond", "Part 1")])
def test_lrt_by_hand_watch(assignment, part):
    """hw2 and hw4 compute their likelihood-ratio tests by hand: lmmteach.anova under another name is seen."""
    shortcut = """from lmmteach.inference.lrt import anova as compare_models
try:
    compare_models()  # any call counts, even one that fails
except Exception:
    pass"""
    errors = run_cells(setup_cell(assignment), f'by_hand.check("{part}")', shortcut, f'by_hand.check("{part}")')
    assert errors[:3] == ["", "", ""], errors
    assert errors[3].startswith(f"AssertionError: {part}:") and "lrt.anova was called" in errors[3], errors[3]
