"""Simulate a data set of the shape of lme4's ``InstEval`` (SIMULATED, for the crossed-effects benchmark).

InstEval holds 73,421 ratings (1-5) that 2,972 students ``s`` gave to lectures of 1,128 lecturers ``d`` from 14
departments ``dept``, with ``service`` (0/1) saying whether the lecture was a service course for another
department. Students and lecturers are crossed (a student rates several lecturers; a lecturer is rated by many
students), each lecturer belongs to one department. We keep that shape and draw the ratings from the model

    y = round(clip(3.2 - 0.07 service + u_s + u_d + u_dept + e, 1, 5)),
    u_s ~ N(0, 0.32²),  u_d ~ N(0, 0.51²),  u_dept ~ N(0, 0.08²),  e ~ N(0, 1.18²)

(standard deviations near lme4's estimates for the real data). ``lmmteach.load_insteval_like()`` calls
:func:`simulate`; ``python -m lmmteach.course.insteval_like out.csv`` writes a CSV. No file is shipped.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

__all__ = ["simulate", "N_RATINGS", "N_STUDENTS", "N_LECTURERS", "N_DEPTS"]

N_RATINGS, N_STUDENTS, N_LECTURERS, N_DEPTS = 73_421, 2_972, 1_128, 14


def _labels(k: int) -> list[str]:
    return [str(i) for i in range(1, k + 1)]


def simulate(seed: int = 2024) -> pd.DataFrame:
    """The simulated ratings: columns ``s, d, dept, service`` (Categoricals, levels in R's order) and ``y``."""
    rng = np.random.default_rng(seed)
    dept_of = np.r_[np.arange(N_DEPTS), rng.integers(0, N_DEPTS, N_LECTURERS - N_DEPTS)]
    # every student and lecturer appears at least once; the rest drawn with unequal activity (gamma weights)
    w_s = rng.gamma(2.0, 1.0, N_STUDENTS)
    w_d = rng.gamma(0.7, 1.0, N_LECTURERS)
    extra = N_RATINGS - N_STUDENTS
    s = np.r_[np.arange(N_STUDENTS), rng.choice(N_STUDENTS, extra, p=w_s / w_s.sum())]
    d = np.r_[np.arange(N_LECTURERS), rng.choice(N_LECTURERS, N_RATINGS - N_LECTURERS, p=w_d / w_d.sum())]
    d = rng.permutation(d)
    propensity = rng.beta(1.0, 1.5, N_LECTURERS)
    service = (rng.random(N_RATINGS) < propensity[d]).astype(int)
    u_s = rng.normal(0, 0.32, N_STUDENTS)
    u_d = rng.normal(0, 0.51, N_LECTURERS)
    u_dept = rng.normal(0, 0.08, N_DEPTS)
    eta = 3.2 - 0.07 * service + u_s[s] + u_d[d] + u_dept[dept_of[d]] + rng.normal(0, 1.18, N_RATINGS)
    y = np.clip(np.round(eta), 1, 5)
    order = np.lexsort((d, s))  # sorted by student, then lecturer, as InstEval is
    out = pd.DataFrame({
        "s": pd.Categorical.from_codes(s[order], _labels(N_STUDENTS)),
        "d": pd.Categorical.from_codes(d[order], _labels(N_LECTURERS)),
        "dept": pd.Categorical.from_codes(dept_of[d[order]], _labels(N_DEPTS)),
        "service": pd.Categorical.from_codes(service[order], ["0", "1"]),
        "y": y[order].astype(float),
    })
    return out


if __name__ == "__main__":  # pragma: no cover - a script
    simulate().to_csv(sys.argv[1] if len(sys.argv) > 1 else "insteval_like_simulated.csv", index=False)
