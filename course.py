#!/usr/bin/env python3
"""Set up and run the lmmteach course.

    python3 course.py lab     # create .venv, install lmmteach + JupyterLab, serve lectures/ (no browser)
    python3 course.py test    # create .venv, install lmmteach + test tools, run the whole test suite

Needs only Python >= 3.10 with pip and venv. Works as root (CI machines, containers).
Extra arguments after `test` go to pytest (e.g. `python3 course.py test -k grocery`).
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")


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
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", f"{ROOT}[course,test]")
    run(PY, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3", "--display-name", "Python 3 (lmmteach)")
    stamp.write_text(digest)


def lab(args: list[str]) -> None:
    setup()
    cmd = [BIN / "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--ServerApp.root_dir={ROOT / 'lectures'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    os.execv(str(cmd[0]), [str(c) for c in cmd + args])


# OpenBLAS kernels the notebooks are rerun under: numpy's OpenBLAS picks a kernel for the CPU it runs on, and
# each kernel rounds the last bits differently. A printed number that flips between kernels fails here,
# not on a student's laptop (see "Printing numbers" in the README).
OTHER_KERNELS = ("Sandybridge", "Prescott")


def test(args: list[str]) -> None:
    """The whole suite: unit tests and every notebook under nbval with this CPU's OpenBLAS kernel, then the
    notebooks again under each of OTHER_KERNELS."""
    setup()
    env = dict(os.environ, PYTHONHASHSEED="0")
    env.pop("MPLBACKEND", None)  # notebooks draw with the inline backend; the unit tests choose Agg themselves
    lectures = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lectures").glob("*.ipynb"))
    sources = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lectures/homework/source").glob("*/*.ipynb"))
    nbval = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "lectures/nbval_sanitize.cfg",
             "-p", "no:cacheprovider"]
    runs = [("this CPU's OpenBLAS kernel", env, ["tests", *lectures, *sources, *nbval, *args])]
    if not args:  # a selection (-k ...) runs once; the full suite proves the notebooks kernel-independent
        for kernel in OTHER_KERNELS:
            runs.append((f"OPENBLAS_CORETYPE={kernel}", dict(env, OPENBLAS_CORETYPE=kernel),
                         [*lectures, *sources, *nbval, "-q"]))
    failed = []
    for label, run_env, run_args in runs:
        cmd = [PY, "-m", "pytest", *run_args]
        print(f"\n=== {label} ===\n+ " + " ".join(map(str, cmd)), flush=True)
        if subprocess.run([str(c) for c in cmd], cwd=ROOT, env=run_env).returncode != 0:
            failed.append(label)
    print("\n" + ("FAILED under: " + "; ".join(failed) if failed else "all runs passed"), flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("lab", "test", "setup"):
        print(__doc__)
        sys.exit(2)
    {"lab": lab, "test": test, "setup": lambda a: setup()}[sys.argv[1]](sys.argv[2:])
