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


c.Autograde.sanitize_preprocessors = [
    OverwriteCellsKnowingHiddenTests if p is OverwriteCells else p
    for p in Autograde.class_traits()["sanitize_preprocessors"].default()
]
