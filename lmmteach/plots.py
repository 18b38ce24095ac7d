"""Figures for the lectures (kept apart from fitting: every function here draws, none fits a model).

Sections follow the lecture notebooks; each function returns the matplotlib Axes or (Figure, Axes) it drew on.
"""

from __future__ import annotations

import numpy as np


# -- lecture 3, "Linear Mixed-Effects Model" ------------------------------------------------------------
# Figures for the covariance of y_i, the covariance structures, ML vs REML, BLUP shrinkage and the null
# distribution of the likelihood-ratio statistic. Each function draws and returns; none fits a model.


def plot_fitted_lines(model, x: str, ax=None, title: str | None = None, max_groups: int | None = None):
    """The data of every group with its fitted line ŷ_ij = x_ij'b̂ + z_ij'v̂_i (thin) and the population
    line x_ij'b̂ (thick): parallel lines for a random-intercept model, a fan for random slopes.
    ``x`` is the column on the horizontal axis. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    d = model.design
    xs = d.frame[x].to_numpy(float)
    fitted = model.fitted.to_numpy()
    population = model.predict(re=False).to_numpy()
    ax.scatter(xs, d.y, s=12, color="0.6", alpha=0.7, label="data")
    groups = range(d.n_groups) if max_groups is None else range(min(max_groups, d.n_groups))
    for g in groups:
        rows = np.flatnonzero(d.group == g)
        rows = rows[np.argsort(xs[rows])]
        ax.plot(xs[rows], fitted[rows], lw=1, color="tab:blue", alpha=0.6,
                label=f"group fits ({d.group_name})" if g == 0 else None)
    order = np.argsort(xs)
    ax.plot(xs[order], population[order], lw=3, color="black", label="population fit $x'\\hat b$")
    ax.set_xlabel(x)
    ax.set_ylabel(d.formula.response)
    ax.set_title(title if title is not None else model.formula)
    ax.legend(loc="upper left", fontsize="small")
    return ax


def plot_covariance_heatmap(S, labels=None, ax=None, title: str | None = None, annotate: bool = True,
                            fmt: str = ".0f", vmax: float | None = None, cmap: str = "RdBu_r"):
    """A covariance matrix as a heatmap, colours symmetric about 0 (blue negative, red positive), each cell
    annotated with its value when ``annotate``. Returns the Axes (the image is ``ax.images[0]``)."""
    import matplotlib.pyplot as plt

    S = np.asarray(S, float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"a covariance matrix must be square, got shape {S.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    k = S.shape[0]
    vmax = float(np.max(np.abs(S))) if vmax is None else float(vmax)
    vmax = vmax if vmax > 0 else 1.0
    im = ax.imshow(S, cmap=cmap, vmin=-vmax, vmax=vmax)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    labels = [str(i + 1) for i in range(k)] if labels is None else [str(l) for l in labels]
    ax.set_xticks(range(k), labels, rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), labels)
    if annotate and k <= 12:
        size = 12 if k <= 4 else (10 if k <= 8 else 8)
        for r in range(k):
            for c in range(k):
                dark = abs(S[r, c]) > 0.6 * vmax
                ax.text(c, r, format(S[r, c], fmt), ha="center", va="center", fontsize=size,
                        color="white" if dark else "black")
    if title is not None:
        ax.set_title(title)
    return ax


def plot_structure_covariance(Sigma, Z_i, sigma2: float, effect_labels=None, obs_labels=None,
                              title: str | None = None, fmt: str = ".1f"):
    """Side by side: Σ (the random effects' covariance, q × q) and the covariance it implies for one
    subject's data, Σ_i = Z_i Σ Z_i' + σ² I (m_i × m_i), both on the same colour scale.
    Returns (figure, (ax_Sigma, ax_Sigma_i))."""
    import matplotlib.pyplot as plt
    from .textbook import marginal_covariance

    Sigma = np.asarray(Sigma, float)
    Z_i = np.asarray(Z_i, float)
    if Z_i.ndim != 2 or Z_i.shape[1] != Sigma.shape[0]:
        raise ValueError(f"Z_i must have {Sigma.shape[0]} columns (one per random effect), got shape {Z_i.shape}")
    Sigma_i = marginal_covariance(Z_i, Sigma, sigma2)
    vmax = float(max(np.max(np.abs(Sigma)), np.max(np.abs(Sigma_i))))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1, 1.4]})
    plot_covariance_heatmap(Sigma, labels=effect_labels, ax=a1, title=r"$\Sigma$ = Cov$(\mathbf{v}_i)$",
                            fmt=fmt, vmax=vmax)
    plot_covariance_heatmap(Sigma_i, labels=obs_labels, ax=a2,
                            title=r"$\Sigma_i = Z_i \Sigma Z_i' + \sigma^2 I$ = Cov$(\mathbf{y}_i)$",
                            fmt=fmt, vmax=vmax, annotate=Sigma_i.shape[0] <= 9)
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, (a1, a2)


def plot_sampling_distributions(estimates: dict, truth: float | None = None, xlabel: str = "estimate",
                                ax=None, bins: int = 30, title: str | None = None):
    """Overlaid histograms of the simulated sampling distributions of several estimators
    (``{"ML": array, "REML": array}``), each with a dashed line at its mean, and a black line at the true
    value. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    values = [np.asarray(v, float) for v in estimates.values()]
    edges = np.histogram_bin_edges(np.concatenate(values), bins=bins)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, v), colour in zip(zip(estimates, values), colours):
        ax.hist(v, bins=edges, alpha=0.45, color=colour, label=f"{name} (mean {v.mean():.2f})")
        ax.axvline(v.mean(), color=colour, ls="--", lw=2)
    if truth is not None:
        ax.axvline(truth, color="black", lw=2.5, label=f"true value {truth:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("replications")
    ax.legend(fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax


def plot_shrinkage(raw, blup, m, sigma_v2: float | None = None, sigma2: float | None = None,
                   title: str | None = None):
    """BLUP shrinkage in a random-intercept model.

    Left: each group's raw deviation ȳ_i − x̄_i'b̂ against its BLUP v̂_i, coloured by the group size m_i,
    with the line v̂ = raw (no shrinkage). Right: the ratio v̂_i / raw_i against m_i, with the shrinkage
    factor σ_v² / (σ_v² + σ²/m_i) drawn as a curve when ``sigma_v2`` and ``sigma2`` are given.
    Returns (figure, (ax_left, ax_right))."""
    import matplotlib.pyplot as plt

    raw, blup, m = (np.asarray(a, float) for a in (raw, blup, m))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    sc = a1.scatter(raw, blup, c=m, cmap="viridis", s=50, edgecolor="black", zorder=3)
    lim = float(np.max(np.abs(np.r_[raw, blup]))) * 1.05
    a1.plot([-lim, lim], [-lim, lim], color="0.4", ls="--", label="no shrinkage")
    a1.axhline(0, color="0.7", lw=1)
    a1.set_xlim(-lim, lim)
    a1.set_ylim(-lim, lim)
    a1.set_aspect("equal")
    a1.set_xlabel(r"raw deviation $\bar y_i - \bar{x}_i'\hat b$")
    a1.set_ylabel(r"BLUP $\hat v_i$")
    a1.legend(loc="upper left", fontsize="small")
    fig.colorbar(sc, ax=a1, label="$m_i$")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.abs(raw) > 1e-12, blup / raw, np.nan)
    a2.scatter(m, ratio, s=50, edgecolor="black", zorder=3, label=r"$\hat v_i$ / raw deviation")
    if sigma_v2 is not None and sigma2 is not None:
        grid = np.linspace(max(m.min() - 0.5, 0.5), m.max() + 0.5, 200)
        a2.plot(grid, sigma_v2 / (sigma_v2 + sigma2 / grid), color="tab:red", lw=2,
                label=r"$\sigma_v^2 / (\sigma_v^2 + \sigma^2 / m_i)$")
    a2.set_ylim(0, 1.05)
    a2.set_xlabel("group size $m_i$")
    a2.set_ylabel("shrinkage factor")
    a2.legend(loc="lower right", fontsize="small")
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, (a1, a2)


def plot_lrt_null(simulated, observed: float | None = None, df: int = 1, mixture=None, title: str | None = None):
    """The simulated null distribution of the LRT statistic D (e.g. a parametric bootstrap) against its
    large-sample references: χ²_df and, if ``mixture=(weights, dfs)`` is given, the χ̄² mixture
    Σ_j w_j χ²_{df_j} (χ²_0 is a point mass at 0).

    Left: histogram of D > 0 (as a density of the whole sample, so the bars integrate to the share of
    positive D) with the χ² density and the continuous part of the mixture; the share of D = 0 is printed.
    Right: tail probabilities P(D ≥ x) — simulated, χ²_df and mixture — on a log scale; a vertical line
    marks the observed D. Returns (figure, (ax_density, ax_tail))."""
    import matplotlib.pyplot as plt
    from scipy import stats
    from .lrt import chibar_sf

    D = np.sort(np.clip(np.asarray(simulated, float), 0.0, None))
    zero = D <= 1e-8
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    upper = float(max(np.quantile(D, 0.995), stats.chi2.ppf(0.99, df)))
    grid = np.linspace(1e-3, upper, 400)
    pos = D[~zero]
    if len(pos):
        counts, edges = np.histogram(pos, bins=np.linspace(0, upper, 31))
        width = np.diff(edges)
        a1.bar(edges[:-1], counts / (len(D) * width), width=width, align="edge", color="0.75",
               edgecolor="0.4", label=f"simulated D > 0 ({len(pos)} of {len(D)})")
    a1.plot(grid, stats.chi2.pdf(grid, df), color="tab:blue", lw=2, label=rf"$\chi^2_{{{df}}}$")
    if mixture is not None:
        weights, dfs = mixture
        dens = sum(w * stats.chi2.pdf(grid, k) for w, k in zip(weights, dfs) if k > 0)
        a1.plot(grid, dens, color="tab:red", lw=2, ls="--", label=_mixture_label(weights, dfs))
    a1.set_ylim(0, min(1.0, a1.get_ylim()[1]))
    a1.set_xlabel("LRT statistic $D$")
    a1.set_ylabel("density")
    a1.set_title(f"share of D = 0: {zero.mean():.2f}", fontsize="medium")
    a1.legend(fontsize="small")

    xs = np.linspace(0, upper, 400)
    emp = 1.0 - np.searchsorted(D, xs, side="left") / len(D)
    a2.step(xs, emp, where="post", color="black", lw=2, label="simulated")
    a2.plot(xs, stats.chi2.sf(xs, df), color="tab:blue", lw=2, label=rf"$\chi^2_{{{df}}}$")
    if mixture is not None:
        a2.plot(xs, [chibar_sf(x, *mixture) for x in xs], color="tab:red", lw=2, ls="--",
                label=_mixture_label(*mixture))
    if observed is not None:
        a2.axvline(observed, color="tab:green", lw=2, label=f"observed D = {observed:.2f}")
    a2.set_yscale("log")
    a2.set_ylim(max(0.5 / len(D), 1e-4), 1.05)
    a2.set_xlabel("$x$")
    a2.set_ylabel(r"$P(D \geq x)$")
    a2.legend(fontsize="small")
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, (a1, a2)


def _mixture_label(weights, dfs) -> str:
    return " + ".join(rf"{w:g}$\chi^2_{{{k}}}$" for w, k in zip(weights, dfs))
