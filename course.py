#!/usr/bin/env python3
"""Set up and run the lmmteach course.

    python3 course.py lab     # create .venv, install lmmteach + JupyterLab, serve lectures/ (no browser): students' view
    python3 course.py test    # create .venv, install lmmteach + test tools, run the whole test suite
    python3 course.py slides  # offline reveal.js decks, one per lecture, in build/slides/
    python3 course.py site    # offline course website (Sphinx + myst-nb) in build/site/
    python3 course.py grade   # instructor's JupyterLab in lectures/homework/ with nbgrader's formgrader
    python3 course.py bundle  # students' copy (lectures + homework without solutions) in build/student/ (+ .zip)

Needs only Python >= 3.10 with pip and venv. Works as root (CI machines, containers).
Extra arguments after `test`, `lab` or `grade` go to pytest / JupyterLab (e.g. `python3 course.py test -k grocery`).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
BUILD = ROOT / "build"
HOMEWORK = ROOT / "lectures" / "homework"
CLASSROOM = ROOT / "lectures" / "_classroom" / "classroom.py"

# nbgrader's instructor tools, switched off in the students' JupyterLab (`lab`): JupyterLab plugins and the
# matching server extensions. Students keep nbgrader's assignment list (fetch/submit) and Validate button.
INSTRUCTOR_PLUGINS = ("@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list")
INSTRUCTOR_SERVER_EXTENSIONS = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
# What the students' file browser does not list: the homework's sources (solutions, hidden tests), its key
# generators and feedback templates, nbgrader's working directories and gradebook, the build tooling.
STUDENT_HIDDEN = ("source", "autograded", "submitted", "feedback", "gradebook.db", "nbgrader_config.py", "keys",
                  "templates", "_classroom", "__pycache__", "*.pyc", "*.pyo", ".DS_Store", "*~")  # + Jupyter's defaults
CHECKSUM_NOTE = """Note on "Attribute 'checksum' for cell ... has changed!" during autograde: nbgrader warns when a student
changed a locked cell. nbgrader itself also warns for every untouched test cell that has hidden tests
(nbgrader issue #1961: it stores the checksum before removing the hidden tests). This course's
nbgrader_config.py restores such cells silently, so a warning you see now means a student really edited a
read-only or test cell; nbgrader has already put the original cell back before grading."""


def run(*cmd, **kw):
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=kw.pop("cwd", ROOT), **kw)


def setup() -> None:
    """Create the virtual environment and (re)install when pyproject.toml changed."""
    if not PY.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    stamp = VENV / ".lmmteach-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    print("setting up the course environment (once, and again when pyproject.toml changes; 1-3 minutes)",
          flush=True)
    print("[1/4] upgrading pip", flush=True)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    print("[2/4] installing lmmteach with JupyterLab, nbgrader, Sphinx and the test tools (the longest step)",
          flush=True)
    run(PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[course,test]")
    print("[3/4] registering the notebook kernel", flush=True)
    run(PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", "Python 3 (lmmteach)")
    print("[4/4] writing the course's JupyterLab settings", flush=True)
    lab_defaults()
    stamp.write_text(digest)
    print("course environment ready", flush=True)


# JupyterLab defaults for this environment (a user's own settings still win). Live slides (jupyterlab-rise):
# reveal's white theme, whose fonts ship with it (the default theme fetches Google fonts), and long slides scroll.
# No Jupyter news: a fresh JupyterLab asks "notified about official Jupyter news?", and Yes goes online.
LAB_OVERRIDES = {"jupyterlab-rise:plugin": {"theme": "white", "scroll": True},
                 "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
                 # every cell in the page (attached when the CPU is idle): the browser's find and a scroll to a
                 # self-check's output work on the whole lecture (JupyterLab 4.3's "full" keeps only visible cells)
                 "@jupyterlab/notebook-extension:tracker": {"windowingMode": "defer"}}
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"  # switched off in the students' JupyterLab too


def lab_defaults() -> None:
    settings = VENV / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps(LAB_OVERRIDES, indent=2))


def _root_flag() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


# Run All pressed while the kernel still starts blanks every cell (JupyterLab runs nothing then, and the
# autosave writes the blank lecture): this save hook keeps a lecture's stored outputs in that case.
LECTURE_SAVE_HOOK = "lmmteach.course.labsave.keep_lecture_outputs"


def student_config_dir() -> Path:
    """A Jupyter config directory that switches nbgrader's instructor tools and Jupyter's news off and keeps a
    lecture from being saved blank (put on JUPYTER_CONFIG_PATH).

    It ranks above the environment's own config (where nbgrader enables them) and below the user's ~/.jupyter.
    """
    config = BUILD / "jupyter-student"
    (config / "labconfig").mkdir(parents=True, exist_ok=True)
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {name: True for name in (*INSTRUCTOR_PLUGINS, NEWS_PLUGIN)}}, indent=2))
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {name: False for name in INSTRUCTOR_SERVER_EXTENSIONS}},
         "ContentsManager": {"pre_save_hook": LECTURE_SAVE_HOOK}}, indent=2))
    return config


def lab_command(root: Path, extra: list[str] = ()) -> tuple[list[str], dict[str, str]]:
    """The students' JupyterLab on ``root``: no instructor tools, homework sources not listed."""
    env = dict(os.environ)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(filter(None, [str(student_config_dir()),
                                                             env.get("JUPYTER_CONFIG_PATH")]))
    hidden = json.dumps(list(STUDENT_HIDDEN))
    cmd = [str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}",
           f"--ContentsManager.hide_globs={hidden}", *_root_flag(), *extra]
    return cmd, env


def lab(args: list[str]) -> None:
    setup()
    cmd, env = lab_command(ROOT / "lectures", args)
    os.execve(cmd[0], cmd, env)


def grade_command(course: Path, extra: list[str] = ()) -> tuple[list[str], dict[str, str]]:
    """The instructor's JupyterLab in the nbgrader course directory ``course`` (and its environment).

    It runs in ``course`` so the formgrader reads ``course/nbgrader_config.py`` (gradebook inside ``course``),
    with the environment's bin first on PATH (nbgrader runs ``alembic`` to create the gradebook).
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["VIRTUAL_ENV"] = str(VENV)
    cmd = [str(BIN / "jupyter"), "lab", "--no-browser", "--ip=127.0.0.1", f"--ServerApp.root_dir={course}",
           *_root_flag(), *extra]
    return cmd, env


def exchange_root(env: dict[str, str]) -> Path:
    """The exchange directory nbgrader_config.py uses (LMMTEACH_EXCHANGE or <tmp>/lmmteach-exchange)."""
    import tempfile

    return Path(env.get("LMMTEACH_EXCHANGE") or Path(tempfile.gettempdir()) / "lmmteach-exchange")


def ensure_exchange(env: dict[str, str]) -> Path:
    """Create the exchange directory (nbgrader only checks it), writable by every student on this machine."""
    exchange = exchange_root(env)
    if not exchange.is_dir():
        exchange.mkdir(parents=True)
        exchange.chmod(0o1777)  # like /tmp: everyone may submit, the sticky bit guards each one's files
    return exchange


def grade(args: list[str]) -> None:
    setup()
    cmd, env = grade_command(HOMEWORK, args)
    exchange = ensure_exchange(env)
    assignments = sorted(p.name for p in (HOMEWORK / "source").iterdir() if p.is_dir())
    print(f"course directory: {HOMEWORK}\n  assignments: {', '.join(assignments)}\n"
          f"  gradebook: {HOMEWORK / 'gradebook.db'}\n  exchange: {exchange}\n"
          "open the address below, then Nbgrader > Formgrader.\n\n" + CHECKSUM_NOTE + "\n", flush=True)
    os.chdir(HOMEWORK)
    os.execve(cmd[0], cmd, env)


def _classroom(what: str, out: Path) -> None:
    setup()
    run(PY, CLASSROOM, what, out)


def slides(args: list[str]) -> None:
    _classroom("slides", BUILD / "slides")


def site(args: list[str]) -> None:
    _classroom("site", BUILD / "site")


def bundle(args: list[str]) -> None:
    _classroom("bundle", BUILD / "student")


def find_chromium() -> str | None:
    """A Chromium for the browser tests: $LMMTEACH_CHROMIUM, else Debian's chromium on PATH."""
    for candidate in (os.environ.get("LMMTEACH_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


# OpenBLAS kernels the suite is rerun under: numpy's OpenBLAS picks a kernel for the CPU it runs on, and
# each kernel rounds the last bits differently. A printed number that flips between kernels, or a test that
# compares computed floats more finely than rounding allows, fails here, not on a student's laptop or on
# another CI machine (see "Printing numbers" in the README).
OTHER_KERNELS = ("Sandybridge", "Prescott")
# Pages in a browser compute nothing with BLAS: the browser tests run under this CPU's kernel only.
KERNEL_FREE = ("--ignore-glob=tests/course/test_browser*.py",)


def test(args: list[str]) -> None:
    """The whole suite: unit tests and every notebook under nbval with this CPU's OpenBLAS kernel, then the
    same again (less the browser tests) under each of OTHER_KERNELS."""
    setup()
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("MPLBACKEND", None)  # notebooks draw with the inline backend; the unit tests choose Agg themselves
    chromium = find_chromium()
    if chromium:
        env["LMMTEACH_CHROMIUM"] = chromium
        print(f"browser tests (tests/course/test_browser.py) use {chromium}", flush=True)
    else:
        print("browser tests SKIPPED: no Chromium found (install Debian's `chromium`, or set LMMTEACH_CHROMIUM)",
              flush=True)
    lectures = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lectures").glob("*.ipynb"))
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lectures/homework/source").glob("*/*.ipynb"))
    nbval = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "lectures/nbval_sanitize.cfg",
             "-p", "no:cacheprovider"]
    runs = [("this CPU's OpenBLAS kernel", env, ["tests", *lectures, *sources, *nbval, *args])]
    if not args:  # a selection (-k ...) runs once; the full suite proves itself kernel-independent
        for kernel in OTHER_KERNELS:
            runs.append((f"OPENBLAS_CORETYPE={kernel}", dict(env, OPENBLAS_CORETYPE=kernel),
                         ["tests", *lectures, *sources, *nbval, *KERNEL_FREE, "-q"]))
    failed = []
    for label, run_env, run_args in runs:
        cmd = [PY, "-m", "pytest", *run_args]
        print(f"\n=== {label} ===\n+ " + " ".join(map(str, cmd)), flush=True)
        if subprocess.run([str(c) for c in cmd], cwd=ROOT, env=run_env).returncode != 0:
            failed.append(label)
    print("\n" + ("FAILED under: " + "; ".join(failed) if failed else "all runs passed"), flush=True)
    sys.exit(1 if failed else 0)


COMMANDS = {"lab": lab, "test": test, "setup": lambda a: setup(), "slides": slides, "site": site, "grade": grade,
            "bundle": bundle}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        sys.exit(2)
    COMMANDS[sys.argv[1]](sys.argv[2:])
