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
