"""Interactive figure for lecture 7 ("Generalised Linear Mixed Models"): conditional and marginal effects.

In the random-intercept logistic model  logit P(y = 1 | b) = β_0 + β_1 x + b,  b ~ N(0, σ²),  the curve of a
*typical* group (b = 0) is  expit(β_0 + β_1 x),  but the *population-averaged* (marginal) probability is the
average over the groups,

    p̄(x) = E_b[ expit(β_0 + β_1 x + b) ] = ∫ expit(β_0 + β_1 x + σu) φ(u) du,

which is flatter than the b = 0 curve: logit p̄(x) ≈ (β_0 + β_1 x) / √(1 + c²σ²), c = 16√3 / (15π)
(Zeger, Liang & Albert 1988). :func:`marginal_probability` computes p̄ (with glmer's
:func:`lmmteach.glmm.quadrature.marginal_mean`, the helper behind ``marginal_predict``), :func:`attenuation` the factor
1/√(1 + c²σ²), and :func:`plot_marginal_curve` draws both for given (σ, β_0, β_1); the lecture adds sliders
with :func:`lmmteach.course.interactive.interact_if_available`.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from ..glmm.family import binomial
from ..glmm.quadrature import marginal_mean

__all__ = ["MARGINAL_NODES", "ZEGER_C", "marginal_probability", "attenuation", "plot_marginal_curve"]

MARGINAL_NODES = 150
"""Gauss-Hermite nodes for p̄(η). expit(η + σx) has poles at distance π/σ from the real axis, so the rule needs
more nodes as σ grows: 150 nodes give p̄ to a relative 1e-12 for σ ≤ 2.5 and 2e-8 at σ = 4, the sliders' end
(glmer's ``marginal_predict`` uses 25, enough for σ ≤ 1)."""

ZEGER_C = 16 * np.sqrt(3) / (15 * np.pi)
"""c in Zeger, Liang & Albert's approximation: the logistic CDF is close to Φ(c η), hence
E_b expit(η + b) ≈ expit(η / √(1 + c²σ²))."""


def _check_sigma(sigma) -> float:
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float, np.integer, np.floating)) \
            or not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma (the random-intercept SD) must be a finite number >= 0, got {sigma!r}")
    return float(sigma)


def marginal_probability(eta, sigma: float) -> np.ndarray:
    """p̄(η) = ∫ expit(η + σu) φ(u) du, the probability averaged over b = σu ~ N(0, σ²), for each η (array), by
    Gauss-Hermite quadrature with :data:`MARGINAL_NODES` nodes. σ = 0 gives expit(η)."""
    sigma = _check_sigma(sigma)
    return marginal_mean(binomial(), eta, sigma, MARGINAL_NODES)


def attenuation(sigma: float) -> float:
    """1/√(1 + c²σ²): logit p̄(η) ≈ η × this factor (module docstring; within about 0.011 in probability)."""
    return float(1 / np.sqrt(1 + ZEGER_C**2 * _check_sigma(sigma) ** 2))


def plot_marginal_curve(sigma: float = 0.64, beta0: float = -1.4, beta1: float = 1.0, *, fig=None):
    """Left: P(y = 1 | b) against x for groups at b = 0, ±σ, ±2σ (thin grey: ±σ, ±2σ), the b = 0 curve and the
    marginal curve p̄(x) (:func:`marginal_probability`). Right: the same two curves on the logit scale, where the
    b = 0 curve is the line β_0 + β_1 x and the marginal one is flatter, close to that line times
    :func:`attenuation`. Returns (figure, (ax_probability, ax_logit))."""
    import matplotlib.pyplot as plt

    x = np.linspace(-4.0, 4.0, 201)
    eta = beta0 + beta1 * x
    p_typical = special.expit(eta)
    p_marginal = marginal_probability(eta, sigma)
    if fig is None:
        fig = plt.figure(figsize=(12, 5))
    fig.clear()
    a1, a2 = fig.subplots(1, 2)
    for z in (-2, -1, 1, 2):
        a1.plot(x, special.expit(eta + z * sigma), color="0.6", lw=1, ls="-" if abs(z) == 1 else ":")
    a1.plot([], [], color="0.6", lw=1, label=r"groups at $b = \pm\sigma$ (solid), $\pm 2\sigma$ (dotted)")
    a1.plot(x, p_typical, color="tab:blue", lw=2.5, label=r"conditional: $b = 0$")
    a1.plot(x, p_marginal, color="tab:red", lw=2.5, ls="--", label=r"marginal: $E_b\,P(y=1 \mid b)$")
    a1.set_ylim(0, 1)
    a1.set_xlabel("x")
    a1.set_ylabel("P(y = 1)")
    a1.legend(fontsize="small", loc="upper left")
    factor = attenuation(sigma)
    a2.plot(x, eta, color="tab:blue", lw=2.5, label=rf"$b = 0$: slope $\beta_1$ = {beta1:.2f}")
    a2.plot(x, special.logit(p_marginal), color="tab:red", lw=2.5, ls="--", label="marginal")
    a2.plot(x, factor * eta, color="black", lw=1, ls=":",
            label=rf"$(\beta_0 + \beta_1 x)/\sqrt{{1 + c^2\sigma^2}}$: slope {factor * beta1:.2f}")
    a2.set_xlabel("x")
    a2.set_ylabel("logit P(y = 1)")
    a2.legend(fontsize="small", loc="upper left")
    fig.suptitle(rf"$\sigma$ = {sigma:.2f}, $\beta_0$ = {beta0:.2f}, $\beta_1$ = {beta1:.2f}: the population average "
                 "is flatter than a typical group's curve")
    fig.tight_layout()
    return fig, (a1, a2)
