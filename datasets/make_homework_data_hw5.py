"""Generate homework 5's SIMULATED data set: counts of birds at 20 sites, six visits each.

``bird_counts_simulated.csv`` -- made up (not real observations), long format, 120 rows:
    ``site`` (s01..s20), ``visit`` (1..6), ``temp`` (the visit's temperature, standardised: N(0, 1) rounded to
    2 decimals) and ``count`` (whole numbers) from the Poisson GLMM with a random intercept per site::

        count | b ~ Poisson(mu),   log(mu) = 1.0 + 0.4 * temp + b_site,   b_site ~ N(0, 0.6^2)

Run ``python datasets/make_homework_data_hw5.py`` to rewrite the CSV next to this script;
``numpy.random.default_rng(SEED)`` makes it identical byte for byte on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20265
N_SITES, N_VISITS = 20, 6
BETA0, BETA_TEMP, SIGMA_SITE = 1.0, 0.4, 0.6
OUT = Path(__file__).resolve().parent / "bird_counts_simulated.csv"


def make_bird_counts(seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    b = rng.normal(0.0, SIGMA_SITE, N_SITES)
    site = np.repeat(np.arange(N_SITES), N_VISITS)
    temp = np.round(rng.normal(0.0, 1.0, N_SITES * N_VISITS), 2)
    count = rng.poisson(np.exp(BETA0 + BETA_TEMP * temp + b[site]))
    return pd.DataFrame({"site": [f"s{i + 1:02d}" for i in site], "visit": np.tile(np.arange(1, N_VISITS + 1), N_SITES),
                         "temp": temp, "count": count})


if __name__ == "__main__":
    make_bird_counts().to_csv(OUT, index=False)
    print(f"wrote {OUT.name}")
