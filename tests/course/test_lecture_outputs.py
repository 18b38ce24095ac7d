"""What the lectures store besides their solutions: figures that carry their alt text in the output itself, and no
saved widget state.

* Every PNG output has ``metadata["image/png"]["alt"]``, which JupyterLab, nbconvert's decks and myst-nb put in
  the ``<img alt=...>`` (cell metadata is read by no renderer). The lectures draw with ``plots.show(fig, alt=...)``.
* No notebook stores ipywidgets state or widget views: the state is ~130 KB per slider set, and a stored view with
  no kernel shows an error in JupyterLab. Widget cells are stored without output (they need a running kernel).
"""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
LECTURES = sorted((ROOT / "lectures").glob("[0-9]*.ipynb"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MIN_ALT_WORDS = 8  # a description, not a label such as "Figure"


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_every_figure_output_carries_its_alt_text(path):
    nb = nbformat.read(path, as_version=4)
    figures = 0
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                figures += 1
                alt = out.get("metadata", {}).get("image/png", {}).get("alt", "")
                assert len(alt.split()) >= MIN_ALT_WORDS, f"cell {i}: figure without alt text in its output ({alt!r})"
    assert figures >= 1


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_no_widget_state_is_stored(path):
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata, "saved widget state: re-execute with --ExecutePreprocessor.store_widget_state=False"
    views = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if WIDGET_VIEW in o.get("data", {})]
    assert views == [], f"cells {views} store a widget view (it needs a running kernel)"
