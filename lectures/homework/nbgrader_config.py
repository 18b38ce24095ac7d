"""nbgrader configuration of the lmmteach homework (run nbgrader from this directory).

Layout (nbgrader's own): ``source/<assignment>/<notebook>.ipynb`` is what the instructor writes and what
is committed; ``release/``, ``submitted/``, ``autograded/``, ``feedback/`` and ``gradebook.db`` are made
by nbgrader here and are ignored by git.  See "Homework with nbgrader" in the repository README.
"""

import os
import tempfile
from pathlib import Path

c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

HERE = Path(__file__).resolve().parent

c.CourseDirectory.course_id = "lmmteach"
c.CourseDirectory.root = str(HERE)
c.CourseDirectory.db_url = f"sqlite:///{HERE / 'gradebook.db'}"

# Exchange for `nbgrader release_assignment` / `fetch_assignment` / `submit` / `collect` on ONE machine
# (instructor and students share a file system, e.g. a JupyterHub).  Override with the environment
# variable LMMTEACH_EXCHANGE, e.g. a directory every student can write to.  Courses that hand out
# release/ through a learning-management system do not need the exchange at all.
c.Exchange.root = os.environ.get("LMMTEACH_EXCHANGE", str(Path(tempfile.gettempdir()) / "lmmteach-exchange"))

# What a student sees in place of a solution.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Autograding executes each notebook top to bottom and goes on after a failing cell (nbgrader's
# default).  The per-cell limit (default 30 s) is raised for hw3's simulation on a busy machine.
c.Execute.timeout = 300


# ---------------------------------------------------------------------------------------------------------
# Autograde without false "checksum has changed" warnings (nbgrader issue #1961).
# nbgrader stores a test cell's source and checksum in the gradebook BEFORE it removes the
# "### BEGIN HIDDEN TESTS" region for the student version, so at autograde every untouched test cell with
# hidden tests differs from the gradebook and nbgrader warns "Attribute 'checksum' for cell ... has
# changed!" (six times per student here), then restores the cell. The warning reads as tampering. This
# subclass restores such a cell first, when it is exactly the released cell (the gradebook's source with
# the hidden region removed by nbgrader's own ClearHiddenTests), so nbgrader only warns about cells a
# student really changed. Grading is unchanged: both ways the gradebook's cell, hidden tests included, runs.
# ---------------------------------------------------------------------------------------------------------
import copy  # noqa: E402
import warnings  # noqa: E402

from sqlalchemy.exc import SAWarning  # noqa: E402

from nbgrader.api import MissingEntry  # noqa: E402
from nbgrader.converters.autograde import Autograde  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells  # noqa: E402


class OverwriteCellsKnowingHiddenTests(OverwriteCells):
    """nbgrader's OverwriteCells, silent for a test cell that is exactly as released (hidden tests removed)."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and cell.cell_type == "code":
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None
            if source_cell is not None and source_cell.locked and cell.source != source_cell.source:
                released = copy.deepcopy(cell)
                released.source = source_cell.source
                ClearHiddenTests(parent=self).preprocess_cell(released, {}, cell_index)
                if released.source == cell.source:
                    cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)


# nbgrader 0.9 with SQLAlchemy 2 warns "Object of type <SubmittedAssignment> not in session, add operation along
# 'Student.submissions' will not proceed" three times per autograde: SQLAlchemy 2 no longer cascades an object
# into the session through a backref, and nbgrader adds these objects to the session itself right after, so
# nothing is lost (the gradebook tests read every score back). Only these messages are silenced.
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session, add operation along",
                        category=SAWarning)

c.Autograde.sanitize_preprocessors = [
    OverwriteCellsKnowingHiddenTests if p is OverwriteCells else p
    for p in Autograde.class_traits()["sanitize_preprocessors"].default()
]


# ---------------------------------------------------------------------------------------------------------
# Feedback without the answer key, with maths that typesets offline.
# nbgrader's feedback HTML (`nbgrader generate_feedback`) is made from the autograded notebook, whose test
# cells hold the hidden tests again, and it loads MathJax 2 from a CDN. Here the feedback shows each test cell
# as the student received it (hidden tests removed by nbgrader's own ClearHiddenTests), a failure inside the
# hidden tests only as "a hidden check failed" with the quantity's name (never the traceback, which quotes the
# failing line, nor the message, which gives the expected value), and MathJax 3 (SVG output, no font files)
# inlined from the `django-static-mathjax` package, so a student opens one self-contained file offline.
# ---------------------------------------------------------------------------------------------------------
import re  # noqa: E402

import nbgrader  # noqa: E402

from nbconvert.preprocessors import Preprocessor  # noqa: E402
from nbgrader.converters.generate_feedback import GenerateFeedback  # noqa: E402

HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CELL_LINE = re.compile(r"Cell In\[\d*\], line (\d+)")
_QUANTITY = re.compile(r"^(.*?): (?:expected|no value|\d+ of \d+ entries|\d+ cell\(s\))", re.S)


def _hidden_lines(source: str) -> set[int]:
    """1-based line numbers of the hidden-test region(s) of a cell, markers included."""
    lines, inside = set(), False
    for number, line in enumerate(source.splitlines(), 1):
        if HIDDEN_BEGIN in line:
            inside = True
        if inside:
            lines.add(number)
        if HIDDEN_END in line:
            inside = False
    return lines


def hidden_failure_note(output: dict) -> str:
    """What the feedback says for an error raised by a hidden test: the quantity's name, nothing else."""
    found = _QUANTITY.match(str(output.get("evalue", "")))
    name = f" ({found.group(1).strip()})" if found else ""
    return f"a hidden check failed{name}; the answer key is not shown."


class FeedbackWithoutKeys(Preprocessor):
    """Test cells as released (no hidden tests) and no expected value in the failure messages of hidden tests."""

    enabled = True  # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or HIDDEN_BEGIN not in cell.source:
            return cell, resources
        hidden = _hidden_lines(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            trace = _ANSI.sub("", "\n".join(output.get("traceback", [])))
            lines = [int(n) for n in _CELL_LINE.findall(trace)]
            if not lines or lines[0] in hidden:  # unknown place: treat as hidden
                output["ename"], output["evalue"] = "AssertionError", hidden_failure_note(output)
            output["traceback"] = [f"{output['ename']}: {output['evalue']}"]
        released = copy.deepcopy(cell)
        ClearHiddenTests(parent=self).preprocess_cell(released, resources, cell_index)
        cell.source = released.source
        return cell, resources


def _mathjax_es5() -> Path:
    import mathjax  # the django-static-mathjax package (course extra)

    return Path(list(mathjax.__path__)[0]) / "static" / "mathjax" / "es5"


def inline_mathjax(_unused=None) -> str:
    """MathJax 3's TeX-to-SVG bundle as a script element (self-contained: SVG output needs no font files)."""
    config = ("window.MathJax = {tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true}, "
              "svg: {fontCache: 'global'}};")
    script = (_mathjax_es5() / "tex-svg-full.js").read_text(encoding="utf-8")
    assert "</script" not in script.lower()  # safe to inline
    return f"<script>{config}</script>\n<script>{script}</script>"


TEMPLATES = HERE / "templates"
if not (TEMPLATES / "feedback" / "mathjax.html.j2").is_file():  # else the feedback would load MathJax from a CDN
    raise FileNotFoundError(f"{TEMPLATES / 'feedback'} is missing: keep lectures/homework/templates/ beside "
                            "nbgrader_config.py (the homework feedback's offline MathJax)")
c.GenerateFeedback.preprocessors = [FeedbackWithoutKeys, *GenerateFeedback.class_traits()["preprocessors"].default()]
c.HTMLExporter.extra_template_basedirs = [
    str(TEMPLATES),  # templates/feedback/mathjax.html.j2: found first, replaces nbconvert's
    str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"),  # nbgrader's "feedback"
]
c.HTMLExporter.filters = {"lmm_inline_mathjax": inline_mathjax}
