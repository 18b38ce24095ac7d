"""Build the course for the classroom: offline slide decks, the course website and the student bundle.

Run by ``course.py`` with the course environment's Python (it needs nbconvert, Sphinx with myst-nb, nbgrader):

    python classroom.py slides  OUT     # one reveal.js deck per lecture, reveal.js and MathJax copied beside them
    python classroom.py site    OUT     # static website (Sphinx + myst-nb) from the stored outputs, no execution
    python classroom.py bundle  OUT     # lectures + released homework (nbgrader's student version) for students

Nothing here re-executes a notebook: decks and pages show the outputs stored in ``lectures/*.ipynb``.
Every page works with no network: reveal.js comes from the ``sphinx-revealjs`` package's copy, MathJax 3 from
the ``django-static-mathjax`` package's copy (both installed with the ``course`` extra), and figures are
embedded (decks) or written next to the pages (site).

Conventions read from the notebooks (their cell metadata, never their text):

* a code cell tagged ``solution`` is collapsed whole (code and output, behind "show" toggles); ``hide-input``
  or ``jupyter.source_hidden`` collapses its code, ``hide-output`` or ``jupyter.outputs_hidden`` its output,
  ``hide-cell`` both. Markdown solutions written as ``<details>`` stay collapsed as they are.
* a figure's alt text is, in this order: the output's ``metadata["image/png"]["alt"]``, the cell's
  ``metadata["mystnb"]["image"]["alt"]``, the ``title=`` given to the plotting call, the section heading above it.
"""
from __future__ import annotations

import copy
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

__all__ = ["lecture_paths", "stage_notebook", "figure_alt", "myst_anchor", "join_inline_math", "copy_mathjax", "copy_reveal",
           "build_slides", "build_site", "build_wheel", "write_bundle"]

HERE = Path(__file__).resolve().parent
LECTURES = HERE.parent
HOMEWORK = LECTURES / "homework"
TEMPLATES = HERE / "templates"
SITE_CONF = HERE / "site"

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
TITLE_ARG = re.compile(r"""\btitle\s*=\s*[rfbu]*(["'])(.+?)\1""")
MARKDOWN_MATH = re.compile(r"\$+([^$]*)\$+")
JUPYTER_ANCHOR = re.compile(r"\]\(#([^)\s]+)\)")
INLINE_MATH = re.compile(r"(?<![\\$])\$([^$]+?)\$")
WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "[interactive widget: open this lecture in JupyterLab and run it to use the widget]"


def join_inline_math(source: str) -> str:
    """Markdown with every inline ``$...$`` on one line.

    JupyterLab protects maths before it parses Markdown; nbconvert and MyST do not, so an inline formula
    broken before ``+`` or ``-`` becomes a list item and its ``$`` stay raw. Display maths (``$$``) is kept.
    """
    parts = source.split("$$")
    for i in range(0, len(parts), 2):  # even parts lie outside display maths
        parts[i] = INLINE_MATH.sub(lambda m: "$" + " ".join(m.group(1).split("\n")) + "$", parts[i])
    return "$$".join(parts)


def lecture_paths() -> list[Path]:
    """The lecture notebooks, in course order (their file names start with the lecture number)."""
    return sorted(LECTURES.glob("[0-9]*.ipynb"))


TEX_FONT = re.compile(r"\\(?:text|textrm|mathrm|mathbf|mathit|mathsf|mathcal|boldsymbol|bm|operatorname)\s*\{([^{}]*)\}")
GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "varepsilon": "ε", "zeta": "ζ",
         "eta": "η", "theta": "θ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ",
         "sigma": "σ", "tau": "τ", "phi": "φ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
         "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Sigma": "Σ", "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
         "cdot": "·", "ldots": "…", "dots": "…", "times": "×", "le": "≤", "leq": "≤", "ge": "≥", "geq": "≥",
         "ne": "≠", "neq": "≠", "to": "→", "infty": "∞", "prime": "′", "sim": "~", "approx": "≈"}  # + symbols
ACCENTS = {"hat": "\u0302", "widehat": "\u0302", "bar": "\u0304", "overline": "\u0304", "tilde": "\u0303",
           "widetilde": "\u0303", "dot": "\u0307"}  # combining marks: \\hat v -> v̂
TEX_ACCENT = re.compile(r"\\(" + "|".join(ACCENTS) + r")\s*\{?\s*(\\[a-zA-Z]+|[a-zA-Z0-9])\s*\}?")
SUBSCRIPT = str.maketrans("0123456789aeijkmnoprstux", "₀₁₂₃₄₅₆₇₈₉ₐₑᵢⱼₖₘₙₒₚᵣₛₜᵤₓ")


def _plain_maths(tex: str) -> str:
    """Inline TeX as readable plain text: ``\\text{Cov}(\\mathbf{y}_i)`` -> ``Cov(yᵢ)``, ``\\sigma^2`` -> ``σ^2``,
    ``\\hat\\beta`` -> ``β̂``."""
    tex = TEX_FONT.sub(lambda m: m.group(1), tex)
    tex = TEX_ACCENT.sub(lambda m: GREEK.get(m.group(2).lstrip("\\"), m.group(2).lstrip("\\")) + ACCENTS[m.group(1)], tex)
    tex = re.sub(r"\\([a-zA-Z]+)", lambda m: GREEK.get(m.group(1), m.group(1)), tex)
    tex = re.sub(r"_\{?([0-9a-z])\}?(?![0-9a-zA-Z])",
                 lambda m: m.group(1).translate(SUBSCRIPT) if m.group(1) in "0123456789aeijkmnoprstux" else m.group(0),
                 tex)
    return tex.replace("{", "").replace("}", "")


def _plain(text: str) -> str:
    """Heading or title text as plain text (tab titles, index pages, sidebars, alt text): no Markdown emphasis,
    maths written out (see ``_plain_maths``)."""
    text = MARKDOWN_MATH.sub(lambda m: _plain_maths(m.group(1)), text)
    return re.sub(r"[*`]", "", text).strip()  # emphasis and code marks


def figure_alt(cell: dict, heading: str, output: dict | None = None) -> str:
    """Alt text for a figure drawn by ``cell`` under the section ``heading`` (see the module docstring)."""
    if output is not None:
        given = output.get("metadata", {}).get("image/png", {}).get("alt")
        if given:
            return given
    given = cell.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
    if given:
        return given
    titles = [_plain(m.group(2)) for m in TITLE_ARG.finditer(cell.get("source", ""))]
    if titles:
        return "Figure: " + "; ".join(titles)
    return f"Figure: {_plain(heading)}" if heading else "Figure"


def myst_anchor(jupyter_anchor: str) -> str:
    """The MyST (GitHub-style) slug of the heading that JupyterLab/nbconvert call ``jupyter_anchor``.

    Jupyter's anchor is the heading with spaces made ``-``; MyST's slug is lower case, without punctuation.
    """
    words = jupyter_anchor.replace("-", " ")
    return re.sub(r"[^\w\- ]", "", words.lower()).strip().replace(" ", "-")


def stage_notebook(nb: nbformat.NotebookNode, site: bool = False) -> nbformat.NotebookNode:
    """A copy of a lecture notebook ready for slides and site: collapse tags and figure alt text set.

    The copy gets (1) ``hide-input``/``hide-output`` tags from the course's solution conventions, which both
    the slide template and myst-nb understand; (2) alt text on every PNG output, in the output's metadata
    (read by the slide template) and in the cell's ``mystnb.image.alt`` (read by myst-nb); (3) the first
    heading as the notebook's title; (4) inline maths joined onto one line (see ``join_inline_math``);
    (5) widget outputs replaced by a note, and no widget state. With ``site=True`` links to a heading (``[..](#Heading-Text)``) are
    rewritten to MyST's anchors.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)  # saved widget state makes nbconvert and myst-nb load widget JS from a CDN
    heading = ""
    for cell in nb.cells:
        meta = cell.setdefault("metadata", {})
        if cell.cell_type == "markdown":
            cell.source = join_inline_math(cell.source)
            if site:
                cell.source = JUPYTER_ANCHOR.sub(lambda m: f"](#{myst_anchor(m.group(1))})", cell.source)
            found = HEADING.findall(cell.source)
            if found:
                heading = found[-1]
                if "title" not in nb.metadata:
                    nb.metadata["title"] = _plain(found[0])
                    if site:  # the page title is also the sidebar's, the tab's and the search's: plain text
                        cell.source = cell.source.replace(found[0], nb.metadata["title"], 1)
            continue
        if cell.cell_type != "code":
            continue
        tags = list(meta.get("tags", []))
        hidden = meta.get("jupyter", {})
        if "solution" in tags:  # an exercise's solution: its output gives the answer away too
            tags += ["hide-input", "hide-output"]
        if hidden.get("source_hidden"):
            tags.append("hide-input")
        if hidden.get("outputs_hidden"):
            tags.append("hide-output")
        if "hide-cell" in tags:
            tags += ["hide-input", "hide-output"]
        if tags:
            meta["tags"] = list(dict.fromkeys(tags))
        for output in cell.get("outputs", []):
            if WIDGET in output.get("data", {}):  # a widget needs a kernel: say so instead of loading its JS
                output["data"] = {"text/plain": WIDGET_NOTE}
            if "image/png" in output.get("data", {}):
                alt = figure_alt(cell, heading, output)
                output.setdefault("metadata", {}).setdefault("image/png", {})["alt"] = alt
                meta.setdefault("mystnb", {}).setdefault("image", {}).setdefault("alt", alt)
    return nb


# ---------------------------------------------------------------------------------------------------------
# Local copies of reveal.js and MathJax
# ---------------------------------------------------------------------------------------------------------
def _package_dir(module: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"the Python package providing '{module}' is not installed: run `python3 course.py setup`")
    return Path(list(spec.submodule_search_locations)[0], *parts)


def copy_mathjax(dest: Path) -> Path:
    """MathJax 3 (TeX input, CommonHTML output, all TeX extensions in one file) and its fonts into ``dest``."""
    es5 = _package_dir("mathjax", "static", "mathjax", "es5")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(es5 / "tex-chtml-full.js", dest / "tex-chtml-full.js")
    for sub in ("output/chtml/fonts/woff-v2", "ui", "a11y"):
        shutil.copytree(es5 / sub, dest / sub, dirs_exist_ok=True)
    shutil.copy2(es5.parent / "LICENSE", dest / "LICENSE")
    return dest


def copy_reveal(dest: Path) -> Path:
    """reveal.js (script, styles, the white theme and its fonts, speaker notes plugin) into ``dest``."""
    src = _package_dir("sphinx_revealjs", "_static", "revealjs")
    for rel in ("LICENSE", "dist/reveal.js", "dist/reveal.css", "dist/reset.css", "dist/theme/white.css",
                "plugin/notes/notes.js"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest / rel)
    shutil.copytree(src / "dist/theme/fonts/source-sans-pro", dest / "dist/theme/fonts/source-sans-pro",
                    dirs_exist_ok=True)
    return dest


# ---------------------------------------------------------------------------------------------------------
# Slides
# ---------------------------------------------------------------------------------------------------------
def build_slides(out: Path) -> list[Path]:
    """One reveal.js deck per lecture in ``out`` (``NN_name.slides.html``) and an ``index.html`` listing them."""
    from nbconvert import SlidesExporter

    out.mkdir(parents=True, exist_ok=True)
    copy_reveal(out / "_static" / "reveal.js")
    copy_mathjax(out / "_static" / "mathjax")
    exporter = SlidesExporter(template_name="lmm_reveal", extra_template_basedirs=[str(TEMPLATES)],
                              reveal_url_prefix="_static/reveal.js", reveal_theme="white",
                              reveal_scroll=True)
    decks = []
    for path in lecture_paths():
        nb = stage_notebook(nbformat.read(path, as_version=4))
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        target = out / f"{path.stem}.slides.html"
        target.write_text(body, encoding="utf-8")
        decks.append((target, nb.metadata.get("title", path.stem)))
        print(f"  {target}")
    items = "\n".join(f'<li><a href="{t.name}">{html.escape(title)}</a></li>' for t, title in decks)
    (out / "index.html").write_text(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lmmteach slides</title></head>\n"
        f"<body><h1>lmmteach: lecture slides</h1>\n<ol>\n{items}\n</ol>\n"
        "<p>Keys: arrows or space to move, <kbd>s</kbd> speaker notes, <kbd>f</kbd> full screen, "
        "<kbd>Esc</kbd> overview.</p></body></html>\n", encoding="utf-8")
    return [t for t, _ in decks]


# ---------------------------------------------------------------------------------------------------------
# Site
# ---------------------------------------------------------------------------------------------------------
def build_site(out: Path, work: Path) -> Path:
    """The course website in ``out``: Sphinx + myst-nb over staged copies of the lectures written to ``work``."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    entries = []
    for path in lecture_paths():
        nb = stage_notebook(nbformat.read(path, as_version=4), site=True)
        nbformat.write(nb, work / path.name)
        entries.append((path.stem, nb.metadata.get("title", path.stem)))
    listing = "\n".join(f"{i}. [{title}]({stem})" for i, (stem, title) in enumerate(entries, 1))
    toctree = "\n".join(f"{title} <{stem}>" for stem, title in entries)  # the sidebar's titles: plain text
    index = (SITE_CONF / "index.md").read_text(encoding="utf-8")
    index += f"\n{listing}\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: Lectures\n\n{toctree}\n```\n"
    (work / "index.md").write_text(index, encoding="utf-8")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(SITE_CONF), str(work), str(out)]
    print("+", " ".join(cmd), flush=True)
    stray = out.parent / "jupyter_execute"  # myst-nb writes the notebooks it read beside the output folder
    existed = stray.exists()
    subprocess.run(cmd, check=True)
    if stray.exists() and not existed:
        shutil.rmtree(stray)
    copy_mathjax(out / "_static" / "mathjax")  # conf.py: mathjax_path = "mathjax/tex-chtml-full.js"
    return out / "index.html"


# ---------------------------------------------------------------------------------------------------------
# Student bundle
# ---------------------------------------------------------------------------------------------------------
BUNDLE_README = """\
lmmteach: the student's copy
============================

lectures/   the lecture notebooks (exercise solutions are collapsed: try first, then expand)
homework/   the homework as nbgrader hands it out: no solutions, no hidden tests.
            Fill in every "YOUR CODE HERE" / "YOUR ANSWER HERE", run the notebook top to bottom,
            and hand in the .ipynb file as your instructor asks.
{wheel}

To run the notebooks you need Python >= 3.10:

    python3 -m venv .venv
    .venv/bin/pip install {install} jupyterlab ipywidgets
    .venv/bin/jupyter lab
"""


WHEEL_SOURCES = ("pyproject.toml", "README.md", "lmmteach", "datasets")  # what pyproject.toml packages


def build_wheel(root: Path, out: Path) -> Path:
    """The library's wheel in ``out``, built offline (no build isolation: the course environment has setuptools)
    from a temporary copy of what it packages, so no ``build/`` or ``*.egg-info`` is left in the repository."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in WHEEL_SOURCES:
            src = root / name
            if src.is_dir():
                shutil.copytree(src, Path(tmp) / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, Path(tmp) / name)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                        "-w", str(out), tmp], check=True)
    return next(out.glob("lmmteach-*.whl"))


def write_bundle(out: Path, wheel: bool = True) -> Path:
    """Lectures + nbgrader's student version of every assignment (+ the library as a wheel) in ``out``.

    Returns the zip archive of ``out`` written beside it.
    """
    if out.exists():
        shutil.rmtree(out)
    (out / "lectures").mkdir(parents=True)
    for path in lecture_paths():
        shutil.copy2(path, out / "lectures" / path.name)
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "homework"
        shutil.copytree(HOMEWORK / "source", course / "source")
        shutil.copy2(HOMEWORK / "nbgrader_config.py", course / "nbgrader_config.py")
        shutil.copytree(HOMEWORK / "templates", course / "templates")
        # nbgrader runs `alembic` (gradebook migrations) from PATH: this environment's bin first
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        for assignment in sorted(p.name for p in (course / "source").iterdir() if p.is_dir()):
            subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force",
                            f"--CourseDirectory.root={course}", f"--db=sqlite:///{course / 'gradebook.db'}",
                            "--log-level=WARN"], check=True, cwd=course, env=env)
        shutil.copytree(course / "release", out / "homework")
    root = LECTURES.parent
    wheel_note, install = "", "lmmteach"
    if wheel and (root / "pyproject.toml").exists():
        built = build_wheel(root, out)
        wheel_note = f"{built.name}  the lmmteach library (datasets included)"
        install = f"./{built.name}"
    (out / "README.txt").write_text(BUNDLE_README.format(wheel=wheel_note, install=install), encoding="utf-8")
    archive = shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
    return Path(archive)


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("slides", "site", "bundle"):
        raise SystemExit(__doc__)
    what, out = argv[0], Path(argv[1]).resolve()
    if what == "slides":
        decks = build_slides(out)
        print(f"{len(decks)} decks in {out} (open {out / 'index.html'}; works offline)")
    elif what == "site":
        index = build_site(out, out.parent / "site-src")
        print(f"course website: {index} (works offline)")
    else:
        archive = write_bundle(out)
        print(f"student bundle: {out} and {archive}")


if __name__ == "__main__":
    main(sys.argv[1:])
