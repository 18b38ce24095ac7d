"""lectures/_classroom/classroom.py without a browser: how a lecture is staged for slides and site."""
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("classroom", ROOT / "lectures" / "_classroom" / "classroom.py")
classroom = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(classroom)

PNG = "iVBORw0KGgo="  # any base64 text: staging never decodes it


def _figure_cell(source, **metadata):
    cell = nbformat.v4.new_code_cell(source, metadata=metadata)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})]
    return cell


def _notebook(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


@pytest.mark.parametrize("metadata, expected", [
    ({"tags": ["solution"], "jupyter": {"source_hidden": True}}, ["solution", "hide-input", "hide-output"]),
    ({"jupyter": {"source_hidden": True}}, ["hide-input"]),
    ({"jupyter": {"outputs_hidden": True}}, ["hide-output"]),
    ({"tags": ["hide-cell"]}, ["hide-cell", "hide-input", "hide-output"]),
    ({"tags": ["hide-input"]}, ["hide-input"]),
    ({}, None),
])
def test_collapse_tags_from_metadata(metadata, expected):
    nb = _notebook(nbformat.v4.new_code_cell("x = 1", metadata=metadata))
    staged = classroom.stage_notebook(nb)
    assert staged.cells[0].metadata.get("tags") == expected
    assert nb.cells[0].metadata == metadata  # the lecture itself is not changed


def test_alt_text_from_title_then_heading_then_given():
    nb = _notebook(
        nbformat.v4.new_markdown_cell("# Lecture\n\n## Shrinkage of the $\\hat v_i$"),
        _figure_cell('ax = plots.plot_x(df, title=r"BLUPs vs means ($\\sigma^2$)")\nplt.show()'),
        _figure_cell("plt.plot([1, 2])"),
        _figure_cell("plt.plot([1, 2])", mystnb={"image": {"alt": "Line through two points"}}),
    )
    staged = classroom.stage_notebook(nb)
    alts = [c.outputs[0].metadata["image/png"]["alt"] for c in staged.cells[1:]]
    assert alts == ["Figure: BLUPs vs means (σ^2)", "Figure: Shrinkage of the v̂ᵢ",
                    "Line through two points"]
    assert staged.cells[1].metadata["mystnb"]["image"]["alt"] == alts[0]
    assert staged.metadata["title"] == "Lecture"


@pytest.mark.parametrize("site", [False, True])
def test_title_with_maths_is_plain_text(site):
    """Lecture 06's title: index pages, sidebar, tab and search show it as text, never as raw TeX."""
    nb = _notebook(nbformat.v4.new_markdown_cell("# Modelling $\\text{Cov}(\\mathbf{y}_i)$ Directly\n\nText $\\hat\\beta$."))
    staged = classroom.stage_notebook(nb, site=site)
    assert staged.metadata["title"] == "Modelling Cov(yᵢ) Directly"
    # the site's page title (h1) is the plain one too; the deck keeps the maths for MathJax
    assert staged.cells[0].source.startswith("# Modelling Cov(yᵢ) Directly" if site else "# Modelling $\\text{Cov}")
    assert "$\\hat\\beta$" in staged.cells[0].source


def test_heading_links_become_myst_anchors_on_the_site_only():
    link = "see [the simulation](#Simulation:-OLS-Standard-Errors-with-Clustered-Data)."
    nb = _notebook(nbformat.v4.new_markdown_cell(link))
    assert classroom.stage_notebook(nb).cells[0].source == link
    assert classroom.stage_notebook(nb, site=True).cells[0].source == \
        "see [the simulation](#simulation-ols-standard-errors-with-clustered-data)."


def test_every_lecture_figure_gets_alt_text():
    for path in classroom.lecture_paths():
        staged = classroom.stage_notebook(nbformat.read(path, as_version=4))
        for cell in staged.cells:
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    alt = output.metadata["image/png"]["alt"]
                    assert alt.strip() not in ("", "Figure", "Figure:"), f"{path.name}: {cell.source[:60]}"


def test_inline_math_is_joined_onto_one_line():
    source = "identity $a\n+ b = c$ and $$x\n+ y$$ and $d\n- e$."
    assert classroom.join_inline_math(source) == "identity $a + b = c$ and $$x\n+ y$$ and $d - e$."


def test_widget_outputs_become_a_note_and_widget_state_goes():
    cell = nbformat.v4.new_code_cell("interact(f)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2, "version_minor": 0},
        "text/plain": "interactive(children=(...))"})]
    nb = _notebook(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    staged = classroom.stage_notebook(nb)
    assert "widgets" not in staged.metadata
    assert staged.cells[0].outputs[0]["data"] == {"text/plain": classroom.WIDGET_NOTE}
