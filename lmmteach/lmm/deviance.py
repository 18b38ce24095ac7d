"""The profiled deviance as a function of the covariance parameters θ alone (lme4's ``mkLmerDevfun``).

This is the *fast path*. With one grouping factor the covariance of y is block diagonal,

    Σ_i = Z_i Σ Z_i' + σ² I = σ² V_i,     V_i = I + Z_i C Z_i',   C = Σ/σ² = Λ Λ',

so everything the likelihood needs is a function of per-group cross-products
Z_i'Z_i, Z_i'X_i, Z_i'y_i (and X'X, X'y, y'y), computed once. One evaluation then costs
O(groups · q³), whatever the number of observations, and never forms an n × n matrix.

One evaluation, step by step (notes: "Maximum Likelihood Estimates", "REML Log-likelihood Function"):

1. **set θ**: C = C(θ), Λ with Λ Λ' = C;
2. **factor**: M_i = Λ' Z_i'Z_i Λ + I = L_i L_i'           so  log|V_i| = log|M_i| = 2 Σ log diag L_i;
3. **solve**: R_ZX,i = L_i⁻¹ Λ' Z_i'X_i,  c_i = L_i⁻¹ Λ' Z_i'y_i,
   A = X'V⁻¹X = X'X − Σ R_ZX,i' R_ZX,i,   X'V⁻¹y = X'y − Σ R_ZX,i' c_i,
   b̂ = A⁻¹ X'V⁻¹y  (the GLS estimate),   r'V⁻¹r = y'y − Σ c_i'c_i − b̂' X'V⁻¹y;
4. **profiled deviance** (σ̂² = r'V⁻¹r / n for ML, / (n − p) for REML):

       ML:    −2 ℓ  = log|V| + n [1 + log(2π r'V⁻¹r / n)]
       REML:  −2 ℓ_R = log|V| + log|A| + (n − p) [1 + log(2π r'V⁻¹r / (n − p))].

Its gradient needs only three q × q sums (with W_i = Z_i'V_i⁻¹Z_i, s_i = Z_i'V_i⁻¹ r_i,
P_i = X_i'V_i⁻¹Z_i):  ∂(−2ℓ)/∂θ_k = tr[(Σ W_i − (n/r'V⁻¹r) Σ s_i s_i' [− Σ P_i'A⁻¹P_i]) ∂C/∂θ_k].

**Many responses at once.** The parametric bootstrap refits one design to hundreds of simulated responses.
Only the y-products differ between them, so :meth:`ProfiledDeviance.with_responses` stacks K responses and
``evaluate`` then takes K θ's, shape (K, n_theta): every array above gains a leading axis of length K and
the algebra is unchanged, one response per slice (the ``...`` in the code is that axis, or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from functools import cached_property

import numpy as np
from scipy.linalg import cho_solve, lapack, solve_triangular

from .profiled import FixedEffectsInQRBasis, RandomEffectsDeviance, check_residual_left, profiled_deviance

if TYPE_CHECKING:
    from .design import Design

__all__ = ["Crossproducts", "Evaluation", "InverseBlocks", "ProfiledDeviance", "forward_solve", "one_factor_devfun",
           "group_sums", "group_order", "thin_qr"]



@dataclass(frozen=True)
class Crossproducts:
    """Per-group cross-products, computed once per data set (G groups, q random effects, p fixed).

    For numerical accuracy they are taken in a well-conditioned basis, which changes no estimate:
    X = Q R (thin QR, so Q'Q = I) and y is replaced by its OLS residual e = y − X b_ols. Because the GLS
    estimate is linear in y and equivariant in the columns of X,  b̂ = R⁻¹ b̂_Q + b_ols  and  r = y − X b̂
    is unchanged. Predictors in the hundreds (the TIMSS school means) then cost no digits.
    """

    ZtZ: np.ndarray  # (G, q, q)
    ZtX: np.ndarray  # (G, q, p)   Z_i'Q_i
    Zty: np.ndarray  # (…, G, q)   Z_i'e_i       (… : K responses, see with_response)
    XtX: np.ndarray  # (p, p)      Q'Q = I
    Xty: np.ndarray  # (…, p)      Q'e = 0
    yty: Any  # e'e: a float, or (K,) for K responses
    n: int
    R: np.ndarray  # X = Q R
    b_ols: np.ndarray
    Q: np.ndarray
    group: np.ndarray
    B: np.ndarray = field(default_factory=lambda: np.empty(0))  # [Z'X | Z'y | Z'Z], (…, G, q, p + 1 + q)
    log_weights: float = 0.0  # Σ log w_i of prior weights (rows arrive scaled by √w_i); −2ℓ loses it
    Z: np.ndarray = field(default_factory=lambda: np.empty(0))  # n × q (kept to redo Z'e for a new response)
    X: np.ndarray = field(default_factory=lambda: np.empty(0))  # n × p (kept to drop a column: a fixed effect's profile)
    y: np.ndarray = field(default_factory=lambda: np.empty(0))  # the response(s), as fitted
    order: np.ndarray | None = None  # the rows in group order (for :func:`group_sums`; speed only)

    @classmethod
    def from_arrays(cls, X, Z, y, group, n_groups, order=None) -> "Crossproducts":
        """The cross-products of the rows X, Z, y; ``order``: :func:`group_order` of ``group`` if known."""
        Q, R = thin_qr(X)
        counts = np.bincount(group, minlength=n_groups)
        if (counts == 0).any():
            raise ValueError("every level of the grouping factor must have at least one observation")
        order = group_order(group) if order is None else order
        ZtZ = group_sums(Z[:, :, None] * Z[:, None, :], group, order)
        ZtX = group_sums(Z[:, :, None] * Q[:, None, :], group, order)
        empty = np.empty(0)  # the response's cross-products are filled in by with_response
        blank = cls(ZtZ, ZtX, empty, Q.T @ Q, empty, 0.0, len(y), R, empty, Q, group, Z=Z, X=X, order=order)
        out = blank.with_response(y)
        check_residual_left(out.yty, y)
        return out

    def with_response(self, y) -> "Crossproducts":
        """The same design with a new response (for the parametric bootstrap): only y-products change.
        ``y`` may be a stack of K responses, shape (K, n): every y-product then gains a leading axis."""
        from dataclasses import replace

        Z = self.Z
        Qty = y @ self.Q
        b_ols = np.linalg.solve(self.R, Qty[..., None])[..., 0]
        e = y - Qty @ self.Q.T
        E = e.reshape(-1, e.shape[-1]).T  # (n, K): one column per response
        Zty = np.moveaxis(group_sums(Z[:, :, None] * E[:, None, :], self.group, self.order), -1, 0)  # (K, G, q)
        Zty = Zty if y.ndim > 1 else Zty[0]
        G, q, p = self.ZtX.shape
        batch = y.shape[:-1]
        B = np.concatenate([np.broadcast_to(self.ZtX, batch + (G, q, p)), Zty[..., None],
                            np.broadcast_to(self.ZtZ, batch + (G, q, q))], axis=-1)
        yty = (e * e).sum(axis=-1)
        return replace(self, Zty=Zty, Xty=e @ self.Q, yty=yty if y.ndim > 1 else float(yty), b_ols=b_ols, B=B, y=y)

    def reweighted(self, weights, y) -> "Crossproducts":
        """The cross-products of the same rows with prior weights w and response y (every row of X, Z and y
        scaled by √w_i: Z_i'W_iZ_i, Z_i'W_iX_i, ... as :meth:`from_arrays` of the weighted rows). Call it on
        cross-products built without prior weights (a GLMM's PIRLS asks for one per iteration)."""
        from dataclasses import replace

        w = np.asarray(weights, float)
        sw = np.sqrt(w)
        out = Crossproducts.from_arrays(self.X * sw[:, None], self.Z * sw[:, None], np.asarray(y, float) * sw,
                                        self.group, self.ZtZ.shape[0], self.order)
        return replace(out, log_weights=float(np.log(w).sum()))

    def take(self, rows) -> "Crossproducts":
        """The responses ``rows`` of a stack of responses (:meth:`with_response` with K responses)."""
        from dataclasses import replace

        return replace(self, Zty=self.Zty[rows], Xty=self.Xty[rows], yty=self.yty[rows], b_ols=self.b_ols[rows],
                       B=self.B[rows], y=self.y[rows])


def group_order(group: np.ndarray) -> np.ndarray:
    """The rows sorted by group (a stable sort: within a group, the rows' own order)."""
    return np.argsort(group, kind="stable")


def group_sums(values: np.ndarray, group: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """Σ over the rows of each group: out[g] = Σ_{i in group g} values[i] (rows sorted by group, summed
    with one ``reduceat``; every group must have a row). ``order``: :func:`group_order` of ``group`` if known."""
    order = group_order(group) if order is None else order
    counts = np.bincount(group)
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    return np.add.reduceat(values[order], starts, axis=0)


@dataclass(frozen=True)
class Evaluation(FixedEffectsInQRBasis):
    """Everything one evaluation of the profiled deviance computes."""

    theta: np.ndarray
    deviance: float
    cp: "Crossproducts"
    A_Q: np.ndarray  # Q'V⁻¹Q in the QR basis X = QR (V = Σ*/σ²)
    beta_Q: np.ndarray  # b̂ in the QR basis (what the random-effect solves use)
    pwrss: float  # r'V⁻¹r, the penalised weighted residual sum of squares
    sigma2: float  # profiled σ̂²
    Lambda: np.ndarray  # q × q
    L: np.ndarray  # (G, q, q) Cholesky factors of M_i
    c: np.ndarray  # (G, q)
    RZX: np.ndarray  # (G, q, p)
    logdet_V: float
    gradient: np.ndarray | None = None
    dC: np.ndarray | None = None  # ∂(deviance)/∂C (q × q), the gradient with respect to C = Σ/σ²
    dlogdetV_dC: np.ndarray | None = None  # ∂log|V|/∂C = Σ Z_i'V_i⁻¹Z_i
    dpwrss_dC: np.ndarray | None = None  # ∂(r'V⁻¹r)/∂C = −Σ s_i s_i'  (s_i = Z_i'V_i⁻¹r_i)
    q_terms: tuple = ()  # q_j of every random term (the columns of Λ, term by term)

    @cached_property
    def C(self) -> np.ndarray:
        """C = Σ/σ² = ΛΛ' (the layout of ``dC``)."""
        return self.Lambda @ _T(self.Lambda)

    @cached_property
    def u(self) -> np.ndarray:
        """Spherical random effects u_i = L_i'⁻¹ (c_i − R_ZX,i b̂), so that v̂_i = Λ u_i."""
        rhs = self.c - np.einsum("...gqp,...p->...gq", self.RZX, self.beta_Q)
        return np.linalg.solve(_T(self.L), rhs[..., None])[..., 0]

    @property
    def u_vector(self) -> np.ndarray:
        """ũ as one vector (group by group), for |ũ|² in a GLMM's penalised deviance."""
        return np.ravel(self.u)

    @cached_property
    def blups(self) -> np.ndarray:
        """v̂_i = Λ u_i (G × q): the BLUPs, the conditional modes of the random effects."""
        return self.u @ _T(self.Lambda)

    @cached_property
    def term_blups(self) -> list[np.ndarray]:
        """The BLUPs term by term: an (ℓ × q_j) array for every random term j."""
        return np.split(self.blups, np.cumsum(self.q_terms)[:-1], axis=-1)

    def inverse_blocks(self) -> "InverseBlocks":
        """The entries of M⁻¹ (M = Λ'Z'ZΛ + I = LL', u-space) that a row's random effects meet: with one
        grouping factor M is block diagonal, so they are the groups' M_i⁻¹ = L_i⁻ᵀL_i⁻¹ (G, q, q). For a GLMM's
        exact Laplace gradient (:mod:`lmmteach.glmm.laplace_gradient`, the leverages z_i'ΛM⁻¹Λ'z_i)."""
        Linv = np.linalg.inv(self.L)
        return InverseBlocks(np.swapaxes(Linv, -1, -2) @ Linv)

    def solve_M(self, v: np.ndarray) -> np.ndarray:
        """M⁻¹v for a vector v in the order of :attr:`u_vector` (group by group): L_i⁻ᵀ(L_i⁻¹v_i) per group."""
        G, q = self.L.shape[:2]
        x = forward_solve(self.L, np.asarray(v, float).reshape(G, q)[:, :, None])
        return np.linalg.solve(_T(self.L), x)[:, :, 0].ravel()

    def condvar(self, factor_terms: dict[str, list[int]]) -> dict[str, np.ndarray]:
        """Var(v_i | y)/σ² = Λ M_i⁻¹ Λ' for every group i (M_i = L_i L_i'), {the grouping factor: (G, q, q)}
        (``factor_terms`` names the one factor and its terms)."""
        Linv = np.linalg.inv(self.L)  # (G, q, q)
        Minv = np.swapaxes(Linv, 1, 2) @ Linv
        return {name: self.Lambda @ Minv @ self.Lambda.T for name in factor_terms}


@dataclass(frozen=True)
class InverseBlocks:
    """Entries of M⁻¹ (u-space, M = Λ'Z'ZΛ + I) at the pairs of random effects that meet in a row of Z: the
    diagonal blocks of the first grouping factor, ``first`` (ℓ₁, q₁, q₁); with several grouping factors also
    the cross block [M⁻¹]_r1 (``cross``, R × ℓ₁q₁) and the block of the other factors [M⁻¹]_rr (``rest``,
    R × R), both dense (None with one grouping factor)."""

    first: np.ndarray
    cross: np.ndarray | None = None
    rest: np.ndarray | None = None


class ProfiledDeviance(RandomEffectsDeviance):
    """θ ↦ −2 × (profiled, restricted when ``reml``) log-likelihood, for one grouping factor (the
    :class:`~lmmteach.lmm.profiled.DevianceFunction` interface).

    ``structures`` are the covariance structures of the random terms (their θ's are concatenated);
    Σ / σ² is block diagonal with one block per term. Speed only: ``evaluate`` also takes a stack of K
    responses (:meth:`with_y` of a (K, n) array) with K θ's at once, every array gaining a leading axis.
    """

    stacks_responses = True

    @property
    def n_responses(self) -> int | None:
        """K for a stack of responses (:meth:`with_responses`), None for one response."""
        return self.cp.B.shape[0] if self.cp.B.ndim == 4 else None

    def _column_rms(self) -> np.ndarray:
        return np.sqrt(np.einsum("gkk->k", self.cp.ZtZ) / self.cp.n)

    def without_fixed_effect(self, k: int) -> "ProfiledDeviance":
        """The same model without column k of X (the same response): the deviance of a fixed effect's
        profile, whose response is then y − v x_k (:meth:`with_y`)."""
        from dataclasses import replace

        cp = self.cp
        out = Crossproducts.from_arrays(np.delete(cp.X, k, axis=1), cp.Z, cp.y, cp.group, cp.ZtZ.shape[0])
        return self._new(replace(out, log_weights=cp.log_weights))

    def factor(self, theta) -> np.ndarray:
        """Λ(θ) with Λ Λ' = C(θ), block diagonal over the terms (a stack of them for a stack of θ's)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        if theta.ndim > 1 and not all(s.batched for s in self.structures):
            return np.stack([self.factor(t) for t in theta])
        if len(self.structures) == 1:  # one term: no block diagonal to assemble (the refit loops' case)
            return self.structures[0].factor(theta)
        q = self.cp.ZtZ.shape[1]
        out = np.zeros(theta.shape[:-1] + (q, q))
        offset = 0
        for s, t in zip(self.structures, self.split(theta)):
            out[..., offset : offset + s.q, offset : offset + s.q] = s.factor(t)
            offset += s.q
        return out

    def relcov_grad(self, theta) -> np.ndarray:
        """∂C/∂θ_k for every k, shape (n_theta, q, q) (a stack of them for a stack of θ's)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        if theta.ndim > 1 and not all(s.batched for s in self.structures):
            return np.stack([self.relcov_grad(t) for t in theta])
        q = self.cp.ZtZ.shape[1]
        out = np.zeros(theta.shape[:-1] + (self.n_theta, q, q))
        k, offset = 0, 0
        for s, t in zip(self.structures, self.split(theta)):
            g = s.relcov_grad(t)
            out[..., k : k + s.n_params, offset : offset + s.q, offset : offset + s.q] = g
            k += s.n_params
            offset += s.q
        return out

    # -- one evaluation --------------------------------------------------------------------------------
    def _evaluate(self, theta, gradient: bool = False) -> Evaluation:
        cp, n, p = self.cp, self.cp.n, self.p
        theta = np.atleast_1d(np.asarray(theta, float))
        batch = theta.shape[:-1]  # () for one θ; (K,) for K responses (with_responses) or K θ's for one
        if theta.shape[-1] != self.n_theta or theta.ndim > 2 or cp.B.shape[:-3] not in ((), batch):
            raise ValueError(f"theta must have {self.n_theta} value(s) for this model"
                             + (f", one row per response ({cp.B.shape[0]})" if cp.B.ndim == 4 else "")
                             + f"; got shape {theta.shape}")
        Lam = self.factor(theta)  # 1. set θ
        q = Lam.shape[-1]
        LtB = _T(Lam)[..., None, :, :] @ cp.B  # Λ'Z'X | Λ'Z'y | Λ'Z'Z, per group
        M = LtB[..., p + 1 :] @ Lam[..., None, :, :] + np.eye(q)  # 2. factor  M_i = Λ'Z_i'Z_iΛ + I = L_i L_i'
        L = np.linalg.cholesky(M)
        logdet_V = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=(-2, -1))
        sol = forward_solve(L, LtB)  # 3. solve  L⁻¹Λ'Z'X | L⁻¹Λ'Z'y | L⁻¹Λ'Z'Z
        RZX, c, T = sol[..., :p], sol[..., p], sol[..., p + 1 :]
        RZX2 = RZX.reshape(batch + (RZX.shape[-3] * q, p))  # the groups' rows stacked (also with p = 0)
        c2 = c.reshape(batch + (-1,))
        A = cp.XtX - _T(RZX2) @ RZX2  # Σ_i R_ZX,i' R_ZX,i
        Xty = cp.Xty - (_T(RZX2) @ c2[..., None])[..., 0]
        RX = np.linalg.cholesky(A)
        beta = _chol_solve(RX, Xty)
        pwrss = cp.yty - (c2 * c2).sum(axis=-1) - (Xty * beta).sum(axis=-1)
        pwrss = np.maximum(pwrss, 1e-300)
        dof = n - p if self.reml else n  # 4. profiled deviance; log|X'V⁻¹X| = log|R'(Q'V⁻¹Q)R| = 2 log|RX| + 2 log|det R|
        logdet_A = 2.0 * np.log(np.diagonal(RX, axis1=-2, axis2=-1)).sum(axis=-1) + self._logdet_R2
        dev = profiled_deviance(logdet_V, pwrss, n, p, self.reml, logdet_A, cp.log_weights)
        grad = G = W = S = None
        if gradient:
            G, W, S = self._gradient_C(T, RZX, c, beta, RX, pwrss, dof)
            grad = np.einsum("...ij,...kij->...k", G, self.relcov_grad(theta))
        return Evaluation(theta, _scalar(dev), cp, A, beta, _scalar(pwrss), _scalar(pwrss / dof), Lam, L, c, RZX,
                          _scalar(logdet_V), grad, G, W, S, tuple(s.q for s in self.structures))

    def _gradient_C(self, T, RZX, c, beta, RX, pwrss, dof):
        """∂(deviance)/∂C = Σ W_i − (dof/pwrss) Σ s_i s_i' − [REML] Σ P_i'A⁻¹P_i; the gradient with respect
        to θ_k is then tr[(∂deviance/∂C) ∂C/∂θ_k]. Returned with its two parts ∂log|V|/∂C = Σ W_i and
        ∂(r'V⁻¹r)/∂C = −Σ s_i s_i' (what a deviance at a given σ² needs: ∂/∂C [log|V| + r'V⁻¹r/σ²])."""
        cp = self.cp
        q, p = T.shape[-1], RZX.shape[-1]
        batch = T.shape[:-3]
        Tt = _T(T)
        T2 = T.reshape(batch + (-1, q))
        Wsum = cp.ZtZ.sum(axis=0) - _T(T2) @ T2  # Σ Z_i'V_i⁻¹Z_i
        Pt = cp.ZtX - Tt @ RZX  # Z_i'V_i⁻¹X_i
        s = cp.Zty - (Tt @ c[..., None])[..., 0] - (Pt @ beta[..., None, :, None])[..., 0]  # Z_i'V_i⁻¹r_i
        ss = _T(s) @ s
        G = Wsum - np.asarray(dof / pwrss)[..., None, None] * ss
        if self.reml:  # S_i = RX⁻¹ P_i  with P_i = X_i'V_i⁻¹Z_i
            S = _tri_solve(RX, np.swapaxes(Pt, -3, -1).reshape(batch + (p, -1))).reshape(batch + (p, q, -1))
            G = G - np.einsum("...kig,...kjg->...ij", S, S)
        return G, Wsum, -ss



def thin_qr(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Speed only. The thin QR decomposition X = QR (Q n × p with orthonormal columns, R upper triangular), by
    LAPACK's geqrf and orgqr as numpy's and scipy's ``qr`` (the same numbers), without their workspace query:
    for a tall X it asks for n × 32 doubles of workspace, 25 MB at n = 10⁵, in every PIRLS iteration."""
    X = np.asarray(X, float)
    n, p = X.shape
    if p == 0 or p > n:  # nothing to gain, or a wide X (orgqr takes at least as many rows as columns)
        return np.linalg.qr(X)
    work = 32 * p  # LAPACK's block size (32) times the columns: what geqrf and orgqr need at most here
    a, tau, _, info = lapack.dgeqrf(X, lwork=work)
    if info != 0:
        raise np.linalg.LinAlgError(f"QR decomposition failed (LAPACK info {info})")
    R = np.triu(a[:p])
    Q, _, info = lapack.dorgqr(a, tau, lwork=work, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"QR decomposition failed (LAPACK info {info})")
    return Q, R


def forward_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve L_i X_i = B_i for every group at once (L_i lower triangular, q × q): forward substitution,
    one row at a time, vectorised over the groups (and over a stack of responses)."""
    X = np.empty_like(B)
    X[..., 0, :] = B[..., 0, :] / L[..., 0, 0, None]
    for i in range(1, L.shape[-1]):
        X[..., i, :] = (B[..., i, :] - (L[..., i : i + 1, :i] @ X[..., :i, :])[..., 0, :]) / L[..., i, i, None]
    return X


def _T(a: np.ndarray) -> np.ndarray:
    """The transpose of each matrix in a stack (the last two axes)."""
    return np.swapaxes(a, -1, -2)


def _scalar(x):
    """A float for one response, the array for a stack of them."""
    return float(x) if np.ndim(x) == 0 else x


def _chol_solve(R: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve (R R') x = b for lower-triangular R (for each of a stack of them)."""
    if R.ndim == 2:
        return cho_solve((R, True), b, check_finite=False)
    return _tri_solve(_T(R), _tri_solve(R, b[..., None]), lower=False)[..., 0]


def _tri_solve(R: np.ndarray, b: np.ndarray, lower: bool = True) -> np.ndarray:
    """Solve R x = b for triangular R (for each of a stack of them: numpy's general solver, which on a
    triangular matrix does the same substitutions)."""
    if R.ndim == 2:
        return solve_triangular(R, b, lower=lower, check_finite=False)
    return np.linalg.solve(R, b)


def one_factor_devfun(design: Design, reml: bool = True) -> ProfiledDeviance:
    """The profiled deviance of a :class:`~lmmteach.lmm.design.Design` with one grouping factor."""
    from dataclasses import replace

    X, Z, y = design.fitting_arrays()  # rows scaled by √w_i, offset subtracted
    cp = Crossproducts.from_arrays(X, Z, y, design.group, design.n_groups)
    if design.weights is not None:
        cp = replace(cp, log_weights=design.log_weights)
    return ProfiledDeviance(cp, design.structures(), reml=reml)
