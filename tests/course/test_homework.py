"""The nbgrader homework: cell metadata, student versions, and autograding end to end.

For every assignment in lectures/homework/source/ this runs, in a temporary copy of the course
directory (nothing is written into the repository):

    nbgrader generate_assignment <a> --force
    nbgrader autograde <a> --force

with two submissions: the instructor's source notebook (must earn every autograded point) and the
untouched student version from release/ (must earn none).  Scores are read from nbgrader's gradebook.
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

SOLUTION, UNTOUCHED = "instructor", "untouched"
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
    for a in ASSIGNMENTS:
        nbgrader(course, "generate_assignment", a, "--force")
        for student, origin in ((SOLUTION, course / "source" / a), (UNTOUCHED, course / "release" / a)):
            target = course / "submitted" / student / a
            target.mkdir(parents=True)
            for nb in origin.glob("*.ipynb"):
                shutil.copy(nb, target / nb.name)
        nbgrader(course, "autograde", a, "--force")
    return course


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
