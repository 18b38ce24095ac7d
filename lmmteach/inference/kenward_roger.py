"""Kenward–Roger: small-sample covariance of b̂ and F tests (Kenward & Roger 1997, as pbkrtest computes them).

Cov(b̂) = Φ = (X'Σ⁻¹X)⁻¹ is computed at *estimated* variance parameters, so it is too small. Write the
covariance of y as linear in the parameters γ (each variance and covariance of the random effects, and σ²):

    Σ = Σ_k γ_k G_k,     G_k = Z E_k Z'  (E_k: 1 at the (r, s) and (s, r) entries of the block),  G_σ² = I.

With P_k = −X'Σ⁻¹G_kΣ⁻¹X, Q_kl = X'Σ⁻¹G_kΣ⁻¹G_lΣ⁻¹X and W = Cov(γ̂) ≈ 2 I_E⁻¹ from the REML expected
information  I_E,kl = tr(Σ⁻¹G_kΣ⁻¹G_l) − 2 tr(Φ Q_kl) + tr(Φ P_k Φ P_l),  the adjusted covariance is

    Φ_A = Φ + 2 Φ U Φ,     U = Σ_kl W_kl (Q_kl − P_k Φ P_l)

(the second-derivative terms vanish because Σ is linear in γ). For H0: L b = 0 (q = rank L) the Wald
statistic F = (Lb̂)'(L Φ_A L')⁻¹(Lb̂)/q is scaled by λ and referred to F(q, m), λ and m matched to the first
two moments (pbkrtest's ``KRmodcomp``; lmerTest's ``ddf = "Kenward-Roger"``).

With one grouping factor Σ is block diagonal (one block per group), so every sum runs group by group and no
n × n matrix is formed. With several (crossed or nested: Oats' ``(1 | Block/Variety)``, Penicillin's
``(1 | plate) + (1 | sample)``) Σ is not, and the sums are formed once over the n × n matrices, as pbkrtest
does: G_k = S_b ∘ (Z E_k Z'), S_b[t, u] = 1 when rows t and u share the level of term k's grouping factor b.

**gls fits** (the MMRM, :func:`kenward_roger_gls`): Σ_i = Σ[P_i, P_i], P_i the time points of subject i, and the
sums run over the missing patterns. KR depends on the parametrisation γ of Σ: Φ_A has the term
−¼ Σ_kl W_kl R_kl, R_kl = X'Σ⁻¹(∂²Σ/∂γ_k∂γ_l)Σ⁻¹X, which is 0 when Σ is linear in γ and changes under a
non-linear reparametrisation (every *linear* one gives the same Φ_A, F and ddf). We use SAS's DDFM=KR
parametrisation: linear (σ_ts) for CS, Toeplitz and UN — the one in which KR reproduces Hotelling's T² for
complete data with an unstructured covariance (Kenward & Roger 1997), and CS's equals pbkrtest's random
intercept (σ_b², σ²) — and (σ², ρ), with its second derivatives, for AR(1). A program working in another
parametrisation (log-SDs and a Cholesky factor of the correlations, say) gets other numbers for the same fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KenwardRoger", "kenward_roger", "kenward_roger_gls", "gls_parameter_matrices", "kr_test"]

#: below this smallest |eigenvalue| of the information matrix, pbkrtest inverts it by a pseudo-inverse
INFORMATION_CONDITION = 1e-10
#: largest number of observations for the dense n × n computation of several grouping factors
KR_DENSE_MAX_N = 3000
#: pbkrtest's snapping: a moment term V0 below this is 0; with m within this of 2 the F scale λ is 1
KR_ZERO = 1e-10
KR_DF_NEAR_2 = 1e-2


@dataclass(frozen=True)
class KenwardRoger:
    """Φ (``vcov``), Φ_A (``vcov_adjusted``) and the P_k, W needed for the F tests' moments."""

    vcov: np.ndarray
    vcov_adjusted: np.ndarray
    P: tuple  # P_k, one p × p matrix per variance parameter γ_k
    W: np.ndarray  # Cov(γ̂) ≈ 2 I_E⁻¹


def _parameter_matrices(model) -> tuple[list[np.ndarray], np.ndarray, list[int]]:
    """E_k (q × q, one per variance/covariance of the random effects), their values γ_k (the entries of
    Σ̂) and the index of each one's random term (block); σ̂² is added by the caller. Unstructured blocks have
    every variance and covariance, diagonal ones only variances (as lme4's ``||``)."""
    Sigma = model.Sigma
    q = Sigma.shape[0]
    E, gamma, owner, offset = [], [], [], 0
    for b, block in enumerate(model.design.blocks):
        name = block.structure.name
        if name not in ("us", "diag"):
            raise ValueError(f"Kenward-Roger is available for unstructured (us) and diagonal random-effect "
                             f"blocks, as in lme4; the term {block.term.text} has structure {name!r}")
        k = len(block.names)
        pairs = [(r, s) for s in range(k) for r in range(s, k) if name == "us" or r == s]
        for r, s in pairs:
            e = np.zeros((q, q))
            e[offset + r, offset + s] = e[offset + s, offset + r] = 1.0
            E.append(e)
            gamma.append(Sigma[offset + r, offset + s])
            owner.append(b)
        offset += k
    return E, np.asarray(gamma), owner


def _add_group(Xi, Sinv, G, PP, QQ, K, G2=None, RR=None) -> None:
    """Add one independent group's (or, for several grouping factors, all rows') terms to P_k, Q_kl and
    tr(Σ⁻¹G_kΣ⁻¹G_l), given its X_i, Σ_i⁻¹ and G_k (σ²'s G is the identity, last). ``Xi`` may hold m groups
    that share Σ_i (m × n_i × p: a missing pattern of a gls fit). With second derivatives G2_kl = ∂²Σ_i/∂γ_k∂γ_l
    (a parametrisation that is not linear), R_kl = X_i'Σ_i⁻¹ G2_kl Σ_i⁻¹X_i is added to RR."""
    X3 = Xi[None] if Xi.ndim == 2 else Xi
    H = np.stack([g @ Sinv for g in G])  # G_k Σ⁻¹
    O = np.einsum("kab,mbj->kmaj", H, X3)  # G_k Σ⁻¹ X
    T = np.einsum("ab,mbj->maj", Sinv, X3)  # Σ⁻¹ X
    PP -= np.einsum("kmni,mnj->kij", O, T)
    QQ += np.einsum("kmni,nl,hmlj->khij", O, Sinv, O, optimize=True)
    K += len(X3) * np.einsum("kab,lba->kl", H, H)
    if G2 is not None:
        RR += np.einsum("mni,klnt,mtj->klij", T, G2, T, optimize=True)


def _adjusted(Phi, PP, QQ, K, RR=None) -> KenwardRoger:
    """Φ_A from the summed P_k, Q_kl, tr(Σ⁻¹G_kΣ⁻¹G_l) and (when Σ is not linear in γ) R_kl:

        I_E,kl = tr(Σ⁻¹G_kΣ⁻¹G_l) − 2 tr(Φ Q_kl) + tr(Φ P_k Φ P_l),   W = 2 I_E⁻¹,
        Φ_A = Φ + 2 Φ U Φ,   U = Σ_kl W_kl (Q_kl − P_k Φ P_l − ¼ R_kl)      (Kenward & Roger 1997, eq. 4)."""
    PhiP = Phi @ PP  # (k, p, p)
    IE = K - 2 * np.einsum("ij,klij->kl", Phi, QQ) + np.einsum("kij,lji->kl", PhiP, PhiP)
    IE = 0.5 * (IE + IE.T)
    condition = np.min(np.abs(np.linalg.eigvalsh(IE)))
    W = 2 * (np.linalg.inv(IE) if condition > INFORMATION_CONDITION else np.linalg.pinv(IE))
    U = np.einsum("kl,klij->ij", W, QQ) - np.einsum("kl,kia,ab,lbj->ij", W, PP, Phi, PP)
    if RR is not None:
        U -= 0.25 * np.einsum("kl,klij->ij", W, RR)
    PhiA = Phi + 2 * Phi @ U @ Phi
    return KenwardRoger(Phi, 0.5 * (PhiA + PhiA.T), tuple(PP), W)


def kenward_roger(model) -> KenwardRoger:
    """pbkrtest's ``vcovAdj``: the Kenward–Roger adjusted covariance of b̂ (REML fits only), of an lmer
    fit or (:func:`kenward_roger_gls`) a gls fit."""
    from ..lmm.gls import GLSFit
    from ..lmm.model import LinearMixedModel

    if isinstance(model, GLSFit):
        return kenward_roger_gls(model)
    if not isinstance(model, LinearMixedModel):
        raise TypeError(f"Kenward-Roger needs a model fitted by lmmteach.lmer or lmmteach.gls, not "
                        f"{type(model).__name__}")
    if not model.reml:
        raise ValueError("Kenward-Roger's method is only available for REML fits (lmer(..., reml=True))")
    d = model.design
    if d.weights is not None:
        raise ValueError("Kenward-Roger with prior weights is not available; use ddf='Satterthwaite'")
    if not d.single_factor and d.nobs > KR_DENSE_MAX_N:
        raise ValueError(f"Kenward-Roger with several grouping factors ({', '.join(d.factors)}) forms n × n "
                         f"matrices, and n = {d.nobs} > {KR_DENSE_MAX_N}; use ddf='Satterthwaite'")
    E, gamma, owner = _parameter_matrices(model)
    n_gamma = len(E) + 1  # + σ²
    Phi = model.vcov.to_numpy()
    p = Phi.shape[0]
    D, s2 = model.Sigma, model.sigma**2
    PP = np.zeros((n_gamma, p, p))
    QQ = np.zeros((n_gamma, n_gamma, p, p))
    K = np.zeros((n_gamma, n_gamma))
    if d.single_factor:
        order = np.argsort(d.group, kind="stable")
        bounds = np.r_[0, np.cumsum(np.bincount(d.group, minlength=d.n_groups))]
        for i in range(d.n_groups):
            rows = order[bounds[i]:bounds[i + 1]]
            Zi = d.Z[rows]
            G = [Zi @ e @ Zi.T for e in E] + [np.eye(len(rows))]
            Sinv = np.linalg.inv(Zi @ D @ Zi.T + s2 * np.eye(len(rows)))
            _add_group(d.X[rows], Sinv, G, PP, QQ, K)
    else:  # one "group" of all n rows; G_k is nonzero where two rows share the level of term k's factor
        same = [np.equal.outer(b.group, b.group) for b in d.blocks]
        G = [same[b] * (d.Z @ e @ d.Z.T) for e, b in zip(E, owner)] + [np.eye(d.nobs)]
        Sinv = np.linalg.inv(sum(c * g for c, g in zip(np.r_[gamma, s2], G)))  # Σ = Σ_k γ_k G_k
        _add_group(d.X, Sinv, G, PP, QQ, K)
    return _adjusted(Phi, PP, QQ, K)


# -- gls fits: Σ_i = Σ[P_i, P_i], the T × T covariance over the time points at subject i's visits P_i ---------
def _linear_labels(cov) -> np.ndarray | None:
    """For a gls covariance that is linear in its parameters γ, the T × T matrix naming each entry's γ_k (−1:
    the entry is 0), so that G_k = ∂Σ/∂γ_k is the indicator of label k; None for AR(1) (not linear)."""
    T = cov.T
    tt, ss = np.indices((T, T))
    lo, hi = np.minimum(tt, ss), np.maximum(tt, ss)
    pair = hi * (hi + 1) // 2 + lo  # one label per unordered pair {t, s}, diagonal included
    if cov.name is None:  # σ² I, or diag(σ_t²) with a variance per time point
        return np.where(tt == ss, tt if cov.heteroscedastic else 0, -1)
    if cov.heteroscedastic and cov.name != "un":
        raise ValueError(f"Kenward-Roger for gls is available for correlation={cov.name!r} with one variance "
                         "(heteroscedastic=False), or for the MMRM (correlation='un', heteroscedastic=True); "
                         f"with a variance per time point {cov.name!r} is not linear in its parameters")
    if cov.name == "cs":  # σ² on the diagonal, c = σ²ρ off it
        return (tt != ss).astype(int)
    if cov.name == "toep":  # c_d = σ²ρ_d at lag d (c_0 = σ²)
        return np.abs(tt - ss)
    if cov.name == "un":  # every σ_ts (MMRM), or one σ² and every σ_ts, t ≠ s
        return pair if cov.heteroscedastic else np.where(tt == ss, 0, pair)  # off-diagonal pairs are > 0
    return None


def gls_parameter_matrices(fit) -> tuple[np.ndarray, np.ndarray | None]:
    """G_k = ∂Σ/∂γ_k (k × T × T) and, when Σ is not linear in γ, G2_kl = ∂²Σ/∂γ_k∂γ_l (k × k × T × T), at the
    estimates of a gls fit, in the parametrisation SAS's DDFM=KR uses:

    * independent errors: σ² (or σ_t², one per time point);  ``cs``: σ² and c = σ²ρ;  ``toep``: c_d = σ²ρ_d,
      d = 0, ..., T − 1;  ``un``: σ² and every σ_ts (t ≠ s), or, heteroscedastic (the MMRM), every σ_ts —
      all linear, G2 = 0 (and any linear reparametrisation gives the same Φ_A: CS's (σ², c) and the random
      intercept's (σ_b², σ_e²) of pbkrtest give one answer);
    * ``ar1``, ``car1``: (σ², ρ) with Σ_ts = σ²ρ^|t−s|, not linear, so the R_kl of the second derivatives
      ∂²Σ/∂σ²∂ρ = |t−s| ρ^(|t−s|−1), ∂²Σ/∂ρ² = σ²|t−s|(|t−s|−1)ρ^(|t−s|−2) enter Φ_A.
    """
    cov = fit.devfun.covariance
    labels = _linear_labels(cov)
    if labels is not None:
        used = np.unique(labels[labels >= 0])
        return np.stack([(labels == k).astype(float) for k in used]), None
    lag = cov.structure.lag
    s2, rho = fit.sigma**2, float(cov.correlation_parameters(fit.theta)[0])
    with np.errstate(divide="ignore", invalid="ignore"):  # ρ^(lag−1), ρ^(lag−2) only where lag allows
        d1 = np.where(lag > 0, lag * np.power(rho, lag - 1), 0.0)
        d2 = np.where((lag > 0) & (lag != 1), lag * (lag - 1) * np.power(rho, lag - 2), 0.0)  # car1: lag < 1 too
    G = np.stack([np.power(rho, lag), s2 * d1])
    G2 = np.stack([np.stack([np.zeros_like(lag), d1]), np.stack([d1, s2 * d2])])
    return G, G2


def kenward_roger_gls(fit) -> KenwardRoger:
    """Kenward–Roger's Φ_A for a gls fit (REML only): the sums over subjects run over the missing patterns, the
    subjects with visits P sharing Σ_P = Σ̂[P, P]. See :func:`gls_parameter_matrices` for the parametrisation."""
    if not fit.reml:
        raise ValueError("Kenward-Roger's method is only available for REML fits (gls(..., reml=True))")
    G, G2 = gls_parameter_matrices(fit)
    Sigma = fit.cov_matrix().to_numpy()
    cp, X = fit.devfun.cp, fit.design.X
    k, p = len(G), X.shape[1]
    PP, QQ, K = np.zeros((k, p, p)), np.zeros((k, k, p, p)), np.zeros((k, k))
    RR = None if G2 is None else np.zeros((k, k, p, p))
    for P, rows in zip(cp.patterns, cp.pattern_rows):
        ix = np.ix_(P, P)
        Sinv = np.linalg.inv(Sigma[ix])
        _add_group(X[rows], Sinv, [g[ix] for g in G], PP, QQ, K,
                   None if G2 is None else G2[:, :, P][:, :, :, P], RR)
    return _adjusted(fit.vcov.to_numpy(), PP, QQ, K, RR)


def kr_test(model, L, kr: KenwardRoger | None = None) -> dict:
    """pbkrtest's ``KRmodcomp`` of H0: L b = 0: the unscaled Wald F (``F_unscaled``), the scale λ
    (``scaling``), F = λ F_unscaled, numerator and denominator df."""
    kr = kenward_roger(model) if kr is None else kr
    L = np.atleast_2d(np.asarray(L, float))
    Phi, PhiA = kr.vcov, kr.vcov_adjusted
    q = np.linalg.matrix_rank(L)
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    u = [Theta @ Phi @ P @ Phi for P in kr.P]
    A1 = A2 = 0.0
    for i in range(len(u)):
        for j in range(i, len(u)):
            e = 1.0 if i == j else 2.0
            A1 += e * kr.W[i, j] * np.trace(u[i]) * np.trace(u[j])
            A2 += e * kr.W[i, j] * np.sum(u[i] * u[j].T)
    B = (A1 + 6 * A2) / (2 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    c1, c2, c3 = (g / (3 * q + 2 * (1 - g)), (q - g) / (3 * q + 2 * (1 - g)),
                  (q + 2 - g) / (3 * q + 2 * (1 - g)))
    V0, V1, V2 = 1 + c1 * B, 1 - c2 * B, 1 - c3 * B
    V0 = 0.0 if abs(V0) < KR_ZERO else V0
    rho = (((1 - A2 / q) / V1) if V1 != 0 else 0.0) ** 2 * V0 / (q * V2)
    ddf = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(ddf - 2) < KR_DF_NEAR_2 else ddf * (1 - A2 / q) / (ddf - 2)
    Lb = L @ model.fixef.to_numpy()
    F_unscaled = float(Lb @ np.linalg.solve(L @ PhiA @ L.T, Lb)) / q
    return {"F_unscaled": F_unscaled, "scaling": float(scaling), "F": float(scaling * F_unscaled),
            "NumDF": int(q), "DenDF": float(ddf)}
