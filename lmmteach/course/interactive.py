"""Interactive figures for the lectures: one function computes and draws a figure for given parameters.

A lecture cell draws the default figure once (so nbval and static pages show it), and a second cell hands the
same function to ``ipywidgets.interact`` through :func:`interact_if_available`, which does nothing when
ipywidgets is not installed. Computing lives in small functions (``naive_ols_coverage``, ``epsilon_estimates``)
that a student can call without drawing anything.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COVERAGE_LEVEL",
    "coverage_approximation",
    "naive_ols_coverage",
    "plot_naive_ols_coverage",
    "ar1_sigma",
    "epsilon_estimates",
    "plot_sphericity_f_tails",
    "interact_if_available",
]

COVERAGE_LEVEL = 0.95  # nominal level of the confidence intervals in lecture 1's simulation


# -- lecture 1, "Correlated Data": naive OLS intervals for a school-level predictor ----------------------------


def coverage_approximation(icc, m, level: float = COVERAGE_LEVEL):
    r"""Large-sample coverage of the naive OLS interval :math:`\hat b_1 \pm z\,\widehat{se}` for a predictor that
    is constant within clusters of size ``m``: the true variance is the naive one times the design effect
    :math:`\text{deff} = 1 + (m-1)\omega`, so the coverage is about :math:`2\Phi(z/\sqrt{\text{deff}}) - 1`
    (``icc`` is :math:`\omega`; arrays broadcast)."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + level / 2)
    deff = 1 + (np.asarray(m, float) - 1) * np.asarray(icc, float)
    return 2 * stats.norm.cdf(z / np.sqrt(deff)) - 1


def naive_ols_coverage(icc: float, m: int, n_clusters: int = 30, n_rep: int = 1000, seed: int = 2017,
                       b1: float = 0.5, level: float = COVERAGE_LEVEL) -> float:
    r"""Simulated coverage of the naive OLS interval for :math:`b_1` in the random intercept model

    .. math:: y_{ij} = b_1 x_i + v_i + e_{ij}, \quad v_i \sim N(0, \omega), \quad e_{ij} \sim N(0, 1 - \omega)

    (total variance :math:`\sigma_Y^2 = 1`, ``icc`` :math:`= \omega`), with ``n_clusters`` clusters of ``m``
    observations and a cluster-level predictor :math:`x_i \sim N(0, 1)`. OLS ignores the clustering: its
    :math:`\widehat{se}` comes from :math:`\hat\sigma^2(\mathbf{X}'\mathbf{X})^{-1}`. Returns the fraction of
    ``n_rep`` replications (seeded) whose interval covers the true ``b1``."""
    from scipy import stats

    if not 0 <= icc < 1:
        raise ValueError(f"icc must be in [0, 1), got {icc}")
    if int(m) != m or m < 1 or int(n_clusters) != n_clusters or n_clusters < 3:
        raise ValueError(f"m must be an integer >= 1 and n_clusters an integer >= 3, got m={m}, "
                         f"n_clusters={n_clusters}")
    m, n = int(m), int(n_clusters)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_rep, n, 1))                                   # x_i, constant within cluster i
    v = rng.normal(scale=np.sqrt(icc), size=(n_rep, n, 1))               # v_i
    y = b1 * x + v + rng.normal(scale=np.sqrt(1 - icc), size=(n_rep, n, m))
    xc = x - x.mean(axis=1, keepdims=True)                               # x_i - x̄ (the same for every j)
    sxx = m * np.sum(xc**2, axis=(1, 2))                                 # sum_ij (x_i - x̄)^2
    b1_hat = np.sum(xc * (y - y.mean(axis=(1, 2), keepdims=True)), axis=(1, 2)) / sxx
    resid = y - y.mean(axis=(1, 2), keepdims=True) - b1_hat[:, None, None] * xc
    sigma2_hat = np.sum(resid**2, axis=(1, 2)) / (n * m - 2)
    se = np.sqrt(sigma2_hat / sxx)                                       # naive OLS standard error
    z = stats.norm.ppf(0.5 + level / 2)
    return float(np.mean(np.abs(b1_hat - b1) <= z * se))


def plot_naive_ols_coverage(icc: float = 1 / 3, m: int = 10, n_clusters: int = 30, n_rep: int = 1000,
                            seed: int = 2017, level: float = COVERAGE_LEVEL):
    """How the intra-class correlation ω (``icc``) and the cluster size ``m`` drive the coverage of naive OLS
    intervals for a cluster-level predictor. Left: coverage against m at this ω; right: coverage against ω at
    this m. Lines: the design-effect approximation :func:`coverage_approximation`; dot: the simulated coverage
    :func:`naive_ols_coverage` at (ω, m) with a ±2 Monte Carlo SE bar. Returns (figure, axes)."""
    import matplotlib.pyplot as plt

    simulated = naive_ols_coverage(icc, m, n_clusters=n_clusters, n_rep=n_rep, seed=seed, level=level)
    mc_se = np.sqrt(max(simulated * (1 - simulated), 1e-12) / n_rep)
    deff = 1 + (m - 1) * icc
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    sizes = np.arange(1, 101)
    iccs = np.linspace(0, 0.95, 96)
    panels = [(ax1, sizes, coverage_approximation(icc, sizes, level), m, f"cluster size $m$ (ω = {icc:.2f})"),
              (ax2, iccs, coverage_approximation(iccs, m, level), icc, f"ICC ω (m = {m})")]
    for ax, grid, approx, here, xlabel in panels:
        ax.plot(grid, approx, color="tab:blue", lw=2.5, label=r"approximation $2\Phi(z/\sqrt{\mathrm{deff}}) - 1$")
        ax.errorbar([here], [simulated], yerr=[2 * mc_se], fmt="o", color="tab:red", ms=9, capsize=5,
                    label=f"simulated, {n_rep} replications of {n_clusters} clusters")
        ax.axhline(level, color="black", ls="--", lw=1.5, label=f"nominal {level:.0%}")
        ax.set_xlabel(xlabel)
        ax.set_ylim(0, 1.02)
    ax1.set_ylabel("coverage of the naive OLS interval")
    ax1.legend(loc="lower left", fontsize="small")
    fig.suptitle(f"ω = {icc:.2f}, m = {m}: design effect {deff:.1f}, simulated coverage {simulated:.2f}")
    fig.tight_layout()
    return fig, (ax1, ax2)


# -- lecture 2, "One-Way Repeated Measures ANOVA": Box's epsilon and the F tails ------------------------------


def ar1_sigma(rho: float, var_last: float = 1.0, a: int = 4) -> np.ndarray:
    r"""A valid (positive definite) covariance matrix for the sphericity figure:
    :math:`\Sigma_{jk} = s_j s_k \rho^{|j-k|}` (AR(1) correlations) with :math:`s_j = 1` except
    :math:`s_a^2 =` ``var_last``. ``rho = 0, var_last = 1`` is the identity (spherical, ε = 1)."""
    if not -1 < rho < 1:
        raise ValueError(f"rho must be in (-1, 1) for a positive definite AR(1) matrix, got {rho}")
    if not var_last > 0:
        raise ValueError(f"var_last must be positive, got {var_last}")
    lags = np.abs(np.subtract.outer(np.arange(a), np.arange(a)))
    s = np.ones(a)
    s[-1] = np.sqrt(var_last)
    return np.outer(s, s) * rho**lags


def epsilon_estimates(Sigma, n: int, n_rep: int = 500, seed: int = 1954) -> tuple[np.ndarray, np.ndarray]:
    r"""Sampling distribution of the Geisser-Greenhouse :math:`\hat\epsilon` and the (uncapped) Huynh-Feldt
    :math:`\tilde\epsilon`: ``n_rep`` seeded samples of ``n`` subjects from :math:`N(\mathbf{0}, \Sigma)`, each
    estimated by :func:`lmmteach.box_epsilon` of the sample covariance and ``huynh_feldt_epsilon``. Returns
    (eps_gg, eps_hf) arrays; ε̃ is NaN when its denominator is not positive."""
    from ..aov.rmanova import box_epsilon, huynh_feldt_epsilon

    Sigma = np.asarray(Sigma, float)
    a = Sigma.shape[0]
    rng = np.random.default_rng(seed)
    Y = rng.multivariate_normal(np.zeros(a), Sigma, size=(n_rep, n), method="cholesky")
    eps_gg = np.array([box_epsilon(np.cov(Y_r, rowvar=False)) for Y_r in Y])
    eps_hf = np.array([huynh_feldt_epsilon(e, n, a) for e in eps_gg])
    return eps_gg, eps_hf


def plot_sphericity_f_tails(rho: float = 0.8, var_last: float = 1.0, n: int = 10, alpha: float = 0.05,
                            n_rep: int = 500, seed: int = 1954):
    r"""Sphericity, Box's ε and the F test, for :math:`\Sigma` = :func:`ar1_sigma` (``rho``, ``var_last``) with
    a = 4 levels and ``n`` subjects. Left: :math:`\Sigma` and its ε. Middle: the sampling distribution of
    :math:`\hat\epsilon` (GG) and :math:`\tilde\epsilon` (HF, uncapped) from :func:`epsilon_estimates`. Right: the
    null density of :math:`F_a^*` under sphericity, :math:`F_{a-1,(a-1)(n-1)}`, and Box's approximation
    :math:`F_{\epsilon(a-1),\,\epsilon(a-1)(n-1)}`; the shaded tails beyond the uncorrected critical value are the
    nominal ``alpha`` and (approximately) the true Type I error of the uncorrected test. Returns (figure, axes)."""
    import matplotlib.pyplot as plt
    from scipy import stats

    from ..aov.rmanova import box_epsilon
    from . import plots

    Sigma = ar1_sigma(rho, var_last)
    a = Sigma.shape[0]
    eps = box_epsilon(Sigma)
    eps_gg, eps_hf = epsilon_estimates(Sigma, n, n_rep=n_rep, seed=seed)
    df1, df2 = a - 1, (a - 1) * (n - 1)
    f_crit = stats.f.ppf(1 - alpha, df1, df2)
    size = stats.f.sf(f_crit, eps * df1, eps * df2)                      # Box: true size of the uncorrected test

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(19, 5.5), gridspec_kw={"width_ratios": [1, 1.1, 1.4]})
    plots.plot_covariance_heatmap(Sigma, labels=[f"$y_{{i{j}}}$" for j in range(1, a + 1)], ax=ax1, fmt=".2f",
                                  vmax=max(1.0, var_last), title=rf"$\Sigma$: $\rho$ = {rho:.2f}, "
                                  rf"Var$(y_{{i{a}}})$ = {var_last:.1f};  $\epsilon$ = {eps:.3f}")

    bins = np.linspace(1 / (a - 1), max(1.6, np.nanmax(eps_hf) if np.isfinite(eps_hf).any() else 1.6), 40)
    ax2.hist(eps_gg, bins=bins, alpha=0.6, color="tab:blue", label=r"GG $\hat\epsilon$")
    ax2.hist(eps_hf[np.isfinite(eps_hf)], bins=bins, alpha=0.5, color="tab:orange",
             label=r"HF $\tilde\epsilon$ (uncapped)")
    ax2.axvline(eps, color="black", lw=2.5, label=rf"true $\epsilon$ = {eps:.3f}")
    ax2.axvline(1, color="0.4", ls=":", lw=2, label=r"$\tilde\epsilon$ is capped here")
    ax2.set_xlabel(r"estimate of $\epsilon$")
    ax2.set_ylabel(f"count of {n_rep} samples")
    ax2.set_title(f"{n_rep} samples of n = {n} subjects")
    ax2.legend(fontsize="small")

    upper = max(stats.f.ppf(0.995, eps * df1, eps * df2), f_crit * 1.5)
    grid = np.linspace(1e-3, upper, 600)
    tail = grid >= f_crit
    zoom = ax3.inset_axes([0.42, 0.2, 0.55, 0.3])                        # the tails, magnified
    for (d1, d2), colour, label in [((df1, df2), "tab:blue", rf"sphericity $F_{{{df1},\,{df2}}}$: area {alpha:.3f}"),
                                    ((eps * df1, eps * df2), "tab:red",
                                     rf"Box $F_{{{eps * df1:.2f},\,{eps * df2:.1f}}}$: area {size:.3f}")]:
        density = stats.f.pdf(grid, d1, d2)
        for axis in (ax3, zoom):
            axis.plot(grid, density, color=colour, lw=2.5, label=label)
            axis.fill_between(grid[tail], density[tail], color=colour, alpha=0.3)
    zoom.set_xlim(f_crit * 0.9, upper)
    zoom.set_ylim(0, stats.f.pdf(f_crit, eps * df1, eps * df2) * 1.3)
    zoom.axvline(f_crit, color="black", lw=2)
    zoom.set_title("tails beyond the critical value", fontsize="small")
    zoom.tick_params(labelsize="x-small")
    ax3.axvline(f_crit, color="black", lw=2, label=f"uncorrected critical value {f_crit:.2f}")
    ax3.axvline(stats.f.ppf(1 - alpha, eps * df1, eps * df2), color="tab:red", ls="--", lw=2,
                label=r"$\epsilon$-corrected critical value")
    ax3.set_xlim(0, upper)
    away_from_0 = grid >= 0.25                                           # an F density with df1 < 2 is infinite at 0
    ax3.set_ylim(0, 1.25 * max(stats.f.pdf(grid, d1, d2)[away_from_0].max()
                                for d1, d2 in [(df1, df2), (eps * df1, eps * df2)]))
    ax3.set_xlabel("$F_a^*$ under $H_0$")
    ax3.set_ylabel("density")
    ax3.set_title(rf"Type I error of the uncorrected test $\approx$ {size:.3f}")
    ax3.legend(fontsize="small", loc="upper right")
    fig.tight_layout()
    return fig, (ax1, ax2, ax3)


# -- widgets --------------------------------------------------------------------------------------------------


def interact_if_available(function, **sliders) -> None:
    """Show ``function``'s figure under sliders when ipywidgets is installed; otherwise print one line saying
    how to get them. ``function`` draws for the slider values and returns (figure, axes); each slider is given as
    ``(min, max, step, value)``, e.g. ``m=(2, 100, 1, 10)``, and redraws on release (every redraw simulates).

    The figure is put into an ``Output`` widget as data (``append_display_data``), not by capturing the
    output of a running cell, so executing the notebook non-interactively (nbconvert, nbval) is deterministic.
    Returns None (a notebook cell then shows only the widget)."""
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:
        print("ipywidgets is not installed: the figure above is static (pip install ipywidgets to move the sliders)")
        return None
    import matplotlib.pyplot as plt

    controls = {name: _slider(ipywidgets, name, spec) for name, spec in sliders.items()}
    out = ipywidgets.Output()

    def draw(change=None):
        fig, _ = function(**{name: control.value for name, control in controls.items()})
        out.outputs = ()
        out.append_display_data(fig)
        plt.close(fig)

    for control in controls.values():
        control.observe(draw, names="value")
    draw()
    display(ipywidgets.VBox([ipywidgets.HBox(list(controls.values())), out]))
    return None


def _slider(ipywidgets, name: str, spec):
    """A slider labelled ``name`` that redraws on release, from ``(min, max, step, value)``."""
    if not (isinstance(spec, tuple) and len(spec) == 4):
        raise TypeError(f"slider {name!r}: give (min, max, step, value), got {spec!r}")
    low, high, step, value = spec
    cls = ipywidgets.IntSlider if all(isinstance(v, int) for v in spec) else ipywidgets.FloatSlider
    return cls(min=low, max=high, step=step, value=value, description=name, continuous_update=False)
