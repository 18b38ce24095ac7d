"""Benchmark: maximal crossed models on kb07-shaped data, lmmteach beside lme4 in the same run.

    .venv/bin/python tests/benchmarks/benchmark_kb07.py [--repeat 1] [--no-r] [--models maximal zerocorr]

The data are simulated with kb07's shape (:mod:`kb07_like`: 56 subjects × 32 items, a 2 × 2 × 2 within
design, 1,788 trials, seeded); the models, by ML,

    maximal:   rt ~ spkr*prec*load + (1 + spkr*prec*load | subj) + (1 + spkr*prec*load | item)   72 θ's
    zerocorr:  rt ~ spkr*prec*load + (1 + spkr*prec*load || subj) + (1 + spkr*prec*load || item)  16 θ's

For each: the median wall time of ``--repeat`` fits (formula to fitted model), the log-likelihood reached,
convergence (lmmteach: its Newton-decrement test; lme4: no convergence warning), lme4's time divided by
lmmteach's (the issue's target: at least 10) and the difference in log-likelihood (target: ≥ 0 up to 1e-6).
lme4 runs with its default optimiser (nloptwrap) when ``Rscript`` with lme4 is on the PATH; its time is
measured inside R. Not a test: timings vary between machines (the maximal model takes lme4 minutes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent))
from kb07_like import MAXIMAL, ZEROCORR, kb07_like  # noqa: E402
from side_by_side import run_r, time_fits  # noqa: E402

import lmmteach as lt  # noqa: E402

MODELS = {"maximal": MAXIMAL, "zerocorr": ZEROCORR}

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c("factor", "factor", "numeric", "numeric", "numeric", "numeric"))
f <- as.formula(args[2]); rep <- as.integer(args[3]); times <- numeric(rep); warns <- character(0)
for (i in seq_len(rep)) {
  warns <- character(0)
  t0 <- proc.time()[["elapsed"]]
  m <- withCallingHandlers(lmer(f, data = d, REML = FALSE),
    warning = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")},
    message = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleMessage")})
  times[i] <- proc.time()[["elapsed"]] - t0
}
conv <- m@optinfo$conv$lme4$messages
cat(toJSON(list(time = median(times), logLik = as.numeric(logLik(m)), evals = m@optinfo$feval,
                warnings = c(warns, conv), singular = isSingular(m)), auto_unbox = TRUE, digits = I(15)))
"""


def time_lmmteach(formula, data, repeat):
    t, m, _ = time_fits(lambda: lt.lmer(formula, data, reml=False), repeat)
    return t, m


def run_lme4(formula, data, repeat):
    return run_r(R_SCRIPT, ["kb07_like.csv", formula, repeat], files={"kb07_like.csv": data}, label="lme4")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-r", action="store_true", help="skip lme4")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    data = kb07_like()
    print(f"data: {len(data):,} trials; {data.subj.nunique()} subjects x {data.item.nunique()} items (kb07-shaped, "
          f"simulated, seed 2007); ML; median of {args.repeat} fit(s) on each side")
    print(f"{'model':9} {'package':9} {'time (s)':>9} {'logLik':>16} {'evals':>6}  converged")
    for name in args.models:
        formula = MODELS[name]
        t, m = time_lmmteach(formula, data, args.repeat)
        print(f"{name:9} {'lmmteach':9} {t:9.2f} {m.loglik:16.6f} {m.optimum.n_eval:6d}  {m.converged} "
              f"(max |gradient| {m.optimum.gradient_norm:.2g}, {m.devfun.n_theta} theta, singular {m.is_singular})")
        r = None if args.no_r else run_lme4(formula, data, args.repeat)
        if r is not None:
            problems = [w for w in r["warnings"] if "singular" not in w]  # a singular fit is not a failure
            ok = not problems
            print(f"{'':9} {'lme4':9} {r['time']:9.2f} {r['logLik']:16.6f} {r['evals']:6d}  {ok}"
                  + ("" if ok else f" ({'; '.join(problems)[:100]})") + f" (singular {r['singular']})")
            print(f"{'':9} lme4 time / lmmteach time = {r['time'] / t:.1f}; "
                  f"logLik(lmmteach) - logLik(lme4) = {m.loglik - r['logLik']:.3g}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
