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
    "from lmmteach.aov.rmanova import aov1rm as one_liner\nfit = one_liner(rt)",
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


# Every public path to hw3's fitting code, each used inside a student's function: the model class built from
# lme4's stages, its former flat module name, the fitting function by its wing path and former flat name, the
# deviance classes and the methods of a model fitted before the test (an instance the switch cannot take away).
HW3_PRELUDE = """import warnings
warnings.simplefilter("ignore", DeprecationWarning)
import lmmteach.model as former_model
from lmmteach.lmm.model import LinearMixedModel as LMM
from lmmteach.lmm.deviance import ProfiledDeviance, one_factor_devfun
design = lmmteach.lformula("score ~ ses + (1 | class)", classrooms)
fitted_before = lmmteach.lmer("score ~ ses + (1 | class)", classrooms, reml=False)
theta = np.array([np.sqrt(20.0 / 40.0)])
"""
HW3_PATHS = {
    "the class": "lmmteach.LinearMixedModel(design, fitted_before.devfun, fitted_before.optimum)",
    "the class under another name": "LMM(design, fitted_before.devfun, fitted_before.optimum)",
    "the class by its former flat module": "former_model.LinearMixedModel(design, fitted_before.devfun, "
                                           "fitted_before.optimum)",
    "lmer by its wing path": 'lmmteach.lmm.model.lmer("score ~ ses + (1 | class)", classrooms)',
    "lmer by its former flat module": 'former_model.lmer("score ~ ses + (1 | class)", classrooms)',
    "the stages": "lmmteach.optimize_lmer(lmmteach.mk_devfun(design, reml=False))",
    "a deviance by its module": "one_factor_devfun(design, reml=False)(theta)",
    "a deviance class": "ProfiledDeviance(fitted_before.devfun.cp, fitted_before.devfun.structures)",
    "a fitted model's deviance": "fitted_before.devfun.loglik(theta, 40.0)",
    "a fitted model's refit": "fitted_before.update(reml=True)",
    "gls by its wing path": 'lmmteach.lmm.gls.gls("score ~ ses", classrooms, group="class", time="pupil", '
                            'correlation="cs")',
}


@pytest.fixture(scope="module")
def hw3_runs():
    cells = []
    for code in HW3_PATHS.values():
        cells += [f"def student():\n    return {code}\n\nwith no_library_shortcuts():\n    student()",
                  "student()  # outside the block: the library is back"]
    return run_cells(setup_cell("hw3_estimation"), HW3_PRELUDE, *cells)


@pytest.mark.parametrize("i", range(len(HW3_PATHS)), ids=list(HW3_PATHS))
def test_hw3_switch_reaches_every_path(hw3_runs, i):
    """Inside no_library_shortcuts() each path refuses with the switch's message; the same code runs once the
    block is left (so it was the switch, not a mistake in the code, that stopped it)."""
    assert hw3_runs[:2] == ["", ""], hw3_runs[:2]
    inside, outside = hw3_runs[2 + 2 * i], hw3_runs[3 + 2 * i]
    assert inside.startswith("AssertionError:") and "switched off here" in inside, inside
    assert "graded on your own numpy/scipy code" in inside
    assert outside == "", outside


@pytest.mark.parametrize(("assignment", "part"), [("hw2_random_effects", "Part 4"), ("hw4_beyond", "Part 1")])
def test_lrt_by_hand_watch(assignment, part):
    """hw2 and hw4 compute their likelihood-ratio tests by hand: lmmteach.inference.lrt.anova under another name is seen."""
    shortcut = """from lmmteach.inference.lrt import anova as compare_models
try:
    compare_models()  # any call counts, even one that fails
except Exception:
    pass"""
    errors = run_cells(setup_cell(assignment), f'by_hand.check("{part}")', shortcut, f'by_hand.check("{part}")')
    assert errors[:3] == ["", "", ""], errors
    assert errors[3].startswith(f"AssertionError: {part}:") and "lrt.anova was called" in errors[3], errors[3]


# hw2 fits lmer models freely but computes its likelihood-ratio tests (and the model without random effects) by
# hand: every public path to gls's code is seen, while lmer fits and the methods lmer and gls fits share
# (FittedModel's) are not.
GLS_ARGS = '"score ~ ses", classrooms, group="class", time="pupil", correlation="cs"'
HW2_GLS_PATHS = {
    "gls": f"lmmteach.gls({GLS_ARGS})",
    "gls under another name": f"from lmmteach.lmm.gls import gls as g\ng({GLS_ARGS})",
    "gls by its wing path": f"lmmteach.lmm.gls.gls({GLS_ARGS})",
    "the GLSFit class": "from lmmteach.lmm.gls import GLSFit\nGLSFit(*[None] * 3)",
    "a GLSFit's own method": "fit_before.coef_table()",
    "the optimiser": "from lmmteach.lmm.gls import optimize_gls as o\no(None)",
    "the deviance": "dev_before(dev_before.theta0)",
}


@pytest.fixture(scope="module")
def hw2_runs():
    prelude = (f"by_hand.stop()\nfit_before = lmmteach.gls({GLS_ARGS})\n"
               'dev_before = fit_before.devfun\n'
               'by_hand = ShortcutWatch(*by_hand_args, task="Part 4 by hand", family=False)')
    setup = setup_cell("hw2_random_effects")
    args = setup.split("by_hand = ShortcutWatch(", 1)[1].split(", task=", 1)[0]
    cells = [setup, f"by_hand_args = ({args},)", prelude,
             'm = lmmteach.lmer("score ~ ses + (1 | class)", classrooms, reml=False)\n'
             "m.fixef, m.loglik, m.vcov, m.fitted, m.residuals, m.summary()\nby_hand.check('lmer')"]
    for code in HW2_GLS_PATHS.values():
        cells += [f"try:\n    {code.replace(chr(10), chr(10) + '    ')}\nexcept Exception:\n    pass",
                  'by_hand.check("Part 4")', "by_hand.called.clear()"]
    return run_cells(*cells)


def test_hw2_watch_lets_lmer_through(hw2_runs):
    """lmer fits and the accessors lmer and gls fits share do not count as a shortcut."""
    assert hw2_runs[:4] == ["", "", "", ""], hw2_runs[:4]


@pytest.mark.parametrize("i", range(len(HW2_GLS_PATHS)), ids=list(HW2_GLS_PATHS))
def test_hw2_watch_sees_every_gls_path(hw2_runs, i):
    student, check = hw2_runs[4 + 3 * i], hw2_runs[5 + 3 * i]
    assert student == "", student
    assert check.startswith("AssertionError: Part 4: Part 4 by hand") and "gls" in check.lower(), check
