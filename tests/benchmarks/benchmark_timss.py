"""Benchmark: the notes' TIMSS models with lmmteach, lme4 and statsmodels, in the same run.

    .venv/bin/python tests/benchmarks/benchmark_timss.py [--repeat 5] [--no-statsmodels] [--data PATH]

Prints, per model, the median wall time over ``--repeat`` fits (the whole call: formula, design,
optimisation) and the ML log-likelihood each package reaches. lme4 runs when ``Rscript`` with lme4 is on
the PATH (its time is measured inside R with the same number of repeats); statsmodels' MixedLM runs once
per model when it is installed (``pip install statsmodels``). Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings


import lmmteach as lt
from side_by_side import run_r, time_fits

FIXED = "science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV"
MODELS = {
    "ramod": "science ~ 1 + (1 | idschool)",
    "rimod": "science ~ 1 + math + (1 | idschool)",
    "ri5mod": FIXED + " + (1 | idschool)",
    "risvcmod": FIXED + " + (grpCmath + grpChoursTV || idschool)",
    "risicmod": FIXED + " + (1 | idschool) + (0 + grpCmath + grpChoursTV | idschool)",
    "risucmod": FIXED + " + (grpCmath + grpChoursTV | idschool)",
}
# statsmodels: (fixed formula, re_formula, vc_formula)
SM = {
    "rimod": ("science ~ 1 + math", "1"),
    "risucmod": (FIXED, "1 + grpCmath + grpChoursTV"),
}

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
timss <- read.csv(args[1], colClasses = c(rep("factor", 4), rep("numeric", 7)))
models <- fromJSON(args[2]); rep <- as.integer(args[3]); out <- list()
for (nm in names(models)) {
  f <- as.formula(models[[nm]]); times <- numeric(rep); warns <- character(0)
  for (i in seq_len(rep)) {
    t0 <- proc.time()[["elapsed"]]
    m <- withCallingHandlers(lmer(f, data = timss, REML = FALSE),
      warning = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")},
      message = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleMessage")})
    times[i] <- proc.time()[["elapsed"]] - t0
  }
  out[[nm]] <- list(time = median(times), logLik = as.numeric(logLik(m)), warned = length(warns) > 0)
}
cat(toJSON(out, auto_unbox = TRUE, digits = I(15)))
"""


def time_lmmteach(data, formula, repeat):
    t, m, peak = time_fits(lambda: lt.lmer(formula, data, reml=False), repeat, peak_memory=True)
    return t, m.loglik, m.converged, peak


def run_lme4(data, repeat):
    cols = ["idschool", "idstudent", "grade", "gender", "science", "math", "hoursTV",
            "grpMmath", "grpMhoursTV", "grpCmath", "grpChoursTV"]
    return run_r(R_SCRIPT, ["timss.csv", "models.json", repeat],
                 files={"timss.csv": data[cols], "models.json": json.dumps(MODELS)}, label="lme4")


def run_statsmodels(data, name):
    try:
        import statsmodels.formula.api as smf
    except ImportError:
        return None
    fixed, re = SM[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        fit = smf.mixedlm(fixed, data, groups=data["idschool"], re_formula=re).fit(reml=False)
        return time.perf_counter() - t0, float(fit.llf)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-statsmodels", action="store_true")
    ap.add_argument("--data", default=None, help="path to the real timss1997.txt (default: the simulated stand-in)")
    args = ap.parse_args(argv)
    data = lt.load_timss(args.data, center=True)
    print(f"TIMSS {'(simulated stand-in)' if data.attrs.get('simulated') else '(real file)'}: "
          f"{len(data)} students, {data['idschool'].nunique()} schools; ML fits; median of {args.repeat}\n")
    lme4 = run_lme4(data, args.repeat)
    header = f"{'model':9} {'lmmteach s':>10} {'logLik':>13} {'MiB':>5} {'lme4 s':>8} {'logLik':>13} " \
             f"{'speed-up':>8} {'statsmodels s':>13} {'logLik':>13}"
    print(header)
    print("-" * len(header))
    for name, formula in MODELS.items():
        t, ll, ok, mib = time_lmmteach(data, formula, args.repeat)
        row = f"{name:9} {t:10.4f} {ll:13.4f} {mib:5.1f}"
        if lme4 and name in lme4:
            r = lme4[name]
            flag = "*" if r["warned"] else " "
            row += f" {r['time']:8.3f} {r['logLik']:12.4f}{flag} {r['time'] / t:7.1f}x"
        else:
            row += f" {'-':>8} {'-':>13} {'-':>8}"
        if not args.no_statsmodels and name in SM:
            sm = run_statsmodels(data, name)
            row += f" {sm[0]:13.3f} {sm[1]:13.4f}" if sm else ""
        print(row + ("" if ok else "  (lmmteach: not converged)"))
    print("\n* lme4 warned (failed to converge / nearly unidentifiable)")


if __name__ == "__main__":
    main()
