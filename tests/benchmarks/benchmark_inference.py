"""Benchmark: the inference loops of issue 17 with lmmteach and R, in the same run.

    .venv/bin/python tests/benchmarks/benchmark_inference.py [--repeat 3] [--n-jobs 2] [--skip-r]

1. profile confidence intervals, sleepstudy ``Reaction ~ Days + (Days | Subject)`` (REML; profiled by
   ML) — lme4 ``confint(m, method = "profile")``;
2. parametric bootstrap percentile intervals, the same model, 200 simulations — lme4
   ``confint(m, method = "boot", nsim = 200)`` (bootMer);
3. bootstrap LRT, grocery ``price ~ store + (1 | item)`` against ``price ~ 1 + (1 | item)``, 1,000
   simulations — pbkrtest ``PBmodcomp(m1, m0, nsim = 1000)``;
4. and, beyond the issue's three, crossed random effects (Penicillin ``(1 | plate) + (1 | sample)``):
   bootstrap intervals from 100 simulations and profile intervals, against lme4's.

Each task is timed ``--repeat`` times on both sides and the median is printed (the first of R's runs
pays for loading code lazily, the first of ours for warming caches; the median discounts both).
Single-core figures first (lmmteach with one BLAS thread; R as installed); with ``--n-jobs N`` the two
bootstrap tasks are timed again with N worker processes (their results are identical to the serial
ones, which the script checks). R runs when ``Rscript`` with lme4 and pbkrtest is on the PATH; otherwise
lmmteach's figures are printed alone. Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

import lmmteach as lt
from side_by_side import run_r

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(pbkrtest); library(jsonlite)})
reps <- as.integer(commandArgs(trailingOnly = TRUE)[1])
el <- function(expr) { t0 <- proc.time()[["elapsed"]]; force(expr); proc.time()[["elapsed"]] - t0 }
med <- function(f) median(vapply(seq_len(reps), function(i) el(f()), numeric(1)))
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
groceries <- read.csv("datasets/groceries.csv")
grocery <- data.frame(price = as.numeric(unlist(groceries[, 2:5])), item = factor(rep(groceries$subject, 4)),
                      store = factor(rep(LETTERS[1:4], each = 10)))
m1 <- lmer(price ~ store + (1 | item), grocery, REML = FALSE)
m0 <- lmer(price ~ 1 + (1 | item), grocery, REML = FALSE)
set.seed(1)
t1 <- med(function() ci <<- suppressMessages(confint(m, method = "profile")))
t2 <- med(function() cb <<- suppressMessages(suppressWarnings(confint(m, method = "boot", nsim = 200))))
t3 <- med(function() pb <<- suppressWarnings(PBmodcomp(m1, m0, nsim = 1000, cl = NULL)))
mp <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin)
t4 <- med(function() suppressMessages(suppressWarnings(confint(mp, method = "boot", nsim = 100))))
t5 <- med(function() suppressMessages(confint(mp, method = "profile")))
cat(toJSON(list(profile = t1, profile_sigma_upper = ci[".sigma", 2], boot = t2, pbmodcomp = t3,
                crossed_boot = t4, crossed_profile = t5,
                pb_p = pb$test["PBtest", "p.value"]), auto_unbox = TRUE, digits = I(10)))
"""


def run_r_side(root: Path, repeat: int):
    return run_r(R_SCRIPT, [repeat], cwd=root)


def timed(f, repeat: int = 1):
    """The median wall time of ``repeat`` calls of f, and f's (last) result."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-jobs", type=int, default=2, help="worker processes for the parallel figures (1: skip)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each task, on both sides (the median is shown)")
    ap.add_argument("--skip-r", action="store_true")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    sleep = lt.load_sleepstudy()
    grocery = lt.load_grocery()
    m = lt.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    m1 = lt.lmer("price ~ store + (1 | item)", grocery, reml=False)
    m0 = lt.lmer("price ~ 1 + (1 | item)", grocery, reml=False)
    r = None if args.skip_r else run_r_side(Path(__file__).resolve().parents[2], args.repeat)

    mp = lt.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", lt.load_penicillin())
    tasks = {
        "profile CIs (sleepstudy)": (lambda: lt.confint(m), "profile"),
        "bootstrap CIs, 200 sims": (lambda: lt.confint(m, method="boot", nsim=200, seed=1), "boot"),
        "bootstrap LRT, 1000 sims": (lambda: lt.bootstrap_lrt(m1, m0, nsim=1000, seed=1, progress=False), "pbmodcomp"),
        # several grouping factors (no exact gradient: difference gradients, derivative-free profiles)
        "crossed: bootstrap, 100 sims": (lambda: lt.confint(mp, method="boot", nsim=100, seed=1), "crossed_boot"),
        "crossed: profile CIs": (lambda: lt.confint(mp), "crossed_profile"),
    }
    print(f"one core (lmmteach: one BLAS thread); median of {args.repeat} runs on each side")
    header = f"{'task':28} {'lmmteach s':>10} {'R s':>8} {'speed-up':>8}"
    print(header)
    print("-" * len(header))
    results = {}
    for name, (f, key) in tasks.items():
        t, out = timed(f, args.repeat)
        results[name] = out
        row = f"{name:28} {t:10.3f}"
        row += f" {r[key]:8.2f} {r[key] / t:7.1f}x" if r else f" {'-':>8} {'-':>8}"
        print(row, flush=True)
    ci = results["profile CIs (sleepstudy)"]
    print(f"\nprofile upper end of sigma: lmmteach {ci.loc['.sigma'].iloc[1]:.5f}"
          + (f", lme4 {r['profile_sigma_upper']:.5f}" if r else ""))
    print(f"bootstrap LRT p: lmmteach {results['bootstrap LRT, 1000 sims'].p_value:.4f}"
          + (f", pbkrtest {r['pb_p']:.4f}" if r else ""))

    if args.n_jobs > 1:
        print(f"\n{args.n_jobs} worker processes (results identical to the serial run)")
        t, cb = timed(lambda: lt.confint(m, method="boot", nsim=200, seed=1, n_jobs=args.n_jobs), args.repeat)
        same = cb.equals(results["bootstrap CIs, 200 sims"])
        print(f"{'bootstrap CIs, 200 sims':28} {t:10.3f}" + (f" {r['boot'] / t:7.1f}x vs R" if r else "")
              + f"  identical: {same}")
        t, b = timed(lambda: lt.bootstrap_lrt(m1, m0, nsim=1000, seed=1, progress=False, n_jobs=args.n_jobs),
                     args.repeat)
        same = np.array_equal(b.simulated, results["bootstrap LRT, 1000 sims"].simulated, equal_nan=True)
        print(f"{'bootstrap LRT, 1000 sims':28} {t:10.3f}" + (f" {r['pbmodcomp'] / t:7.1f}x vs R" if r else "")
              + f"  identical: {same}")


if __name__ == "__main__":
    main()
