"""Benchmark: the cost of one PIRLS iteration (issue 24), without the optimiser around it.

    .venv/bin/python tests/benchmarks/benchmark_pirls_step.py [--repeat 200]

For each design, at a fixed θ and the working weights at the GLM's fit: the time of one weighted
penalised least-squares solve (``solve_weighted_pls``: reweight the engine's cross-products, factor, solve),
of the rest of an iteration (``working``: W and z; ``linear_predictor``: η) and of a whole PIRLS run from
u = 0, wall and CPU (the CPU time means more on a loaded machine), and the Laplace deviance it reaches (to
compare before/after a change: it should agree to rounding). Not a test: timings vary between machines.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark_glmm import SIMULATED_FORMULA, VERBAGG, VERBAGG_FORMULA, simulated
from lmmteach.glmm.model import glmer_devfun
from lmmteach.glmm.pirls import linear_predictor, pirls, solve_weighted_pls

HERE = Path(__file__).resolve().parent


def case(name: str, formula: str, data: pd.DataFrame, theta, repeat: int) -> None:
    dev = glmer_devfun(formula, data, "binomial")
    design, family, engine = dev.design, dev.family, dev.engine
    eta = dev.offset + design.X @ dev.beta_glm
    W, z = family.working(dev.y, eta, dev.offset, dev.prior_weights)
    solve_weighted_pls(engine, theta, W, z)  # builds the reweighting index once
    t, c = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        sol = solve_weighted_pls(engine, theta, W, z)
    solve, solve_cpu = (time.perf_counter() - t) / repeat, (time.process_time() - c) / repeat
    t = time.perf_counter()
    for _ in range(repeat):
        family.working(dev.y, eta, dev.offset, dev.prior_weights)
        linear_predictor(design, sol.beta, sol.b_terms, dev.offset)
    rest = (time.perf_counter() - t) / repeat
    runs = max(3, repeat // 20)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(runs):
        r = pirls(design, family, dev.y, dev.prior_weights, dev.offset, theta, dev.beta_glm, False, None, engine)
    run, run_cpu = (time.perf_counter() - t) / runs, (time.process_time() - c) / runs
    print(f"{name:40s} {solve * 1e3:8.3f} {solve_cpu * 1e3:8.3f} {rest * 1e3:8.3f} {run * 1e3:8.1f} {run_cpu * 1e3:8.1f}"
          f" {r.iterations:4d}  {r.laplace_deviance:.10f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    verbagg = pd.read_csv(VERBAGG)
    for v in ("id", "item"):
        verbagg[v] = verbagg[v].astype(str)
    big = simulated(100_000)
    print("load average (1, 5, 15 min) before:", *(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'design (ms per call)':40s} {'solve':>8s} {'cpu':>8s} {'W,z,η':>8s} {'PIRLS':>8s} {'cpu':>8s} {'its':>4s}  Laplace")
    one_factor = VERBAGG_FORMULA.replace(" + (1 | item)", "")
    vector = VERBAGG_FORMULA.replace("(1 | item)", "(1 + Anger | item)")
    case("VerbAgg, (1 | id) + (1 | item)", VERBAGG_FORMULA, verbagg, np.array([1.34, 0.49]), args.repeat)
    case("VerbAgg, (1 | id)", one_factor, verbagg, np.array([1.2]), args.repeat)
    case("VerbAgg, (1 | id) + (1 + Anger | item)", vector, verbagg, np.array([1.3, 0.5, 0.01, 0.02]), args.repeat)
    case("10^5 rows, (1 | subj) + (1 | item)", SIMULATED_FORMULA, big, np.array([1.0, 0.6]), max(1, args.repeat // 10))
    case("10^5 rows, (1 | subj) + (1 + x | item)", SIMULATED_FORMULA.replace("(1 | item)", "(1 + x | item)"), big,
         np.array([1.0, 0.6, 0.0, 0.1]), max(1, args.repeat // 20))
    print("load average (1, 5, 15 min) after:", *(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
