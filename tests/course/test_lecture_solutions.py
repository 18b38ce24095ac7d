"""The lectures' exercise solutions are Markdown, not code, and their stored code still gives their stored result.

A solution is a collapsed block in a Markdown cell, so Run All cannot reveal it and no renderer (GitHub,
nbviewer, VS Code, the site, the decks) shows it expanded::

    <details><summary>Solution</summary>

    ```python
    the code
    ```

    ```
    what it prints (each text output in its own plain fence)
    ```

    *Figure (run the code to draw it):* what the figure shows, in words (myst-nb shows no attached images)

    the discussion
    </details>

Since nothing runs that code any more, this test does: it rebuilds each lecture with every solution turned back
into a code cell in its place (so it runs after the cells above it, as a student would paste it), executes it in
a fresh kernel, and checks that each solution prints exactly the stored text and draws the stored number of
figures. The nbval sanitize patterns apply to both sides.
"""
from __future__ import annotations

import configparser
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
LECTURES = sorted((ROOT / "lectures").glob("[0-9]*.ipynb"))
SANITIZE = ROOT / "lectures" / "nbval_sanitize.cfg"
SUMMARY = "<details><summary>Solution</summary>"
CODE = re.compile(r"```python\n(?P<code>.*?)\n```\n", re.S)
FIGURE = "*Figure (run the code to draw it):* "
# after the code: plain fences (printed text) and figures described in words, in output order
PIECE = re.compile(r"\s*(?:```\n(?P<text>.*?)\n```\n|" + re.escape(FIGURE) + r"(?P<alt>[^\n]+)\n)", re.S)
CELL_TIMEOUT = 1800  # seconds: the longest solution (02's 100,000-data-set simulation) on a loaded 2-core machine


def _patterns() -> list[tuple[re.Pattern, str]]:
    cfg = configparser.ConfigParser()
    cfg.read(SANITIZE)
    return [(re.compile(cfg[s]["regex"]), cfg[s]["replace"]) for s in cfg.sections()]


def _normal(text: str) -> str:
    for pattern, replace in _patterns():
        text = pattern.sub(replace, text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def parse_solution(source: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(code, [("text", printed) | ("image", alt)]) of a solution block, None for a cell that holds none."""
    start = source.find(SUMMARY)
    if start < 0:
        return None
    body = source[start + len(SUMMARY):]
    code = CODE.search(body)
    if code is None or body[: code.start()].strip():
        raise AssertionError(f"a solution block must open with its ```python code:\n{source[:400]}")
    pieces, pos = [], code.end()
    while (m := PIECE.match(body, pos)) is not None:
        pieces.append(("text", m["text"]) if m["text"] is not None else ("image", m["alt"]))
        pos = m.end()
    return code["code"], pieces


def fresh_pieces(outputs) -> list[tuple[str, str]]:
    """A code cell's outputs as parse_solution lists them (consecutive texts joined; stderr left out)."""
    pieces: list[tuple[str, str]] = []
    for out in outputs:
        if out.output_type == "stream":
            if out.name != "stdout":
                continue
            text = out.text
        elif out.output_type in ("execute_result", "display_data"):
            if "image/png" in out.data:
                pieces.append(("image", ""))
                continue
            text = out.data.get("text/plain", "") + "\n"
        elif out.output_type == "error":
            raise AssertionError(f"the solution raised {out.ename}: {out.evalue}")
        else:
            continue
        if pieces and pieces[-1][0] == "text":
            pieces[-1] = ("text", pieces[-1][1] + text)
        else:
            pieces.append(("text", text))
    return pieces


def _solutions(nb) -> list[tuple[int, str, list[tuple[str, str]]]]:
    found = []
    for i, cell in enumerate(nb.cells):
        parsed = parse_solution(cell.source) if cell.cell_type == "markdown" else None
        if parsed is not None:
            found.append((i, *parsed))
    return found


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_solutions_are_markdown(path):
    """No executable solution cell; every exercise has a parsable solution block; figures are described."""
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])]
    assert tagged == [], f"code cells tagged solution (Run All would reveal them): {tagged}"
    solutions = _solutions(nb)
    assert solutions, "a lecture's exercises have solutions"
    for i, _, pieces in solutions:
        assert all(alt.strip() for kind, alt in pieces if kind == "image"), f"cell {i}: a figure without words"
        assert nb.cells[i].source.rstrip().endswith("</details>"), f"cell {i}: the block is not closed"


def test_parse_solution_reads_code_text_and_figures():
    source = (f"**Exercise 1.**\n\n{SUMMARY}\n\n```python\nx = 1\nprint(x)\n```\n\n```\n1\n```\n\n"
              f"{FIGURE}a line\n\n```\n2\n```\n\nWhy: ...\n\n</details>")
    assert parse_solution(source) == ("x = 1\nprint(x)", [("text", "1"), ("image", "a line"), ("text", "2")])
    assert parse_solution("plain markdown") is None
    with pytest.raises(AssertionError, match="must open"):
        parse_solution(f"{SUMMARY}\n\nno code here\n\n```python\nx\n```\n")


@pytest.mark.parametrize("path", LECTURES, ids=[p.stem for p in LECTURES])
def test_solution_code_gives_its_stored_result(path):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    solutions = _solutions(nb)
    run = nbformat.v4.new_notebook(metadata=nb.metadata)
    where = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            run.cells.append(nbformat.v4.new_code_cell(cell.source))
    for i, code, _ in reversed(solutions):  # insert each solution after the code cells above it
        above = sum(1 for c in nb.cells[:i] if c.cell_type == "code")
        run.cells.insert(above, nbformat.v4.new_code_cell(code))
    for k, (i, _, _) in enumerate(solutions):  # their positions once all are inserted
        where[i] = sum(1 for c in nb.cells[:i] if c.cell_type == "code") + k
    NotebookClient(run, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   allow_errors=True).execute()
    for i, _, stored in solutions:
        fresh = fresh_pieces(run.cells[where[i]].outputs)
        assert [k for k, _ in fresh] == [k for k, _ in stored], f"cell {i}: outputs {fresh} but stored {stored}"
        for (kind, got), (_, want) in zip(fresh, stored):
            if kind == "text":
                assert _normal(got) == _normal(want), f"cell {i} prints\n{got}\nbut its block stores\n{want}"
