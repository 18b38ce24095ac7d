"""The course's nbgrader_config.py: autograde warns about a changed test cell only when a student changed it.

nbgrader alone warns "Attribute 'checksum' for cell ... has changed!" for every untouched test cell that has
hidden tests (nbgrader issue #1961). A tiny assignment (one answer cell, one test cell with hidden tests) is
released, submitted untouched by one student and with an edited test cell by another, and autograded.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "lectures" / "homework" / "nbgrader_config.py"
BIN = Path(sys.executable).parent
WARNING = "has changed!"


def _cell(kind, source, **nbgrader):
    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    meta = {"grade": False, "locked": False, "schema_version": 3, "solution": False, "task": False, **nbgrader}
    return make(source, metadata={"nbgrader": meta})


def _nbgrader(course: Path, *args: str) -> str:
    env = dict(os.environ, PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""),
               LMMTEACH_EXCHANGE=str(course / "exchange"))
    cmd = [str(BIN / "nbgrader"), *args, f"--CourseDirectory.root={course}",
           f"--db=sqlite:///{course / 'gradebook.db'}"]
    proc = subprocess.run(cmd, cwd=course, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def autograde_log(tmp_path_factory) -> str:
    course = tmp_path_factory.mktemp("course")
    shutil.copy(CONFIG, course / "nbgrader_config.py")
    shutil.copytree(CONFIG.parent / "templates", course / "templates")
    nb = nbformat.v4.new_notebook(cells=[
        _cell("code", "### BEGIN SOLUTION\nanswer = 42\n### END SOLUTION", grade_id="answer", solution=True),
        _cell("code", "assert answer > 0\n### BEGIN HIDDEN TESTS\nassert answer == 42\n### END HIDDEN TESTS",
              grade_id="test_answer", grade=True, locked=True, points=1),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (course / "source" / "ps1").mkdir(parents=True)
    nbformat.write(nb, course / "source" / "ps1" / "ps1.ipynb")
    _nbgrader(course, "generate_assignment", "ps1", "--force")
    released = nbformat.read(course / "release" / "ps1" / "ps1.ipynb", as_version=4)
    assert "HIDDEN" not in released.cells[1].source
    edited = nbformat.from_dict(released)
    edited.cells[1].source += "\nassert True  # a student's edit"
    for student, notebook in (("untouched", released), ("edited", edited)):
        (course / "submitted" / student / "ps1").mkdir(parents=True)
        nbformat.write(notebook, course / "submitted" / student / "ps1" / "ps1.ipynb")
    return _nbgrader(course, "autograde", "ps1", "--force")


def test_untouched_submission_raises_no_checksum_warning(autograde_log):
    warnings = [line for line in autograde_log.splitlines() if WARNING in line]
    assert len(warnings) == 1, "\n".join(warnings) or autograde_log


def test_edited_test_cell_still_warns(autograde_log):
    assert "Attribute 'checksum' for cell test_answer has changed!" in autograde_log
