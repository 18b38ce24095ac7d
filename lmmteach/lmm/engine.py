"""Which engine computes a design's profiled deviance (lme4's ``mkLmerDevfun``): the one place that asks.

* one grouping factor (the notes' block-diagonal Σ* = diag(Z_i Σ Z_i' + σ² I)): the per-group fast path,
  :class:`~lmmteach.lmm.deviance.ProfiledDeviance`;
* several, crossed or nested: the blocked Cholesky factor, :class:`~lmmteach.lmm.blocked.BlockedDeviance`;
* speed only: several whose Schur complement (the random effects outside the first factor) has more than
  :data:`~lmmteach.lmm.sparse_schur.SPARSE_SCHUR_COLUMNS` columns: the same blocks with that Schur complement
  sparse, :class:`~lmmteach.lmm.sparse_schur.SparseSchurDeviance` (no exact gradient: a derivative-free fit).

Both implement :class:`~lmmteach.lmm.profiled.DevianceFunction`, so nothing downstream (the optimiser, the
fitted model, profiles, the bootstrap, Satterthwaite) needs to know which one it holds. (``gls`` builds its
own :class:`~lmmteach.lmm.gls.GLSDeviance`, the same interface without random effects.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .blocked import mk_blocked_devfun
from .deviance import one_factor_devfun
from .profiled import RandomEffectsDeviance
from .sparse_schur import SPARSE_SCHUR_COLUMNS, mk_sparse_schur_devfun, schur_columns

if TYPE_CHECKING:
    from .design import Design

__all__ = ["mk_devfun"]


def mk_devfun(design: Design, reml: bool = True) -> RandomEffectsDeviance:
    """The profiled deviance θ ↦ d(θ) of a :class:`~lmmteach.lmm.design.Design` (lme4's ``mkLmerDevfun``):
    the per-group path for one grouping factor, the blocked Cholesky factor for several (its Schur complement
    sparse when large)."""
    if len(design.factors) == 1:
        return one_factor_devfun(design, reml=reml)
    if schur_columns(design) > SPARSE_SCHUR_COLUMNS:
        return mk_sparse_schur_devfun(design, reml=reml)
    return mk_blocked_devfun(design, reml=reml)
