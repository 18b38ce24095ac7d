"""A lecture notebook is never saved with every output gone (the students' JupyterLab, ``course.py lab``).

JupyterLab 4.3 runs a cell only once the notebook's kernel is attached; before that, "Run All" clears
each code cell's outputs and execution count and runs nothing (``CodeCell.execute`` returns early when the
session has no kernel yet: jupyterlab/jupyterlab#8490). Pressed while the kernel still starts, it leaves
the whole lecture blank, and the autosave two minutes later writes it so.

``keep_lecture_outputs`` is the server's ``ContentsManager.pre_save_hook``: when a save of a lecture
notebook (``NN_name.ipynb`` at the top of the served folder) would leave *every* code cell without outputs,
each cell whose code is unchanged keeps the outputs and execution count stored in the file. Any other save
goes through as it is: new outputs, a cell cleared on its own, edited code, the homework notebooks.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["LECTURE_PATH", "keep_lecture_outputs", "kept_outputs"]

LECTURE_PATH = re.compile(r"\d\d_[^/\\]+\.ipynb")  # a lecture, relative to the served folder


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _blank(cell: dict) -> bool:
    return not cell.get("outputs") and cell.get("execution_count") is None


def kept_outputs(new: dict, stored: dict) -> int:
    """Give the code cells of notebook ``new`` (a JSON dict, changed in place) the outputs stored in
    ``stored`` when every code cell of ``new`` is blank (no output, no execution count), for each cell of the
    same id and the same code. Returns the number of cells given back."""
    code = [c for c in new.get("cells", []) if c.get("cell_type") == "code"]
    if not code or not all(_blank(c) for c in code):
        return 0
    by_id = {c.get("id"): c for c in stored.get("cells", []) if c.get("cell_type") == "code" and c.get("id")}
    kept = 0
    for cell in code:
        old = by_id.get(cell.get("id"))
        if old is not None and not _blank(old) and _source(old) == _source(cell):
            cell["outputs"] = old.get("outputs", [])
            cell["execution_count"] = old.get("execution_count")
            kept += 1
    return kept


def keep_lecture_outputs(model: dict, path: str, contents_manager, **kwargs) -> None:
    """jupyter_server's pre-save hook (see the module's docstring)."""
    if model.get("type") != "notebook" or not LECTURE_PATH.fullmatch(path.strip("/")):
        return
    stored_path = Path(contents_manager._get_os_path(path))
    if not stored_path.is_file():
        return
    try:
        stored = json.loads(stored_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a file we cannot read is saved over as JupyterLab asks
    kept = kept_outputs(model["content"], stored)
    if kept:
        contents_manager.log.warning(
            "%s: saved without any output (Run All before the kernel was ready?); kept the stored outputs of "
            "%d unchanged cells", path, kept)
