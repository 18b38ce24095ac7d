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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KenwardRoger", "kenward_roger", "kr_test"]

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


def _add_group(Xi, Sinv, G, PP, QQ, K) -> None:
    """Add one independent group's (or, for several grouping factors, all rows') terms to P_k, Q_kl and
    tr(Σ⁻¹G_kΣ⁻¹G_l), given its X_i, Σ_i⁻¹ and G_k (σ²'s G is the identity, last)."""
    H = np.stack([g @ Sinv for g in G])  # G_k Σ⁻¹
    O = H @ Xi  # G_k Σ⁻¹ X
    T = Sinv @ Xi  # Σ⁻¹ X
    PP -= np.einsum("kni,nj->kij", O, T)
    QQ += np.einsum("kni,nm,lmj->klij", O, Sinv, O)
    K += np.einsum("kab,lba->kl", H, H)


def kenward_roger(model) -> KenwardRoger:
    """pbkrtest's ``vcovAdj``: the Kenward–Roger adjusted covariance of b̂ (REML fits only)."""
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
    PhiP = Phi @ PP  # (k, p, p)
    IE = K - 2 * np.einsum("ij,klij->kl", Phi, QQ) + np.einsum("kij,lji->kl", PhiP, PhiP)
    IE = 0.5 * (IE + IE.T)
    condition = np.min(np.abs(np.linalg.eigvalsh(IE)))
    W = 2 * (np.linalg.inv(IE) if condition > INFORMATION_CONDITION else np.linalg.pinv(IE))
    U = np.einsum("kl,klij->ij", W, QQ) - np.einsum("kl,kia,ab,lbj->ij", W, PP, Phi, PP)
    PhiA = Phi + 2 * Phi @ U @ Phi
    return KenwardRoger(Phi, 0.5 * (PhiA + PhiA.T), tuple(PP), W)


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
