"""Generate ``timss1997_simulated.csv``: a SIMULATED stand-in for the TIMSS 1997 data.

Why a stand-in?
    Helwig's lecture notes analyse ``timss1997.txt`` (3rd/4th graders from the 1997
    Trends in International Mathematics and Science Study, https://nces.ed.gov/TIMSS/).
    That file is not distributed with this course, so we simulate a data set with the
    same columns, types and design, and we generate the science scores *from the notes'
    own estimates*.  Fitting the notes' models to this file therefore gives numbers close
    to (but not equal to) the ones printed in the notes.  Never quote results from this
    file as facts about real students.

Design (all numbers are choices made here, documented so students can check them):
    * 146 schools with ids 10, 20, ..., 1460 (the notes' first school is 10).
    * 7,097 students in total.  School sizes are unequal: 20 + round(60 * Beta(2, 2.3)),
      then nudged up/down by one student at random schools (staying within 20..80) until
      they sum to exactly 7,097.
    * grade "3"/"4": each school has its own share of 4th graders, drawn from Beta(10, 10)
      (so about half, varying between schools).
    * gender "boy"/"girl" with probability 1/2 each.
    * idstudent = idschool * 10000 + 100 * class + seat, with class 1 = the grade-3 class
      and class 2 = the grade-4 class, and seat numbers 1..99 with a few gaps (absent
      students), like the notes' 100101, 100103, 100107, ...
    * math: school mean ~ N(150, 5^2); grade 4 adds 4 points; student deviation
      ~ N(0, 8.8^2); rounded to one decimal like the notes.  (The notes' school 10 has mean
      152.05 and its six printed students spread by about 8 points.)
    * hoursTV (hours of TV per day): integer answer categories 1..5.  A school level
      ~ N(3, 0.35^2) plus a student deviation ~ N(0, 0.9^2) is rounded and then clipped
      to 1..5.  The clipping is a CEILING (and floor): the top category means "5 or more
      hours", so nobody can score above 5.  Most answers are 2-4 and school means lie
      roughly between 2 and 4.
    * science: drawn from the notes' unstructured random-slopes ML fit ``risucmod``::

          science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV
                    + (grpCmath + grpChoursTV | idschool)

      using the notes' fixed effects, random-effect SDs/correlations and residual SD
      (see the constants below), with the school means (grpM*) and group-centred
      values (grpC*) computed from the simulated math and hoursTV exactly like the notes'
      ``tapply``/``merge``/``cbind`` code.  The school effects and the student errors are
      "moment matched" (``_matched_draws``): normal draws made uncorrelated with the
      predictors and rescaled so that their sample covariance equals the notes' exactly.
      Science is rounded to one decimal.

Calibration (how the numbers above were chosen):
    The first stand-in used a within-school math SD of 15 and school-mean SD of 10; its
    simpler models then drifted far from the notes (ramod's deviance 55148 against the
    notes' 51489, the math LRT 6369 against 3006.6).  The within-school spread of math sets
    the math LRT (science's within-school variance is 0.5593^2 var(grpCmath) + 7.128^2 + ...),
    the school-mean spread sets how much of science varies between schools.  With the
    values above every model of the notes has a deviance within 0.2% of the notes', the
    math LRT is within 3% and risucmod's fixed effects lie within half a standard error of
    the notes'.  The random-effect SDs and correlations are estimated from 146 schools
    with large sampling error, so the ML estimates differ from the generating values; the
    covariance LRT of ``anova(risucmod, risvcmod)`` ranges from about 3 to 25 between seeds.
    SEED is the seed in 1990..2029 that reaches the notes' conclusions for that test
    (reject at 0.05, retain at 0.01: 7.81 < D < 11.34 on 3 df) with risucmod's SDs and
    correlations closest to the notes' (sum of squared log-SD ratios and correlation
    differences).  tests/course/test_timss_standin.py checks all of this by fitting.

Reproducibility:
    ``python datasets/make_timss_standin.py`` rewrites the CSV next to this script.
    The random numbers come from ``numpy.random.default_rng(SEED)``, so re-running the
    script reproduces the committed file byte for byte (tests/course/test_datasets.py checks it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 2020  # chosen as described under "Calibration" above
N_SCHOOLS = 146
N_STUDENTS = 7097
MIN_SIZE, MAX_SIZE = 20, 80
HOURS_TV_MIN, HOURS_TV_CEILING = 1, 5

# --- the notes' risucmod estimates (ML, lme4) -------------------------------------------
FIXED = {
    "(Intercept)": 15.6041,
    "grpCmath": 0.5593,
    "grpMmath": 0.9309,
    "grade4": 0.8990,
    "gendergirl": -1.1839,
    "grpChoursTV": -0.1152,
    "grpMhoursTV": -1.9144,
}
RE_SD = np.array([1.89212, 0.09541, 0.36491])  # (Intercept), grpCmath, grpChoursTV
RE_CORR = np.array(
    [
        [1.00, 0.46, 0.36],
        [0.46, 1.00, -0.27],
        [0.36, -0.27, 1.00],
    ]
)
RESIDUAL_SD = 7.12812

# --- math and hoursTV: school level and student level (calibrated, see the module docstring) --
MATH_MEAN = 150.0  # mean of the school means
MATH_SCHOOL_SD = 5.0  # SD of the school means
MATH_GRADE4 = 4.0  # grade-4 students score this much higher than grade-3 classmates
MATH_WITHIN_SD = 8.8  # student deviation from the school (and grade) mean
TV_MEAN, TV_SCHOOL_SD, TV_WITHIN_SD = 3.0, 0.35, 0.9  # before rounding and clipping to 1..5

COLUMNS = ["idschool", "idstudent", "grade", "gender", "science", "math", "hoursTV"]
OUTFILE = Path(__file__).with_name("timss1997_simulated.csv")


def _school_sizes(rng: np.random.Generator) -> np.ndarray:
    """Unequal school sizes in [MIN_SIZE, MAX_SIZE] summing exactly to N_STUDENTS."""
    span = MAX_SIZE - MIN_SIZE
    sizes = MIN_SIZE + np.round(span * rng.beta(2.0, 2.3, size=N_SCHOOLS)).astype(int)
    while sizes.sum() != N_STUDENTS:
        step = 1 if sizes.sum() < N_STUDENTS else -1
        j = rng.integers(N_SCHOOLS)
        if MIN_SIZE <= sizes[j] + step <= MAX_SIZE:
            sizes[j] += step
    return sizes


def _seats(rng: np.random.Generator, m: int) -> np.ndarray:
    """m sorted seat numbers from 1..99 with a few gaps (students absent on test day)."""
    if m == 0:
        return np.array([], dtype=int)
    pool = min(99, m + int(rng.integers(0, 6)))
    return np.sort(rng.choice(np.arange(1, pool + 1), size=m, replace=False))


def _matched_draws(z: np.ndarray, covariates: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """Normal draws whose sample moments equal the target ones exactly.

    ``z`` (rows = units) is made orthogonal to ``covariates`` (least-squares residuals: no sample
    correlation with the columns of the design, which include a constant) and then linearly
    transformed so that its sample covariance ``z'z / rows`` is exactly ``cov``.
    """
    coef = np.linalg.lstsq(covariates, z, rcond=None)[0]
    z = z - covariates @ coef
    sample_chol = np.linalg.cholesky(z.T @ z / len(z))
    target_chol = np.linalg.cholesky(cov)
    return z @ np.linalg.inv(sample_chol).T @ target_chol.T


def simulate_timss(seed: int = SEED) -> pd.DataFrame:
    """Simulate the TIMSS stand-in and return it as a DataFrame (columns as in the notes).

    ``idschool`` and ``idstudent`` are integers, ``grade`` is the string "3"/"4",
    ``gender`` is "boy"/"girl", ``science`` and ``math`` have one decimal and ``hoursTV``
    is an integer in 1..5.
    """
    rng = np.random.default_rng(seed)
    sizes = _school_sizes(rng)
    school_ids = 10 * np.arange(1, N_SCHOOLS + 1)

    # school-level quantities
    share_grade4 = rng.beta(10.0, 10.0, size=N_SCHOOLS)
    school_math = rng.normal(MATH_MEAN, MATH_SCHOOL_SD, size=N_SCHOOLS)
    school_tv = rng.normal(TV_MEAN, TV_SCHOOL_SD, size=N_SCHOOLS)

    rows = []
    for j, (sid, m) in enumerate(zip(school_ids, sizes)):
        grade4 = rng.random(m) < share_grade4[j]
        n4 = int(grade4.sum())
        n3 = m - n4
        # class 1 = grade 3, class 2 = grade 4; students listed in id order
        ids = np.concatenate([sid * 10000 + 100 + _seats(rng, n3), sid * 10000 + 200 + _seats(rng, n4)])
        grade = np.array(["3"] * n3 + ["4"] * n4)
        gender = np.where(rng.random(m) < 0.5, "girl", "boy")
        math = school_math[j] + MATH_GRADE4 * (grade == "4") + rng.normal(0.0, MATH_WITHIN_SD, size=m)
        tv = np.rint(school_tv[j] + rng.normal(0.0, TV_WITHIN_SD, size=m))
        tv = np.clip(tv, HOURS_TV_MIN, HOURS_TV_CEILING).astype(int)
        rows.append(
            pd.DataFrame(
                {
                    "idschool": sid,
                    "idstudent": ids,
                    "grade": grade,
                    "gender": gender,
                    "math": np.round(math, 1),
                    "hoursTV": tv,
                }
            )
        )
    df = pd.concat(rows, ignore_index=True)

    # level-2 (school means) and level-1 (group-centred) predictors, as in the notes
    grp_m_math = df.groupby("idschool")["math"].transform("mean")
    grp_m_tv = df.groupby("idschool")["hoursTV"].transform("mean")
    grp_c_math = df["math"] - grp_m_math
    grp_c_tv = df["hoursTV"] - grp_m_tv

    # the notes' design matrix X of risucmod's fixed part (columns in the order of FIXED)
    X = np.column_stack(
        [
            np.ones(len(df)),
            grp_c_math,
            grp_m_math,
            df["grade"] == "4",
            df["gender"] == "girl",
            grp_c_tv,
            grp_m_tv,
        ]
    ).astype(float)
    school_index = np.repeat(np.arange(N_SCHOOLS), sizes)

    # school random effects (intercept, grpCmath slope, grpChoursTV slope)
    u = _matched_draws(
        rng.standard_normal(size=(N_SCHOOLS, 3)),
        X[np.unique(school_index, return_index=True)[1]][:, [0, 2, 6]],
        RE_CORR * np.outer(RE_SD, RE_SD),
    )
    u_int, u_math, u_tv = (u[school_index, k] for k in range(3))
    # student errors
    e = _matched_draws(rng.standard_normal(size=(len(df), 1)), X, np.array([[RESIDUAL_SD**2]]))[:, 0]

    science = X @ np.array(list(FIXED.values())) + u_int + u_math * grp_c_math + u_tv * grp_c_tv + e
    df["science"] = np.round(science.to_numpy(), 1)
    return df[COLUMNS]


def to_csv_text(df: pd.DataFrame) -> str:
    """The exact text written to the CSV file (one decimal for the scores)."""
    return df.to_csv(index=False, float_format="%.1f", lineterminator="\n")


def main() -> None:
    df = simulate_timss()
    OUTFILE.write_text(to_csv_text(df), encoding="utf-8", newline="")
    print(f"wrote {OUTFILE} ({len(df)} rows, {df['idschool'].nunique()} schools)")


if __name__ == "__main__":
    main()
