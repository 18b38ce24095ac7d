"""A seeded kb07-shaped data set (Kronmüller & Barr 2007's design; simulated, not a copy of the data).

56 subjects × 32 items, fully crossed; a 2 × 2 × 2 within-subject and within-item design (speaker ``spkr``
old/new, precedent ``prec`` maintain/break, cognitive ``load`` yes/no) assigned by a Latin square (subject s
sees item i in condition (s + i) mod 8, so every subject sees every condition 4 times and every item is seen
in every condition 7 times); 4 of the 1,792 trials are missing (1,788 rows, as kb07). The factors are coded
±1 (effects coding, as MixedModels.jl's kb07 examples), and the response time is

    rt = Xβ + Z_subj b_subj + Z_item b_item + e,     b ~ N(0, Σ) per subject and per item (8 × 8 each),

with kb07-like sizes: a mean of about 2,180 ms, residual SD 670 ms, a large subject and item intercept
SD, a large item SD of ``prec`` and small, correlated slopes elsewhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["kb07_like", "MAXIMAL", "ZEROCORR"]

FIXED = "spkr * prec * load"
MAXIMAL = f"rt ~ {FIXED} + (1 + {FIXED} | subj) + (1 + {FIXED} | item)"
"""The maximal model: 8 correlated random effects per subject and per item (72 covariance parameters)."""
ZEROCORR = f"rt ~ {FIXED} + (1 + {FIXED} || subj) + (1 + {FIXED} || item)"
"""The zero-correlation model: the same 16 variances, no correlations (16 covariance parameters)."""

BETA = np.array([2180.0, 70.0, -330.0, 160.0, -20.0, 40.0, -35.0, 10.0])  # (Int), spkr, prec, load, ...
SD_SUBJ = np.array([300.0, 60.0, 80.0, 90.0, 40.0, 30.0, 25.0, 20.0])
SD_ITEM = np.array([360.0, 50.0, 250.0, 30.0, 35.0, 25.0, 20.0, 15.0])
SIGMA = 670.0


def _correlation(rng: np.random.Generator, q: int, strength: float) -> np.ndarray:
    """A random q × q correlation matrix (from a Wishart-like draw, shrunk towards I by ``strength``)."""
    A = rng.standard_normal((q, 2 * q))
    S = A @ A.T
    d = np.sqrt(np.diag(S))
    return (1 - strength) * np.eye(q) + strength * S / np.outer(d, d)


def kb07_like(seed: int = 2007, n_subj: int = 56, n_item: int = 32, n_missing: int = 4) -> pd.DataFrame:
    """The simulated data (one row per trial): subj, item, spkr, prec, load (±1) and rt (ms)."""
    rng = np.random.default_rng(seed)
    s, i = np.meshgrid(np.arange(n_subj), np.arange(n_item), indexing="ij")
    s, i = s.ravel(), i.ravel()
    cond = (s + i) % 8
    spkr, prec, load = (np.where((cond >> k) & 1, 1.0, -1.0) for k in range(3))
    X = np.column_stack([np.ones_like(spkr), spkr, prec, load, spkr * prec, spkr * load, prec * load,
                         spkr * prec * load])
    q = X.shape[1]
    b_subj = rng.standard_normal((n_subj, q)) @ np.linalg.cholesky(
        _correlation(rng, q, 0.5) * np.outer(SD_SUBJ, SD_SUBJ)).T
    b_item = rng.standard_normal((n_item, q)) @ np.linalg.cholesky(
        _correlation(rng, q, 0.5) * np.outer(SD_ITEM, SD_ITEM)).T
    rt = X @ BETA + np.einsum("nq,nq->n", X, b_subj[s]) + np.einsum("nq,nq->n", X, b_item[i])
    rt = rt + SIGMA * rng.standard_normal(len(rt))
    keep = np.ones(len(rt), bool)
    keep[rng.choice(len(rt), n_missing, replace=False)] = False
    return pd.DataFrame({"subj": [f"S{k + 1:02d}" for k in s[keep]], "item": [f"I{k + 1:02d}" for k in i[keep]],
                         "spkr": spkr[keep], "prec": prec[keep], "load": load[keep], "rt": rt[keep]})
