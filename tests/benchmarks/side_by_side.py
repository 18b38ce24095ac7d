"""What every benchmark here does on both sides: time a fit several times, and run an R script on the same data.

* :func:`time_fits` -- the median wall time of ``repeat`` calls of a fit (warnings silenced: a benchmark prints
  convergence itself), the last result, and optionally the peak memory Python allocated in one more call;
* :func:`run_r` -- an R script given as text, run by ``Rscript`` in a temporary folder with its input files
  (data frames as CSV), printing a JSON object as its last line; ``None`` when R is not installed or failed
  (the benchmark then prints lmmteach's figures alone).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["time_fits", "run_r"]


def time_fits(fit: Callable[[], Any], repeat: int, peak_memory: bool = False) -> tuple[float, Any, float]:
    """(median seconds of ``repeat`` calls of ``fit``, the last result, peak MB traced in one more call or NaN)."""
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            t0 = time.perf_counter()
            result = fit()
            times.append(time.perf_counter() - t0)
        peak = float("nan")
        if peak_memory:
            tracemalloc.start()
            fit()
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    return float(np.median(times)), result, peak


def run_r(script: str, args=(), files: dict | None = None, timeout: float | None = None, cwd=None,
          peak_memory: bool = False, label: str = "R") -> dict | None:
    """Run ``script`` with ``Rscript`` and return the JSON object of its last output line.

    ``files``: {name: pandas DataFrame (written as CSV without the index) or text}, written to a temporary
    folder; an argument equal to one of these names is passed as that file's path. ``timeout``: seconds, after
    which ``{"timeout": timeout}`` is returned. ``peak_memory``: R's maximum resident set size in MB as
    ``peak_mb`` (by ``/usr/bin/time``; NaN without it). ``None`` when ``Rscript`` is missing or R failed."""
    if not shutil.which("Rscript"):
        return None
    files = files or {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, content in files.items():
            paths[name] = Path(tmp) / name
            if isinstance(content, str):
                paths[name].write_text(content)
            else:
                content.to_csv(paths[name], index=False)
        r_file = Path(tmp) / "bench.R"
        r_file.write_text(script)
        cmd = ["Rscript", str(r_file)] + [str(paths.get(a, a)) for a in args]
        timer = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
        if peak_memory and timer:
            cmd = [timer, "-f", "MAXRSS_KB %M"] + cmd
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired:
            return {"timeout": timeout}
    if res.returncode != 0:
        print(f"{label} run failed:", res.stderr.strip()[-500:], file=sys.stderr)
        return None
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if peak_memory:
        rss = [line for line in res.stderr.splitlines() if line.startswith("MAXRSS_KB")]
        out["peak_mb"] = int(rss[-1].split()[1]) / 1024 if rss else float("nan")
    return out
