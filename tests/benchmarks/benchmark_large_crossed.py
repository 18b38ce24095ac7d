"""Benchmark: two crossed factors of 20,000 levels each on 10^5 rows, lmmteach beside lme4 in the same run.

    .venv/bin/python tests/benchmarks/benchmark_large_crossed.py [--no-r] [--timeout 120] [--skip-uniform]

Two seeded simulated designs, both y ~ x + (1 | patient) + (1 | doctor) by ML, 100,000 rows, 20,000 patients ×
20,000 doctors (random effects SD 1 and 0.7, residual SD 1, fixed effects 1 and 0.5):

* **clustered** (what real crossed data of this size look like): 500 clinics, each with 40 patients and
  40 doctors; a visit is a random patient of a random clinic seeing a random doctor of the same clinic, except
  2% of visits to a doctor of another clinic. lmmteach fits it with the sparse Schur complement
  (:mod:`lmmteach.lmm.sparse_schur`).
* **uniform**: each visit a uniformly random patient and doctor. The sparsity pattern of M = Λ'Z'ZΛ + I is a
  random bipartite graph (an expander): every exact factorisation fills in (CHOLMOD's factor has ~7 × 10⁷
  non-zeros and takes minutes), lme4's too. Each side gets ``--timeout`` seconds; what happened is printed.

Each fit runs in its own process (killed at the timeout): the time of the fit measured inside it (the whole
``lmer`` call, data already in memory) and that process's peak resident memory (Python or R, their libraries,
the data and the fit). Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

FORMULA = "y ~ x + (1 | patient) + (1 | doctor)"
N_ROWS, N_LEVELS, N_CLINICS, ELSEWHERE = 100_000, 20_000, 500, 0.02
SEED = 20000

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c("factor", "factor", "numeric", "numeric"))
warns <- character(0)
t0 <- proc.time()[["elapsed"]]
m <- withCallingHandlers(lmer(y ~ x + (1 | patient) + (1 | doctor), data = d, REML = FALSE),
  warning = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")},
  message = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleMessage")})
t <- proc.time()[["elapsed"]] - t0
cat(toJSON(list(time = t, logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
                evals = m@optinfo$feval, warned = length(warns) > 0), auto_unbox = TRUE, digits = I(15)))
"""


def clustered_design(seed: int = SEED) -> pd.DataFrame:
    """Patients × doctors within clinics (module docstring), seeded."""
    rng = np.random.default_rng(seed)
    per = N_LEVELS // N_CLINICS
    clinic = rng.integers(0, N_CLINICS, N_ROWS)
    other = np.where(rng.random(N_ROWS) < ELSEWHERE, rng.integers(0, N_CLINICS, N_ROWS), clinic)
    patient = clinic * per + rng.integers(0, per, N_ROWS)
    doctor = other * per + rng.integers(0, per, N_ROWS)
    return _response(rng, patient, doctor)


def uniform_design(seed: int = SEED) -> pd.DataFrame:
    """Patients × doctors crossed uniformly at random (module docstring), seeded."""
    rng = np.random.default_rng(seed)
    return _response(rng, rng.integers(0, N_LEVELS, N_ROWS), rng.integers(0, N_LEVELS, N_ROWS))


def _response(rng, patient, doctor) -> pd.DataFrame:
    x = np.round(rng.uniform(-1, 1, N_ROWS), 3)
    y = 1 + 0.5 * x + rng.normal(0, 1, N_LEVELS)[patient] + rng.normal(0, 0.7, N_LEVELS)[doctor] + rng.normal(0, 1, N_ROWS)
    return pd.DataFrame({"patient": [f"p{i:05d}" for i in patient], "doctor": [f"d{i:05d}" for i in doctor],
                         "x": x, "y": np.round(y, 4)})


def fit_child(csv: str) -> None:
    """In the child process: fit and print JSON (time, logLik, θ, evaluations, engine, peak RSS)."""
    import lmmteach as lt

    data = pd.read_csv(csv, dtype={"patient": "category", "doctor": "category"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        m = lt.lmer(FORMULA, data, reml=False)
        t = time.perf_counter() - t0
    print(json.dumps({"time": t, "logLik": m.loglik, "theta": m.theta.tolist(), "evals": m.optimum.n_eval,
                      "converged": m.converged, "engine": type(m.devfun).__name__,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


MAX_MEMORY = 8 * 2**30
"""Address space each fit's process may take (a guard for the shared machine): beyond it the fit fails."""


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MAX_MEMORY, MAX_MEMORY))


def _run(cmd, timeout: float) -> tuple[dict | None, str, float]:
    """Run ``cmd`` in its own process group, killed (the group) after ``timeout`` s, with at most
    ``MAX_MEMORY`` of address space: (its JSON or None, a note, wall time)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_limit_memory)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"did not finish within {timeout:.0f} s (stopped)", time.perf_counter() - t0
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return None, f"stopped after {wall:.1f} s: " + (err.strip().splitlines() or ["?"])[-1][:400], wall
    res = json.loads(out.strip().splitlines()[-1])
    rss = [line for line in err.splitlines() if line.startswith("MAXRSS_KB")]
    if rss:
        res["peak_mb"] = int(rss[-1].split()[1]) / 1024
    return res, "", wall


def run_lmmteach(csv: Path, timeout: float):
    return _run([sys.executable, __file__, "--child", str(csv)], timeout)


def run_lme4(csv: Path, script: Path, timeout: float):
    cmd = ["Rscript", str(script), str(csv)]
    if Path("/usr/bin/time").exists():
        cmd = ["/usr/bin/time", "-f", "MAXRSS_KB %M"] + cmd
    return _run(cmd, timeout)


def _row(name: str, res, note: str) -> str:
    if res is None:
        return f"{name:10} {note}"
    extra = f"converged={res['converged']} ({res['engine']})" if "engine" in res else f"warned={res['warned']}"
    return (f"{name:10} {res['time']:9.2f} {res['logLik']:16.6f} {res['evals']:12d} {res['peak_mb']:8.0f}  "
            f"{np.array2string(np.asarray(res['theta']), precision=6)}  {extra}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds each uniform-design fit may take")
    parser.add_argument("--skip-uniform", action="store_true", help="the clustered design only")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return fit_child(args.child)
    have_r = not args.no_r and shutil.which("Rscript") is not None
    designs = {"clustered": (clustered_design, 3600.0)}
    if not args.skip_uniform:
        designs["uniform"] = (uniform_design, args.timeout)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        for name, (make, timeout) in designs.items():
            data = make()
            csv = Path(tmp) / f"{name}.csv"
            data.to_csv(csv, index=False)
            print(f"\n{name}: {len(data):,} rows; {data.patient.nunique():,} patients x {data.doctor.nunique():,} "
                  f"doctors; {FORMULA} (ML)")
            ours = run_lmmteach(csv, timeout)
            theirs = run_lme4(csv, script, timeout) if have_r else None
            print(f"{'':10} {'time (s)':>9} {'logLik':>16} {'evaluations':>12} {'peak MB':>8}  theta")
            print(_row("lmmteach", *ours[:2]))
            if theirs is not None:
                print(_row("lme4", *theirs[:2]))
                if ours[0] is not None and theirs[0] is not None:
                    print(f"lme4 time / lmmteach time = {theirs[0]['time'] / ours[0]['time']:.1f};  "
                          f"logLik(lmmteach) - logLik(lme4) = {ours[0]['logLik'] - theirs[0]['logLik']:.3g}")


if __name__ == "__main__":
    main()
