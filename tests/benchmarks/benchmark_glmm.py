"""Benchmark: glmer (binomial, crossed random effects), lmmteach beside lme4 in the same run.

    .venv/bin/python tests/benchmarks/benchmark_glmm.py [--repeat 1] [--no-r] [--rows 100000]

Two models, both  y ~ fixed + (1 | subject) + (1 | item)  by the Laplace approximation:

* VerbAgg (lme4's data, 7,584 responses, 316 persons × 24 items):
  ``r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)``;
* a simulated binary design with two crossed factors (``--rows`` responses, 2,000 subjects × rows/2,000 items,
  seeded): ``y ~ x + (1 | subj) + (1 | item)``.

Prints the median wall time over ``--repeat`` fits (the whole call: formula, design, optimisation, the
Hessian for the standard errors), the number of PIRLS runs, the log-likelihood each package reaches, and the
machine's load average before and after (the timings mean little on a loaded machine). ``ratio`` is lmmteach's
time over lme4's (issue 24 asks for at most 0.1).
lme4 runs with glmer's defaults (its time measured inside R) when ``Rscript`` with lme4 is on the PATH.
Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import lmmteach as lt

HERE = Path(__file__).resolve().parent
VERBAGG = HERE.parent / "reference" / "glmm_verbagg.csv"
VERBAGG_FORMULA = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
SIMULATED_FORMULA = "y ~ x + (1 | subj) + (1 | item)"
N_SUBJECTS = 2000

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], stringsAsFactors = TRUE)
for (v in c("id", "subj", "item")) if (!is.null(d[[v]])) d[[v]] <- factor(d[[v]])
f <- as.formula(args[2]); rep <- as.integer(args[3]); times <- numeric(rep); warns <- character(0)
for (i in seq_len(rep)) {
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(glmer(f, data = d, family = binomial),
    warning = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")},
    message = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleMessage")})
  times[i] <- proc.time()[["elapsed"]] - t0
}
cat(toJSON(list(time = median(times), logLik = as.numeric(logLik(m)), evals = m@optinfo$feval,
                warned = length(warns) > 0), auto_unbox = TRUE, digits = I(15)))
"""


def simulated(rows: int, seed: int = 20240612) -> pd.DataFrame:
    """A binary response on a full subjects × items crossing: logit P(y = 1) = −0.3 + 0.5 x + b_subj + b_item,
    SDs 1.0 and 0.6."""
    rng = np.random.default_rng(seed)
    n_items = rows // N_SUBJECTS
    subj = np.repeat(np.arange(N_SUBJECTS), n_items)
    item = np.tile(np.arange(n_items), N_SUBJECTS)
    x = rng.normal(size=len(subj)).round(4)
    eta = -0.3 + 0.5 * x + rng.normal(0, 1.0, N_SUBJECTS)[subj] + rng.normal(0, 0.6, n_items)[item]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame({"subj": subj, "item": item, "x": x, "y": y})


def time_lmmteach(formula: str, data: pd.DataFrame, repeat: int):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        m = lt.glmer(formula, data, "binomial")
        _ = m.se  # the standard errors (lme4 computes its Hessian inside glmer)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), m


def time_lme4(csv: Path, formula: str, repeat: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as f:
        f.write(R_SCRIPT)
    out = subprocess.run(["Rscript", f.name, str(csv), formula, str(repeat)], capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    cases = [("VerbAgg", VERBAGG_FORMULA, pd.read_csv(VERBAGG), VERBAGG)]
    with tempfile.TemporaryDirectory() as tmp:
        sim = simulated(args.rows)
        path = Path(tmp) / "glmm_simulated.csv"
        sim.to_csv(path, index=False)
        cases.append((f"simulated {len(sim):,} rows", SIMULATED_FORMULA, sim, path))
        print(f"{'data':<24}{'lmmteach s':>12}{'PIRLS runs':>12}{'lme4 s':>10}{'lme4 evals':>12}{'ratio':>8}"
              f"{'logLik lmmteach':>18}{'logLik lme4':>16}")
        for name, formula, data, csv in cases:
            t, m = time_lmmteach(formula, data, args.repeat)
            r = None if args.no_r else time_lme4(csv, formula, args.repeat)
            rt = f"{r['time']:.2f}" if r else "-"
            ratio = f"{t / r['time']:.2f}" if r else "-"
            rll = f"{r['logLik']:.6f}" if r else "-"
            revals = str(r["evals"]) if r else "-"
            print(f"{name:<24}{t:>12.2f}{m.optimum.n_eval:>12}{rt:>10}{revals:>12}{ratio:>8}{m.loglik:>18.6f}{rll:>16}",
                  flush=True)
    print("load average (1, 5, 15 min) after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
