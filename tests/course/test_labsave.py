"""The students' JupyterLab never saves a lecture blank (lmmteach.course.labsave, course.py's save hook):
the rule on notebooks as JSON dicts, and the hook as jupyter_server calls it on a real file."""
from __future__ import annotations

import copy
import json
import logging
from types import SimpleNamespace

from lmmteach.course.labsave import LECTURE_PATH, keep_lecture_outputs, kept_outputs


def _nb(*cells) -> dict:
    return {"cells": [dict(c) for c in cells], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _code(cell_id, source, outputs=(), count=None) -> dict:
    return {"cell_type": "code", "id": cell_id, "source": source, "metadata": {}, "outputs": list(outputs),
            "execution_count": count}


OUT = {"output_type": "stream", "name": "stdout", "text": "rho = 0.42\n"}
STORED = _nb({"cell_type": "markdown", "id": "m", "source": "# Title", "metadata": {}},
             _code("a", "x = 1\nprint(x)", [OUT], 1), _code("b", "print(2)", [OUT], 2), _code("c", "y = 3", [], 3))


def _blanked(nb: dict) -> dict:
    new = copy.deepcopy(nb)
    for cell in new["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return new


def test_a_blank_save_keeps_the_stored_outputs_of_unchanged_cells():
    new = _blanked(STORED)
    new["cells"][2]["source"] = "print(20)"  # edited: saved as it is
    assert kept_outputs(new, STORED) == 2
    assert new["cells"][1]["outputs"] == [OUT] and new["cells"][1]["execution_count"] == 1
    assert new["cells"][2]["outputs"] == [] and new["cells"][2]["execution_count"] is None
    assert new["cells"][3]["execution_count"] == 3


def test_any_other_save_goes_through_as_it_is():
    one_cleared = copy.deepcopy(STORED)
    one_cleared["cells"][1]["outputs"], one_cleared["cells"][1]["execution_count"] = [], None
    rerun = copy.deepcopy(STORED)
    rerun["cells"][1]["outputs"] = [dict(OUT, text="rho = 0.43\n")]
    for new in (one_cleared, rerun, _nb({"cell_type": "markdown", "id": "m", "source": "", "metadata": {}})):
        before = copy.deepcopy(new)
        assert kept_outputs(new, STORED) == 0
        assert new == before


def test_the_hook_on_a_lecture_file_only(tmp_path):
    (tmp_path / "01_x.ipynb").write_text(json.dumps(STORED))
    (tmp_path / "homework").mkdir()
    (tmp_path / "homework" / "01_x.ipynb").write_text(json.dumps(STORED))
    manager = SimpleNamespace(_get_os_path=lambda p: str(tmp_path / p.strip("/")), log=logging.getLogger("test"))
    lecture = {"type": "notebook", "content": _blanked(STORED)}
    keep_lecture_outputs(lecture, "01_x.ipynb", manager)
    assert lecture["content"]["cells"][1]["outputs"] == [OUT]
    homework = {"type": "notebook", "content": _blanked(STORED)}
    keep_lecture_outputs(homework, "homework/01_x.ipynb", manager)
    assert homework["content"] == _blanked(STORED)
    new_file = {"type": "notebook", "content": _blanked(STORED)}
    keep_lecture_outputs(new_file, "02_new.ipynb", manager)  # nothing stored yet
    assert new_file["content"] == _blanked(STORED)
    assert LECTURE_PATH.fullmatch("07_glmm.ipynb") and not LECTURE_PATH.fullmatch("homework/hw1.ipynb")
