"""The textbook path: the notes' formulas with stacked, dense matrices.

Everything here is written exactly as the slides write it -- Σ* = Z Σ_b Z' + σ² I as an n_T × n_T matrix,
inverses and determinants taken directly. It is slow (O(n_T³)) and meant for small data: it is the lecture,
and it is the oracle the fast path (:mod:`lmmteach.lmm.deviance`) is tested against.

Slides: "Generalized Least Squares", "Estimating Fixed and Random Effects", "Likelihood Function",
"Maximum Likelihood Estimates", "REML Error Contrasts", "REML Log-likelihood Function",
"Restricted Maximum Likelihood Estimates", "Solving Mixed Model Equations".
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import block_diag, null_space
from .._util import LOG_2PI

__all__ = ["bdiag", "stacked_Z", "split_by_group", "marginal_covariance", "gls", "gls_stacked", "loglik_ml",
           "loglik_reml", "error_contrasts", "loglik_reml_contrasts", "mixed_model_equations", "blup",
           "design_matrices"]



def bdiag(Sigma: np.ndarray, n: int) -> np.ndarray:
    """Σ_b = bdiag(Σ, ..., Σ): n copies of the q × q matrix Σ on the diagonal."""
    return np.kron(np.eye(n), np.asarray(Sigma, float))


def stacked_Z(Z_blocks: list[np.ndarray]) -> np.ndarray:
    """The stacked random-effects design  Z = bdiag(Z_1, ..., Z_n)  (n_T × n q)."""
    return block_diag(*Z_blocks)


def split_by_group(design) -> tuple[list, list, list]:
    """(y_i, X_i, Z_i) for every level of the grouping factor of a :class:`~lmmteach.lmm.design.Design`."""
    if not design.single_factor:
        raise ValueError("this design has several grouping factors (crossed or nested), so y does not split into "
                         "independent groups; use textbook.general_design_matrices for its dense Z and Σ*")
    Z = design.Z
    ys, Xs, Zs = [], [], []
    for g in range(design.n_groups):
        rows = design.group == g
        ys.append(design.y[rows])
        Xs.append(design.X[rows])
        Zs.append(Z[rows])
    return ys, Xs, Zs


def marginal_covariance(Z: np.ndarray, Sigma_b: np.ndarray, sigma2: float) -> np.ndarray:
    """Σ* = Z Σ_b Z' + σ² I, the covariance of the stacked y (block diagonal: Σ_i = Z_i Σ Z_i' + σ² I)."""
    return Z @ Sigma_b @ Z.T + sigma2 * np.eye(Z.shape[0])


def gls(X_list, y_list, Sigma_list) -> np.ndarray:
    """Generalized least squares with known Σ_i:

        b̂ = (Σ_i X_i' Σ_i⁻¹ X_i)⁻¹ Σ_i X_i' Σ_i⁻¹ y_i.
    """
    XtSX = sum(X.T @ np.linalg.solve(S, X) for X, S in zip(X_list, Sigma_list))
    XtSy = sum(X.T @ np.linalg.solve(S, y) for X, y, S in zip(X_list, y_list, Sigma_list))
    return np.linalg.solve(XtSX, XtSy)


def gls_stacked(X: np.ndarray, y: np.ndarray, Sigma_star: np.ndarray) -> np.ndarray:
    """b̂ = (X' Σ*⁻¹ X)⁻¹ X' Σ*⁻¹ y  (the same estimate, stacked)."""
    SiX = np.linalg.solve(Sigma_star, X)
    return np.linalg.solve(X.T @ SiX, SiX.T @ y)


def loglik_ml(y: np.ndarray, X: np.ndarray, Sigma_star: np.ndarray) -> float:
    """ML log-likelihood with b̂ plugged in ("Maximum Likelihood Estimates"):

        ln L(Σ, σ² | y) = −(n_T/2) ln(2π) − ½ ln|Σ*| − ½ r' Σ*⁻¹ r,   r = y − X b̂.
    """
    r = y - X @ gls_stacked(X, y, Sigma_star)
    logdet = np.linalg.slogdet(Sigma_star)[1]
    return float(-0.5 * (len(y) * LOG_2PI + logdet + r @ np.linalg.solve(Sigma_star, r)))


def loglik_reml(y: np.ndarray, X: np.ndarray, Sigma_star: np.ndarray) -> float:
    """REML log-likelihood ("Restricted Maximum Likelihood Estimates"), ñ_T = n_T − p − 1:

        ln L̃ = −(ñ_T/2) ln(2π) − ½ ln|Σ*| − ½ ln|X' Σ*⁻¹ X| − ½ r' Σ*⁻¹ r.
    """
    r = y - X @ gls_stacked(X, y, Sigma_star)
    logdet = np.linalg.slogdet(Sigma_star)[1]
    logdet_x = np.linalg.slogdet(X.T @ np.linalg.solve(Sigma_star, X))[1]
    n_tilde = len(y) - X.shape[1]
    return float(-0.5 * (n_tilde * LOG_2PI + logdet + logdet_x + r @ np.linalg.solve(Sigma_star, r)))


def error_contrasts(X: np.ndarray) -> np.ndarray:
    """K (n_T × (n_T − p − 1)) with K'X = 0 and K'K = I ("REML Error Contrasts")."""
    return null_space(X.T)


def loglik_reml_contrasts(y: np.ndarray, X: np.ndarray, Sigma_star: np.ndarray, K: np.ndarray | None = None) -> float:
    """REML log-likelihood as the likelihood of the error contrasts w = K'y ~ N(0, K'Σ*K):

        ln L(Σ, σ² | w) = −((n_T − p − 1)/2) ln(2π) − ½ ln|K'Σ*K| − ½ w'[K'Σ*K]⁻¹ w.

    With K'K = I this equals :func:`loglik_reml` up to the constant ½ ln|X'X| (the notes' identities hold
    for that K; the difference does not depend on Σ, so both have the same maximiser).
    """
    K = error_contrasts(X) if K is None else K
    w = K.T @ y
    S = K.T @ Sigma_star @ K
    return float(-0.5 * (len(w) * LOG_2PI + np.linalg.slogdet(S)[1] + w @ np.linalg.solve(S, w)))


def mixed_model_equations(X: np.ndarray, Z: np.ndarray, y: np.ndarray, sigma2: float, Sigma_b: np.ndarray):
    """Solve Henderson's mixed model equations ("Solving Mixed Model Equations"):

        [X'X   X'Z                 ] [b̂]   [X'y]
        [Z'X   Z'Z + σ² Σ_b⁻¹      ] [v̂] = [Z'y]

    i.e.  û = (W'W + σ² Σ̃_b⁻¹)⁻¹ W'y  with W = (X, Z). Returns (b̂, v̂): BLUE and BLUP.
    Σ_b must be invertible here; the fast path handles singular Σ through Λ.
    """
    p = X.shape[1]
    W = np.hstack([X, Z])
    penalty = np.zeros((W.shape[1], W.shape[1]))
    penalty[p:, p:] = sigma2 * np.linalg.inv(Sigma_b)
    u = np.linalg.solve(W.T @ W + penalty, W.T @ y)
    return u[:p], u[p:]


def blup(X, Z, y, b, Sigma_b, Sigma_star) -> np.ndarray:
    """v̂ = Σ_b Z' Σ*⁻¹ (y − X b̂), the BLUP written with the marginal covariance."""
    return Sigma_b @ Z.T @ np.linalg.solve(Sigma_star, y - X @ b)


def term_matrix(Z_rows: np.ndarray, group: np.ndarray, n_levels: int) -> np.ndarray:
    """One random term's columns of Z for all levels (n_T × ℓ q): row t holds its q values in the columns of
    its level, zeros elsewhere -- Z_j = [indicator of level] ⊗ [the term's variables], written out densely."""
    n, q = Z_rows.shape
    out = np.zeros((n, n_levels * q))
    for c in range(q):
        out[np.arange(n), group * q + c] = Z_rows[:, c]
    return out


def general_design_matrices(design, Sigmas, sigma2: float):
    """Dense (y, X, Z, Σ_b, Σ*) for any number of grouping factors (crossed or nested), rows as fitted:

        Z = [Z_1 | Z_2 | ... | Z_k],   Σ_b = bdiag(I_ℓ1 ⊗ Σ_1, ..., I_ℓk ⊗ Σ_k),   Σ* = Z Σ_b Z' + σ² I,

    with Σ_j the q_j × q_j covariance of term j's random effects (``Sigmas``, in the design's term order).
    With one grouping factor this is :func:`design_matrices` with the rows and columns reordered."""
    if len(Sigmas) != len(design.blocks):
        raise ValueError(f"give one covariance matrix per random term ({len(design.blocks)}), not {len(Sigmas)}")
    Z = np.hstack([term_matrix(b.Z, b.group, b.n_levels) for b in design.blocks])
    Sigma_b = block_diag(*[bdiag(S, b.n_levels) for S, b in zip(Sigmas, design.blocks)])
    return design.y, design.X, Z, Sigma_b, marginal_covariance(Z, Sigma_b, sigma2)


def design_matrices(design, Sigma: np.ndarray, sigma2: float):
    """Dense (y, X, Z, Σ_b, Σ*) of a :class:`~lmmteach.lmm.design.Design`, rows ordered by group."""
    ys, Xs, Zs = split_by_group(design)
    y = np.concatenate(ys)
    X = np.vstack(Xs)
    Z = stacked_Z(Zs)
    Sigma_b = bdiag(Sigma, design.n_groups)
    return y, X, Z, Sigma_b, marginal_covariance(Z, Sigma_b, sigma2)


def gls_covariance(group, time, V: np.ndarray, sigma2: float) -> np.ndarray:
    """Σ* = bdiag(σ² V[P_1, P_1], ..., σ² V[P_G, P_G]) (n × n, rows in the order given): the covariance of
    the stacked y of a GLS model, where row k belongs to group ``group[k]`` at time point ``time[k]``.
    Rows of different groups are independent: Σ*_kl = σ² V[t_k, t_l] when g_k = g_l, else 0."""
    group, time = np.asarray(group), np.asarray(time)
    same = group[:, None] == group[None, :]
    return np.where(same, sigma2 * np.asarray(V, float)[np.ix_(time, time)], 0.0)
