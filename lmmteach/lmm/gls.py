"""Generalized least squares with a modelled within-group covariance: nlme's ``gls``, the MMRM.

Instead of random effects, the covariance of each group's observations is modelled directly. Group i has
its observations at time points P_i ⊆ {1, ..., T} (a subject may miss visits), and

    y_i = X_i b + e_i,      e_i ~ N(0, σ² V_i),      V_i = V[P_i, P_i],      V = D R D,

with R a T × T correlation matrix of a covariance structure (:mod:`lmmteach.lmm.covariance`, its scale
fixed at 1: ``cs``, ``ar1``, ``toep``, or ``un`` — every correlation free) and D = diag(1, δ_2, ..., δ_T)
the relative standard deviations of the time points (``heteroscedastic=True``, nlme's
``varIdent(~ 1 | time)``; δ_1 = 1 so that σ is the SD at the first time point). ``un`` with
``heteroscedastic=True`` is the unstructured covariance of the MMRM.

Estimation is the one of ``lmer`` (:mod:`lmmteach.lmm.deviance`): b̂ and σ̂² have closed forms given the
covariance parameters φ, so only φ is searched, on the profiled deviance

    ML:    −2ℓ   = log|V| + n [1 + log(2π r'V⁻¹r / n)]
    REML:  −2ℓ_R = log|V| + log|X'V⁻¹X| + (n − p) [1 + log(2π r'V⁻¹r / (n − p))].

Groups with the same missing pattern P share V_P⁻¹, so every sum over groups is a sum over patterns of
time-by-time cross-products computed once:  K_P[t, s] = Σ_{i ∈ P} w_it w_is',  w_it = (x_it, y_it), and

    X'V⁻¹X = Σ_P Σ_{t,s} (V_P⁻¹)_ts K_P[t, s]_XX,   X'V⁻¹y, y'V⁻¹y likewise.

One evaluation costs O(patterns · T² p²), whatever the number of groups; no n × n matrix is formed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.linalg
from scipy.special import expit

from .control import LmerControl
from .covariance import AR1, CAR1, CovarianceStructure, Unstructured, make_structure
from .profiled import DevianceFunction, FixedEffectsInQRBasis, profiled_deviance
from .design import _check_data, _codes, check_contrasts, _drop_rank_deficient, _fingerprint, model_frame, model_matrix, response_values
from .formula import Formula, parse_formula
from .fitted import ProfiledFit
from .optimize import OptimizerResult, one_blas_thread, optimize_lmer
from .._util import factor_levels, warn_user

if TYPE_CHECKING:
    from .display import GLSSummary

__all__ = ["CORRELATIONS", "ResidualCovariance", "PatternCrossproducts", "GLSDeviance", "GLS_CONTROL", "optimize_gls",
           "GLSFit", "gls"]

CORRELATIONS = (None, "cs", "ar1", "car1", "toep", "un")
"""The correlation structures of :func:`gls` (None: independent errors)."""

ORDERED_CORRELATIONS = ("ar1", "car1", "toep")
"""The structures whose correlations depend on the order and spacing of the times (not only their labels)."""

AR1_START = 0.2
"""The starting φ of ``ar1`` and ``car1`` (nlme's ``corCAR1(value = 0.2)``; car1's range (0, 1) excludes
independence, and ar1's deviance is even in φ when every lag is even, so φ = 0 is a stationary point)."""

MAX_LOG_DELTA = 300.0
"""|log δ_t| is held below this in V (a search walking off to a degenerate fit must not overflow)."""


# -- the covariance of one group's errors ---------------------------------------------------------------
class ResidualCovariance:
    """V(φ) = D R D over the T time points, relative to σ² (so Cov(y_i) = σ² V[P_i, P_i]).

    φ = (correlation parameters, log δ_2, ..., log δ_T). The correlation parameters are those of a
    structure from :mod:`lmmteach.lmm.covariance` with its scale fixed at 1: ω for ``cs``, ρ for ``ar1``,
    the partial autocorrelations for ``toep``; for ``un`` the strictly lower triangle of a factor Λ with
    unit diagonal, R = the correlation matrix of Λ Λ' (every correlation matrix has such a factor).
    """

    def __init__(self, correlation: str | None, T: int, heteroscedastic: bool = False, times=None):
        if correlation not in CORRELATIONS:
            raise ValueError(f"unknown correlation {correlation!r}; choose one of {list(CORRELATIONS)}")
        if correlation is not None and T < 2:
            raise ValueError(f"a {correlation!r} correlation needs at least 2 time points, the data have {T}")
        self.name, self.T, self.heteroscedastic = correlation, int(T), bool(heteroscedastic)
        self.structure: CovarianceStructure | None = None
        self._rows = self._cols = self._free = np.zeros(0, int)  # Λ's positions of θ (un); free θ's
        self._theta = np.zeros(0)
        if correlation is not None:
            s: CovarianceStructure
            if correlation in ("ar1", "car1"):  # ρ^|t_k − t_l| at the given times (default: positions)
                s = (CAR1 if correlation == "car1" else AR1)(self.T, times)
            else:
                s = make_structure("us" if correlation == "un" else correlation, self.T)
            self.structure = s
            if isinstance(s, Unstructured):
                self._rows, self._cols = s._rows, s._cols
                self._free = np.flatnonzero(s._rows != s._cols)  # Λ's strictly lower triangle
                self._theta = (s._rows == s._cols).astype(float)  # unit diagonal
            else:
                self._free = np.arange(1, s.n_params)  # all but the scale
                self._theta = np.r_[1.0, np.zeros(s.n_params - 1)]
                if isinstance(s, AR1):  # not at φ = 0: with even lags only (times 8, 10, 12, ...) the
                    self._theta[1] = AR1_START  # deviance is even in φ and φ = 0 a stationary point

    @property
    def n_corr(self) -> int:
        return len(self._free)

    @property
    def n_var(self) -> int:
        return self.T - 1 if self.heteroscedastic else 0

    @property
    def n_params(self) -> int:
        return self.n_corr + self.n_var

    @property
    def bounds(self) -> list[tuple[float, float]]:
        """No bounds: a correlation-type parameter in (lo, hi) is searched as x with
        parameter = lo + (hi − lo) / (1 + e^(−x)), so every φ gives a valid V."""
        return [(-np.inf, np.inf)] * self.n_params

    def structure_theta(self, phi) -> np.ndarray:
        """The structure's own θ (scale 1) for the correlation part of φ."""
        theta = self._theta.copy()
        x = np.asarray(phi, float)[: self.n_corr]
        bounds = self.structure.bounds if self.structure is not None else []
        for j, k in enumerate(self._free):
            lo, hi = bounds[k]
            theta[k] = lo + (hi - lo) * expit(x[j]) if np.isfinite(lo) else x[j]  # expit: no overflow
        return theta

    def _x_from_theta(self, theta) -> np.ndarray:
        x = np.empty(self.n_corr)
        bounds = self.structure.bounds if self.structure is not None else []
        for j, k in enumerate(self._free):
            lo, hi = bounds[k]
            x[j] = np.log((theta[k] - lo) / (hi - theta[k])) if np.isfinite(lo) else theta[k]
        return x

    @property
    def theta_scale(self) -> np.ndarray:
        return np.ones(self.n_params)

    def correlation(self, phi) -> np.ndarray:
        """R (T × T), the correlation matrix of the errors."""
        if self.structure is None:
            return np.eye(self.T)
        C = self.structure.relcov(self.structure_theta(phi))
        if isinstance(self.structure, Unstructured):
            d = np.sqrt(np.diag(C))
            C = C / np.outer(d, d)
        return C

    def delta(self, phi) -> np.ndarray:
        """(1, δ_2, ..., δ_T): the SD of each time point relative to the first."""
        if not self.heteroscedastic:
            return np.ones(self.T)
        return np.r_[1.0, np.exp(np.clip(np.asarray(phi, float)[self.n_corr :], -MAX_LOG_DELTA, MAX_LOG_DELTA))]

    def matrix(self, phi) -> np.ndarray:
        """V = D R D."""
        d = self.delta(phi)
        return self.correlation(phi) * np.outer(d, d)

    def correlation_grad(self, phi) -> np.ndarray:
        """∂R/∂x_j for the correlation parameters x of φ, shape (n_corr, T, T): the structure's ∂C/∂θ_k times
        dθ_k/dx_j = (θ_k − lo)(hi − θ_k)/(hi − lo) (the logistic map); for ``un``, with C = ΛΛ' and
        R_ij = C_ij / √(C_ii C_jj),  ∂R_ij = ∂C_ij / √(C_ii C_jj) − R_ij (∂C_ii / 2C_ii + ∂C_jj / 2C_jj)."""
        if self.structure is None:
            return np.zeros((0, self.T, self.T))
        theta = self.structure_theta(phi)
        dC = self.structure.relcov_grad(theta)[self._free]
        bounds = self.structure.bounds
        for j, k in enumerate(self._free):
            lo, hi = bounds[k]
            if np.isfinite(lo):  # at a bound the logistic map is flat: its 0 wins over an infinite ∂C/∂θ there
                factor = (theta[k] - lo) * (hi - theta[k]) / (hi - lo)  # (car1's φ^(lag−1) at φ = 0, lag < 1)
                dC[j] = dC[j] * factor if factor != 0 else 0.0
        if not isinstance(self.structure, Unstructured):
            return dC
        C = self.structure.relcov(theta)
        d = np.sqrt(np.diag(C))
        R = C / np.outer(d, d)
        half = np.diagonal(dC, axis1=1, axis2=2) / (2 * d * d)  # ∂C_ii / 2C_ii
        return dC / np.outer(d, d) - R * (half[:, :, None] + half[:, None, :])

    def matrix_grad(self, phi) -> np.ndarray:
        """∂V/∂φ_k, shape (k, T, T), exact: V = R ∘ δδ', so ∂V/∂x_j = ∂R/∂x_j ∘ δδ' for a correlation
        parameter and, for δ_t = e^(φ_t), ∂V/∂φ_t = V ∘ (e_t 1' + 1 e_t') (row and column t, twice at t,t)."""
        d = self.delta(phi)
        V = self.correlation(phi) * np.outer(d, d)
        out = np.empty((self.n_params, self.T, self.T))
        out[: self.n_corr] = self.correlation_grad(phi) * np.outer(d, d)
        for j, t in enumerate(range(1, self.T) if self.heteroscedastic else []):
            e = np.zeros(self.T)
            e[t] = 1.0
            out[self.n_corr + j] = V * (e[:, None] + e[None, :])
        return out

    def start(self, S: np.ndarray | None) -> np.ndarray:
        """Starting φ: independence, except that ``un`` starts at the correlations and a heteroscedastic
        fit at the SDs of a moment estimate S of Cov(y_i) (from OLS residuals), when S is usable."""
        phi = np.zeros(self.n_params)
        if self.structure is not None:
            phi[: self.n_corr] = self._x_from_theta(self._theta)
        if S is None or not np.all(np.isfinite(S)) or np.any(np.diag(S) <= 0):
            return phi
        d = np.sqrt(np.diag(S))
        if self.heteroscedastic:
            phi[self.n_corr :] = np.log(d[1:] / d[0])
        if isinstance(self.structure, Unstructured):
            try:
                L = np.linalg.cholesky(S / np.outer(d, d))
            except np.linalg.LinAlgError:
                return phi
            Lam = L / np.diag(L)[:, None]  # unit diagonal, the same correlation matrix
            phi[: self.n_corr] = Lam[self._rows, self._cols][self._free]
        return phi

    def parameter_names(self) -> list[str]:
        names = []
        if self.name in ("cs",):
            names = ["Rho"]
        elif self.name in ("ar1", "car1"):
            names = ["Phi"]
        elif self.name == "toep":
            names = [f"rho{k}" for k in range(1, self.T)]
        elif self.name == "un":
            names = [f"cor({c + 1},{r + 1})" for r, c in zip(self._rows, self._cols) if r != c]
        return names

    def correlation_parameters(self, phi) -> np.ndarray:
        """The printed correlation parameters: ω (cs), φ (ar1, car1: the correlation one time unit apart),
        ρ_1..ρ_{T−1} (toep), the correlations of R's lower triangle column by column (un)."""
        if self.name in ("ar1", "car1"):
            return self.structure_theta(phi)[1:2]
        R = self.correlation(phi)
        if self.name == "cs":
            return np.array([R[1, 0]])
        if self.name == "toep":
            return R[1:, 0].copy()
        if self.name == "un":
            keep = self._rows != self._cols
            return R[self._rows[keep], self._cols[keep]]
        return np.zeros(0)


# -- the cross-products, once per data set -----------------------------------------------------------------
@dataclass(frozen=True)
class PatternCrossproducts:
    """K_P[t, s] = Σ_{i with pattern P} w_it w_is' for every missing pattern P (w = (q_it, e_it)).

    As in :class:`lmmteach.lmm.deviance.Crossproducts`, X = Q R (thin QR) and y is replaced by its OLS
    residual e = y − X b_ols; no estimate changes (b̂ = R⁻¹ b̂_Q + b_ols).
    """

    patterns: tuple[np.ndarray, ...]  # time indices of each pattern
    counts: np.ndarray  # groups per pattern
    pattern_of_group: np.ndarray  # index of each group's pattern
    pattern_rows: tuple[np.ndarray, ...]  # per pattern: (groups, |P|) row indices, each group's rows by time
    K: tuple[np.ndarray, ...]  # per pattern: (|P|, |P|, p + 1, p + 1)
    n: int
    R: np.ndarray
    b_ols: np.ndarray
    Q: np.ndarray
    e: np.ndarray
    group: np.ndarray
    time: np.ndarray
    n_groups: int
    T: int

    @classmethod
    def from_arrays(cls, X, y, group, time, n_groups, T) -> "PatternCrossproducts":
        """A pattern is the sorted tuple of a group's time indices (any number of distinct times)."""
        Q, R = scipy.linalg.qr(X, mode="economic", check_finite=False)
        group, time = np.asarray(group, np.intp), np.asarray(time, np.intp)
        order = np.lexsort((time, group))  # rows by group, then time
        bounds = np.r_[0, np.cumsum(np.bincount(group, minlength=n_groups))]
        index: dict[bytes, int] = {}
        patterns: list[np.ndarray] = []
        members: list[list[int]] = []
        pattern_of_group = np.empty(n_groups, np.intp)
        for i in range(n_groups):
            times = time[order[bounds[i]:bounds[i + 1]]]
            k = index.setdefault(times.tobytes(), len(patterns))
            if k == len(patterns):
                patterns.append(times)
                members.append([])
            members[k].append(i)
            pattern_of_group[i] = k
        rows = tuple(np.stack([order[bounds[i]:bounds[i + 1]] for i in m]) for m in members)
        none = np.zeros(0)
        blank = cls(tuple(patterns), np.array([len(m) for m in members]), pattern_of_group, rows, (), len(y), R,
                    none, Q, none, group, time, n_groups, T)
        return blank.with_response(y)

    def with_response(self, y) -> "PatternCrossproducts":
        """The same design with a new response: the cross-products involving y are recomputed."""
        Qty = self.Q.T @ y
        e = y - self.Q @ Qty
        p = self.Q.shape[1]
        W = np.column_stack([self.Q, e])
        K = []
        for P, rows in zip(self.patterns, self.pattern_rows):
            Wp = W[rows].reshape(-1, len(P) * (p + 1))
            K.append((Wp.T @ Wp).reshape(len(P), p + 1, len(P), p + 1).transpose(0, 2, 1, 3))
        return replace(self, K=tuple(K), b_ols=np.linalg.solve(self.R, Qty), e=e)

    def pattern_moments(self) -> np.ndarray:
        """A moment estimate of Cov(y_i) (T × T) from the OLS residuals, over the groups observed at both
        times (NaN where no group is)."""
        p = self.Q.shape[1]
        S, N = np.zeros((self.T, self.T)), np.zeros((self.T, self.T))
        for P, c, K in zip(self.patterns, self.counts, self.K):
            S[np.ix_(P, P)] += K[:, :, p, p]
            N[np.ix_(P, P)] += c
        with np.errstate(invalid="ignore", divide="ignore"):
            return S / N


@dataclass(frozen=True)
class GLSEvaluation(FixedEffectsInQRBasis):
    """One evaluation of the GLS profiled deviance (φ the covariance parameters)."""

    theta: np.ndarray
    deviance: float
    cp: PatternCrossproducts
    A_Q: np.ndarray
    beta_Q: np.ndarray
    pwrss: float
    sigma2: float
    logdet_V: float
    gradient: np.ndarray | None = None
    dC: np.ndarray | None = None  # ∂(deviance)/∂V (T × T)
    dlogdetV_dC: np.ndarray | None = None  # ∂log|V|/∂V = Σ_P (groups with P) V_P⁻¹
    dpwrss_dC: np.ndarray | None = None  # ∂(r'V⁻¹r)/∂V = −Σ_i V_i⁻¹ r_i r_i' V_i⁻¹


class GLSDeviance(DevianceFunction):
    """φ ↦ −2 × (profiled, restricted when ``reml``) log-likelihood of the GLS model (the
    :class:`~lmmteach.lmm.profiled.DevianceFunction` interface; ``covariance`` is the
    :class:`ResidualCovariance`, θ = φ)."""

    covariance: ResidualCovariance

    @property
    def n_theta(self) -> int:
        return self.covariance.n_params

    @property
    def bounds(self):
        return self.covariance.bounds

    @property
    def theta_scale(self):
        return self.covariance.theta_scale

    @property
    def theta0(self) -> np.ndarray:
        return self.covariance.start(self.cp.pattern_moments())

    def _evaluate(self, theta, gradient: bool = False) -> GLSEvaluation:
        cp, n, p = self.cp, self.cp.n, self.p
        theta = np.atleast_1d(np.asarray(theta, float))
        V = self.covariance.matrix(theta)
        M = np.zeros((p + 1, p + 1))  # [[Q'V⁻¹Q, Q'V⁻¹e], [., e'V⁻¹e]]
        logdet_V = 0.0
        Vinvs = []
        for P, count, K in zip(cp.patterns, cp.counts, cp.K):
            L = np.linalg.cholesky(V[np.ix_(P, P)])
            Linv = np.linalg.inv(L)
            Vinv = Linv.T @ Linv
            Vinvs.append(Vinv)
            logdet_V += count * 2.0 * np.log(np.diag(L)).sum()
            M += np.einsum("ts,tspq->pq", Vinv, K)
        A_Q, Xty = M[:p, :p], M[:p, p]
        RX = np.linalg.cholesky(A_Q)
        beta = np.linalg.solve(A_Q, Xty)
        pwrss = max(float(M[p, p] - Xty @ beta), 1e-300)
        dof = n - p if self.reml else n
        dev = profiled_deviance(logdet_V, pwrss, n, p, self.reml, 2.0 * np.log(np.diag(RX)).sum() + self._logdet_R2)
        if not gradient:
            return GLSEvaluation(theta, float(dev), cp, A_Q, beta, pwrss, pwrss / dof, float(logdet_V))
        # ∂d/∂V = Σ_P [count V⁻¹ − V⁻¹ ((dof/r'V⁻¹r) S + H) V⁻¹]: log|V|, r'V⁻¹r and (REML) log|X'V⁻¹X| in turn
        W, S_all, H_all = (np.zeros((cp.T, cp.T)) for _ in range(3))
        c = np.r_[-beta, 1.0]
        Ainv = np.linalg.inv(A_Q)
        for P, count, K, Vinv in zip(cp.patterns, cp.counts, cp.K, Vinvs):
            S = np.einsum("tspq,p,q->ts", K, c, c)  # Σ_i r_i r_i'
            W[np.ix_(P, P)] += count * Vinv
            S_all[np.ix_(P, P)] -= Vinv @ S @ Vinv
            if self.reml:  # Σ X_i A⁻¹ X_i'
                H_all[np.ix_(P, P)] -= Vinv @ np.einsum("tspq,pq->ts", K[:, :, :p, :p], Ainv) @ Vinv
        G = W + (dof / pwrss) * S_all + H_all
        return GLSEvaluation(theta, float(dev), cp, A_Q, beta, pwrss, pwrss / dof, float(logdet_V),
                             self.contract(G, theta), G, W, S_all)

    def contract(self, G: np.ndarray, theta) -> np.ndarray:
        """tr(G ∂V/∂φ_k) for every k."""
        return np.einsum("ij,kij->k", G, self.covariance.matrix_grad(theta))



GLS_CONTROL = LmerControl(gtol=1e-7, maxcor=20)
"""The search's tolerances for gls (θ = φ is unbounded and of size ~1: a tighter gradient test than lmer's)."""


def optimize_gls(devfun: GLSDeviance, theta0=None, control: LmerControl | None = None) -> OptimizerResult:
    """Minimise the GLS deviance over φ: :func:`lmmteach.lmm.optimize.optimize_lmer` (L-BFGS-B with the exact
    gradient, then the Newton polish; converged: Newton decrement below ``control.decrement_tol``), with
    the control object of ``lmer`` (default :data:`GLS_CONTROL`)."""
    return optimize_lmer(devfun, theta0=theta0, control=GLS_CONTROL if control is None else control)


# -- the design -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GLSDesign:
    formula: Formula
    y: np.ndarray
    X: np.ndarray
    fixef_names: tuple[str, ...]
    group_name: str
    group: np.ndarray
    levels: tuple
    time_name: str
    time: np.ndarray
    time_levels: tuple
    index: pd.Index
    data_id: str
    xlevels: dict
    contrasts: dict
    n_dropped: int = 0
    transform_state: dict = field(default_factory=dict)  # fitted parameters of poly/scale/center
    time_values: np.ndarray | None = None  # the time of each level, for AR(1) lags (None: positions 0..T-1)

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def n_groups(self) -> int:
        return len(self.levels)

    def fitting_response(self, y) -> np.ndarray:
        """The response as the deviance fits it (gls has no weights or offset: y itself)."""
        return np.asarray(y, float)

    def with_response(self, y) -> "GLSDesign":
        y = np.asarray(y, float)
        return replace(self, y=y, data_id=_fingerprint(y))


def time_points(column: pd.Series, name: str, correlation: str | None) -> tuple[list, np.ndarray | None]:
    """The time points of a gls ``time=`` column, as nlme reads them: (levels in time order, the time of each
    level for AR(1) lags, or None for the positions 0, 1, ..., T−1).

    * numbers: each distinct value is a time point, in numeric order; ``ar1`` lags are differences of the
      values (nlme's ``corAR1(form = ~ t | g)``: times {0, 1, 5, 6} give lags 1, 4, 5, 6), so they must be
      integers; ``car1`` (nlme's ``corCAR1``) takes any real times; ``toep`` needs equally spaced times;
    * a pandas Categorical (R's factor): the categories present, in their order, at positions 0, 1, ...;
    * text: its sorted order is not a time order ('10 yrs' sorts before '8 yrs'), so it is refused by the
      structures that use the order (ar1, car1, toep); cs, un and independence only use it as labels.
    """
    values = column.dropna()
    if isinstance(column.dtype, pd.CategoricalDtype):
        return factor_levels(column), None
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if not numeric:
        if correlation in ORDERED_CORRELATIONS:
            shown = ", ".join(repr(v) for v in factor_levels(values)[:4])
            raise ValueError(
                f"time={name!r} holds {column.dtype} values ({shown}, ...), which have no time order (sorted as "
                f"text, '10' comes before '8'), and a {correlation!r} correlation depends on the order: give "
                f"numbers, or an ordered factor pd.Categorical(values, categories=[...in time order...], "
                f"ordered=True)")
        return factor_levels(column), None
    x = values.to_numpy(dtype=float)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"time={name!r} has {int((~np.isfinite(x)).sum())} infinite value(s) (e.g. "
                         f"{x[~np.isfinite(x)][0]}); every time point must be a finite number")
    levels = factor_levels(column)
    times = np.asarray(levels, float)
    if correlation == "ar1" and np.any(times != np.round(times)):
        raise ValueError(f"time={name!r} has non-integer values (e.g. {times[times != np.round(times)][0]:g}); "
                         "ar1 (nlme's corAR1) needs integer times, its lag being their difference: use "
                         "correlation='car1' (nlme's corCAR1) for continuous times")
    if correlation == "toep" and len(times) > 2 and not np.allclose(np.diff(times), times[1] - times[0]):
        raise ValueError(f"time={name!r} is not equally spaced ({', '.join(f'{t:g}' for t in times[:6])}"
                         f"{', ...' if len(times) > 6 else ''}); a Toeplitz correlation has one parameter per lag "
                         "of equally spaced times: use ar1 (lag = time difference), car1 or un")
    if correlation == "toep":
        return levels, None
    return levels, times


def gls_design(formula, data, group, time, contrasts=None, correlation: str | None = None) -> GLSDesign:
    """Build y, X, the group and the time index of each row (:func:`time_points`); check that (group, time)
    pairs are unique."""
    data = _check_data(data)
    f = formula if isinstance(formula, Formula) else parse_formula(formula, [c for c in data.columns if c != group])
    if f.random:
        raise ValueError(f"gls models the errors' covariance directly, so the formula {f.text!r} must have no "
                         f"random-effects term such as {f.random[0].text}; use lmer for random effects")
    for role, col in (("group", group), ("time", time)):
        if not isinstance(col, str):
            raise TypeError(f"{role} must name a column of data, not {col!r}")
        if col not in data.columns:
            raise ValueError(f"{role}={col!r} is not a column of data (columns are: {', '.join(map(str, data.columns))})")
        if data[col].isna().any():
            raise ValueError(f"the {role} column {col!r} has {int(data[col].isna().sum())} missing value(s); "
                             "every row needs its group and time point")
    if f.offsets:
        raise ValueError(f"gls does not take offsets ({', '.join(f.offsets)}); subtract the offset from the response")
    contrasts = check_contrasts(contrasts, f)
    frame, n_dropped = model_frame(f, data)
    state: dict = {}  # poly/scale/center parameters of the fitted data, reused by predict
    frame, y = response_values(frame, f.response, state)
    xlevels: dict = {}
    names, X = model_matrix(frame, f.intercept, f.terms, f.factor_vars, contrasts, xlevels, state)
    X, names, _ = _drop_rank_deficient(X, names)
    rows = data.loc[frame.index]
    levels = tuple(factor_levels(rows[group]))
    time_list, time_values = time_points(rows[time], time, correlation)
    time_levels = tuple(time_list)
    g = _codes(rows[group], list(levels)).astype(np.intp)
    t = _codes(rows[time], list(time_levels)).astype(np.intp)
    pairs = pd.Series(g * len(time_levels) + t)
    dup = pairs.duplicated()
    if dup.any():
        k = int(np.flatnonzero(dup.to_numpy())[0])
        raise ValueError(f"{group}={levels[g[k]]!r} has more than one row at {time}={time_levels[t[k]]!r}; "
                         "each group may have at most one observation per time point")
    return GLSDesign(f, y, X, tuple(names), group, g, levels, time, t, time_levels, frame.index,
                     _fingerprint(y), xlevels, contrasts, n_dropped, state, time_values)


# -- the fitted model ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class GLSFit(ProfiledFit):
    """A fitted GLS model  y_i = X_i b + e_i,  e_i ~ N(0, σ² V[P_i, P_i])  (immutable; the accessors shared
    with lmer fits are in :class:`~lmmteach.lmm.fitted.ProfiledFit`)."""

    design: GLSDesign
    devfun: GLSDeviance
    optimum: OptimizerResult
    control = GLS_CONTROL  # (a class attribute, not a field: the optimiser's settings for refits)

    @property
    def correlation(self) -> str | None:
        return self.devfun.covariance.name

    @property
    def heteroscedastic(self) -> bool:
        return self.devfun.covariance.heteroscedastic

    def _vcov_scale(self) -> float:
        """s² = r'V̂⁻¹r / (n − p) by ML and REML alike (nlme's convention: an ML fit's σ̂² = r'V̂⁻¹r / n is
        rescaled by n / (n − p) in Cov(b̂))."""
        return float(self._eval.pwrss / (self.nobs - self.design.p))

    def coef_table(self) -> pd.DataFrame:
        """nlme's coefficient table: Value, Std.Error, t-value, p-value (t on n − p df, as nlme)."""
        from scipy import stats

        t = self.wald_statistics
        return pd.DataFrame({"Value": self.fixef, "Std.Error": self.se, "t-value": t,
                             "p-value": 2 * stats.t.sf(np.abs(t), self.nobs - self.design.p)})

    @property
    def correlation_parameters(self) -> pd.Series:
        cov = self.devfun.covariance
        return pd.Series(cov.correlation_parameters(self.theta), index=cov.parameter_names(), dtype=float,
                         name="correlation")

    @property
    def variance_parameters(self) -> pd.Series:
        """δ_t: the SD of each time point relative to the first (all 1 unless heteroscedastic)."""
        return pd.Series(self.devfun.covariance.delta(self.theta), index=list(self.design.time_levels),
                         name="delta")

    def cov_matrix(self) -> pd.DataFrame:
        """Cov(y_i) = σ̂² D R D over all time points (nlme's ``getVarCov`` for a complete group)."""
        lev = list(self.design.time_levels)
        return pd.DataFrame(self._eval.sigma2 * self.devfun.covariance.matrix(self.theta), index=lev, columns=lev)

    def cor_matrix(self) -> pd.DataFrame:
        lev = list(self.design.time_levels)
        return pd.DataFrame(self.devfun.covariance.correlation(self.theta), index=lev, columns=lev)

    def _bic_nobs(self) -> int:
        """nlme's BIC uses n − p for a REML fit."""
        return self.nobs - self.design.p if self.reml else self.nobs

    def predict(self, newdata: pd.DataFrame | None = None) -> pd.Series:
        """X b̂ for ``newdata`` (default: the data fitted); NaN where a needed variable is missing."""
        if newdata is None:
            return self.fitted.rename("predicted")
        return self._predict_newdata(newdata)

    def _result(self, design, devfun, optimum, ml: bool = False) -> "GLSFit":
        return GLSFit(design, devfun, optimum)

    def summary(self) -> "GLSSummary":
        from .display import GLSSummary

        return GLSSummary(self)

    def __repr__(self) -> str:
        from .display import format_gls

        return format_gls(self)


def _shown(value) -> str:
    """A level as the user wrote it (0, 'visit 1'), not as NumPy prints its scalars (np.int64(0))."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_identifiable(cp: PatternCrossproducts, covariance: ResidualCovariance, design: GLSDesign) -> None:
    """Refuse covariance parameters the data cannot determine: more of them (with σ²) than the n − p residual
    degrees of freedom, or (``un``) a correlation between two time points that no group has both of."""
    n, p, k = design.nobs, design.p, covariance.n_params
    if k + 1 > n - p:
        raise ValueError(
            f"correlation={covariance.name!r}{' with heteroscedastic=True' if covariance.heteroscedastic else ''} "
            f"over {covariance.T} time points has {k} covariance parameter(s) besides sigma, more than the "
            f"{n - p - 1} the data can determine (n = {n} rows, p = {p} fixed effects): use a structure with "
            "fewer parameters (cs, ar1, car1) or fewer distinct times")
    if covariance.name == "cs" and design.n_groups <= p:  # G indicators can only lie in span(X) when G ≤ p
        D = np.equal.outer(design.group, np.arange(design.n_groups)).astype(float)
        left = D - design.X @ np.linalg.lstsq(design.X, D, rcond=None)[0]
        if np.all(np.abs(left) < 1e-8):
            raise ValueError(
                f"correlation='cs' with {design.n_groups} group(s) of {design.group_name!r} whose means the fixed "
                "effects fit exactly (e.g. one group and an intercept): the common within-group correlation cannot "
                "be told apart from them; more groups are needed")
    if covariance.heteroscedastic:
        for t, level in enumerate(design.time_levels):
            Xt = design.X[design.time == t]
            if np.linalg.matrix_rank(Xt) >= len(Xt):
                raise ValueError(
                    f"heteroscedastic=True: the {len(Xt)} row(s) at {design.time_name}={_shown(level)} can be fitted "
                    "exactly by the fixed effects, so their SD can shrink to 0 and the likelihood has no "
                    "maximum; use heteroscedastic=False, or pool time points with few rows")
    if covariance.name == "un":
        together = np.zeros((cp.T, cp.T), bool)
        for P in cp.patterns:
            together[np.ix_(P, P)] = True
        if not together.all():
            a, b = np.argwhere(~together)[0]
            lev = design.time_levels
            raise ValueError(f"correlation='un' needs every pair of time points observed in some group, but no "
                             f"group has both {design.time_name}={_shown(lev[a])} and {_shown(lev[b])}, so their correlation "
                             "cannot be estimated: use car1 or ar1 (correlation a function of the lag), or cs")


SINGULAR_V = 1e-8
"""Smallest eigenvalue of a group's fitted V_P (relative to its largest) below which the fit is singular."""


def check_not_singular(cp: PatternCrossproducts, covariance: ResidualCovariance, phi) -> None:
    """Refuse a fit whose Cov(y_i) went singular: the likelihood then grows without bound as a correlation
    goes to the edge of its range (e.g. cs with few, small groups whose means or within-group contrasts the
    fixed effects fit exactly), so there is no maximum-likelihood estimate to report."""
    if covariance.name is None:
        return
    V = covariance.matrix(phi)
    for P in cp.patterns:
        w = np.linalg.eigvalsh(V[np.ix_(P, P)])
        if w[0] < SINGULAR_V * w[-1]:
            shown = ", ".join(f"{n} = {v:.4g}" for n, v in zip(covariance.parameter_names(),
                                                               covariance.correlation_parameters(phi)))
            raise ValueError(
                f"the fitted correlation={covariance.name!r} makes Cov(y_i) singular ({shown}): the likelihood "
                "grows without bound at the edge of the parameter range, so it has no maximum. The design is too "
                "small for this structure (few groups, or groups the fixed effects fit exactly): use more groups, "
                "a simpler structure, or none")


def gls(formula: str, data: pd.DataFrame, group: str, time: str, correlation: str | None = None,
        heteroscedastic: bool = False, reml: bool = True, contrasts: dict | None = None) -> GLSFit:
    """Fit a linear model with correlated, possibly heteroscedastic errors by REML (default) or ML,
    like nlme's ``gls`` (and the MMRM with ``correlation="un", heteroscedastic=True``).

    Parameters
    ----------
    formula : fixed part only, e.g. ``"price ~ store"``.
    data : long format, one row per observation.
    group : the column naming each row's group (subject); groups are independent.
    time : the column giving each row's time within its group, read as nlme does (:func:`time_points`):
        numbers (any number of distinct values), or an ordered factor (pd.Categorical: its positions).
        AR(1) lags are differences of the numbers (integers for ``ar1``, any for ``car1``) or of the
        factor's positions; text is refused where the order matters. A group may miss time points; its
        other rows are kept.
    correlation : None (independent), ``"cs"`` (compound symmetry), ``"ar1"`` (nlme's ``corAR1(form = ~ t)``),
        ``"car1"`` (continuous-time AR(1), nlme's ``corCAR1``), ``"toep"`` (Toeplitz, equally spaced
        times), ``"un"`` (every correlation free).
    heteroscedastic : one SD per time point (nlme's ``varIdent(form = ~ 1 | time)``).
    reml : REML (True) or ML (False).
    contrasts : as for :func:`lmmteach.lmer`.
    """
    for name, flag in (("reml", reml), ("heteroscedastic", heteroscedastic)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be True or False, not {flag!r}")
    if correlation not in CORRELATIONS:
        raise ValueError(f"unknown correlation {correlation!r}; choose one of {list(CORRELATIONS)}")
    with one_blas_thread():  # small matrices and tall products: one BLAS thread is fastest
        design = gls_design(formula, data, group, time, contrasts, correlation)
        T = len(design.time_levels)
        cp = PatternCrossproducts.from_arrays(design.X, design.y, design.group, design.time, design.n_groups, T)
        covariance = ResidualCovariance(correlation, T, heteroscedastic, design.time_values)
        check_identifiable(cp, covariance, design)
        devfun = GLSDeviance(cp, covariance, reml=reml)
        opt = optimize_gls(devfun)
        check_not_singular(cp, covariance, opt.theta)
    fit = GLSFit(design, devfun, opt)
    if not opt.converged:
        warn_user(f"the gls optimiser did not converge ({opt.message}); check the estimates")
    return fit
