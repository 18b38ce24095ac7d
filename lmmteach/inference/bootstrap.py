"""The parametric bootstrap (notes: "Inference for Fixed Effects": "Could consider bootstrapping data to
obtain non-asymptotic significance results").

The χ²_k reference of the likelihood-ratio statistic D = 2 [LL(M1) − LL(M0)] is a large-sample result, and
on the boundary of the parameter space even its χ̄² correction is only asymptotic. The parametric
bootstrap replaces the asymptotic distribution by simulation from the fitted null model M0:

    y* = X b̂ + Z v* + e*,     v*_i ~ N(0, Σ̂)  (one draw per group),     e* ~ N(0, σ̂² I),

then refits both models to y* and records D* = 2 [LL*(M1) − LL*(M0)]. The bootstrap p-value is

    p = (1 + #{D* ≥ D}) / (nsim + 1).

Each refit reuses the design's cross-products and starts at the original estimates, and the refits of a
batch of simulated responses run together on the stacked deviance (:meth:`LinearMixedModel.refit_many`), so
a thousand refits of the grocery or sleepstudy models take a fraction of a second. The same simulate-and-refit loop gives percentile confidence intervals (:mod:`lmmteach.inference.confint`).
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._util import warn_user
from ..lmm.model import simulate_response as simulate  # one response from a fitted model (lme4's simulate)
from ..lmm.optimize import one_blas_thread
from .lrt import _check_models, lrt_statistic

__all__ = ["simulate", "parametric_bootstrap", "BootstrapLRT", "bootstrap_lrt"]


def show_progress(progress: bool) -> bool:
    """Draw a progress bar only when asked and someone can see it: in a Jupyter kernel or on a terminal
    (not when the output goes to a log file, a pipe or a test run)."""
    if not progress:
        return False
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell":
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


BATCH_SIZE = 100
"""Simulated responses refitted together (:meth:`LinearMixedModel.refit_many`). Fixed — not derived from
``n_jobs`` — so that the same batches are computed whatever the number of worker processes."""


def parametric_bootstrap(model, statistic, nsim: int = 1000, seed=None, progress: bool = True,
                         simulate_from=None, desc: str = "bootstrap", n_jobs: int = 1,
                         many: bool = False) -> np.ndarray:
    """lme4's ``bootMer``: for each of ``nsim`` responses simulated from ``simulate_from`` (default
    ``model``), call ``statistic(y_star)`` and stack the results (rows = simulations). A simulation whose
    refit fails gives a row of NaN.

    With ``many=True``, ``statistic(Y)`` takes a stack of simulated responses, shape (K, n), and returns K
    rows: the form for statistics built on :meth:`LinearMixedModel.refit_many`, which refits the K
    responses together (as :func:`bootstrap_lrt` and ``confint(method="boot")`` do).

    The responses are drawn in this process, one after another from the one stream of ``seed``, in batches
    of :data:`BATCH_SIZE`. ``n_jobs`` > 1 (or −1: every core) computes the batches in that many worker
    processes; the rows are returned in draw order, so the result is the same whatever ``n_jobs``.
    """
    from tqdm.auto import tqdm

    n_jobs = _check_n_jobs(n_jobs)
    source = model if simulate_from is None else simulate_from
    rng = np.random.default_rng(seed)
    sizes = [min(BATCH_SIZE, int(nsim) - k) for k in range(0, int(nsim), BATCH_SIZE)]
    draw = getattr(source, "simulate_response", None) or (lambda rng: simulate(source, rng))  # glmer fits: their own
    batches = (np.stack([draw(rng) for _ in range(k)]) for k in sizes)
    task = (statistic, many)
    blocks = []
    with tqdm(total=int(nsim), disable=not show_progress(progress), desc=desc, leave=False) as bar:
        if n_jobs == 1:
            with one_blas_thread():
                for Y in batches:
                    blocks.append(_apply_batch(task, Y))
                    bar.update(len(Y))
        else:
            global _TASK
            import multiprocessing

            _TASK = task  # inherited by the forked workers (closures cannot be pickled)
            try:
                with multiprocessing.get_context("fork").Pool(n_jobs, initializer=_worker_init) as pool:
                    for block in pool.imap(_apply_inherited, batches):
                        blocks.append(block)
                        bar.update(len(block))
            finally:
                _TASK = None
    rows = [r for block in blocks for r in block]
    width = max((len(r) for r in rows if r is not None), default=1)
    return np.vstack([r if r is not None else np.full(width, np.nan) for r in rows])


_TASK: tuple | None = None


def _check_n_jobs(n_jobs) -> int:
    import os

    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive number of processes or -1 (every core), not {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


def _apply_batch(task, Y) -> list:
    """The rows of one batch of responses: ``statistic(Y)`` at once, or ``statistic(y)`` row by row."""
    statistic, many = task
    if not many:
        return [_apply(statistic, y) for y in Y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = np.asarray(statistic(Y), float)
    if out.ndim != 2 or len(out) != len(Y):
        raise ValueError(f"a statistic with many=True must return one row per response ({len(Y)}), "
                         f"got shape {out.shape}")
    return list(out)


def _apply(statistic, y):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.atleast_1d(np.asarray(statistic(y), float))
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return None


def _worker_init():
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # one BLAS thread per worker process


def _apply_inherited(Y):
    return _apply_batch(_TASK, Y)


@dataclass(frozen=True)
class BootstrapLRT:
    """The result of :func:`bootstrap_lrt` (immutable).

    ``statistic`` is the observed D, ``simulated`` the nsim values D* (NaN where a refit failed),
    ``p_value`` = (1 + #{D* ≥ D}) / (n + 1) over the n successful simulations.
    """

    statistic: float
    simulated: np.ndarray = field(repr=False)
    nsim: int
    df: int
    seed: object = None
    null_formula: str = ""
    alternative_formula: str = ""

    def __post_init__(self):
        self.simulated.setflags(write=False)

    @property
    def n_failed(self) -> int:
        return int(np.isnan(self.simulated).sum())

    @property
    def p_value(self) -> float:
        ok = self.simulated[~np.isnan(self.simulated)]
        return float((1 + np.sum(ok >= self.statistic - 1e-10)) / (len(ok) + 1))

    def __repr__(self) -> str:
        return (f"BootstrapLRT(D={self.statistic:.4f}, df={self.df}, nsim={self.nsim}, "
                f"p_value={self.p_value:.4g}{f', failed={self.n_failed}' if self.n_failed else ''})")

    def __str__(self) -> str:
        return (f"Parametric bootstrap LRT ({self.nsim} simulations from the null model"
                f"{f', {self.n_failed} failed' if self.n_failed else ''})\n"
                f"  M0: {self.null_formula}\n  M1: {self.alternative_formula}\n"
                f"  D = {self.statistic:.4f} on {self.df} parameter(s), bootstrap p = {self.p_value:.4g}")


def bootstrap_lrt(m1, m0, nsim: int = 1000, seed=None, progress: bool = True, n_jobs: int = 1) -> BootstrapLRT:
    """Parametric bootstrap of the likelihood-ratio test of M0 (null) within M1.

    Simulates ``nsim`` responses from the fitted M0, refits M0 and M1 to each (starting from their
    estimates), and compares the observed D with the simulated D*. REML fits are refitted by ML first,
    as :func:`lmmteach.anova` does. ``seed`` makes the result reproducible (``numpy.random.default_rng``),
    whatever the number of worker processes ``n_jobs`` (see :func:`parametric_bootstrap`).
    """

    _check_models((m1, m0))
    if m1.npar < m0.npar:
        m1, m0 = m0, m1
    if m1.reml or m0.reml:
        warn_user("refitting model(s) with ML (instead of REML)")
        m1, m0 = m1.refit_ml(), m0.refit_ml()
    observed = lrt_statistic(m1, m0)

    def statistic(Y):  # D* for a batch of simulated responses, both models refitted together
        return lrt_statistic(m1.refit_many(Y, theta0=m1.theta), m0.refit_many(Y, theta0=m0.theta))[:, None]

    sims = parametric_bootstrap(m0, statistic, nsim, seed, progress, desc="bootstrap LRT", n_jobs=n_jobs,
                                many=True)[:, 0]
    return BootstrapLRT(float(observed), sims, int(nsim), int(m1.npar - m0.npar), seed, m0.formula, m1.formula)
