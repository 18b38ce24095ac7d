"""The nbgrader homework: cell metadata, student versions, and autograding end to end.

For every assignment in lectures/homework/source/ this runs, in a temporary copy of the course
directory (nothing is written into the repository):

    nbgrader generate_assignment <a> --force
    nbgrader autograde <a> --force

with two submissions: the instructor's source notebook (must earn every autograded point) and the
untouched student version from release/ (must earn none).  Scores are read from nbgrader's gradebook.
For hw1 two more students hand in: one whose numbers are all wrong (their feedback, from
``nbgrader generate_feedback``, must not show a hidden test or a key) and one who filled every answer from
``lmmteach.aov1rm`` (must lose the points of every part done by hand).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "lectures" / "homework"
ASSIGNMENTS = sorted(p.name for p in (COURSE / "source").iterdir() if p.is_dir() and list(p.glob("*.ipynb")))
BIN = Path(sys.executable).parent
NBGRADER = BIN / ("nbgrader.exe" if os.name == "nt" else "nbgrader")

SOLUTION, UNTOUCHED, WRONG, SHORTCUT = "instructor", "untouched", "wrong", "shortcut"
HW1 = "hw1_rm_anova"
# hw1 filled from the library, as the issue found it passing 18/18: every Part 1-4 answer read off aov1rm
HW1_SHORTCUT = {
    "estimates": """fit = lmmteach.aov1rm(rt)
mu_hat, alpha_hat, rho_hat = fit.mu, fit.alphas.to_numpy(), fit.rhos.to_numpy()
e_hat = Y - (mu_hat + rho_hat[:, None] + alpha_hat[None, :])""",
    "sums_of_squares": """SSS, SSA, SSE, SST = fit.table["SS"].to_numpy()
df_S, df_A, df_E, df_T = (int(d) for d in fit.table["df"])""",
    "anova_table": """table = fit.table.copy()
table.index = ["Subjects", "Treatment", "Error", "Total"]
F_a, p_a = fit.F, fit.p
F_s, p_s = table.loc["Subjects", "F"], table.loc["Subjects", "p"]""",
    "sphericity": """from lmmteach.aov.rmanova import box_epsilon as eps
C_n = np.eye(n) - 1 / n
Z = C_n @ Y
Sigma_hat = np.cov(Y, rowvar=False)
C_a = np.eye(a) - 1 / a
Sigma_c = C_a @ Sigma_hat @ C_a
lambdas = np.linalg.eigvalsh(Sigma_c)
eps_gg, eps_hf, p_gg, p_hf = eps(Sigma_hat), fit.eps_hf, fit.p_gg, fit.p_hf""",
}
HW1_BY_HAND_TESTS = ("test_estimates", "test_sums_of_squares", "test_anova_table", "test_covariance", "test_epsilons")
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def source_notebooks(assignment: str) -> list[Path]:
    return sorted((COURSE / "source" / assignment).glob("*.ipynb"))


def nbgrader_cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    return [(c, c.metadata["nbgrader"]) for c in nb.cells if "nbgrader" in c.metadata]


def marked_blocks(text: str, begin: str, end: str) -> list[str]:
    """The lines between ``### BEGIN X`` and ``### END X`` markers."""
    return re.findall(rf"### {begin}\n(.*?)### {end}", text, flags=re.S)


def test_there_are_assignments():
    assert len(ASSIGNMENTS) >= 3, ASSIGNMENTS


# ---------------------------------------------------------------------------------------------
# The source notebooks: nbgrader metadata as nbgrader expects it (no nbgrader run needed)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_metadata(assignment):
    for path in source_notebooks(assignment):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path
        cells = nbgrader_cells(path)
        assert len(cells) == len(nb.cells), f"{path.name}: every cell needs nbgrader metadata"
        ids = [m["grade_id"] for _, m in cells]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate grade_id"
        kinds = {"test": 0, "written": 0}
        for cell, m in cells:
            where = f"{path.name}, cell {m['grade_id']}"
            assert m["schema_version"] == 3 and m["task"] is False, where
            assert {"solution", "grade", "locked"} <= set(m), where
            if m["grade"]:
                assert m.get("points", 0) > 0, f"{where}: a graded cell needs points"
            if cell.cell_type == "code":
                assert cell.execution_count is not None, f"{where}: store the notebook executed (nbval compares outputs)"
                assert not any(o.get("output_type") == "error" for o in cell.outputs), f"{where}: stored output is an error"
            if m["solution"] and cell.cell_type == "code":
                assert "### BEGIN SOLUTION" in cell.source and not m["grade"] and not m["locked"], where
            elif m["grade"] and cell.cell_type == "code":
                kinds["test"] += 1
                assert m["locked"] and not m["solution"], where
                assert "### BEGIN HIDDEN TESTS" in cell.source, f"{where}: no hidden tests"
                assert "check_" in cell.source, f"{where}: use lmmteach.grading checks for feedback"
            elif m["grade"] and cell.cell_type == "markdown":
                kinds["written"] += 1
                assert m["solution"] and not m["locked"], f"{where}: a hand-graded answer cell is an unlocked solution cell"
            else:
                assert m["locked"], f"{where}: instructions and given code are read-only"
        assert kinds["test"] >= 3 and kinds["written"] >= 1, f"{path.name}: {kinds}"


# ---------------------------------------------------------------------------------------------
# nbgrader end to end, in a temporary course directory
# ---------------------------------------------------------------------------------------------
def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    # nbgrader runs `alembic` (gradebook migrations) from PATH; the kernel is this interpreter
    # (jupyter_client maps a kernelspec's "python" to sys.executable).
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    # This environment's kernelspecs first, before any python3 kernel in the user's ~/.local/share/jupyter.
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "share" / "jupyter"),
                                                        env.get("JUPYTER_PATH")]))
    env["LMMTEACH_EXCHANGE"] = str(course / "exchange")
    env["MPLBACKEND"] = "Agg"
    cmd = [str(NBGRADER), *args, f"--CourseDirectory.root={course}", f"--db=sqlite:///{course / 'gradebook.db'}"]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("homework")
    shutil.copytree(COURSE / "source", course / "source")
    shutil.copy(COURSE / "nbgrader_config.py", course / "nbgrader_config.py")
    shutil.copytree(COURSE / "templates", course / "templates")
    for a in ASSIGNMENTS:
        nbgrader(course, "generate_assignment", a, "--force")
        for student, origin in ((SOLUTION, course / "source" / a), (UNTOUCHED, course / "release" / a)):
            target = course / "submitted" / student / a
            target.mkdir(parents=True)
            for nb in origin.glob("*.ipynb"):
                shutil.copy(nb, target / nb.name)
        if a == HW1:
            hw1_submissions(course)
        nbgrader(course, "autograde", a, "--force")
    nbgrader(course, "generate_feedback", HW1, "--force")
    return course


def hw1_submissions(course: Path) -> None:
    """The wrong student (the data scaled by 1.01 before Part 1: every number off) and the shortcut student."""
    source = course / "source" / HW1 / f"{HW1}.ipynb"
    for student, edit in ((WRONG, {"estimates": "Y = 1.01 * Y\n"}), (SHORTCUT, HW1_SHORTCUT)):
        nb = nbformat.read(source, as_version=4)
        for cell in nb.cells:
            gid = cell.metadata["nbgrader"]["grade_id"]
            if gid in edit and student == WRONG:
                cell.source = edit[gid] + cell.source
            elif gid in edit:
                cell.source = edit[gid]
        target = course / "submitted" / student / HW1
        target.mkdir(parents=True)
        nbformat.write(nb, target / source.name)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(course, assignment):
    for source in source_notebooks(assignment):
        release = course / "release" / assignment / source.name
        assert release.exists(), release
        text = release.read_text()
        for marker in MARKERS:
            assert marker not in text, f"{release.name}: {marker!r} left in the student version"
        src_cells = {m["grade_id"]: c for c, m in nbgrader_cells(source)}
        rel_cells = {m["grade_id"]: c for c, m in nbgrader_cells(release)}
        assert rel_cells.keys() == src_cells.keys()
        for gid, cell in src_cells.items():
            m, rel = cell.metadata["nbgrader"], rel_cells[gid]
            if cell.cell_type == "code":
                assert rel.outputs == [] and rel.execution_count is None, f"{gid}: outputs left in the student version"
            secret = [line.strip() for begin, end in (("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
                                                      ("BEGIN SOLUTION", "END SOLUTION"))
                      for block in marked_blocks(cell.source, begin, end)
                      for line in block.splitlines() if len(line.strip()) > 12]
            released = {line.strip() for line in rel.source.splitlines()}
            for line in secret:
                assert line not in released, f"{gid}: {line!r} is in the student version"
            if m["solution"] and cell.cell_type == "code":
                assert "raise NotImplementedError()" in rel.source, gid
            if m["solution"] and cell.cell_type == "markdown":
                assert rel.source.strip() == "YOUR ANSWER HERE", f"{gid}: model answer left in the student version"
            if not m["solution"] and not m["grade"]:
                assert rel.source == cell.source, f"{gid}: instructions changed"


def failing_cells(course: Path, student: str, assignment: str) -> str:
    """Error outputs of an autograded submission, for the assertion message."""
    lines = []
    for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                    lines.append(f"{path.name} [{gid}] {out['ename']}: {out['evalue']}")
    return "\n".join(lines)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_autograde_scores(course, assignment):
    from nbgrader.api import Gradebook

    points = {"code": 0.0, "markdown": 0.0}
    for path in source_notebooks(assignment):
        for cell, m in nbgrader_cells(path):
            if m["grade"]:
                points[cell.cell_type] += m["points"]

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        solution = gb.find_submission(assignment, SOLUTION)
        untouched = gb.find_submission(assignment, UNTOUCHED)
        assert solution.max_code_score == pytest.approx(points["code"]) and points["code"] > 0
        assert solution.max_written_score == pytest.approx(points["markdown"]) and points["markdown"] > 0
        assert solution.code_score == pytest.approx(solution.max_code_score), failing_cells(course, SOLUTION, assignment)
        for path in source_notebooks(assignment):
            nb = gb.find_submission_notebook(path.stem, assignment, SOLUTION)
            lost = [(g.name, g.auto_score, g.max_score) for g in nb.grades
                    if g.auto_score is not None and g.auto_score < g.max_score]
            assert not lost, lost
        assert solution.needs_manual_grade, "the written answers wait for a human grader"
        assert untouched.code_score == 0, "the untouched student version must earn no points"
        assert untouched.max_code_score == pytest.approx(points["code"])


def _key_numbers(text: str) -> set[str]:
    """The numbers of the hidden tests that could identify a key: 5 or more significant digits."""
    numbers = re.findall(r"(?<![\w.])-?\d+\.\d+(?:e-?\d+)?", text)
    return {x.lstrip("-") for x in numbers if len(re.sub(r"\D|e.*", "", x.lstrip("0.").split("e")[0])) >= 5}


def _feedback_text(course: Path, student: str) -> str:
    html = (course / "feedback" / student / HW1 / f"{HW1}.html").read_text(encoding="utf-8")
    return re.sub(r"<script>.*?</script>", "", html, flags=re.S)  # MathJax's own code is inlined


def test_feedback_has_no_hidden_test_and_no_key(course):
    """A student whose every number is wrong gets feedback naming what failed, without any expected value."""
    from nbgrader.api import Gradebook

    source = (COURSE / "source" / HW1 / f"{HW1}.ipynb").read_text(encoding="utf-8")
    hidden = "".join(marked_blocks(json_source(source), "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"))
    keys = _key_numbers(hidden)
    assert len(keys) >= 20, keys  # the test sees the keys it looks for
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        assert gb.find_submission(HW1, WRONG).code_score < gb.find_submission(HW1, SOLUTION).code_score
    for student in (WRONG, SOLUTION, UNTOUCHED, SHORTCUT):
        text = _feedback_text(course, student)
        for marker in MARKERS[2:]:
            assert marker not in text, f"{student}: {marker}"
        assert "check_close(&quot;SSE&quot;" not in text and "_right_or_consistent" not in text, student
        if student == WRONG:
            leaked = sorted(k for k in keys if k in text)
            assert not leaked, f"key numbers in the feedback: {leaked}"
            assert "a hidden check failed (mu_hat)" in text, "a hidden failure is named"
        assert not re.search(r"""<(?:script|link)[^>]+(?:src|href)=["']?(?:https?:)?//""", text), \
            f"{student}: the feedback loads something from the network"


def json_source(notebook_text: str) -> str:
    """All cell sources of a notebook's JSON text, joined."""
    import json

    return "\n".join("".join(c["source"]) for c in json.loads(notebook_text)["cells"])


def test_shortcut_fails_every_part_done_by_hand(course):
    """hw1 filled from lmmteach.aov1rm (and box_epsilon under another name) earns none of Parts 1-4's points."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(HW1, HW1, SHORTCUT)
        scores = {g.name: g.auto_score for g in nb.grades if g.auto_score is not None}
    assert all(scores[name] == 0 for name in HW1_BY_HAND_TESTS), scores
    assert "aov1rm was called" in failing_cells(course, SHORTCUT, HW1)
