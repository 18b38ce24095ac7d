"""Interactive figures for lecture 3 ("Linear Mixed-Effects Model"): shrinkage of group means.

In the random intercept model y_ij = b_0 + v_i + e_ij, v_i ~ N(0, σ_v²), e_ij ~ N(0, σ²), a group's mean ȳ_i
can be estimated three ways (notes: "Estimating Fixed and Random Effects"):

* no pooling        ȳ_i                                   (each group on its own);
* complete pooling  ȳ = Σ_i m_i ȳ_i / Σ_i m_i             (groups ignored);
* partial pooling   b̂_0 + λ_i (ȳ_i − b̂_0),  λ_i = σ_v² / (σ_v² + σ²/m_i)   (the BLUP b̂_0 + v̂_i),

with b̂_0 = Σ_i w_i ȳ_i / Σ_i w_i, w_i = 1 / (σ_v² + σ²/m_i), the GLS estimate at known variances.
:func:`plot_pooling` draws them; the lecture adds sliders for σ_v², σ² and the group size m with
:func:`lmmteach.course.interactive.interact_if_available`.
Drawing only: the data are a fixed set of standard normal draws scaled by the slider values.
"""

from __future__ import annotations

import numpy as np

__all__ = ["POOLING_SIZE_FACTORS", "pooling_data", "pooling_estimates", "plot_pooling"]

# group i has m_i = max(1, round(m · factor_i)) observations: from a fifth to twice the typical size m
POOLING_SIZE_FACTORS = (0.2, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 2.0)


def pooling_data(sigma_v2: float, sigma2: float, m: int, b0: float = 50.0, seed: int = 2017):
    """Simulated groups for the pooling figure: returns (group sizes m_i, group means ȳ_i, true b_0 + v_i).

    The same standard normal draws z_i, ε_ij are used for every (σ_v², σ², m), scaled as
    v_i = σ_v z_i and e_ij = σ ε_ij, so moving a slider changes the picture smoothly."""
    if sigma_v2 < 0 or sigma2 <= 0:
        raise ValueError(f"need sigma_v2 >= 0 and sigma2 > 0, got sigma_v2={sigma_v2}, sigma2={sigma2}")
    if int(m) < 1:
        raise ValueError(f"the group size m must be at least 1, got {m}")
    rng = np.random.default_rng(seed)
    factors = np.asarray(POOLING_SIZE_FACTORS)
    z = rng.standard_normal(len(factors))
    eps = rng.standard_normal((len(factors), int(np.ceil(max(factors) * 100))))  # room for m up to 100
    m_i = np.maximum(1, np.round(int(m) * factors)).astype(int)
    truth = b0 + np.sqrt(sigma_v2) * z
    ybar = truth + np.sqrt(sigma2) * np.array([eps[i, :k].mean() for i, k in enumerate(m_i)])
    return m_i, ybar, truth


def pooling_estimates(ybar, m_i, sigma_v2: float, sigma2: float) -> dict:
    """The three estimates of each group's mean (module docstring), and λ_i and b̂_0.

    Returns a dict with keys "no pooling", "complete pooling", "partial pooling", "lambda", "b0"."""
    ybar, m_i = np.asarray(ybar, float), np.asarray(m_i, float)
    lam = sigma_v2 / (sigma_v2 + sigma2 / m_i)
    w = 1.0 / (sigma_v2 + sigma2 / m_i)
    b0 = float(np.sum(w * ybar) / np.sum(w))
    complete = float(np.sum(m_i * ybar) / np.sum(m_i))
    return {"no pooling": ybar, "complete pooling": np.full_like(ybar, complete),
            "partial pooling": b0 + lam * (ybar - b0), "lambda": lam, "b0": b0}


def plot_pooling(sigma_v2: float = 4.0, sigma2: float = 16.0, m: int = 5, *, seed: int = 2017, fig=None):
    """Left: each group's no / complete / partial pooling estimate and its true mean, groups ordered by
    size; arrows run from ȳ_i to the BLUP. Right: λ_i against m_i with the curve σ_v² / (σ_v² + σ²/m).
    Returns (figure, (ax_estimates, ax_lambda))."""
    import matplotlib.pyplot as plt

    m_i, ybar, truth = pooling_data(sigma_v2, sigma2, m, seed=seed)
    est = pooling_estimates(ybar, m_i, sigma_v2, sigma2)
    if fig is None:
        fig = plt.figure(figsize=(12, 6.2))
    fig.clear()
    a1, a2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    x = np.arange(len(m_i))
    a1.axhline(est["complete pooling"][0], color="tab:blue", lw=2, label="complete pooling $\\bar y$")
    a1.axhline(est["b0"], color="tab:green", lw=1.5, ls="--", label=r"$\hat b_0$ (what partial pooling shrinks to)")
    a1.scatter(x, est["no pooling"], s=70, color="tab:orange", edgecolor="black", zorder=3,
               label=r"no pooling $\bar y_i$")
    a1.scatter(x, est["partial pooling"], s=70, color="tab:green", marker="D", edgecolor="black", zorder=4,
               label=r"partial pooling $\hat b_0 + \hat v_i$")
    a1.scatter(x, truth, s=90, marker="_", color="black", linewidths=2.5, zorder=5, label="true $b_0 + v_i$")
    for xi, start, end in zip(x, est["no pooling"], est["partial pooling"]):
        a1.annotate("", xy=(xi, end), xytext=(xi, start), arrowprops={"arrowstyle": "->", "color": "0.35"})
    a1.set_xticks(x, [str(k) for k in m_i])
    a1.set_xlabel("group (labelled by its size $m_i$)")
    a1.set_ylabel("estimate of the group mean")
    a1.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3)  # below: no data hidden
    grid = np.linspace(0.5, max(2.0 * m, 10) + 0.5, 200)
    a2.plot(grid, sigma_v2 / (sigma_v2 + sigma2 / grid), color="tab:red", lw=2,
            label=r"$\lambda = \sigma_v^2 / (\sigma_v^2 + \sigma^2/m)$")
    a2.scatter(m_i, est["lambda"], s=60, color="tab:green", marker="D", edgecolor="black", zorder=3,
               label=r"the groups' $\lambda_i$")
    a2.set_ylim(0, 1.02)
    a2.set_xlabel("group size $m_i$")
    a2.set_ylabel(r"shrinkage factor $\lambda_i$")
    a2.legend(fontsize="small", loc="lower right")
    fig.suptitle(rf"$\sigma_v^2 = {sigma_v2:g}$, $\sigma^2 = {sigma2:g}$, typical group size $m = {int(m)}$")
    fig.tight_layout()
    return fig, (a1, a2)
