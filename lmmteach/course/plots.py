"""Figures for the lectures (kept apart from fitting: every function here draws, none fits a model).

Sections follow the lecture notebooks; each function returns the matplotlib Axes or (Figure, Axes) it drew on.
"""

from __future__ import annotations

import numpy as np

from .._util import factor_levels

__all__ = ["plot_group_boxplots", "plot_interval_coverage", "plot_profiles", "plot_difference_variances",
           "plot_f_adjusted", "plot_pairwise_intervals", "plot_fitted_lines", "plot_covariance_heatmap",
           "plot_structure_covariance", "plot_sampling_distributions", "plot_shrinkage", "plot_lrt_null",
           "plot_school_means", "plot_within_between", "plot_caterpillar", "plot_residuals_fitted",
           "plot_normal_qq", "plot_ranef_qq", "plot_zeta", "deviance_grid", "plot_deviance_curve",
           "plot_deviance_contour", "show"]


# -- every lecture ----------------------------------------------------------------------------------------

def show(fig=None, *, alt: str) -> None:
    """Display ``fig`` (default: the current figure) in the notebook with its alt text in the output itself
    (``metadata["image/png"]["alt"]``, which JupyterLab, nbconvert's decks and myst-nb read), then close it
    so the inline backend does not draw it a second time."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    if not isinstance(alt, str) or not alt.strip():
        raise ValueError("show: alt must be a non-empty description of the figure")
    fig = plt.gcf() if fig is None else fig
    display(fig, metadata={"image/png": {"alt": alt}})
    plt.close(fig)


# -- lecture 1, "Correlated Data" ------------------------------------------------------------------------
# Clustered data (students nested in schools) and what ignoring the clustering does to confidence intervals.


def plot_group_boxplots(data, response: str, group: str, max_groups: int | None = 25, ax=None,
                        title: str | None = None):
    """Box plots of ``response`` for each level of ``group`` (e.g. math scores by school), the groups sorted
    by their median, with the grand mean as a dashed line: between-group spread is what makes observations
    from the same group correlated. ``max_groups`` keeps the first groups in the data's level order (all of
    them if None). Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    levels = factor_levels(data[group])
    keep = list(levels) if max_groups is None else list(levels)[:max_groups]
    values = {g: data.loc[data[group] == g, response].dropna().to_numpy(float) for g in keep}
    order = sorted(keep, key=lambda g: np.median(values[g]))
    ax.boxplot([values[g] for g in order], showfliers=False, widths=0.6,
               medianprops={"color": "tab:blue", "lw": 2})
    ax.set_xticks(range(1, len(order) + 1), [str(g) for g in order], rotation=90,
                  fontsize="x-small" if len(order) > 15 else "small")
    grand = float(np.mean(np.concatenate([values[g] for g in order])))
    ax.axhline(grand, color="tab:red", ls="--", lw=2, label=f"mean of these {len(order)} {group}s")
    ax.set_xlabel(f"{group} (sorted by median {response})")
    ax.set_ylabel(response)
    ax.legend(loc="upper left", fontsize="small")
    ax.set_title(title if title is not None else f"{response} by {group}")
    return ax


def plot_interval_coverage(intervals: dict, truth: float, n_show: int = 50, xlabel: str = "confidence interval",
                           title: str | None = None):
    """Confidence intervals from a simulation, one panel per method: ``intervals`` maps a method name to
    ``(lower, upper)`` arrays (one entry per replication). The first ``n_show`` intervals are drawn as
    horizontal bars, grey if they cover ``truth`` and red if they miss; each panel's title gives the
    coverage over *all* replications. Returns (figure, axes)."""
    import matplotlib.pyplot as plt

    k = len(intervals)
    fig, axes = plt.subplots(1, k, figsize=(6.5 * k, 6), sharex=True, squeeze=False)
    axes = axes[0]
    for ax, (name, (lo, hi)) in zip(axes, intervals.items()):
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        covers = (lo <= truth) & (truth <= hi)
        rows = np.arange(min(n_show, len(lo)))
        colours = np.where(covers[rows], "0.55", "tab:red")
        ax.hlines(rows + 1, lo[rows], hi[rows], colors=colours, lw=2.5)
        ax.plot((lo[rows] + hi[rows]) / 2, rows + 1, "|", color="black", ms=6)
        ax.axvline(truth, color="black", lw=2)
        ax.set_title(f"{name}: coverage {covers.mean():.3f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("replication")
        ax.set_ylim(0, len(rows) + 1)
        ax.invert_yaxis()
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color="0.55", lw=2.5, label="covers"),
               Line2D([], [], color="tab:red", lw=2.5, label="misses"),
               Line2D([], [], color="black", lw=2, label=f"true value {truth:g}")]
    if title is not None:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize="small", frameon=False)
    return fig, axes


# -- lecture 2, "One-Way Repeated Measures ANOVA" -------------------------------------------------------
# Profiles of the subjects across the treatment levels, the HOTDV (sphericity) check, the F reference
# distributions with Box's ε, and simultaneous intervals for pairwise comparisons.


def plot_profiles(data, response: str, factor: str, subject: str, centre: bool = False, ax=None,
                  title: str | None = None, label_subjects: bool = True):
    """Profile ("spaghetti") plot of long RM data: one thin line per subject across the levels of ``factor``
    and the level means ȳ_.j as a thick black line. With ``centre=True`` each subject's mean is removed,
    y_ij − ȳ_i. + ȳ_.. (the subject effects ρ̂_i taken out), so that only the treatment effects and the
    errors remain. Returns the Axes."""
    import matplotlib.pyplot as plt
    from ..aov.aovtables import long_to_wide

    wide = long_to_wide(data, response, factor, subject)
    Y = wide.to_numpy()
    if centre:
        Y = Y - Y.mean(axis=1, keepdims=True) + Y.mean()
    if ax is None:
        _, ax = plt.subplots()
    x = np.arange(Y.shape[1])
    colours = plt.get_cmap("tab10" if Y.shape[0] <= 10 else "tab20")
    for i in range(Y.shape[0]):
        ax.plot(x, Y[i], marker="o", lw=1.2, ms=4, alpha=0.8, color=colours(i % colours.N))
    ax.plot(x, Y.mean(axis=0), marker="s", lw=4, ms=8, color="black", label=r"level means $\bar y_{.j}$")
    if label_subjects:
        lo, hi = ax.get_ylim()
        positions = _spread_labels(Y[:, -1], min_gap=0.045 * (hi - lo))
        for i, (name, pos) in enumerate(zip(wide.index, positions)):
            ax.annotate(str(name), (x[-1], Y[i, -1]), xytext=(x[-1] + 0.08, pos), textcoords="data",
                        va="center", fontsize="x-small", color=colours(i % colours.N))
    ax.set_xticks(x, [str(c) for c in wide.columns])
    if label_subjects:
        ax.set_xlim(-0.2, x[-1] + 0.8)
    ax.set_xlabel(factor)
    ax.set_ylabel(rf"{response} $-\ \bar y_{{i.}} + \bar y_{{..}}$" if centre else response)
    ax.legend(loc="upper left", fontsize="small")
    default = f"{response} by {factor}, one line per {subject}" + (" (subject means removed)" if centre else "")
    ax.set_title(title if title is not None else default)
    return ax


def _spread_labels(values, min_gap: float) -> np.ndarray:
    """Label positions near ``values``, moved apart so that neighbours are at least ``min_gap`` apart."""
    values = np.asarray(values, float)
    order = np.argsort(values)
    pos = values[order].copy()
    for k in range(1, len(pos)):
        pos[k] = max(pos[k], pos[k - 1] + min_gap)
    pos -= max(0.0, (pos[-1] - values[order][-1]) / 2) if len(pos) else 0.0  # centre the shift
    out = np.empty_like(pos)
    out[order] = pos
    return out


def plot_difference_variances(X, ax=None, title: str | None = None):
    """The HOTDV (sphericity) check: the sample variance of y_ik − y_ij for every pair of levels j < k, as
    bars, against 2·MSE (dashed), the common value 2σ_e² that compound symmetry implies. ``X`` is wide RM
    data as for :func:`lmmteach.aov1rm`. Returns the Axes."""
    import matplotlib.pyplot as plt
    from itertools import combinations
    from ..aov.rmanova import as_rm_matrix, rm_decomposition

    Y, levels, _ = as_rm_matrix(X)
    n, a = Y.shape
    pairs = list(combinations(range(a), 2))
    variances = [np.var(Y[:, k] - Y[:, j], ddof=1) for j, k in pairs]
    mse = rm_decomposition(Y)["SSE"] / ((n - 1) * (a - 1))
    if ax is None:
        _, ax = plt.subplots()
    x = np.arange(len(pairs))
    ax.bar(x, variances, color="tab:blue", alpha=0.75, edgecolor="black")
    ax.axhline(2 * mse, color="tab:red", ls="--", lw=2, label=f"2 MSE = {2 * mse:.4f}")
    names = [f"{levels[k]}−{levels[j]}" for j, k in pairs]
    slanted = a > 4 or max(len(t) for t in names) > 6
    ax.set_xticks(x, names, rotation=30 if slanted else 0, ha="right" if slanted else "center",
                  fontsize="small")
    ax.set_xlabel("pair of levels (k − j)")
    ax.set_ylabel(r"sample Var$(y_{ik} - y_{ij})$")
    ax.legend(fontsize="small")
    ax.set_title(title if title is not None else "Treatment-difference variances (HOTDV)")
    return ax


def plot_f_adjusted(F: float, df1: float, df2: float, eps: dict | None = None, ax=None,
                    title: str | None = None):
    """The observed F_a* against its reference distributions: F(df1, df2) under sphericity and
    F(ε·df1, ε·df2) for each ``eps = {"GG": ε̂, "HF": ε̃}`` (Box's correction). Each tail P(F > F_a*), the
    p-value, is shaded in its curve's colour and given in the legend. Returns the Axes."""
    import matplotlib.pyplot as plt
    from scipy import stats

    refs = {"sphericity": 1.0}
    refs.update(eps or {})
    if ax is None:
        _, ax = plt.subplots()
    upper = max(F * 1.6, stats.f.ppf(0.99, df1, df2))
    grid = np.linspace(1e-3, upper, 500)
    styles = ["-", "--", ":", "-."]
    zoom = ax.inset_axes([0.74, 0.45, 0.24, 0.45])                       # the tails beyond F_a*, magnified
    for (name, e), ls in zip(refs.items(), styles * 2):
        d1, d2 = e * df1, e * df2
        label = (rf"$F_{{{d1:.3g},\,{d2:.3g}}}$ ({name}" + (rf", $\epsilon$ = {e:.4f}" if name != "sphericity" else "")
                 + f"): p = {stats.f.sf(F, d1, d2):.4f}")
        (line,) = ax.plot(grid, stats.f.pdf(grid, d1, d2), lw=2.5, ls=ls, label=label)
        tail = grid[grid >= F]
        for axis in (ax, zoom):
            axis.plot(tail, stats.f.pdf(tail, d1, d2), lw=2, ls=ls, color=line.get_color())
            axis.fill_between(tail, stats.f.pdf(tail, d1, d2), color=line.get_color(), alpha=0.2)
    zoom.set_xlim(F * 0.95, upper)
    zoom.set_ylim(0, 1.15 * max(stats.f.pdf(F, e * df1, e * df2) for e in refs.values()))
    zoom.axvline(F, color="black", lw=2)
    zoom.set_title("shaded: the p-values", fontsize="small")
    zoom.tick_params(labelsize="x-small")
    ax.axvline(F, color="black", lw=2)
    ax.annotate(rf"$F_a^* = {F:.3f}$", (F, ax.get_ylim()[1] * 0.2), xytext=(-8, 0), textcoords="offset points",
                ha="right")
    ax.set_xlabel("$F$")
    ax.set_ylabel("density")
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set_title(title if title is not None else "Reference distributions of $F_a^*$")
    return ax


def plot_pairwise_intervals(tables: dict, ax=None, title: str | None = None):
    """Simultaneous confidence intervals for all pairwise differences μ_k − μ_j, one colour per method:
    ``tables`` maps a label to a :func:`lmmteach.pairwise_comparisons` table. Intervals that exclude 0 are
    drawn solid, the others faded. Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6))
    k = len(tables)
    offsets = np.linspace(-0.3, 0.3, k) if k > 1 else np.zeros(1)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    pairs: list = []
    for (name, t), off, colour in zip(tables.items(), offsets, colours):
        if not pairs:
            pairs = list(t["pair"])
        y = np.arange(len(t)) + off
        lo, hi, est = (t[c].to_numpy(float) for c in ("lower", "upper", "estimate"))
        excludes = (lo > 0) | (hi < 0)
        for yi, l, h, ex in zip(y, lo, hi, excludes):
            ax.plot([l, h], [yi, yi], color=colour, lw=3, alpha=1.0 if ex else 0.45)
        ax.plot(est, y, "o", color=colour, label=name)
    ax.axvline(0, color="black", lw=1.5)
    ax.set_yticks(range(len(pairs)), pairs)
    ax.invert_yaxis()
    ax.set_xlabel(r"$\hat L = \bar y_{.k} - \bar y_{.j}$ with simultaneous interval")
    ax.set_ylabel("pair")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title if title is not None else "Pairwise comparisons")
    return ax


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
                            fmt: str = ".0f", vmax: float | None = None, cmap: str | None = None,
                            colorbar: bool = True, fontsize: float | None = None):
    """A covariance matrix as a heatmap, each cell annotated with its value when ``annotate`` (up to 10 × 10,
    in ``fontsize`` points, default by size). Colours: white to red from 0 to ``vmax`` when every entry is
    ≥ 0, else blue-white-red symmetric about 0 (unless ``cmap`` is given); a colour bar unless
    ``colorbar=False`` (to share one between panels). Returns the Axes (the image is ``ax.images[0]``)."""
    import matplotlib.pyplot as plt

    S = np.asarray(S, float)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"a covariance matrix must be square, got shape {S.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4.5))
    k = S.shape[0]
    vmax = float(np.max(np.abs(S))) if vmax is None else float(vmax)
    vmax = vmax if vmax > 0 else 1.0
    nonnegative = bool(np.all(S >= 0))
    vmin = 0.0 if nonnegative else -vmax
    cmap = cmap or ("Reds" if nonnegative else "RdBu_r")
    im = ax.imshow(S, cmap=cmap, vmin=vmin, vmax=vmax)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    labels = [str(i + 1) for i in range(k)] if labels is None else [str(l) for l in labels]
    ax.set_xticks(range(k), labels, rotation=90 if k > 6 else 0)
    ax.set_yticks(range(k), labels)
    if annotate and k <= 10:
        size = fontsize or (13 if k <= 4 else (11 if k <= 7 else 9))
        for r in range(k):
            for c in range(k):
                dark = abs(S[r, c]) > 0.6 * vmax
                ax.text(c, r, format(S[r, c], fmt), ha="center", va="center", fontsize=size,
                        color="white" if dark else "black")
    if title is not None:
        ax.set_title(title)
    return ax


def plot_structure_covariance(Sigma, Z_i, sigma2: float, effect_labels=None, obs_labels=None,
                              title: str | None = None, fmt: str = ".1f", shared_scale: bool = False):
    """Side by side: Σ (the random effects' covariance, q × q) and the covariance it implies for one
    subject's data, Σ_i = Z_i Σ Z_i' + σ² I (m_i × m_i), panels sized by matrix dimension; each on its own
    colour scale unless ``shared_scale`` (then one colour bar for both). Returns (figure, (ax_Sigma, ax_Sigma_i))."""
    import matplotlib.pyplot as plt
    from ..lmm.textbook import marginal_covariance

    Sigma = np.asarray(Sigma, float)
    Z_i = np.asarray(Z_i, float)
    if Z_i.ndim != 2 or Z_i.shape[1] != Sigma.shape[0]:
        raise ValueError(f"Z_i must have {Sigma.shape[0]} columns (one per random effect), got shape {Z_i.shape}")
    Sigma_i = marginal_covariance(Z_i, Sigma, sigma2)
    vmax = float(max(np.max(np.abs(Sigma)), np.max(np.abs(Sigma_i)))) if shared_scale else None
    q, m = Sigma.shape[0], Sigma_i.shape[0]
    left = max(q, 0.3 * m)  # Σ's panel width, in cells of Σ_i; the figure is as wide as the squares need
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(4.6 * (1 + left / m) + 3.4, 5.8), layout="constrained",
                                 gridspec_kw={"width_ratios": [left, m]})
    plot_covariance_heatmap(Sigma, labels=effect_labels, ax=a1, title=r"$\Sigma$ = Cov$(\mathbf{v}_i)$",
                            fmt=fmt, vmax=vmax, colorbar=not shared_scale, fontsize=13)
    plot_covariance_heatmap(Sigma_i, labels=obs_labels, ax=a2,
                            title=r"$\Sigma_i = Z_i \Sigma Z_i' + \sigma^2 I$ = Cov$(\mathbf{y}_i)$",
                            fmt=fmt, vmax=vmax, colorbar=not shared_scale, fontsize=11)
    if shared_scale:
        fig.colorbar(a2.images[0], ax=[a1, a2], shrink=0.8, pad=0.02)
    if title is not None:
        fig.suptitle(title)
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
    from ..inference.lrt import chibar_sf

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
    mass = sum(w for w, k in zip(*mixture) if k == 0) if mixture is not None else 0.0
    if mass > 0 or zero.any():  # a point mass has no density: an arrow at 0, its probability as a label
        top = a1.get_ylim()[1]
        a1.annotate("", xy=(0, 0.97 * top), xytext=(0, 0), arrowprops={"arrowstyle": "-|>", "lw": 3,
                    "color": "tab:red" if mass > 0 else "0.3", "mutation_scale": 20})
        a1.text(0.03 * upper, 0.95 * top, (f"point mass at 0: {mass:g} (mixture), " if mass > 0 else "")
                + f"{zero.mean():.2f} (simulated)", color="tab:red" if mass > 0 else "0.3", fontsize="small",
                va="top", bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85})
        a1.set_xlim(-0.02 * upper, upper)
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
    if observed is not None and observed <= upper:
        a2.axvline(observed, color="tab:green", lw=2, label=f"observed D = {observed:.2f}")
    elif observed is not None:  # far in the tail: say so instead of stretching the axis
        a2.annotate(f"observed D = {observed:.2f} →", xy=(0.97, 0.9), xycoords="axes fraction", ha="right",
                    color="tab:green", fontsize="small")
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


# -- lecture 4, "Example: TIMSS Data" -------------------------------------------------------------------
# Level-2 (school mean) and level-1 (group-centred) variables, the school BLUPs with their conditional
# intervals (caterpillar plot), and residual checks.
def plot_school_means(data, variables=("math", "hoursTV"), group="idschool", bins=20, figsize=None):
    """Histograms of the level-2 variables x̄_i· = (1/m_i) Σ_j x_ij, one panel per variable.

    The notes' "Define Level-2 math and hoursTV Variables" (``tapply(math, idschool, mean)``).
    Returns (figure, axes).
    """
    import matplotlib.pyplot as plt

    means = data.groupby(group, observed=True)[list(variables)].mean()
    fig, axes = plt.subplots(1, len(variables), squeeze=False, figsize=figsize)
    for ax, var in zip(axes[0], variables):
        ax.hist(means[var].dropna(), bins=bins, color="tab:blue", edgecolor="white")
        ax.set_xlabel(f"school mean of {var}")
        ax.set_ylabel("number of schools")
        ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
        ax.set_title(f"school means of {var}")
    fig.suptitle(f"Level-2 variables: {len(means)} schools")
    fig.tight_layout()
    return fig, tuple(axes[0])


def plot_within_between(data, y="science", x="math", group="idschool", figsize=None):
    """Level-1 (within-school) versus level-2 (between-school) relation of ``y`` and ``x``.

    Left: group-centred values  x_ij − x̄_i·  against  y_ij − ȳ_i·  (every student); right: school means
    x̄_i· against ȳ_i· (one point per school). Each panel shows its least-squares slope: the within-school
    slope b_W (what ``grpCmath`` estimates) and the between-school slope b_B (what ``grpMmath`` estimates).
    Returns (figure, (ax_within, ax_between)).
    """
    import matplotlib.pyplot as plt

    d = data[[group, x, y]].dropna()
    g = d.groupby(group, observed=True)
    xc = d[x] - g[x].transform("mean")
    yc = d[y] - g[y].transform("mean")
    means = g[[x, y]].mean()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=figsize)
    panels = [(ax1, xc.to_numpy(), yc.to_numpy(), "within schools (level 1)", f"{x} − school mean",
               f"{y} − school mean", dict(s=4, alpha=0.25)),
              (ax2, means[x].to_numpy(), means[y].to_numpy(), "between schools (level 2)", f"school mean {x}",
               f"school mean {y}", dict(s=18, alpha=0.8))]
    for ax, u, v, title, xlabel, ylabel, style in panels:
        slope, intercept = np.polyfit(u, v, 1)
        ax.scatter(u, v, color="tab:blue", **style)
        grid = np.linspace(u.min(), u.max(), 2)
        ax.plot(grid, intercept + slope * grid, color="tab:red", lw=2.5, label=f"slope {slope:.3f}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig, (ax1, ax2)


def plot_caterpillar(model, terms=None, level=0.95, group=None, figsize=None):
    """Caterpillar plot of the BLUPs v̂_i with intervals v̂_ik ± z·sd(v_ik | y), one panel per term.

    The conditional SDs are the square roots of the diagonal of ``model.ranef_condvar`` (lme4's
    ``ranef(m, condVar = TRUE)``, as drawn by lattice's ``dotplot``); z is the normal quantile for ``level``
    (1.96 for 95%). Groups are sorted by their BLUP within each panel. Returns (figure, axes).
    """
    import matplotlib.pyplot as plt
    from scipy import stats

    group = group or next(iter(model.ranef))
    re, se = model.ranef[group], model.ranef_se[group]
    terms = list(re.columns) if terms is None else list(terms)
    z = stats.norm.ppf(0.5 + level / 2)
    fig, axes = plt.subplots(1, len(terms), squeeze=False, figsize=figsize)
    for ax, term in zip(axes[0], terms):
        order = np.argsort(re[term].to_numpy(), kind="stable")
        est, half = re[term].to_numpy()[order], z * se[term].to_numpy()[order]
        rank = np.arange(1, len(est) + 1)
        ax.errorbar(est, rank, xerr=half, fmt="o", ms=3, color="tab:blue", ecolor="0.6", elinewidth=1)
        ax.axvline(0.0, color="tab:red", lw=1.5, ls="--")
        ax.set_xlabel(f"BLUP of {term}")
        ax.set_ylabel(f"{group} (sorted by BLUP)")
        ax.set_title(f"{term}: {100 * level:g}% intervals")
        ax.set_yticks([])
    fig.tight_layout()
    return fig, tuple(axes[0])


def plot_residuals_fitted(model, ax=None):
    """Residuals ê_ij = y_ij − ŷ_ij against the fitted values ŷ_ij = x_ij'b̂ + z_ij'v̂_i, with a zero line and
    the mean residual in 20 bins of the fitted values (a trend there means a missing mean structure).
    Returns the Axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    fit, res = model.fitted.to_numpy(), model.residuals.to_numpy()
    ax.scatter(fit, res, s=4, alpha=0.25, color="tab:blue")
    ax.axhline(0.0, color="tab:red", lw=1.5, ls="--")
    edges = np.quantile(fit, np.linspace(0, 1, 21))
    which = np.clip(np.searchsorted(edges, fit, side="right") - 1, 0, 19)
    centres = np.array([fit[which == k].mean() for k in range(20)])
    means = np.array([res[which == k].mean() for k in range(20)])
    ax.plot(centres, means, color="black", lw=2, marker="o", ms=4, label="binned mean")
    ax.set_xlabel("fitted value")
    ax.set_ylabel("residual")
    ax.set_title("Residuals vs fitted")
    ax.legend(loc="upper left")
    return ax


def plot_normal_qq(values, ax=None, title="Normal QQ plot", label="sample quantiles", line: str = "quartiles"):
    """Normal QQ plot: sorted values against N(0, 1) quantiles at (i − a)/(n + 1 − 2a) (R's ``ppoints``), with a
    reference line: ``line="quartiles"`` is R's ``qqline`` through the first and third quartiles (for values of
    unknown scale), ``line="identity"`` is y = x (for values that should be N(0, 1) themselves, e.g.
    standardised residuals or BLUPs: a line fitted to them would hide a wrong spread). Returns the Axes."""
    import matplotlib.pyplot as plt
    from scipy import stats

    if line not in ("quartiles", "identity"):
        raise ValueError(f"plot_normal_qq: line must be 'quartiles' or 'identity', not {line!r}")
    if ax is None:
        _, ax = plt.subplots()
    v = np.sort(np.asarray(values, float))
    v = v[np.isfinite(v)]
    n = len(v)
    a = 3 / 8 if n <= 10 else 1 / 2
    q = stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))
    ax.scatter(q, v, s=6, color="tab:blue")
    if line == "identity":
        ax.plot(q[[0, -1]], q[[0, -1]], color="tab:red", lw=1.5, label="y = x")
    else:
        y1, y3 = np.quantile(v, [0.25, 0.75])
        z1, z3 = stats.norm.ppf([0.25, 0.75])
        slope = (y3 - y1) / (z3 - z1)
        ax.plot(q[[0, -1]], y1 + slope * (q[[0, -1]] - z1), color="tab:red", lw=1.5)
    ax.set_xlabel("theoretical N(0, 1) quantile")
    ax.set_ylabel(label)
    ax.set_title(title)
    return ax


def plot_ranef_qq(model, group=None, figsize=None):
    """Normal QQ plots of the BLUPs v̂_ik, one panel per random-effect term (assumption v_i ~ N(0, Σ)).
    Returns (figure, axes)."""
    import matplotlib.pyplot as plt

    group = group or next(iter(model.ranef))
    re = model.ranef[group]
    fig, axes = plt.subplots(1, re.shape[1], squeeze=False, figsize=figsize)
    for ax, term in zip(axes[0], re.columns):
        plot_normal_qq(re[term], ax=ax, title=f"BLUPs: {term}", label=f"BLUP of {term}")
    fig.tight_layout()
    return fig, tuple(axes[0])


def plot_zeta(values, zeta, estimate: float, se: float | None = None, level: float = 0.95, ax=None,
              xlabel: str = "parameter", title: str | None = None):
    """Profile zeta plot (lme4's ``xyplot(profile(m))``): the signed root of the likelihood-ratio statistic

        ζ(v) = sign(v − ψ̂) √(d(v) − d(ψ̂)),   d(v) the ML deviance with ψ held at v, the rest re-estimated,

    against v, with horizontal lines at ±z_{(1+level)/2}: the profile interval is where ζ crosses them. With ``se``
    the Wald line (v − ψ̂)/se is drawn too; ζ straight and on it means the Wald interval is as good as the profile
    one. Returns the Axes."""
    import matplotlib.pyplot as plt
    from scipy import stats

    values, zeta = np.asarray(values, float), np.asarray(zeta, float)
    if values.shape != zeta.shape or values.ndim != 1:
        raise ValueError(f"plot_zeta: values and zeta must be 1-d of the same length, not {values.shape} and {zeta.shape}")
    if not 0 < level < 1:
        raise ValueError(f"plot_zeta: level must be between 0 and 1, not {level}")
    if ax is None:
        _, ax = plt.subplots()
    z = stats.norm.ppf((1 + level) / 2)
    ax.plot(values, zeta, color="tab:blue", lw=2, marker="o", ms=3, label="profile ζ")
    if se is not None:
        ax.plot(values, (values - estimate) / se, color="0.5", ls=":", lw=1.5, label="Wald (v − estimate) / se")
    for h in (-z, z):
        ax.axhline(h, color="tab:red", ls="--", lw=1)
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.axvline(estimate, color="0.7", lw=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ζ")
    ax.set_title(title or f"Profile zeta plot, ±{z:.2f} for {level:.0%}")
    ax.legend(loc="upper left")
    return ax


# -- lecture 5, "Appendix" -------------------------------------------------------------------------------
# The profiled deviance as a function of the covariance parameters θ alone ("Maximum Likelihood Estimates",
# "Restricted Maximum Likelihood Estimates"): a curve for one θ, contours for two with the others held fixed.

def _theta_at(theta, index, values) -> np.ndarray:
    """A copy of θ with the components in ``index`` set to ``values``."""
    out = np.array(theta, dtype=float, copy=True)
    out[list(index)] = values
    return out


def deviance_grid(devfun, x, y, *, index=(0, 1), theta) -> np.ndarray:
    """The profiled deviance on a grid of two covariance parameters, the others held at ``theta``:

        D[j, i] = devfun(θ with θ_index[0] = x[i], θ_index[1] = y[j])   (rows follow y, as contour expects).
    """
    return np.array([[devfun(_theta_at(theta, index, (xi, yj))) for xi in x] for yj in y])


def plot_deviance_curve(devfun, thetas, *, index: int = 0, theta=None, optimum=None, ax=None,
                        label: str | None = None, **line_kw):
    """The profiled deviance −2 ln L(θ) (σ² and b profiled out) along one covariance parameter θ_index,
    the other θ's held at ``theta`` (default: ``optimum``). ``optimum`` (a full θ, e.g. from
    :func:`~lmmteach.optimize_lmer`) is marked with a dot; the boundary θ_index = 0 with a dotted line
    when it is the parameter's lower bound. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    base = optimum if theta is None else theta
    base = np.zeros(devfun.n_theta) if base is None else np.asarray(base, float)
    thetas = np.asarray(thetas, float)
    dev = [devfun(_theta_at(base, [index], [t])) for t in thetas]
    line, = ax.plot(thetas, dev, label=label, **line_kw)
    if optimum is not None:
        optimum = np.asarray(optimum, float)
        ax.plot(optimum[index], devfun(optimum), "o", color=line.get_color(), markersize=9)
    lower = devfun.bounds[index][0]
    if lower == 0.0 and thetas.min() <= 0.0:
        ax.axvline(0.0, color="grey", linestyle=":", linewidth=1.5)
    ax.set_xlabel(rf"$\theta_{{{index + 1}}}$")
    ax.set_ylabel(r"profiled deviance $-2\ln L(\theta)$")
    if label is not None:
        ax.legend()
    return ax


def plot_deviance_contour(devfun, x, y, *, index=(0, 1), theta, ax=None, levels=(1, 2, 5, 10, 20, 50, 100),
                          names=None):
    """Contours of the profiled deviance over two covariance parameters, the others held at ``theta``
    (usually the optimum, marked with a star). Contour values are the deviance above its value at
    ``theta`` (filled bands, lightest at the minimum). A parameter with lower bound 0 (a diagonal entry of
    Λ) gets its boundary drawn as a thick grey line, with the excluded side θ < 0 hatched. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    x, y, theta = np.asarray(x, float), np.asarray(y, float), np.asarray(theta, float)
    D = deviance_grid(devfun, x, y, index=index, theta=theta) - devfun(theta)
    levels = [0.0, *levels]
    ax.contourf(x, y, D, levels=levels, cmap="YlOrRd", alpha=0.6, extend="max")
    cs = ax.contour(x, y, D, levels=levels[1:], colors="black", linewidths=1.2)
    ax.clabel(cs, fmt="%g", fontsize="small")
    ax.plot(theta[index[0]], theta[index[1]], "*", color="crimson", markeredgecolor="white", markersize=20,
            label="optimum")
    for k, v, draw, span, setlim in zip(index, (x, y), (ax.axvline, ax.axhline), (ax.axvspan, ax.axhspan),
                                        (ax.set_xlim, ax.set_ylim)):
        if devfun.bounds[k][0] == 0.0 and v.min() <= 0.0:
            pad = 0.04 * (v.max() - v.min())
            setlim(v.min() - pad, v.max())
            span(v.min() - pad, 0.0, facecolor="0.9", hatch="//", edgecolor="0.6")
            draw(0.0, color="0.4", linewidth=4)
    names = names or [rf"$\theta_{{{k + 1}}}$" for k in index]
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1])
    ax.legend(loc="upper right")
    return ax
