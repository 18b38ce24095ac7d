"""Benchmark: crossed random effects on InstEval-shaped data, lmmteach beside lme4 in the same run.

    .venv/bin/python tests/benchmarks/benchmark_crossed.py [--repeat 3] [--no-r]

The data are simulated with InstEval's shape (73,421 ratings; 2,972 students s × 1,128 lecturers d × 14
departments, crossed; a two-level ``service``; :func:`lmmteach.load_insteval_like`), and the model is

    y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)      by ML.

Prints the median wall time over ``--repeat`` fits (the whole call: formula, design, optimisation) -- lmmteach's
default search (L-BFGS-B on the exact gradient, then Newton steps) and, beside it, the derivative-free
``LmerControl(optimizer="COBYQA")`` --, the
log-likelihood each package reaches, and peak memory (lmmteach: the Python heap's peak during one fit, from
tracemalloc; lme4: the R process's maximum resident set size). lme4 runs when ``Rscript`` with lme4 is on the
PATH, with its default optimiser; its time is measured inside R. Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse

import numpy as np

import lmmteach as lt
from side_by_side import run_r, time_fits

FORMULA = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c("factor", "factor", "factor", "factor", "numeric"))
rep <- as.integer(args[2]); times <- numeric(rep); warns <- character(0)
for (i in seq_len(rep)) {
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(lmer(y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept), data = d, REML = FALSE),
    warning = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")},
    message = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleMessage")})
  times[i] <- proc.time()[["elapsed"]] - t0
}
cat(toJSON(list(time = median(times), logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
                evals = m@optinfo$feval, warned = length(warns) > 0), auto_unbox = TRUE, digits = I(15)))
"""


def time_lmmteach(data, repeat, control=None):
    return time_fits(lambda: lt.lmer(FORMULA, data, reml=False, control=control), repeat, peak_memory=True)


def run_lme4(data, repeat):
    return run_r(R_SCRIPT, ["insteval_like.csv", repeat], files={"insteval_like.csv": data}, peak_memory=True,
                 label="lme4")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    args = parser.parse_args()
    data = lt.load_insteval_like()
    print(f"data: {len(data):,} rows; {data.s.nunique():,} students x {data.d.nunique():,} lecturers x "
          f"{data.dept.nunique()} departments; model {FORMULA} (ML)")
    t, m, peak = time_lmmteach(data, args.repeat)
    t_df, m_df, peak_df = time_lmmteach(data, args.repeat, lt.LmerControl(optimizer="COBYQA"))
    r = None if args.no_r else run_lme4(data, args.repeat)
    print(f"{'':10} {'time (s)':>9} {'logLik':>16} {'evaluations':>12} {'peak MB':>8}  theta")
    print(f"{'lmmteach':10} {t:9.2f} {m.loglik:16.6f} {m.optimum.n_eval:12d} {peak:8.0f}  "
          f"{np.array2string(m.theta, precision=6)}  converged={m.converged}, max |gradient| "
          f"{m.optimum.gradient_norm:.2g}")
    print(f"{'  COBYQA':10} {t_df:9.2f} {m_df.loglik:16.6f} {m_df.optimum.n_eval:12d} {peak_df:8.0f}  "
          f"{np.array2string(m_df.theta, precision=6)}  converged={m_df.converged} "
          "(LmerControl(optimizer='COBYQA'): derivative-free)")
    if r is not None:
        print(f"{'lme4':10} {r['time']:9.2f} {r['logLik']:16.6f} {r['evals']:12d} {r['peak_mb']:8.0f}  "
              f"{np.array2string(np.asarray(r['theta']), precision=6)}  warned={r['warned']}")
        print(f"lme4 time / lmmteach time = {r['time'] / t:.1f};  logLik(lmmteach) - logLik(lme4) = "
              f"{m.loglik - r['logLik']:.3g}")


if __name__ == "__main__":
    main()
