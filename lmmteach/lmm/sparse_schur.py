"""The blocked profiled deviance with a sparse Schur complement, for crossed factors with many levels.

:mod:`lmmteach.lmm.blocked` eliminates the first grouping factor (block diagonal, one small block per level)
and factors what is left, the Schur complement of the other factors' random effects,

    M_rr = Λ_r'Z_r'Z_rΛ_r + I − L_r1 L_r1',     L_r1 = Λ_r'Z_r'Z₁Λ₁L₁₁⁻ᵀ,

as a dense R × R matrix. With R in the tens of thousands that matrix no longer fits (20,000 levels: 3.2 GB)
and its dense Cholesky factor costs R³/3 flops (2.7 × 10¹² for 20,000). But M_rr is *sparse*: entry (i, j)
is non-zero only when level i and level j of the other factors meet a common level of the first factor
(Z_r'Z_r and L_r1 L_r1' have that pattern). In a clustered design -- patients × doctors within clinics,
pupils × neighbourhoods within regions, raters × items within batches -- such pairs stay within a cluster,
and a fill-reducing ordering keeps the factor sparse too. Here M_rr is formed as a sparse matrix and
factored by SuperLU (``scipy.sparse.linalg.splu``) in a symmetric fill-reducing order P (SuperLU's minimum
degree on M_rr's pattern, found once: the pattern does not change with θ) with the diagonal as pivots
(``diag_pivot_thresh=0``):

    P M_rr P' = L U,     U = D L'   (M_rr is symmetric positive definite: no pivoting is needed),

so that with the diagonal u_ii of U (the pivots d_i)

    log|M_rr| = Σ_i log u_ii,

and every solve with M_rr is two sparse triangular solves. The rest is the dense engine's algebra with
L_rr⁻¹ replaced by M_rr⁻¹ where it appears twice: for [X y] the Schur complement needs

    R_ZXr'R_ZXr = (L_rr⁻¹B)'(L_rr⁻¹B) = B'M_rr⁻¹B,     B = Λ_r'Z_r'[X y] − L_r1 R_ZX1,

and the spherical random effects of block r are ũ_r = L_rr⁻ᵀL_rr⁻¹(B_y − B_X b̂) = M_rr⁻¹(B_y − B_X b̂).
The deviance is the same number as the dense engine's (the same formula, other round-off).

**Exact, not approximate; but not every design is cheap.** When the levels are crossed at random (each row
a uniformly random pair of 20,000 × 20,000 levels) the pattern is an expander graph and no ordering keeps
the factor sparse: CHOLMOD's factor of such a 20,000 × 20,000 matrix has ~7 × 10⁷ non-zeros and takes
minutes (lme4's fit is as slow), and SuperLU is slower still. That is intrinsic to exact methods. So before
the first factorisation the factor's cost is counted from the pattern alone (:func:`cholesky_cost`, a
symbolic factorisation), and a design whose factor would cost more than :data:`MAX_FACTOR_FLOPS` stops with
a ValueError naming the factors instead of running for hours.

**No gradient here.** The exact gradient of the blocked engine needs diagonal blocks of M⁻¹ on the pattern
of M_rr (for scalar terms ∂log|M|/∂θ_k = (2/θ_k)(ℓ_k − tr_k M⁻¹)), a selected inverse that SuperLU does not
give. So this engine's deviance has no ``gradient=True``: the fit uses the derivative-free search
(``search = "COBYQA"``, :func:`lmmteach.lmm.optimize.optimize_lmer`, with its central-difference
convergence check), and what needs the exact gradient (profiles, the bootstrap's warm-started refits,
Satterthwaite's degrees of freedom) stops with a clear error.

Which engine a design gets is decided in :mod:`lmmteach.lmm.engine`: this one when the Schur complement
has more than :data:`SPARSE_SCHUR_COLUMNS` columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import spilu, splu

from .blocked import BlockedCrossproducts, BlockedDeviance, BlockedEvaluation, _times_block_diagonal

__all__ = ["SPARSE_SCHUR_COLUMNS", "MAX_FACTOR_FLOPS", "schur_columns", "fill_reducing_order", "cholesky_cost",
           "SparseCholesky", "SparseSchurEvaluation", "SparseSchurDeviance",
           "mk_sparse_schur_devfun"]

SPARSE_SCHUR_COLUMNS = 5000
"""A design whose Schur complement M_rr has more columns than this gets the sparse engine: a dense one would
take 200 MB and ~4 × 10¹⁰ flops per evaluation (seconds), where a clustered design's sparse factor takes
milliseconds. Speed only: both engines compute the same deviance."""

CONDVAR_COLUMNS = 512
"""Conditional variances solve M_rr X = E for this many unit (or sparse) columns at a time (memory: R × 512
doubles)."""


def schur_columns(design) -> int:
    """R, the number of columns of the Schur complement M_rr: the random effects of every grouping factor
    but the first (the one with the most levels, lme4's order)."""
    first = design.blocks[0].group_name
    return sum(b.q * b.n_levels for b in design.blocks if b.group_name != first)


MAX_FACTOR_FLOPS = 2e10
"""The sparse factor of M_rr may cost at most this many flops per evaluation (Σ_j c_j², c_j the non-zeros
of column j of L): about ten seconds at SuperLU's speed, and a fit takes some forty evaluations. Beyond it the
fit stops with a clear error instead of running for hours (levels crossed without cluster structure)."""


def fill_reducing_order(M: sp.spmatrix) -> np.ndarray:
    """SuperLU's symmetric minimum-degree ordering of M's pattern (``MMD_AT_PLUS_A``), as an index array
    ``order`` such that M[order][:, order] is factored with little fill. Taken from SuperLU's incomplete
    factorisation with every entry dropped (``spilu``, drop_tol = 1): the ordering without the work of the
    factor; it depends only on the pattern."""
    ilu = spilu(sp.csc_matrix(M), drop_tol=1.0, fill_factor=1.0, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                options={"SymmetricMode": True})
    return np.argsort(ilu.perm_c)  # perm_c sends column j to position perm_c[j]


def cholesky_cost(M: sp.spmatrix, max_flops: float = np.inf) -> tuple[int, float]:
    """(non-zeros, flops) of the Cholesky factor L of a symmetric M from its pattern alone (symbolic
    factorisation, stopping once the flops pass ``max_flops``). Column j of L has the non-zeros of column j
    of M below the diagonal and those of the columns whose first off-diagonal non-zero is in row j (its
    children in the elimination tree), below row j; factoring column j costs c_j² flops."""
    A = sp.csc_matrix(sp.tril(M, -1))
    A.sort_indices()
    children: list[list[int]] = [[] for _ in range(A.shape[0])]
    below: list = [None] * A.shape[0]  # the rows of column j's non-zeros below the diagonal
    nnz, flops = 0, 0.0
    for j in range(A.shape[0]):
        rows = A.indices[A.indptr[j] : A.indptr[j + 1]]
        if children[j]:
            rows = np.unique(np.concatenate([rows] + [below[c][1:] for c in children[j]]))  # (row j dropped)
            for c in children[j]:
                below[c] = None
        below[j] = rows
        if rows.size:
            children[rows[0]].append(j)
        nnz += rows.size + 1
        flops += float(rows.size + 1) ** 2
        if flops > max_flops:
            break
    return nnz, flops


class SparseCholesky:
    """The factor of a sparse symmetric positive definite M in a given fill-reducing order:
    M[o][:, o] = L D L' (SuperLU with the natural order of the permuted matrix and diagonal pivots, U = D L'),
    its log-determinant and solves with M."""

    def __init__(self, M: sp.spmatrix, order: np.ndarray):
        self.order = order
        try:
            self._lu = splu(sp.csc_matrix(M)[order][:, order], permc_spec="NATURAL", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True})
        except RuntimeError as err:  # SuperLU: "Factor is exactly singular"
            raise np.linalg.LinAlgError(str(err)) from None
        pivots = self._lu.U.diagonal()
        if not np.all(np.isfinite(pivots)) or np.any(pivots <= 0) or \
                not np.array_equal(self._lu.perm_r, self._lu.perm_c):
            raise np.linalg.LinAlgError("the sparse Schur complement is not numerically positive definite")
        self.logdet = float(np.log(pivots).sum())  # log|M| = Σ log d_i (a symmetric permutation keeps |M|)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """M⁻¹B for a dense vector or matrix B: M[o][:, o] y = B[o], then x[o] = y."""
        B = np.asarray(B, float)
        out = np.empty_like(B)
        out[self.order] = self._lu.solve(B[self.order])
        return out


@dataclass(frozen=True)
class SparseSchurEvaluation(BlockedEvaluation):
    """One evaluation with the sparse Schur complement: as :class:`BlockedEvaluation`, with the factor of
    M_rr (``schur``) and B = Λ_r'Z_r'[X y] − L_r1 R_ZX1 (``rhs_r``) in place of L_rr and R_ZXr = L_rr⁻¹B."""

    schur: Any = None  # SparseCholesky of M_rr
    rhs_r: np.ndarray | None = None  # (R, p + 1)

    def _u_rest(self) -> np.ndarray:
        """ũ_r = M_rr⁻¹(B_y − B_X b̂)."""
        assert self.rhs_r is not None
        p = self.beta_Q.size
        return self.schur.solve(self.rhs_r[:, p] - self.rhs_r[:, :p] @ self.beta_Q)

    def condvar(self, factor_terms: dict[str, list[int]]) -> dict[str, np.ndarray]:
        """Var(b | y)/σ² = Λ [M⁻¹]_ll Λ' for every level l of every grouping factor (as the dense engine),
        from solves with M_rr, :data:`CONDVAR_COLUMNS` columns at a time:

            [M⁻¹]_rr = M_rr⁻¹,    [M⁻¹]_11,l = L₁₁,l⁻ᵀL₁₁,l⁻¹ + K_l'M_rr⁻¹K_l,   K = L_r1 L₁₁⁻¹ (sparse)

        (the blocks of L⁻¹ in :meth:`BlockedEvaluation.condvar`). R solves in all: slower than the fit for
        large R, so computed only when asked for."""
        cp = self.cp
        l1, q1 = self.L11.shape[:2]
        L11inv = np.linalg.inv(self.L11)
        K = sp.csc_matrix(_times_block_diagonal(sp.csr_matrix(self.Lr1), L11inv))  # R × ℓ₁q₁
        Rdim = K.shape[0]
        offsets = cp.rest_offsets
        out = {}
        for name, ks in factor_terms.items():
            lam = _block_diag([self.lambdas[k] for k in ks])
            if ks[0] in cp.first:
                M11 = np.swapaxes(L11inv, 1, 2) @ L11inv
                step = max(1, CONDVAR_COLUMNS // q1)
                for start in range(0, l1, step):
                    cols = slice(start * q1, min(l1, start + step) * q1)
                    Kc = K[:, cols].toarray()
                    Y = self.schur.solve(Kc)
                    m = Kc.shape[1] // q1
                    M11[start : start + m] += np.einsum("rla,rlb->lab", Kc.reshape(Rdim, m, q1),
                                                        Y.reshape(Rdim, m, q1))
                out[name] = lam @ M11 @ lam.T
                continue
            idx = np.hstack([offsets[k] + np.arange(cp.l_terms[k] * cp.q_terms[k]).reshape(cp.l_terms[k], -1)
                             for k in ks])  # (ℓ, q): the factor's columns of level l
            ell, q = idx.shape
            blocks = np.empty((ell, q, q))
            step = max(1, CONDVAR_COLUMNS // q)
            for start in range(0, ell, step):
                rows = idx[start : start + step]
                m = rows.shape[0]
                E = np.zeros((Rdim, m * q))
                E[rows.ravel(), np.arange(m * q)] = 1.0
                Y = self.schur.solve(E)  # columns of M_rr⁻¹
                blocks[start : start + m] = Y[rows[:, :, None], np.arange(m * q).reshape(m, q)[:, None, :]]
            out[name] = lam @ blocks @ lam.T
        return out


def _level_indicator(sizes: list[int]) -> sp.csr_matrix:
    """The 0/1 matrix (columns × levels) whose column l marks the ``sizes[l]`` columns of level l."""
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    return sp.csr_matrix((np.ones(int(sizes_arr.sum())), (np.arange(int(sizes_arr.sum())),
                                                          np.repeat(np.arange(sizes_arr.size), sizes_arr))))


def _block_diag(blocks: list) -> np.ndarray:
    q = sum(b.shape[0] for b in blocks)
    out, offset = np.zeros((q, q)), 0
    for b in blocks:
        out[offset : offset + b.shape[0], offset : offset + b.shape[0]] = b
        offset += b.shape[0]
    return out


class SparseSchurDeviance(BlockedDeviance):
    """The blocked profiled deviance (:class:`~lmmteach.lmm.blocked.BlockedDeviance`) with a sparse Schur
    complement M_rr (module docstring): the same deviance, conditional modes and variances, no gradient."""

    search = "COBYQA"  # no exact gradient: the derivative-free search (module docstring)

    def __init__(self, crossproducts, structures, reml: bool = True, order: np.ndarray | None = None):
        super().__init__(crossproducts, structures, reml)
        self._order = order

    def _new(self, crossproducts=None, covariance=None, reml: bool | None = None):
        """The same model changed (:meth:`DevianceFunction._new`), keeping the fill-reducing order when
        the random-effects design is the same (a new response, REML switched)."""
        out = super()._new(crossproducts, covariance, reml)
        if out.cp.Arr is self.cp.Arr and out.cp.A_r1 is self.cp.A_r1:
            out._order = self._order
        return out

    @property
    def order(self) -> np.ndarray:
        """The fill-reducing order of M_rr, found once from its pattern (that of Z_r'Z_r + Z_r'Z₁Z₁'Z_r + I,
        whatever θ), after checking that the factor is affordable (:data:`MAX_FACTOR_FLOPS`)."""
        if self._order is None:
            cp = self.cp
            # by levels (a level's q_j columns together: Λ mixes them), Z_r'Z_r + Z_r'Z₁Z₁'Z_r, then by columns
            Kr = _level_indicator([cp.q_terms[k] for k in cp.rest for _ in range(cp.l_terms[k])])
            K1 = _level_indicator([cp.A11.shape[1]] * cp.A11.shape[0])
            A = Kr.T @ abs(sp.csr_matrix(cp.A_r1)) @ K1
            pattern = Kr @ (Kr.T @ abs(sp.csr_matrix(cp.Arr)) @ Kr + A @ A.T) @ Kr.T
            pattern = pattern + sp.diags(np.asarray(pattern.sum(axis=1)).ravel() + 1.0)  # any values will do
            order = fill_reducing_order(pattern)
            nnz, flops = cholesky_cost(sp.csc_matrix(pattern)[order][:, order], MAX_FACTOR_FLOPS)
            if flops > MAX_FACTOR_FLOPS:
                names = ", ".join(dict.fromkeys(cp.terms[k][0] for k in cp.rest))
                raise ValueError(
                    f"the random effects of {names} ({pattern.shape[0]:,} columns outside the first grouping factor) "
                    f"have no cheap exact factor: one factorisation would cost more than {MAX_FACTOR_FLOPS:.0e} "
                    f"flops (MAX_FACTOR_FLOPS; already {nnz:,} non-zeros in part of the factor). Their levels meet "
                    "those of the first factor without cluster structure (e.g. at random), which fills in any "
                    "exact sparse factor (lme4's too); clustered designs (levels crossed within clinics, schools, "
                    "batches) are cheap")
            self._order = order
        return self._order

    def _evaluate(self, theta, gradient: bool = False) -> SparseSchurEvaluation:
        if gradient:
            raise NotImplementedError(
                "this model's Schur complement is sparse (lmmteach.lmm.sparse_schur: more than "
                f"{SPARSE_SCHUR_COLUMNS:,} random effects outside the first grouping factor) and has no exact "
                "gradient: profiles, bootstrap refits and Satterthwaite's degrees of freedom are not available for it")
        theta, lambdas = self._set_theta(theta)  # 1. set θ
        L11, logdet, RZX1, Lam_r, Lr1 = self._factor_block_1(lambdas)  # 2.-3. blocks 1 and r1, as dense
        # 4. block rr, sparse: M_rr = Λ_r'Z_r'Z_rΛ_r + I − L_r1 L_r1'
        Lr1 = sp.csr_matrix(Lr1)
        Mrr = Lam_r.T @ self.cp.Arr @ Lam_r - Lr1 @ Lr1.T + sp.identity(Lam_r.shape[0], format="csr")
        schur = SparseCholesky(Mrr, self.order)
        l1, q1 = L11.shape[:2]
        B = np.asarray(Lam_r.T @ self.cp.ZrXy) - np.asarray(Lr1 @ RZX1.reshape(l1 * q1, -1))
        gram = B.T @ schur.solve(B)  # R_ZXr'R_ZXr = B'M_rr⁻¹B
        gram = 0.5 * (gram + gram.T)
        # 5. X and y, as the dense engine
        return self._solve_fixed(SparseSchurEvaluation, theta, lambdas, L11, logdet + schur.logdet, RZX1, Lr1,
                                 gram, Lrr=None, RZXr=None, schur=schur, rhs_r=B)


def mk_sparse_schur_devfun(design, reml: bool = True) -> SparseSchurDeviance:
    """The blocked profiled deviance of a design with the sparse Schur complement."""
    return SparseSchurDeviance(BlockedCrossproducts.from_design(design, sparse_schur=True), design.structures(),
                               reml=reml)
