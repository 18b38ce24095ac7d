"""The profiled deviance for any number of grouping factors: the mixed-model equations solved by blocks.

With several grouping factors (crossed such as plates × samples, or nested such as casks in batches) the
covariance of y is no longer block diagonal by groups, but the mixed-model equations, rescaled by Λ,

    [ Λ'Z'ZΛ + I   Λ'Z'X ] [ ũ ]   [ Λ'Z'y ]
    [ X'ZΛ         X'X   ] [ b̂ ] = [ X'y   ]

still have a structure to exploit (Bates et al. 2015, §3; MixedModels.jl's blocked Cholesky factor). Put
the random terms in lme4's order (most levels first), call the terms of the first grouping factor block 1
and all the others block r ("the rest"):

* M₁₁ = Λ₁'Z₁'Z₁Λ₁ + I is **block diagonal**, one q₁ × q₁ block per level (each row has one level of
  factor 1): its Cholesky factor L₁₁ costs what the one-factor path costs;
* L_r1 = Λ_r'Z_r'Z₁Λ₁ L₁₁⁻ᵀ is **sparse** (only level pairs that occur together are non-zero);
* the rest is a **dense** Schur complement, M_rr = Λ_r'Z_r'Z_rΛ_r + I − L_r1 L_r1' = L_rr L_rr', of the size
  of the smaller factors' random effects only (for InstEval-shaped data 1,142 × 1,142, not 4,114 × 4,114);
  when it has thousands of columns it is factored as a sparse matrix instead (speed only, the same deviance:
  :mod:`lmmteach.lmm.sparse_schur`);
* then X and y: R_ZX = L⁻¹Λ'Z'[X y] by the two blocks, and the (p+1) × (p+1) Schur complement
  [X y]'[X y] − R_ZX'R_ZX, whose Cholesky factor holds X'V⁻¹X and the penalised residual sum of squares.

    profiled ML deviance   d(θ)   = log|L|² + n [1 + log(2π r²/n)]
    profiled REML          d_R(θ) = log|L|² + log|R_X|² + (n − p) [1 + log(2π r²/(n − p))]

The cross-products never change with θ and are formed once, in one pass over the data; an evaluation then
never touches the n rows.

**The exact gradient** (``evaluate(theta, gradient=True)``; the fit, bootstrap refits and profiles use it,
:func:`lmmteach.lmm.optimize.optimize_lmer`). As with one
factor (:mod:`lmmteach.lmm.deviance`), d depends on θ only through C = Σ/σ², term j's block I_ℓⱼ ⊗ C_j, and

    ∂d/∂C_j = Σ_{levels l of term j} [ W_ll − (dof/r²) s_l s_l' − (REML) P_l A⁻¹ P_l' ],
    W = Z'V⁻¹Z,   s = Z'V⁻¹r,   P = Z'V⁻¹X,   V = I + ZCZ',   A = X'V⁻¹X,

then ∂d/∂θ_k = Σ_j tr(∂d/∂C_j ∂C_j/∂θ_k). From V⁻¹ = I − ZΛM⁻¹Λ'Z' and M = LL', with T = L⁻¹Λ'Z'Z:

    W = Z'Z − T'T,     Z'V⁻¹[X y] = Z'[X y] − T'R_ZX.

Only the diagonal blocks of T'T are needed (summed over the levels), and T is taken by the blocks of L:

* columns of block r: T_1r = U' with U = Z_r'Z₁Λ₁L₁₁⁻ᵀ (sparse; L_r1 = Λ_r'U) and
  T_rr = L_rr⁻¹ Λ_r'H, H = Z_r'Z_r − UU' (= Z_r'V₁⁻¹Z_r with V₁ = I + Z₁C₁Z₁'): one dense triangular solve;
* columns of block 1: T₁₁ = L₁₁⁻¹Λ₁'Z₁'Z₁ (per level) and T_r1 = L_rr⁻¹ G with G = Λ_r'Z_r'Z₁ − L_r1T₁₁
  sparse; T_r1 itself would be dense (R × ℓ₁q₁: too big for InstEval), but only Σ_l G_l'M_rr⁻¹G_l is
  needed, an inner product of M_rr⁻¹ = L_rr⁻ᵀL_rr⁻¹ with the sparse G G'.

No n × n matrix and no inverse of the whole M: the dense work is that of the R × R block.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import block_diag, cho_solve, cholesky, lapack, solve_triangular

from .deviance import Crossproducts, InverseBlocks, ProfiledDeviance, forward_solve, thin_qr
from .profiled import FixedEffectsInQRBasis, RandomEffectsDeviance, check_residual_left, profiled_deviance

__all__ = ["BlockedCrossproducts", "BlockedEvaluation", "BlockedDeviance", "mk_blocked_devfun"]


def _term_matrix(Z: np.ndarray, group: np.ndarray, n_levels: int) -> sp.csc_matrix:
    """Z_j as a sparse n × (ℓ_j q_j) matrix, columns level-major (level l, column c at l q_j + c)."""
    n, q = Z.shape
    rows = np.repeat(np.arange(n), q)
    cols = (group[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csc_matrix((Z.ravel(), (rows, cols)), shape=(n, n_levels * q))


def _per_level(A: np.ndarray, B: np.ndarray, group: np.ndarray, n_levels: int) -> np.ndarray:
    """Σ over the rows t of level l of a_t b_t' for every level: (ℓ, columns of A, columns of B)."""
    out = np.empty((n_levels, A.shape[1], B.shape[1]))
    for i in range(A.shape[1]):
        for j in range(B.shape[1]):
            out[:, i, j] = np.bincount(group, weights=A[:, i] * B[:, j], minlength=n_levels)
    return out


def _block_diagonal(B: np.ndarray) -> sp.csr_matrix:
    """The sparse block-diagonal matrix of a stack B of ℓ blocks (ℓ, q, q) (scipy's ``block_diag`` of a list is
    slow for thousands of tiny blocks)."""
    ell, q = B.shape[:2]
    first = (np.arange(ell) * q)[:, None, None]
    rows = np.broadcast_to(first + np.arange(q)[None, :, None], B.shape)
    cols = np.broadcast_to(first + np.arange(q)[None, None, :], B.shape)
    return sp.csr_matrix((B.ravel(), (rows.ravel(), cols.ravel())), shape=(ell * q, ell * q))


MAX_SCHUR_BYTES = 2**31
"""The dense Schur complement M_rr (R × R doubles) may take at most this much memory (2 GiB): beyond it this
engine stops with a clear error instead of a MemoryError (:func:`lmmteach.lmm.engine.mk_devfun` hands large
ones to the sparse Schur complement, :mod:`lmmteach.lmm.sparse_schur`, long before)."""

TRACE_FORMULA_MIN_THETA = 1e-2
"""Speed only. With scalar terms and every θ_j at least this, the gradient takes W_j = Σ_l W_ll from the
diagonal of M⁻¹: Λ Z'V⁻¹Z Λ = Λ(Z'Z − Z'ZΛM⁻¹ΛZ'Z)Λ = (M − I) − (M − I)M⁻¹(M − I) = I − M⁻¹, so
W_j = (ℓ_j − tr_j M⁻¹)/θ_j², and ΛZ'V⁻¹[Q e] = M⁻¹ΛZ'[Q e] (back substitution). This saves the R × R
matrix H and a triangular solve with R right-hand sides. The difference 1 − (M⁻¹)_ii loses about
−2 log₁₀ θ_j digits, hence the floor (1e-2: four digits of sixteen); below it the general blocks."""

DENSE_FILL = 0.25
"""Z_r'Z₁ is kept dense when at least this fraction of its entries are non-zero (e.g. fully crossed subjects ×
items): then dense products beat sparse ones many times over. Speed only: the algebra is the same."""


def _full(x) -> np.ndarray:
    """A dense array of a sparse or dense matrix."""
    return x.toarray() if sp.issparse(x) else np.asarray(x)


def _times_block_diagonal(A, B: np.ndarray):
    """A · blockdiag(B_1, ..., B_ℓ) for a stack B of ℓ (q, k) blocks: sparse A by a sparse product, dense A
    level by level (speed only)."""
    if sp.issparse(A):
        return (A @ _block_diagonal(B)).tocsr()
    ell, q, k = B.shape
    out = np.matmul(A.reshape(A.shape[0], ell, q).transpose(1, 0, 2), B)  # (ℓ, R, k)
    return out.transpose(1, 0, 2).reshape(A.shape[0], ell * k)


def _column_pairs(A_r1: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Speed only (the scalar path). For scalar terms, L_r1 L_r1' = D_r (Z_r'Z₁ W Z₁'Z_r) D_r with diagonal D_r and W = diag(w_l) that change
    with θ. Its lower triangle is a sum over the levels l of factor 1 of w_l a_il a_jl: we list every
    (i ≥ j, l) once, level by level -- the flat position i·R + j, the product a_il a_jl, the order of the
    levels and the number of pairs of each -- so that an evaluation is one weighted ``bincount``."""
    C = _sorted_csc(A_r1)
    pos, first, second, levels, per_level = _column_pair_index(C)
    return pos, C.data[first] * C.data[second], levels, per_level


def _sorted_csc(A) -> sp.csc_matrix:
    C = A.tocsc()
    C.sort_indices()
    return C


def _column_pair_index(C: sp.csc_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_column_pairs` of a CSC matrix with sorted indices, with a_il and a_jl as indices into ``C.data``."""
    R = C.shape[0]
    counts = np.diff(C.indptr)
    pos, first, second, level_lists = [], [], [], []
    for k in np.unique(counts[counts > 0]):  # the levels with k non-zeros, all at once
        cols = np.flatnonzero(counts == k)
        take = C.indptr[cols][:, None] + np.arange(k)[None, :]
        rows = C.indices[take].astype(np.int64)
        i, j = np.tril_indices(k)
        pos.append((rows[:, i] * R + rows[:, j]).ravel())
        first.append(take[:, i].ravel())
        second.append(take[:, j].ravel())
        level_lists.append(cols)
    levels = np.concatenate(level_lists)  # the pairs come level by level, in this order of the levels
    per_level = counts[levels] * (counts[levels] + 1) // 2
    return np.concatenate(pos), np.concatenate(first), np.concatenate(second), levels, per_level


@dataclass(frozen=True)
class BlockedCrossproducts:
    """The cross-products of [Z X y], formed once (X in the orthonormal basis X = QR, y replaced by its OLS
    residual e, as in :class:`~lmmteach.lmm.deviance.Crossproducts`; this changes no estimate).

    Block 1 holds the terms of the first grouping factor (ℓ₁ levels, q₁ columns per level together), block r
    the other terms' columns side by side (R columns in all)."""

    first: tuple[int, ...]  # indices of the terms in block 1
    rest: tuple[int, ...]  # indices of the other terms, in order
    q_terms: tuple[int, ...]  # q_j of every term
    l_terms: tuple[int, ...]  # ℓ_j of every term
    A11: np.ndarray  # (ℓ₁, q₁, q₁)  Z₁'Z₁ per level
    A_r1: sp.csr_matrix | np.ndarray  # (R, ℓ₁q₁)  Z_r'Z₁ (dense when ``DENSE_FILL`` of it is non-zero)
    Arr: np.ndarray | sp.csr_matrix  # (R, R)  Z_r'Z_r (sparse for the sparse Schur complement)
    Z1Xy: np.ndarray  # (ℓ₁, q₁, p + 1)  Z₁'[Q e] per level
    ZrXy: np.ndarray  # (R, p + 1)  Z_r'[Q e]
    yty: float  # e'e
    n: int
    R: np.ndarray  # X = Q R
    b_ols: np.ndarray | None  # None only while the cross-products are being built
    Q: np.ndarray
    Zt: sp.csr_matrix  # (ℓ₁q₁ + R) × n: Z' = [Z₁ Z_r]' (kept to redo Z'e for a new response), rows never weighted
    col_rms: np.ndarray  # root mean square of each term's columns (for starting values)
    pairs: tuple | None = None  # scalar terms only: see :func:`_column_pairs`
    terms: tuple = ()  # (grouping factor, Z rows (n × q_j; times row_scale when set), level index, ℓ_j) of every
    #                    term, for starting values
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    log_weights: float = 0.0  # Σ log w_i of prior weights; −2ℓ loses it (as in Crossproducts)
    row_scale: np.ndarray | None = None  # √w after :meth:`reweighted`: the rows of Z (Zt', terms) scaled by it

    @classmethod
    def from_design(cls, design, sparse_schur: bool = False) -> "BlockedCrossproducts":
        """The cross-products of a design; with prior weights every row of X, Z and y is scaled by √w_i and
        an offset is subtracted from y first (:meth:`Design.fitting_arrays`). With ``sparse_schur`` Z_r'Z_r
        and Z_r'Z₁ stay sparse, for :class:`~lmmteach.lmm.sparse_schur.SparseSchurDeviance`."""
        X, Zrows, y = design.fitting_arrays()
        Zs = np.split(Zrows, np.cumsum([b.q for b in design.blocks])[:-1], axis=1)
        blocks = [replace(b, Z=Z) for b, Z in zip(design.blocks, Zs)]
        first_name = blocks[0].group_name
        first = tuple(k for k, b in enumerate(blocks) if b.group_name == first_name)
        rest = tuple(k for k, b in enumerate(blocks) if b.group_name != first_name)
        l1 = blocks[0].n_levels
        # block 1: the first factor's terms side by side, one row of Z₁ per observation (level-major)
        Z1_rows = np.hstack([blocks[k].Z for k in first])
        group1 = blocks[0].group
        Z1 = _term_matrix(Z1_rows, group1, l1)
        Zr = sp.hstack([_term_matrix(blocks[k].Z, blocks[k].group, blocks[k].n_levels) for k in rest]).tocsc()
        Q, R = np.linalg.qr(X)
        A11 = _per_level(Z1_rows, Z1_rows, group1, l1)
        A_r1 = (Zr.T @ Z1).tocsr()
        scalar = all(b.q == 1 for b in blocks) and len(first) == 1
        if not scalar and A_r1.nnz >= DENSE_FILL * A_r1.shape[0] * A_r1.shape[1]:
            A_r1 = A_r1.toarray()
        if sparse_schur:  # M_rr stays sparse (:mod:`lmmteach.lmm.sparse_schur`): no dense R × R matrix
            A_r1 = sp.csr_matrix(A_r1)
            scalar = False
        elif 8 * Zr.shape[1] ** 2 > MAX_SCHUR_BYTES:
            sizes = ", ".join(f"{blocks[k].group_name} ({blocks[k].n_levels} levels x {blocks[k].q})" for k in rest)
            raise ValueError(f"the random effects of {sizes} make a dense {Zr.shape[1]:,} x {Zr.shape[1]:,} Schur "
                             f"complement ({8 * Zr.shape[1] ** 2 / 2**30:.1f} GiB), more than this engine forms "
                             f"(MAX_SCHUR_BYTES = {MAX_SCHUR_BYTES / 2**30:.0f} GiB): use the sparse Schur "
                             "complement (lmmteach.lmm.sparse_schur; lmer chooses it for large ones)")
        Arr = (Zr.T @ Zr).tocsr() if sparse_schur else (Zr.T @ Zr).toarray()
        ZQ1 = _per_level(Z1_rows, Q, group1, l1)
        col_rms = np.sqrt(np.concatenate([np.mean(b.Z ** 2, axis=0) for b in blocks]))
        blank = cls(first, rest, tuple(b.q for b in blocks), tuple(b.n_levels for b in blocks), A11, A_r1, Arr,
                    ZQ1, np.asarray(Zr.T @ Q), 0.0, len(design.y), R, None, Q, sp.vstack([Z1.T, Zr.T]).tocsr(),
                    col_rms,
                    _column_pairs(A_r1) if scalar else None,
                    tuple((b.group_name, b.Z, b.group, b.n_levels) for b in blocks), X, y,
                    design.log_weights)
        out = blank.with_response(y)
        check_residual_left(out.yty, y)
        return out

    def Z_times(self, M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Z'M by the two blocks for n-row M (a vector or a matrix): Z₁'M per level (ℓ₁, q₁, ...) and Z_r'M
        (R, ...); after :meth:`reweighted` the rows of Z are scaled by √w, so this is Z'W^½M."""
        M = np.asarray(M, float)
        if self.row_scale is not None:  # (C order: the sparse product copies anything else first)
            M = np.multiply(M, self.row_scale.reshape((-1,) + (1,) * (M.ndim - 1)), order="C")
        ZM = np.asarray(self.Zt @ M)
        l1, q1 = self.A11.shape[:2]
        return ZM[: l1 * q1].reshape((l1, q1) + M.shape[1:]), ZM[l1 * q1 :]

    def with_response(self, y) -> "BlockedCrossproducts":
        """The same design with a new response: only the products with y change."""
        y = np.asarray(y, float)
        Qty = self.Q.T @ y
        e = y - self.Q @ Qty
        Z1e, Zre = self.Z_times(e)
        Z1Xy = np.concatenate([self.Z1Xy[:, :, :-1] if self.b_ols is not None else self.Z1Xy,
                               Z1e[:, :, None]], axis=2)
        ZrXy = np.concatenate([self.ZrXy[:, :-1] if self.b_ols is not None else self.ZrXy, Zre[:, None]], axis=1)
        return replace(self, Z1Xy=Z1Xy, ZrXy=ZrXy, yty=float(e @ e), b_ols=np.linalg.solve(self.R, Qty), y=y)

    def without_column(self, k: int) -> "BlockedCrossproducts":
        """The same design without column k of X (a fixed effect's profile holds β_k at a given value and
        moves v x_k into the response: :meth:`with_response` then gives y − v x_k)."""
        assert self.X is not None, "built by from_design"
        X = np.delete(self.X, k, axis=1)
        Q, R = np.linalg.qr(X)
        Z1Q, ZrQ = self.Z_times(Q)
        blank = replace(self, X=X, Q=Q, R=R, Z1Xy=Z1Q, ZrXy=ZrQ, b_ols=None)
        return blank.with_response(self.y)

    @property
    def p(self) -> int:
        return self.R.shape[0]

    @property
    def scalar(self) -> bool:
        """Every term a scalar random effect (1 | g), one in block 1: Λ is diagonal
        (:meth:`BlockedDeviance._evaluate_scalar`)."""
        return len(self.first) == 1 and all(q == 1 for q in self.q_terms)

    @property
    def rest_offsets(self) -> dict[int, int]:
        """The first column of each term of block r among block r's R columns."""
        starts = np.cumsum([0] + [self.q_terms[k] * self.l_terms[k] for k in self.rest])
        return {k: int(s) for k, s in zip(self.rest, starts)}

    def reweighted(self, weights, y) -> "BlockedCrossproducts":
        """Speed only (a GLMM's PIRLS asks for one per iteration). The cross-products of the same rows with prior
        weights w and response y: with W = diag(w),

            Z₁'WZ₁ (per level),  Z_r'WZ₁,  Z_r'WZ_r,  Z'W^½Q and e'e with W^½X = QR, e = W^½y − QQ'W^½y,

        i.e. what :meth:`from_design` gives for the design with these weights and response, but the index
        structure (where each row's products land, :class:`_ReweightingIndex`) is reused: only weighted
        ``bincount`` s over the n rows, products with the unweighted Z' and the QR of W^½X are new (Z itself is
        never copied: ``row_scale`` = √w). Call it on cross-products built without prior weights."""
        if self.row_scale is not None:
            raise ValueError("reweighted() takes cross-products built without prior weights (these are reweighted)")
        w = np.asarray(weights, float)
        sw = np.sqrt(w)
        index = self._reweighting_index
        X = self.X * sw[:, None]
        Q, R = thin_qr(X)
        l1 = self.A11.shape[0]
        A11 = _per_level(index.Z1_values * w[:, None], index.Z1_values, index.group1, l1)
        A_r1 = index.r1.weighted_sum(w)
        Arr = index.rr.weighted_sum(w)
        pairs = None
        if index.pairs is not None:  # the level pairs' products a_il a_jl with the new values
            pos, first, second, levels, per_level = index.pairs
            values = A_r1.data
            pairs = (pos, values[first] * values[second], levels, per_level)
        col_rms = np.sqrt(w @ index.Z_squares / len(w))  # of the weighted columns √w z
        weighted = replace(self, row_scale=sw)
        Z1Q, ZrQ = weighted.Z_times(Q)
        blank = replace(weighted, A11=A11, A_r1=A_r1, Arr=Arr, Z1Xy=Z1Q, ZrXy=ZrQ, R=R, b_ols=None, Q=Q,
                        col_rms=col_rms, pairs=pairs, X=X, log_weights=float(np.log(w).sum()))
        return blank.with_response(np.asarray(y, float) * sw)

    @cached_property
    def _reweighting_index(self) -> "_ReweightingIndex":
        return _ReweightingIndex.of(self)


@dataclass(frozen=True)
class _WeightedSum:
    """Speed only (:meth:`BlockedCrossproducts.reweighted`): a cross-product Σ_t w_t a_t b_t' of the rows of two
    blocks of Z, as the products a_ti b_tj of every row t listed once, pair of columns by pair of columns --
    their value (k × n: k pairs of columns) and slot (the flat position of (i, j), or its place among the
    non-zeros of a sparse pattern) -- so that a new weighting is one weighted ``bincount``."""

    value: np.ndarray
    slot: np.ndarray
    shape: tuple[int, int]
    indices: np.ndarray | None  # the CSR pattern (None: a dense array)
    indptr: np.ndarray | None

    @classmethod
    def of(cls, left: list, right: list, shape: tuple[int, int], n: int, dense: bool | None) -> "_WeightedSum":
        """``left``, ``right``: (column index, value) per row for every column of the two blocks (n-vectors);
        ``dense`` None: sparse unless at least ``DENSE_FILL`` of the entries are non-zero."""
        keys = np.concatenate([ri * shape[1] + ci for ri, _ in left for ci, _ in right])
        value = np.array([rv * cv for _, rv in left for _, cv in right]).reshape(-1, n)
        pattern = np.unique(keys)  # the pattern from the rows themselves (a product may sum to zero unweighted)
        if dense is None:
            dense = len(pattern) >= DENSE_FILL * shape[0] * shape[1]
        if dense:
            return cls(value, keys, shape, None, None)
        prow, indices = np.divmod(pattern, shape[1])
        indptr = np.r_[0, np.cumsum(np.bincount(prow, minlength=shape[0]))]
        return cls(value, np.searchsorted(pattern, keys), shape, indices, indptr)

    def weighted_sum(self, w: np.ndarray) -> np.ndarray | sp.csr_matrix:
        """Σ_t w_t a_t b_t' (dense, or CSR with the stored pattern)."""
        size = self.shape[0] * self.shape[1] if self.indices is None else len(self.indices)
        values = np.bincount(self.slot, weights=(self.value * w).ravel(), minlength=size)
        if self.indices is None:
            return values.reshape(self.shape)
        return sp.csr_matrix((values, self.indices, self.indptr), shape=self.shape)


@dataclass(frozen=True)
class _ReweightingIndex:
    """Speed only (:meth:`BlockedCrossproducts.reweighted`): where every row's products land in the cross-products.
    A row t with weight w_t adds w_t · value to a slot (the same row, value and slot for every weighting)."""

    Z1_values: np.ndarray  # n × q₁: the rows of Z₁ (block 1's terms side by side)
    group1: np.ndarray
    Z_squares: np.ndarray  # n × Σq_j: every term's Z rows squared (for the columns' root mean squares)
    r1: _WeightedSum  # Z_r'WZ₁: dense when ``DENSE_FILL`` full (then scalar terms take dense products too)
    rr: _WeightedSum  # Z_r'WZ_r: dense R × R, or sparse for the sparse Schur complement
    pairs: tuple | None  # scalar terms with a sparse Z_r'Z₁: (position, first, second, levels, per level), i.e.
    #                      :func:`_column_pairs` with a_il, a_jl as indices into the stored values of Z_r'WZ₁

    @classmethod
    def of(cls, cp: BlockedCrossproducts) -> "_ReweightingIndex":
        Z1_values = np.hstack([cp.terms[k][1] for k in cp.first])
        group1 = cp.terms[cp.first[0]][2]
        n = len(group1)
        # every column of Z_r row by row: (column of Z_r, value), as for Z₁
        r_cols, offset = [], 0
        for k in cp.rest:
            _, Z, group, ell = cp.terms[k]
            q = Z.shape[1]
            r_cols += [(offset + group * q + a, Z[:, a]) for a in range(q)]
            offset += ell * q
        one_cols = [(group1 * Z1_values.shape[1] + b, Z1_values[:, b]) for b in range(Z1_values.shape[1])]
        sparse_schur = sp.issparse(cp.Arr)  # keeps Z_r'Z₁ and Z_r'Z_r sparse
        r1 = _WeightedSum.of(r_cols, one_cols, cp.A_r1.shape, n,
                             False if sparse_schur else True if not sp.issparse(cp.A_r1) else None)
        rr = _WeightedSum.of(r_cols, r_cols, cp.Arr.shape, n, not sparse_schur)
        pairs = None
        if cp.pairs is not None and r1.indices is not None:  # the pairs of the stored values' labels 0, 1, ...
            labels = _sorted_csc(sp.csr_matrix((np.arange(len(r1.indices), dtype=float), r1.indices, r1.indptr),
                                               shape=cp.A_r1.shape))
            pos, first, second, levels, per_level = _column_pair_index(labels)
            pairs = (pos, labels.data[first].astype(np.int64), labels.data[second].astype(np.int64), levels,
                     per_level)
        Z_squares = np.hstack([t[1] for t in cp.terms]) ** 2
        return cls(Z1_values, group1, Z_squares, r1, rr, pairs)


@dataclass(frozen=True)
class BlockedEvaluation(FixedEffectsInQRBasis):
    """One evaluation of the blocked profiled deviance (the pieces of the blocked Cholesky factor)."""

    theta: np.ndarray
    deviance: float
    cp: BlockedCrossproducts
    A_Q: np.ndarray  # Q'V⁻¹Q
    beta_Q: np.ndarray
    pwrss: float
    sigma2: float
    lambdas: list  # λ_j of every term (q_j × q_j)
    L11: np.ndarray  # (ℓ₁, q₁, q₁)
    Lr1: sp.csr_matrix | np.ndarray  # (R, ℓ₁q₁), sparse or dense as Z_r'Z₁
    Lrr: np.ndarray | None  # (R, R); None for the sparse Schur complement (which keeps its own factor)
    RZX1: np.ndarray  # (ℓ₁, q₁, p + 1)
    RZXr: np.ndarray | None  # (R, p + 1); None for the sparse Schur complement
    logdet_V: float
    gradient: np.ndarray | None = None  # ∂(deviance)/∂θ
    dC: np.ndarray | None = None  # ∂(deviance)/∂C, block diagonal over the terms (q × q, q = Σ q_j)
    dlogdetV_dC: np.ndarray | None = None  # ∂log|V|/∂C_j = Σ_l W_ll, same layout
    dpwrss_dC: np.ndarray | None = None  # ∂(r'V⁻¹r)/∂C_j = −Σ_l s_l s_l', same layout

    @cached_property
    def C(self) -> np.ndarray:
        """C = Σ/σ² of the terms, block diagonal in the terms' order (the layout of ``dC``)."""
        return block_diag(*[lam @ lam.T for lam in self.lambdas])

    @cached_property
    def u(self) -> tuple[np.ndarray, np.ndarray]:
        """Spherical random effects by back substitution through the blocks: (block 1 (ℓ₁, q₁), block r (R,))."""
        p = self.beta_Q.size
        ur = self._u_rest()
        l1, q1 = self.L11.shape[:2]
        rhs_1 = self.RZX1[:, :, p] - self.RZX1[:, :, :p] @ self.beta_Q - np.asarray(self.Lr1.T @ ur).reshape(l1, q1)
        u1 = np.linalg.solve(np.swapaxes(self.L11, 1, 2), rhs_1[:, :, None])[:, :, 0]
        return u1, ur

    def _u_rest(self) -> np.ndarray:
        """ũ_r = L_rr⁻ᵀ(R_ZXr,y − R_ZXr,X b̂), the last block of the back substitution."""
        assert self.Lrr is not None and self.RZXr is not None  # the dense factor (the sparse one overrides this)
        p = self.beta_Q.size
        rhs_r = self.RZXr[:, p] - self.RZXr[:, :p] @ self.beta_Q
        return solve_triangular(self.Lrr, rhs_r, lower=True, trans="T", check_finite=False)

    @property
    def u_vector(self) -> np.ndarray:
        """ũ as one vector (block 1, then block r), for |ũ|² in a GLMM's penalised deviance."""
        return np.concatenate([np.ravel(part) for part in self.u])

    @property
    def blups(self) -> list[np.ndarray]:
        """The conditional modes (:attr:`term_blups`)."""
        return self.term_blups

    @cached_property
    def term_blups(self) -> list[np.ndarray]:
        """b̂_j = λ_j u_j for every term j: (ℓ_j × q_j) arrays, the conditional modes."""
        cp = self.cp
        u1, ur = self.u
        out: list = [None] * len(cp.q_terms)
        offset = 0
        for k in cp.first:
            q = cp.q_terms[k]
            out[k] = u1[:, offset : offset + q] @ self.lambdas[k].T
            offset += q
        offset = 0
        for k in cp.rest:
            size = cp.q_terms[k] * cp.l_terms[k]
            out[k] = ur[offset : offset + size].reshape(cp.l_terms[k], cp.q_terms[k]) @ self.lambdas[k].T
            offset += size
        return out

    def inverse_blocks(self) -> InverseBlocks:
        """The entries of M⁻¹ (M = Λ'Z'ZΛ + I = LL', u-space) at the pairs of random effects that can meet in a
        row, for a GLMM's exact Laplace gradient (:mod:`lmmteach.glmm.laplace_gradient`, the leverages
        z_i'ΛM⁻¹Λ'z_i). By the 2 × 2 block inverse of M = [[M₁₁, M_1r], [M_r1, M_rr,full]] with M₁₁ = L₁₁L₁₁',
        L_r1 = M_r1L₁₁⁻ᵀ and the Schur complement S = M_rr,full − L_r1L_r1' = L_rrL_rr':

            [M⁻¹]_rr = S⁻¹,    [M⁻¹]_r1 = −S⁻¹K,    [M⁻¹]_11,l = L₁₁,l⁻ᵀL₁₁,l⁻¹ + K_l'S⁻¹K_l,
            K = L_r1 L₁₁⁻¹  (R × ℓ₁q₁, level l's columns K_l = L_r1,l L₁₁,l⁻¹);

        only the diagonal blocks of the first factor are kept (a row meets one of its levels), the r1 and rr
        blocks whole (R × ℓ₁q₁ and R × R, dense). Dense factor only (the sparse Schur complement has none)."""
        assert self.Lrr is not None  # the dense factor (the sparse one has no such method)
        l1, q1 = self.L11.shape[:2]
        L11inv = np.linalg.inv(self.L11)
        S_inv = _inverse_lower(self.Lrr)
        S_inv = np.tril(S_inv) + np.tril(S_inv, -1).T
        K = _full(_times_block_diagonal(self.Lr1, L11inv))  # R × ℓ₁q₁
        SK = S_inv @ K
        first = np.swapaxes(L11inv, 1, 2) @ L11inv + np.einsum("rla,rlb->lab", K.reshape(-1, l1, q1),
                                                                 SK.reshape(-1, l1, q1))
        return InverseBlocks(first, -SK, S_inv)

    def solve_M(self, v: np.ndarray) -> np.ndarray:
        """M⁻¹v for a vector v in the order of :attr:`u_vector` (block 1 level by level, then block r), through
        the blocked factor: forward x₁ = L₁₁⁻¹v₁, x_r = L_rr⁻¹(v_r − L_r1x₁); back y_r = L_rr⁻ᵀx_r,
        y₁ = L₁₁⁻ᵀ(x₁ − L_r1'y_r). Dense factor only."""
        assert self.Lrr is not None
        l1, q1 = self.L11.shape[:2]
        v = np.asarray(v, float)
        x1 = forward_solve(self.L11, v[: l1 * q1].reshape(l1, q1, 1))[:, :, 0]
        xr = solve_triangular(self.Lrr, v[l1 * q1 :] - self.Lr1 @ x1.ravel(), lower=True, check_finite=False)
        yr = solve_triangular(self.Lrr, xr, lower=True, trans="T", check_finite=False)
        rhs1 = x1 - np.asarray(self.Lr1.T @ yr).reshape(l1, q1)
        y1 = np.linalg.solve(np.swapaxes(self.L11, 1, 2), rhs1[:, :, None])[:, :, 0]
        return np.concatenate([y1.ravel(), yr])

    def condvar(self, factor_terms: dict[str, list[int]]) -> dict[str, np.ndarray]:
        """Var(b | y)/σ² = Λ [M⁻¹]_ll Λ' for every level l of every grouping factor, (ℓ, q, q) with q the
        factor's random effects (all its terms): the diagonal blocks of M⁻¹ = L⁻ᵀL⁻¹, from the blocks of
        L⁻¹ = [[L₁₁⁻¹, 0], [−L_rr⁻¹ L_r1 L₁₁⁻¹, L_rr⁻¹]] -- never all of M⁻¹ (computed once, for the BLUPs'
        intervals)."""
        cp = self.cp
        l1, q1 = self.L11.shape[:2]
        L11inv = np.linalg.inv(self.L11)
        assert self.Lrr is not None  # the dense factor (the sparse one overrides this)
        Rdim = self.Lrr.shape[0]
        Lrr_inv = solve_triangular(self.Lrr, np.eye(Rdim), lower=True, check_finite=False)
        W = Lrr_inv @ _full(_times_block_diagonal(self.Lr1, L11inv))  # R × ℓ₁q₁
        Wl = W.reshape(Rdim, l1, q1)
        M11 = L11inv.transpose(0, 2, 1) @ L11inv + np.einsum("rli,rlj->lij", Wl, Wl)
        Mrr = Lrr_inv.T @ Lrr_inv
        offsets = cp.rest_offsets
        out = {}
        for name, ks in factor_terms.items():
            lam = block_diag(*[self.lambdas[k] for k in ks])
            if ks[0] in cp.first:
                out[name] = lam @ M11 @ lam.T
                continue
            idx = np.hstack([offsets[k] + np.arange(cp.l_terms[k] * cp.q_terms[k]).reshape(cp.l_terms[k], -1)
                             for k in ks])  # (ℓ, q): the factor's columns of level l
            out[name] = lam @ Mrr[idx[:, :, None], idx[:, None, :]] @ lam.T
        return out


class BlockedDeviance(RandomEffectsDeviance):
    """θ ↦ −2 × profiled (restricted when ``reml``) log-likelihood for any number of grouping factors (the
    :class:`~lmmteach.lmm.profiled.DevianceFunction` interface, as
    :class:`~lmmteach.lmm.deviance.ProfiledDeviance`), with the exact gradient."""

    def _column_rms(self) -> np.ndarray:
        return self.cp.col_rms

    def factor(self, theta) -> np.ndarray:
        return block_diag(*[s.factor(t) for s, t in zip(self.structures, self.split(theta))])

    def without_fixed_effect(self, k: int) -> "BlockedDeviance":
        """The same model without column k of X (the same response): the deviance of a fixed effect's
        profile, whose response is then y − v x_k (:meth:`with_y`)."""
        return self._new(self.cp.without_column(k))

    def factor_deviances(self) -> list:
        """For each grouping factor: (its terms, the one-factor deviance of the model with only those terms,
        fast per-group cross-products; None when that model cannot be formed)."""
        cp = self.cp
        out: list = []
        for name in dict.fromkeys(t[0] for t in cp.terms):
            ks = [k for k, t in enumerate(cp.terms) if t[0] == name]
            _, _, group, n_levels = cp.terms[ks[0]]
            Z = np.hstack([cp.terms[k][1] for k in ks])
            Z = Z if cp.row_scale is None else Z * cp.row_scale[:, None]
            try:
                one = ProfiledDeviance(Crossproducts.from_arrays(cp.X, Z, cp.y, group, n_levels),
                                       [self.structures[k] for k in ks], reml=self.reml)
            except (ValueError, np.linalg.LinAlgError):
                one = None
            out.append((ks, one))
        return out

    def _lambda_rest(self, lambdas) -> sp.csr_matrix:
        """Λ_r = blockdiag(I_ℓⱼ ⊗ λ_j) over the terms of block r, as one sparse matrix (built from its
        entries: scipy's kron and block_diag cost more than an evaluation of a small model)."""
        cp = self.cp
        rows, cols, vals, offset = [], [], [], 0
        for k in cp.rest:
            lam, ell = lambdas[k], cp.l_terms[k]
            q = lam.shape[0]
            r, c = np.nonzero(lam)
            first = offset + q * np.arange(ell)[:, None]
            rows.append((first + r).ravel())
            cols.append((first + c).ravel())
            vals.append(np.tile(lam[r, c], ell))
            offset += q * ell
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(offset, offset))

    def _evaluate(self, theta, gradient: bool = False) -> BlockedEvaluation:
        """The profiled deviance at θ (the module docstring); with ``gradient`` also ∂d/∂θ and ∂d/∂C."""
        e = self._factor_and_solve(theta)
        return self.with_gradient(e) if gradient else e

    def with_gradient(self, e: BlockedEvaluation) -> BlockedEvaluation:
        """``e`` with ∂d/∂θ and ∂d/∂C, from the factor it holds (no second factorisation)."""
        if e.gradient is not None:
            return e
        dC, W, S = self._gradient_C(e)
        grad = np.concatenate([np.einsum("ij,kij->k", G, s.relcov_grad(t))
                               for G, s, t in zip(dC, self.structures, self.split(e.theta))])
        return replace(e, gradient=grad, dC=_on_diagonal(dC), dlogdetV_dC=_on_diagonal(W), dpwrss_dC=_on_diagonal(S))

    def _factor_and_solve(self, theta) -> BlockedEvaluation:
        theta, lambdas = self._set_theta(theta)  # 1. set θ
        if self.cp.pairs is not None or (self.cp.scalar and not sp.issparse(self.cp.A_r1)):
            return self._evaluate_scalar(theta, lambdas)
        L11, logdet, RZX1, _, Lr1 = self._factor_block_1(lambdas)
        # 4. block rr: dense Schur complement M_rr = Λ_r'Z_r'Z_rΛ_r + I − L_r1 L_r1'
        lam_r_T = self._lambda_rest_T_times
        Mrr = lam_r_T(lambdas, lam_r_T(lambdas, self.cp.Arr).T)  # Λ_r'(Z_r'Z_r)Λ_r (Z_r'Z_r symmetric)
        Mrr -= _full(Lr1 @ Lr1.T)
        Mrr[np.diag_indices_from(Mrr)] += 1.0
        return self._finish(theta, lambdas, L11, logdet, RZX1, Lr1, Mrr, lam_r_T(lambdas, self.cp.ZrXy))

    def _lambda_rest_T_times(self, lambdas, M: np.ndarray) -> np.ndarray:
        """Speed only. Λ_r'M for a dense M with block r's rows: Λ_r = blockdiag(I_ℓⱼ ⊗ λ_j), so the q_j rows of
        each level of term j are multiplied by λ_j' (the product with the sparse :meth:`_lambda_rest`, without
        building it)."""
        M = np.asarray(M, float)
        out = np.empty_like(M)
        offset = 0
        for k in self.cp.rest:
            q, ell = self.cp.q_terms[k], self.cp.l_terms[k]
            rows = slice(offset, offset + ell * q)
            out[rows] = (lambdas[k].T @ M[rows].reshape(ell, q, -1)).reshape(ell * q, -1)
            offset += ell * q
        return out

    def _set_theta(self, theta) -> tuple[np.ndarray, list]:
        """θ checked, and the terms' λ_j."""
        theta = np.atleast_1d(np.asarray(theta, float))
        if theta.shape != (self.n_theta,):
            raise ValueError(f"theta must have {self.n_theta} value(s) for this model, got {theta.size}")
        return theta, [s.factor(t) for s, t in zip(self.structures, self.split(theta))]

    def _factor_block_1(self, lambdas):
        """Steps 2 and 3: L₁₁ (per level), log|L₁₁|², R_ZX1 = L₁₁⁻¹Λ₁'Z₁'[X y], Λ_r (sparse; None when Z_r'Z₁ is
        dense, which then takes Λ_r' level by level) and L_r1."""
        cp = self.cp
        lam1 = block_diag(*[lambdas[k] for k in cp.first])
        q1 = cp.A11.shape[1]
        # 2. block 1: M₁₁ = Λ₁'Z₁'Z₁Λ₁ + I, one q₁ × q₁ block per level
        L11 = np.linalg.cholesky(lam1.T @ cp.A11 @ lam1 + np.eye(q1))
        logdet = 2.0 * np.log(np.diagonal(L11, axis1=1, axis2=2)).sum()
        RZX1 = forward_solve(L11, lam1.T @ cp.Z1Xy)  # L₁₁⁻¹Λ₁'Z₁'[X y]
        # 3. block r1: L_r1 = Λ_r'(Z_r'Z₁)Λ₁L₁₁⁻ᵀ, sparse with the pattern of Z_r'Z₁
        if sp.issparse(cp.A_r1):
            Lam_r = self._lambda_rest(lambdas)
            LamA = Lam_r.T @ cp.A_r1
        else:
            Lam_r, LamA = None, self._lambda_rest_T_times(lambdas, cp.A_r1)
        right = np.linalg.inv(L11) @ lam1.T  # (L₁₁⁻¹Λ₁')_l; its transpose per level multiplies from the right
        Lr1 = _times_block_diagonal(LamA, np.swapaxes(right, 1, 2))
        return L11, logdet, RZX1, Lam_r, Lr1

    def _evaluate_scalar(self, theta, lambdas) -> BlockedEvaluation:
        """Speed only. The same steps when every term is a scalar random effect (1 | g): Λ is diagonal, so the blocks are
        rescaled cross-products, L_r1 = diag(d_r) Z_r'Z₁ diag(d₁) and L_r1 L_r1' = diag(d_r) Z_r'Z₁ diag(d₁²) Z₁'Z_r
        diag(d_r): one weighted sum over level pairs (:func:`_column_pairs`) for a sparse Z_r'Z₁, one product for a
        dense one (a reweighted fully crossed design, :meth:`BlockedCrossproducts.reweighted`)."""
        cp = self.cp
        t1 = lambdas[cp.first[0]][0, 0]
        dr = np.concatenate([np.full(cp.l_terms[k], lambdas[k][0, 0]) for k in cp.rest])
        a = cp.A11[:, 0, 0]
        L11 = np.sqrt(t1 * t1 * a + 1.0)  # M₁₁ = t₁² Z₁'Z₁ + I is diagonal
        logdet = 2.0 * np.log(L11).sum()
        d1 = t1 / L11
        RZX1 = (t1 / L11)[:, None] * cp.Z1Xy[:, 0, :]
        A = cp.A_r1
        Rdim = cp.Arr.shape[0]
        if cp.pairs is None:  # dense Z_r'Z₁
            Lr1 = (dr[:, None] * A) * d1[None, :]
            G = (A * (d1 * d1)[None, :]) @ A.T
        else:
            Lr1 = sp.csr_matrix((A.data * dr[np.repeat(np.arange(A.shape[0]), np.diff(A.indptr))] * d1[A.indices],
                                 A.indices, A.indptr), shape=A.shape)
            pos, prod, levels, per_level = cp.pairs
            G = np.bincount(pos, weights=prod * np.repeat((d1 * d1)[levels], per_level),
                            minlength=Rdim * Rdim).reshape(Rdim, Rdim)  # its lower triangle
        Mrr = np.asarray(cp.Arr - G, dtype=float)  # lower triangle of Λ_r'Z_r'Z_rΛ_r − L_r1L_r1', in place:
        Mrr *= dr[:, None]
        Mrr *= dr[None, :]
        Mrr[np.diag_indices_from(Mrr)] += 1.0
        return self._finish(theta, lambdas, L11[:, None, None], logdet, RZX1[:, None, :], Lr1, Mrr,
                            dr[:, None] * cp.ZrXy)

    def _finish(self, theta, lambdas, L11, logdet, RZX1, Lr1, Mrr, LamZrXy) -> BlockedEvaluation:
        """Blocks rr, then X and y, then the profiled deviance."""
        l1, q1 = L11.shape[:2]
        Lrr = cholesky(Mrr, lower=True, check_finite=False, overwrite_a=True)
        logdet += 2.0 * np.log(np.diag(Lrr)).sum()
        rhs = LamZrXy - Lr1 @ RZX1.reshape(l1 * q1, -1)
        RZXr = solve_triangular(Lrr, rhs, lower=True, check_finite=False)
        return self._solve_fixed(BlockedEvaluation, theta, lambdas, L11, logdet, RZX1, Lr1, RZXr.T @ RZXr,
                                 Lrr=Lrr, RZXr=RZXr)

    def _solve_fixed(self, evaluation, theta, lambdas, L11, logdet, RZX1, Lr1, RZXr_gram, **blocks_rr):
        """5. X and y: the (p+1) × (p+1) Schur complement  [X y]'[X y] − R_ZX'R_ZX  (R_ZXr'R_ZXr given as
        ``RZXr_gram``), b̂, the penalised RSS and the profiled deviance; ``blocks_rr`` are the factor's
        rr pieces for the evaluation."""
        cp, n, p = self.cp, self.cp.n, self.p
        l1, q1 = L11.shape[:2]
        R1 = RZX1.reshape(l1 * q1, -1)
        S = -(R1.T @ R1) - RZXr_gram
        S[:p, :p] += np.eye(p)
        S[p, p] += cp.yty
        A = S[:p, :p]
        Xty = S[:p, p]
        RX = np.linalg.cholesky(A)
        beta = cho_solve((RX, True), Xty, check_finite=False)
        pwrss = max(float(S[p, p] - Xty @ beta), 1e-300)
        dof = n - p if self.reml else n
        dev = profiled_deviance(logdet, pwrss, n, p, self.reml, 2.0 * np.log(np.diag(RX)).sum() + self._logdet_R2,
                                cp.log_weights)
        return evaluation(theta=theta, deviance=float(dev), cp=cp, A_Q=A, beta_Q=beta, pwrss=pwrss,
                          sigma2=pwrss / dof, lambdas=lambdas, L11=L11, Lr1=Lr1, RZX1=RZX1, logdet_V=float(logdet),
                          **blocks_rr)

    def _gradient_blocks(self, e: BlockedEvaluation):
        """The pieces of the gradient (module docstring): W summed over the levels of block 1 (q₁ × q₁),
        Z₁'V⁻¹[Q e] (ℓ₁, q₁, p + 1), H (R × R), T_rr and Z_r'V⁻¹[Q e] (R, p + 1)."""
        cp = self.cp
        l1, q1 = e.L11.shape[:2]
        lam1 = block_diag(*[e.lambdas[k] for k in cp.first])
        Lam_r = self._lambda_rest(e.lambdas)
        right = np.linalg.solve(e.L11, np.broadcast_to(lam1.T, (l1, q1, q1)))  # L₁₁,l⁻¹Λ₁'
        U = _times_block_diagonal(cp.A_r1, np.swapaxes(right, 1, 2))  # Z_r'Z₁Λ₁L₁₁⁻ᵀ
        T11 = right @ cp.A11  # (ℓ₁, q₁, q₁)
        G = Lam_r.T @ (cp.A_r1 - _times_block_diagonal(U, T11))  # R × ℓ₁q₁, sparse (or dense)
        G = G.tocsr() if sp.issparse(G) else G
        H = cp.Arr - _full(U @ U.T)  # Z_r'V₁⁻¹Z_r
        LamH = np.asarray(Lam_r.T @ H)
        Trr = solve_triangular(e.Lrr, LamH, lower=True, check_finite=False)
        assert e.Lrr is not None  # the dense factor
        Mrr_inv = _inverse_lower(e.Lrr)  # (lower triangle; read at [max, min] below)
        # Z'V⁻¹[Q e] = Z'[Q e] − T'R_ZX, by blocks (T_r1'R_ZXr = G'L_rr⁻ᵀR_ZXr)
        F = solve_triangular(e.Lrr, e.RZXr, lower=True, trans="T", check_finite=False)
        R1 = e.RZX1.reshape(l1 * q1, -1)
        Y1 = cp.Z1Xy - np.swapaxes(T11, 1, 2) @ e.RZX1 - np.asarray(G.T @ F).reshape(l1, q1, -1)
        Yr = cp.ZrXy - np.asarray(U @ R1) - LamH.T @ F  # T_rr'R_ZXr = H'Λ_r L_rr⁻ᵀR_ZXr
        # W summed over the levels: block 1 (ℓ₁, q₁, q₁), then the terms of block r
        W1 = (cp.A11 - np.swapaxes(T11, 1, 2) @ T11).sum(axis=0)
        if not sp.issparse(G):  # dense: Σ_l G_l'M_rr⁻¹G_l directly (M_rr⁻¹'s upper triangle mirrored)
            Minv = np.tril(Mrr_inv) + np.tril(Mrr_inv, -1).T
            G3 = G.reshape(G.shape[0], l1, q1)
            W1 -= G3.reshape(-1, q1).T @ (Minv @ G).reshape(-1, q1)  # Σ_r Σ_l G_rla (M⁻¹G)_rlb
            return W1, Y1, self._rest_W(H, Trr), Yr
        for a in range(q1):
            for b in range(a, q1):
                GG = (G[:, a::q1] @ G[:, b::q1].T).tocoo()  # Σ_l G_la G_lb'
                W1[a, b] -= float(np.sum(Mrr_inv[np.maximum(GG.row, GG.col), np.minimum(GG.row, GG.col)] * GG.data))
                W1[b, a] = W1[a, b]
        return W1, Y1, self._rest_W(H, Trr), Yr

    def _rest_W(self, H: np.ndarray, Trr: np.ndarray) -> list[np.ndarray]:
        """W_j = Σ_l W_ll for each term j of block r: the diagonal blocks of H − T_rr'T_rr summed over the
        levels (W_rr = Z_r'V⁻¹Z_r = H − T_rr'T_rr, T_rr = L_rr⁻¹Λ_r'H)."""
        cp = self.cp
        Rdim = H.shape[0]
        out, offset = [], 0
        for k in cp.rest:
            q, ell = cp.q_terms[k], cp.l_terms[k]
            sl = slice(offset, offset + ell * q)
            Hk = H[sl, sl].reshape(ell, q, ell, q)[np.arange(ell), :, np.arange(ell), :]  # (ℓ, q, q) diagonal blocks
            Tk = Trr[:, sl].reshape(Rdim, ell, q)
            out.append(Hk.sum(axis=0) - np.einsum("rla,rlb->ab", Tk, Tk))
            offset += ell * q
        return out

    @cached_property
    def _pair_matrix(self) -> sp.csr_matrix:
        """Speed only. The level pairs (:func:`_column_pairs`) as a sparse (R², ℓ₁) matrix: row i·R + j (i ≥ j),
        column l, entry a_il a_jl, doubled where i > j (such a pair stands for (i, j) and (j, i) in a sum over
        all pairs). Σ_l w_l Σ_pairs of l a_il a_jl x_ij is then one sparse product, x' (P w); built on the
        first gradient (a deviance evaluated without one, e.g. in a PIRLS step, never pays for it)."""
        assert self.cp.pairs is not None
        pos, prod, levels, per_level = self.cp.pairs
        Rdim = self.cp.Arr.shape[0]
        doubled = np.where(pos // Rdim == pos % Rdim, prod, 2.0 * prod)
        return sp.csr_matrix((doubled, (pos, np.repeat(levels, per_level))), shape=(Rdim * Rdim, self.cp.A11.shape[0]))

    def _gradient_blocks_scalar(self, e: BlockedEvaluation):
        """Speed only. :meth:`_gradient_blocks` when every term is (1 | g) (as :meth:`_evaluate_scalar`): with
        d₁ = t₁/L₁₁ and Λ_r = diag(d_r), U = Z_r'Z₁ diag(d₁), T₁₁ = d₁ a (a = Z₁'Z₁, per level),
        G = diag(d_r) Z_r'Z₁ diag(1/L₁₁²) and H = Z_r'Z_r − Z_r'Z₁ diag(d₁²) Z₁'Z_r (one weighted ``bincount``
        over the level pairs, as in the evaluation); Σ_l g_l'M_rr⁻¹g_l is a sum over the same pairs."""
        cp = self.cp
        t1 = e.lambdas[cp.first[0]][0, 0]
        dr = np.concatenate([np.full(cp.l_terms[k], e.lambdas[k][0, 0]) for k in cp.rest])
        a = cp.A11[:, 0, 0]
        L11 = e.L11[:, 0, 0]
        d1 = t1 / L11
        A = cp.A_r1
        assert cp.pairs is not None
        pos, prod, levels, per_level = cp.pairs
        Rdim = cp.Arr.shape[0]
        assert e.Lrr is not None  # the dense factor
        Mrr_inv = _inverse_lower(e.Lrr)  # lower triangle: pos = i·R + j with i ≥ j reads it
        F = solve_triangular(e.Lrr, e.RZXr, lower=True, trans="T", check_finite=False)
        trace_formula = min(t1, dr.min()) >= TRACE_FORMULA_MIN_THETA
        if trace_formula:  # speed only: W_rr and Z_r'V⁻¹[Q e] from M_rr⁻¹ and ũ-like solves, no H
            m = np.diag(Mrr_inv)
            W_rest, offset = [], 0
            for k in cp.rest:
                ell = cp.l_terms[k]
                W_rest.append(np.array([[(ell - m[offset : offset + ell].sum()) / e.lambdas[k][0, 0] ** 2]]))
                offset += ell
            Yr = F / dr[:, None]  # Λ_r Z_r'V⁻¹[Q e] = [M⁻¹ΛZ'[Q e]]_r = L_rr⁻ᵀR_ZXr
        else:
            UU = np.bincount(pos, weights=prod * np.repeat((d1 * d1)[levels], per_level), minlength=Rdim * Rdim)
            H = cp.Arr - UU.reshape(Rdim, Rdim)  # lower triangle right; mirror it
            H = np.tril(H) + np.tril(H, -1).T
            Trr = solve_triangular(e.Lrr, dr[:, None] * H, lower=True, check_finite=False)
            W_rest = self._rest_W(H, Trr)
        Mrr_inv *= dr[:, None]
        Mrr_inv *= dr[None, :]  # Λ_r M_rr⁻¹ Λ_r, as G = Λ_r Z_r'Z₁ diag(1/L₁₁²)
        W1 = np.sum(a - (d1 * a) ** 2) - float(Mrr_inv.ravel() @ (self._pair_matrix @ (1.0 / L11**4)))
        R1 = e.RZX1[:, 0, :]
        Y1 = cp.Z1Xy[:, 0, :] - (d1 * a)[:, None] * R1 - np.asarray(A.T @ (dr[:, None] * F)) / (L11 * L11)[:, None]
        if not trace_formula:
            Yr = cp.ZrXy - np.asarray(A @ (d1[:, None] * R1)) - H @ (dr[:, None] * F)
        return np.array([[W1]]), Y1[:, None, :], W_rest, Yr

    def _gradient_C(self, e: BlockedEvaluation) -> tuple[list, list, list]:
        """Per term j (the design's order): ∂d/∂C_j = W_j − (dof/r²) S_j − [REML] Σ_l P_l A⁻¹P_l', with its
        two parts W_j = Σ_l W_ll (= ∂log|V|/∂C_j) and −S_j = −Σ_l s_l s_l' (= ∂(r'V⁻¹r)/∂C_j); the blocks
        of T = L⁻¹Λ'Z'Z as in the module docstring."""
        cp, p = self.cp, self.p
        W1, Y1, W_rest, Yr = self._gradient_blocks_scalar(e) if cp.pairs is not None else self._gradient_blocks(e)
        dof = cp.n - p if self.reml else cp.n
        RX = np.linalg.cholesky(e.A_Q)
        dC, Ws, Ss = [None] * len(cp.q_terms), [None] * len(cp.q_terms), [None] * len(cp.q_terms)

        def finish(k, W, Yk):  # Yk: (ℓ_k, q_k, p + 1), the term's rows of Z'V⁻¹[Q e]
            s = Yk[:, :, p] - Yk[:, :, :p] @ e.beta_Q
            S = s.T @ s
            D = W - (dof / e.pwrss) * S
            if self.reml:  # Σ_l P_l A⁻¹ P_l' with P_l = Yk[l, :, :p]
                Pk = solve_triangular(RX, Yk[:, :, :p].reshape(-1, p).T, lower=True, check_finite=False)
                D = D - _level_sums(Pk.T.reshape(Yk.shape[0], Yk.shape[1], p))
            dC[k], Ws[k], Ss[k] = D, W, -S

        offset = 0
        for k in cp.first:
            q = cp.q_terms[k]
            sl = slice(offset, offset + q)
            finish(k, W1[sl, sl], Y1[:, sl, :])
            offset += q
        offset = 0
        for k, W in zip(cp.rest, W_rest):
            q, ell = cp.q_terms[k], cp.l_terms[k]
            finish(k, W, Yr[offset : offset + ell * q].reshape(ell, q, -1))
            offset += ell * q
        return dC, Ws, Ss


def _inverse_lower(L: np.ndarray) -> np.ndarray:
    """The lower triangle of M⁻¹ from the lower Cholesky factor L of M (LAPACK's potri; the strict upper
    triangle of the result is not M⁻¹'s)."""
    inv, info = lapack.dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular Cholesky factor")
    return inv


def _on_diagonal(blocks: list) -> np.ndarray:
    """The square blocks side by side on a block diagonal (scipy's ``block_diag`` costs more than the
    gradient of a small model)."""
    q = sum(b.shape[0] for b in blocks)
    out = np.zeros((q, q))
    offset = 0
    for b in blocks:
        out[offset : offset + b.shape[0], offset : offset + b.shape[0]] = b
        offset += b.shape[0]
    return out


def _level_sums(P: np.ndarray) -> np.ndarray:
    """Σ_l P_l P_l' for a stack P of (ℓ, q, p) blocks."""
    return np.einsum("lap,lbp->ab", P, P)



def mk_blocked_devfun(design, reml: bool = True) -> BlockedDeviance:
    """The blocked profiled deviance of a :class:`~lmmteach.lmm.design.Design` with several grouping factors."""
    return BlockedDeviance(BlockedCrossproducts.from_design(design), design.structures(), reml=reml)
