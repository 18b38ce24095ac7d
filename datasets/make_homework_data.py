"""Generate the two SIMULATED homework data sets of the course.

Both files are made up (not real measurements) and use a different seed and design from
the lecture data, so homework answers cannot be copied from the lecture notebooks.

``reaction_times_simulated.csv`` -- one-way repeated-measures design (wide format)
    12 subjects (s01..s12) x 4 conditions (cond1..cond4), reaction times in ms with one
    decimal.  Population means 520, 535, 560, 590 ms.  Within-subject covariance:
    standard deviations 40, 45, 55, 70 ms and AR(1) correlations 0.6^|j-k|.  Unequal
    variances and correlations that fall off with the distance between conditions make
    the covariance matrix of the differences non-spherical: the population
    Greenhouse-Geisser epsilon is 0.71 (a mild sphericity violation to detect and
    correct); in the committed sample GG epsilon is about 0.62 and Huynh-Feldt about 0.74.

``classrooms_simulated.csv`` -- pupils nested in classes (long format)
    40 classes (ids 1..40) with 10..30 pupils each (drawn uniformly); pupil ids are
    class * 100 + k (unique over the whole file).  ``ses`` is a standardised
    socio-economic score: class mean ~ N(0, 0.5^2) plus pupil deviation ~ N(0, 0.9^2),
    rounded to 2 decimals.  The score follows a random intercept and slope model::

        score = 50 + 2.5 * ses + u0 + u1 * ses + e
        (u0, u1) ~ N(0, [[4^2, -0.3*4*1], [-0.3*4*1, 1^2]]),   e ~ N(0, 6^2)

    rounded to one decimal.

Run ``python datasets/make_homework_data.py`` to rewrite both CSV files next to this
script; ``numpy.random.default_rng`` with the fixed seeds below makes the output
identical byte for byte on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED_REACTION = 2025
SEED_CLASSROOMS = 20242

HERE = Path(__file__).parent
REACTION_FILE = HERE / "reaction_times_simulated.csv"
CLASSROOMS_FILE = HERE / "classrooms_simulated.csv"

# reaction-time design
RT_MEANS = np.array([520.0, 535.0, 560.0, 590.0])
RT_SDS = np.array([40.0, 45.0, 55.0, 70.0])
RT_RHO = 0.6
N_SUBJECTS = 12

# classroom design
N_CLASSES = 40
CLASS_SIZE_MIN, CLASS_SIZE_MAX = 10, 30
GAMMA = (50.0, 2.5)  # fixed intercept and ses slope
RE_SD = np.array([4.0, 1.0])  # random intercept and ses-slope SDs
RE_CORR = -0.3
RESIDUAL_SD = 6.0


def simulate_reaction_times(seed: int = SEED_REACTION) -> pd.DataFrame:
    """12 x 4 wide table: ``subject, cond1, cond2, cond3, cond4`` (ms, one decimal)."""
    rng = np.random.default_rng(seed)
    lag = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    cov = (RT_RHO**lag) * np.outer(RT_SDS, RT_SDS)
    chol = np.linalg.cholesky(cov)
    y = RT_MEANS + rng.standard_normal(size=(N_SUBJECTS, 4)) @ chol.T
    df = pd.DataFrame(np.round(y, 1), columns=[f"cond{k}" for k in range(1, 5)])
    df.insert(0, "subject", [f"s{i:02d}" for i in range(1, N_SUBJECTS + 1)])
    return df


def simulate_classrooms(seed: int = SEED_CLASSROOMS) -> pd.DataFrame:
    """Long table: ``class, pupil, ses, score`` with random intercepts and ses slopes."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(CLASS_SIZE_MIN, CLASS_SIZE_MAX + 1, size=N_CLASSES)
    cov = np.array([[1.0, RE_CORR], [RE_CORR, 1.0]]) * np.outer(RE_SD, RE_SD)
    u = rng.standard_normal(size=(N_CLASSES, 2)) @ np.linalg.cholesky(cov).T
    class_ses = rng.normal(0.0, 0.5, size=N_CLASSES)

    parts = []
    for j, m in enumerate(sizes):
        cls = j + 1
        ses = np.round(class_ses[j] + rng.normal(0.0, 0.9, size=m), 2)
        e = rng.normal(0.0, RESIDUAL_SD, size=m)
        score = GAMMA[0] + GAMMA[1] * ses + u[j, 0] + u[j, 1] * ses + e
        parts.append(
            pd.DataFrame(
                {
                    "class": cls,
                    "pupil": cls * 100 + np.arange(1, m + 1),
                    "ses": ses,
                    "score": np.round(score, 1),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def reaction_times_csv_text(df: pd.DataFrame) -> str:
    return df.to_csv(index=False, float_format="%.1f", lineterminator="\n")


def classrooms_csv_text(df: pd.DataFrame) -> str:
    out = df.copy()
    out["ses"] = out["ses"].map(lambda v: f"{v:.2f}")
    out["score"] = out["score"].map(lambda v: f"{v:.1f}")
    return out.to_csv(index=False, lineterminator="\n")


def main() -> None:
    rt = simulate_reaction_times()
    REACTION_FILE.write_text(reaction_times_csv_text(rt), encoding="utf-8", newline="")
    cl = simulate_classrooms()
    CLASSROOMS_FILE.write_text(classrooms_csv_text(cl), encoding="utf-8", newline="")
    print(f"wrote {REACTION_FILE} ({len(rt)} rows) and {CLASSROOMS_FILE} ({len(cl)} rows)")


if __name__ == "__main__":
    main()
