"""Benchmark: unstructured gls (the MMRM) with lmmteach and nlme, in the same run.

    .venv/bin/python tests/benchmarks/benchmark_gls.py [--sizes 1000 10000 100000] [--r-max 10000] [--r-timeout 1800]

Simulated trial (seeded): subjects × 6 visits, two arms, fixed part ``y ~ visit * arm`` (12 columns),
errors with an unstructured 6 × 6 covariance, 10% of the later visits missing (monotone dropout), fitted
by REML with ``correlation="un", heteroscedastic=True`` (nlme: ``corSymm() + varIdent()``).
Prints, per size, the wall time of the whole call and the REML log-likelihood each package reaches.
nlme runs when ``Rscript`` with nlme is on the PATH, for sizes up to ``--r-max`` subjects (it is slow at
100,000 subjects: raise ``--r-max`` and ``--r-timeout`` to try). Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import lmmteach as lt
from side_by_side import run_r

T = 6
R_SCRIPT = r"""
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); d$visit <- factor(d$visit); d$arm <- factor(d$arm); d$subject <- factor(d$subject)
d$t <- as.integer(d$visit)
t0 <- proc.time()[["elapsed"]]
warned <- FALSE
m <- withCallingHandlers(gls(y ~ visit * arm, data = d, correlation = corSymm(form = ~ t | subject),
                             weights = varIdent(form = ~ 1 | visit), method = "REML"),
                         warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") })
el <- proc.time()[["elapsed"]] - t0
cat(toJSON(list(time = el, logLik = as.numeric(logLik(m)), warned = warned), auto_unbox = TRUE, digits = I(15)))
"""


def simulate(n_subjects: int, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sd = np.linspace(1.0, 1.6, T)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    R = 0.3 + 0.6 * 0.8**lag  # a correlation that is neither CS nor AR(1)
    np.fill_diagonal(R, 1.0)
    L = np.linalg.cholesky(R * np.outer(sd, sd))
    arm = rng.integers(0, 2, n_subjects)
    mean = 10 + 0.5 * np.arange(T)[None, :] + 0.3 * arm[:, None] * np.arange(T)[None, :]
    y = mean + rng.standard_normal((n_subjects, T)) @ L.T
    last = np.where(rng.random(n_subjects) < 0.1, rng.integers(2, T, n_subjects), T)  # dropout
    keep = np.arange(T)[None, :] < last[:, None]
    subj, visit = np.nonzero(keep)
    return pd.DataFrame({"subject": subj, "visit": visit + 1, "arm": np.where(arm[subj] == 1, "trt", "pbo"),
                         "y": y[subj, visit]})


def time_lmmteach(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        m = lt.gls("y ~ visit * arm", data.assign(visit=data.visit.astype(str), subject=data.subject.astype(str)),
                   group="subject", time="visit", correlation="un", heteroscedastic=True)
        return time.perf_counter() - t0, m.loglik, m.converged


def run_nlme(data, timeout):
    return run_r(R_SCRIPT, ["d.csv"], files={"d.csv": data}, timeout=timeout, label="nlme")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--r-max", type=int, default=10000, help="largest number of subjects given to nlme")
    ap.add_argument("--r-timeout", type=float, default=1800.0, help="seconds before nlme is stopped")
    args = ap.parse_args(argv)
    print(f"unstructured gls (REML), {T} visits, y ~ visit * arm, ~10% dropout\n")
    header = f"{'subjects':>9} {'rows':>8} {'lmmteach s':>10} {'logLik':>15} {'nlme s':>9} {'logLik':>15} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        data = simulate(n)
        t, ll, ok = time_lmmteach(data)
        row = f"{n:9d} {len(data):8d} {t:10.3f} {ll:15.4f}"
        r = run_nlme(data, args.r_timeout) if n <= args.r_max else None
        if r is None:
            row += f" {'-':>9} {'-':>15} {'-':>8}"
        elif "timeout" in r:
            row += f" {'>' + format(r['timeout'], '.0f'):>9} {'(stopped)':>15} {'>' + format(r['timeout'] / t, '.0f') + 'x':>8}"
        else:
            flag = "*" if r["warned"] else " "
            row += f" {r['time']:9.2f} {r['logLik']:14.4f}{flag} {r['time'] / t:7.1f}x"
        print(row + ("" if ok else "  (lmmteach: not converged)"), flush=True)
    print("\n* nlme warned")


if __name__ == "__main__":
    main()
