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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .covariance import block_diagonal

LOG_2PI = np.log(2 * np.pi)


@dataclass(frozen=True)
class Crossproducts:
    """Per-group cross-products, computed once per data set (G groups, q random effects, p fixed)."""

    ZtZ: np.ndarray  # (G, q, q)
    ZtX: np.ndarray  # (G, q, p)
    Zty: np.ndarray  # (G, q)
    XtX: np.ndarray  # (p, p)
    Xty: np.ndarray  # (p,)
    yty: float
    n: int

    @classmethod
    def from_arrays(cls, X, Z, y, group, n_groups) -> "Crossproducts":
        order = np.argsort(group, kind="stable")
        g = group[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        if len(starts) != n_groups:
            raise ValueError("every level of the grouping factor must have at least one observation")
        Zs, Xs, ys = Z[order], X[order], y[order]
        ZtZ = np.add.reduceat(Zs[:, :, None] * Zs[:, None, :], starts, axis=0)
        ZtX = np.add.reduceat(Zs[:, :, None] * Xs[:, None, :], starts, axis=0)
        Zty = np.add.reduceat(Zs * ys[:, None], starts, axis=0)
        return cls(ZtZ, ZtX, Zty, X.T @ X, X.T @ y, float(y @ y), len(y))

    def with_response(self, X, Z, y, group) -> "Crossproducts":
        """The same design with a new response (for the parametric bootstrap): only y-products change."""
        G = self.ZtZ.shape[0]
        Zty = np.zeros((G, Z.shape[1]))
        np.add.at(Zty, group, Z * y[:, None])
        return Crossproducts(self.ZtZ, self.ZtX, Zty, self.XtX, X.T @ y, float(y @ y), self.n)


@dataclass(frozen=True)
class Evaluation:
    """Everything one evaluation of the profiled deviance computes."""

    theta: np.ndarray
    deviance: float
    beta: np.ndarray  # b̂ (GLS / BLUE)
    A: np.ndarray  # X'V⁻¹X (V = Σ*/σ²)
    pwrss: float  # r'V⁻¹r, the penalised weighted residual sum of squares
    sigma2: float  # profiled σ̂²
    Lambda: np.ndarray  # q × q
    L: np.ndarray  # (G, q, q) Cholesky factors of M_i
    c: np.ndarray  # (G, q)
    RZX: np.ndarray  # (G, q, p)
    logdet_V: float
    gradient: np.ndarray | None = None

    @property
    def u(self) -> np.ndarray:
        """Spherical random effects u_i = L_i'⁻¹ (c_i − R_ZX,i b̂), so that v̂_i = Λ u_i."""
        rhs = self.c - np.einsum("gqp,p->gq", self.RZX, self.beta)
        return np.linalg.solve(np.swapaxes(self.L, 1, 2), rhs[:, :, None])[:, :, 0]

    @property
    def blups(self) -> np.ndarray:
        """v̂_i = Λ u_i (G × q): the BLUPs, the conditional modes of the random effects."""
        return self.u @ self.Lambda.T


class ProfiledDeviance:
    """θ ↦ −2 × (profiled, restricted when ``reml``) log-likelihood, for one grouping factor.

    ``structures`` are the covariance structures of the random terms (their θ's are concatenated);
    Σ / σ² is block diagonal with one block per term.
    """

    def __init__(self, crossproducts: Crossproducts, structures, reml: bool = True):
        self.cp = crossproducts
        self.structures = list(structures)
        self.reml = bool(reml)
        self.p = crossproducts.XtX.shape[0]
        sizes = [s.n_params for s in self.structures]
        self._slices = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])
        if self.reml and self.cp.n <= self.p:
            raise ValueError(f"REML needs more observations ({self.cp.n}) than fixed effects ({self.p})")

    # -- the parameter vector θ ----------------------------------------------------------------------
    @property
    def n_theta(self) -> int:
        return sum(s.n_params for s in self.structures)

    @property
    def theta0(self) -> np.ndarray:
        return np.concatenate([s.theta0 for s in self.structures])

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [b for s in self.structures for b in s.bounds]

    def split(self, theta) -> list[np.ndarray]:
        theta = np.asarray(theta, float)
        return [theta[idx] for idx in self._slices]

    def relcov(self, theta) -> np.ndarray:
        """C(θ) = Σ/σ², block diagonal over the terms."""
        return block_diagonal([s.relcov(t) for s, t in zip(self.structures, self.split(theta))])

    def factor(self, theta) -> np.ndarray:
        """Λ(θ) with Λ Λ' = C(θ)."""
        return block_diagonal([s.factor(t) for s, t in zip(self.structures, self.split(theta))])

    def relcov_grad(self, theta) -> np.ndarray:
        """∂C/∂θ_k for every k, shape (n_theta, q, q)."""
        q = self.cp.ZtZ.shape[1]
        out = np.zeros((self.n_theta, q, q))
        k, offset = 0, 0
        for s, t in zip(self.structures, self.split(theta)):
            g = s.relcov_grad(t)
            out[k : k + s.n_params, offset : offset + s.q, offset : offset + s.q] = g
            k += s.n_params
            offset += s.q
        return out

    # -- one evaluation --------------------------------------------------------------------------------
    def evaluate(self, theta, gradient: bool = False) -> Evaluation:
        cp, n, p = self.cp, self.cp.n, self.p
        theta = np.asarray(theta, float)
        Lam = self.factor(theta)  # 1. set θ
        q = Lam.shape[0]
        LtZtZ = np.einsum("ji,gjk->gik", Lam, cp.ZtZ)  # Λ'Z'Z
        M = LtZtZ @ Lam + np.eye(q)  # 2. factor  M_i = Λ'Z_i'Z_iΛ + I
        L = np.linalg.cholesky(M)
        logdet_V = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum()
        RZX = np.linalg.solve(L, np.einsum("ji,gjp->gip", Lam, cp.ZtX))  # 3. solve
        c = np.linalg.solve(L, (cp.Zty @ Lam)[:, :, None])[:, :, 0]
        A = cp.XtX - np.einsum("gqi,gqj->ij", RZX, RZX)
        Xty = cp.Xty - np.einsum("gqi,gq->i", RZX, c)
        RX = np.linalg.cholesky(A)
        beta = _chol_solve(RX, Xty)
        pwrss = cp.yty - np.einsum("gq,gq->", c, c) - Xty @ beta
        pwrss = max(pwrss, 1e-300)
        dof = n - p if self.reml else n  # 4. profiled deviance
        dev = logdet_V + dof * (1.0 + LOG_2PI + np.log(pwrss / dof))
        if self.reml:
            dev += 2.0 * np.log(np.diag(RX)).sum()
        grad = None
        if gradient:
            grad = self._gradient(theta, Lam, L, LtZtZ, RZX, c, beta, RX, pwrss, dof)
        return Evaluation(theta, float(dev), beta, A, float(pwrss), float(pwrss / dof), Lam, L, c, RZX,
                          float(logdet_V), grad)

    def _gradient(self, theta, Lam, L, LtZtZ, RZX, c, beta, RX, pwrss, dof):
        """tr[(Σ W_i − (dof/pwrss) Σ s_i s_i' − [REML] Σ P_i'A⁻¹P_i) ∂C/∂θ_k] for every k."""
        cp = self.cp
        T = np.linalg.solve(L, LtZtZ)  # L⁻¹Λ'Z'Z, (G, q, q)
        W = cp.ZtZ - np.swapaxes(T, 1, 2) @ T  # Z'V⁻¹Z
        Pt = cp.ZtX - np.swapaxes(T, 1, 2) @ RZX  # Z'V⁻¹X
        ZtVy = cp.Zty - np.einsum("gji,gj->gi", T, c)  # Z'V⁻¹y
        s = ZtVy - Pt @ beta  # Z'V⁻¹r
        G = W.sum(axis=0) - (dof / pwrss) * np.einsum("gi,gj->ij", s, s)
        if self.reml:
            S = np.linalg.solve(RX, np.swapaxes(Pt, 1, 2))  # RX⁻¹ P_i, (G, p, q)
            G -= np.einsum("gki,gkj->ij", S, S)
        dC = self.relcov_grad(theta)
        return np.einsum("ij,kij->k", G, dC)

    def __call__(self, theta) -> float:
        return self.evaluate(theta).deviance

    def loglik(self, theta, sigma2: float) -> float:
        """Log-likelihood at given covariance parameters (θ, σ²), with b̂ profiled out (not σ²):

            ML:    ℓ   = −½ [n log(2πσ²) + log|V| + r'V⁻¹r / σ²]
            REML:  ℓ_R = −½ [(n−p) log(2πσ²) + log|V| + log|A| + r'V⁻¹r / σ²]

        (log|Σ*| = n log σ² + log|V| and log|X'Σ*⁻¹X| = log|A| − p log σ², as in the notes' formulas).
        """
        e = self.evaluate(theta)
        dof = self.cp.n - self.p if self.reml else self.cp.n
        out = dof * (LOG_2PI + np.log(sigma2)) + e.logdet_V + e.pwrss / sigma2
        if self.reml:
            out += np.linalg.slogdet(e.A)[1]
        return float(-0.5 * out)


def _chol_solve(R: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve (R R') x = b for lower-triangular R."""
    from scipy.linalg import cho_solve

    return cho_solve((R, True), b)


def mk_devfun(design, reml: bool = True) -> ProfiledDeviance:
    """The profiled deviance of a :class:`~lmmteach.design.Design` (lme4's ``mkLmerDevfun``)."""
    cp = Crossproducts.from_arrays(design.X, design.Z, design.y, design.group, design.n_groups)
    return ProfiledDeviance(cp, design.structures(), reml=reml)
