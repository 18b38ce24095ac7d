"""Run every benchmark in this folder, one after another, each printing lmmteach beside R in the same run.

    .venv/bin/python tests/benchmarks/run_all.py [--quick] [--no-r]

``--quick`` runs each with its smallest settings (one repeat; gls up to 10,000 subjects); ``--no-r`` leaves
R out (lmmteach's figures only). See README.md here for what each one measures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["BENCHMARKS", "main"]

HERE = Path(__file__).resolve().parent

BENCHMARKS = {  # script: (its quick arguments, its flag that leaves R out)
    "benchmark_timss.py": (["--repeat", "1", "--no-statsmodels"], None),
    "benchmark_crossed.py": (["--repeat", "1"], "--no-r"),
    "benchmark_large_crossed.py": (["--timeout", "60"], "--no-r"),
    "benchmark_kb07.py": (["--repeat", "1"], "--no-r"),
    "benchmark_inference.py": (["--repeat", "1", "--n-jobs", "1"], "--skip-r"),
    "benchmark_gls.py": (["--sizes", "1000", "10000"], None),
    "benchmark_glmm.py": (["--rows", "20000"], "--no-r"),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repeat, smaller sizes")
    ap.add_argument("--no-r", action="store_true", help="lmmteach only")
    args = ap.parse_args(argv)
    failed = []
    for script, (quick, no_r) in BENCHMARKS.items():
        cmd = [sys.executable, str(HERE / script)] + (quick if args.quick else [])
        if args.no_r:
            cmd += [no_r] if no_r else (["--r-max", "0"] if script == "benchmark_gls.py" else [])
        print(f"\n=== {script} {' '.join(cmd[2:])}", flush=True)
        t0 = time.perf_counter()
        if subprocess.run(cmd).returncode != 0:
            failed.append(script)
        print(f"=== {script}: {time.perf_counter() - t0:.0f} s", flush=True)
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
