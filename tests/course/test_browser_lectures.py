"""A student presses Run All in a lecture and sees no solution.

The students' JupyterLab (`course.py lab`) serves a copy of lectures/ (Run All must not touch the repository's
notebooks); headless Chromium opens a lecture, clears every output, runs all cells and waits for the kernel to
finish. Then no `<details>` block is open and no solution's code or printed result is visible, while the lecture's
own outputs and the self-checks' "not attempted yet" lines are back. The screenshot (build/screenshots/) is for a
person to look at. Browser, offline page and server helpers come from test_browser.py.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest
import test_browser as tb
from test_browser import browser, offline  # noqa: F401  (fixtures)
from test_lecture_solutions import parse_solution

RUN_ALL_TIMEOUT = 600_000  # ms: a whole lecture on a loaded 2-core machine
LECTURE = "01_correlated_data.ipynb"  # short to run, three exercises with code, printed results and a table

# Needles found in the text of a visible block (code and output blocks, paragraphs, table cells): a block inside
# a closed <details> or hidden by CSS has no layout, so checkVisibility() is false for it.
VISIBLE = """needles => {
  const seen = [];
  for (const el of document.querySelectorAll('pre, p, li, td, th')) {
    if (!el.checkVisibility()) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) continue;
    for (const n of needles) if (el.innerText.includes(n)) seen.push(n);
  }
  return [...new Set(seen)];
}"""


@pytest.fixture(scope="module")
def lab_copy(tmp_path_factory):
    """`course.py lab`'s server on a copy of lectures/ (so Run All and autosave change only the copy)."""
    tmp = tmp_path_factory.mktemp("lab_lectures")
    lectures = tmp / "lectures"
    shutil.copytree(tb.ROOT / "lectures", lectures, ignore=shutil.ignore_patterns("_classroom", ".ipynb_checkpoints"))
    port = tb._free_port()
    cmd, env = tb.course.lab_command(lectures, tb._server_args(port))
    with tb._server(cmd, env, lectures, port, tmp / "lab.log") as base:
        yield base, lectures


def _needles(path) -> list[str]:
    """For every solution: the first line of its code and of its first printed result."""
    needles = []
    for cell in nbformat.read(path, as_version=4).cells:
        parsed = parse_solution(cell.source) if cell.cell_type == "markdown" else None
        if parsed is None:
            continue
        code, pieces = parsed
        needles.append(next(line for line in code.splitlines() if line.strip() and not line.startswith("#")))
        needles += [text.splitlines()[0].strip() for kind, text in pieces if kind == "text"][:1]
    return needles


def _last_printed(path) -> str:
    """The first line the notebook's last printing code cell prints."""
    cells = nbformat.read(path, as_version=4).cells
    last = [c for c in cells if c.cell_type == "code" and any(o.output_type == "stream" for o in c.outputs)][-1]
    return next(o for o in last.outputs if o.output_type == "stream").text.splitlines()[0].strip()


def _dismiss_dialogs(page) -> list[str]:
    """Close any JupyterLab dialog in the way (Escape) and return what it said."""
    said = []
    while page.locator(".jp-Dialog").count():
        said.append(page.locator(".jp-Dialog").first.inner_text())
        page.keyboard.press("Escape")
        page.wait_for_timeout(500)
        if len(said) > 5:
            raise AssertionError(f"a dialog does not close: {said[-1]}")
    return said


def _menu(page, menu: str, item: str):
    page.locator(".lm-MenuBar-itemLabel", has_text=menu).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def test_run_all_reveals_no_solution(offline, lab_copy):  # noqa: F811  (the imported fixture)
    base, lectures = lab_copy
    needles = _needles(lectures / LECTURE)
    assert len(needles) >= 3
    page = offline.page
    console = []
    page.on("console", lambda m: console.append(m.text))
    page.goto(f"{base}/lab/tree/{LECTURE}?token={tb.TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=tb.SERVER_START_TIMEOUT * 1000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=tb.SERVER_START_TIMEOUT * 1000)  # the kernel has started
    dialogs = _dismiss_dialogs(page)
    _menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function("() => document.querySelectorAll('.jp-Notebook .jp-OutputArea-output').length === 0")
    dialogs += _dismiss_dialogs(page)
    _menu(page, "Run", "Run All Cells")
    page.wait_for_timeout(1000)
    dialogs += _dismiss_dialogs(page)
    print("dialogs:", dialogs)
    # done when the last code cell has printed again (scrolled into view: JupyterLab renders only nearby cells)
    page.locator(".jp-Notebook .jp-Cell").last.scroll_into_view_if_needed()
    try:
        page.get_by_text(_last_printed(lectures / LECTURE)).first.wait_for(timeout=RUN_ALL_TIMEOUT)
    except Exception:
        tb.SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(tb.SHOTS / "lecture_run_all_timeout.png"))
        raise
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=RUN_ALL_TIMEOUT)
    assert page.locator(".jp-Notebook .jp-OutputArea-output").count() >= 3, "Run All did not produce the outputs"
    page.get_by_text("not attempted yet").first.scroll_into_view_if_needed()
    assert page.get_by_text("not attempted yet").first.is_visible()
    assert page.locator(".jp-Notebook details[open]").count() == 0
    assert page.locator(".jp-Notebook details").count() >= 3
    # the exercises at the end: scroll there and photograph what a student sees after Run All
    page.locator(".jp-Notebook details").last.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    tb.SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tb.SHOTS / "lecture_run_all.png"))
    assert page.evaluate(VISIBLE, needles) == [], "solution text visible after Run All"
    # and a student can still open one on demand
    dialogs += _dismiss_dialogs(page)
    first = page.locator(".jp-Notebook details summary").first
    first.scroll_into_view_if_needed()
    first.click()
    page.wait_for_timeout(1000)
    assert page.evaluate(VISIBLE, needles) != [], f"the opened solution shows nothing (dialogs: {dialogs})"
    page.screenshot(path=str(tb.SHOTS / "lecture_solution_opened.png"))
    assert offline.blocked == [], f"the lab asks the network for {offline.blocked}"
    # the FAST design-token errors of the live slides (test_browser.RISE_STACK_ERROR) are jupyterlab-rise's
    # bundle's: JupyterLab's own notebook page, with the same lecture run and its widgets, logs none
    assert tb._stack_errors(console) == 0, [m for m in console if tb.RISE_STACK_ERROR in m][:3]


# ---------------------------------------------------------------------------------------------------------
# Run All pressed at once, while the kernel still starts
# ---------------------------------------------------------------------------------------------------------
EARLY_LECTURE = "03_lmm.ipynb"  # not the lecture Run All runs above: its stored outputs as committed


def _stored_outputs(path) -> int:
    return sum(len(c.outputs) for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")


def test_run_all_before_the_kernel_is_ready_saves_no_blank_lecture(offline, lab_copy):  # noqa: F811
    """JupyterLab 4.3 runs nothing and blanks every cell when Run All comes before the kernel is attached
    (jupyterlab/jupyterlab#8490). The kernel's start is held back (its session request waits) so that the press
    lands in that window however fast the machine is; the save that follows (Ctrl+S here, the autosave two
    minutes later for a student) keeps the lecture's stored outputs on disk (course.py's save hook,
    lmmteach.course.labsave), and they are back when the lecture is opened again."""
    base, lectures = lab_copy
    path = lectures / EARLY_LECTURE
    stored = _stored_outputs(path)
    assert stored >= 5
    page = offline.page
    held = []
    page.route("**/api/sessions*", lambda route: held.append(route) if route.request.method == "POST"
               else route.continue_())
    # a workspace of its own, reset: only this lecture open (not the one the test above left open)
    page.goto(f"{base}/lab/workspaces/early-run-all/tree/{EARLY_LECTURE}?reset&token={tb.TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-OutputArea-output", timeout=tb.SERVER_START_TIMEOUT * 1000)
    assert page.locator(".jp-NotebookPanel").count() == 1
    _menu(page, "Run", "Run All Cells")
    page.wait_for_timeout(2000)
    assert held, "the notebook asked for no kernel session"
    blanked = page.locator(".jp-Notebook .jp-OutputArea-output").count()
    assert blanked == 0, (f"{blanked} outputs left: JupyterLab no longer blanks a notebook run before its kernel "
                          "(jupyterlab/jupyterlab#8490 fixed?): update lectures/docs/troubleshooting.md")
    assert page.locator(".jp-mod-dirty").count(), "the blanked lecture is not marked unsaved"
    for route in held:
        route.continue_()
    page.unroute("**/api/sessions*")
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=tb.SERVER_START_TIMEOUT * 1000)
    _dismiss_dialogs(page)
    page.locator(".jp-Notebook").first.click()
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=60_000)
    assert _stored_outputs(path) == stored, "the lecture was saved without its outputs"
    page.reload()
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=tb.SERVER_START_TIMEOUT * 1000)
    page.wait_for_function("(n) => document.querySelectorAll('.jp-Notebook .jp-OutputArea-output').length >= n",
                           arg=min(stored, 5), timeout=60_000)
    page.locator(".jp-Notebook .jp-OutputArea-output").nth(1).scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    tb.SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(tb.SHOTS / "lecture_run_all_early_reopened.png"))
    assert offline.blocked == [], f"the lab asks the network for {offline.blocked}"
