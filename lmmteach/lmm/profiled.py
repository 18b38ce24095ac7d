"""The one interface behind every likelihood engine: a profiled deviance function of θ alone.

lme4's ``mkLmerDevfun`` and MixedModels.jl's ``objective(updateL!(setθ!(m, θ)))``: whatever the model
(one grouping factor, several, or no random effects at all with a modelled error covariance), the fixed
effects b̂ and the residual variance σ̂² have closed forms given the covariance parameters θ, so fitting
is the minimisation of a function of θ alone. One evaluation is three verbs in a row:

1. **set θ** — the relative covariance C(θ) = Σ/σ² (Λ with ΛΛ' = C for random effects, V = DRD for gls);
2. **factor** — the Cholesky factor of the penalised system (blocks, per group, or per missing pattern),
   giving log|V|, X'V⁻¹X and the penalised residual sum of squares r'V⁻¹r;
3. **solve** — b̂, then the deviance written once, by :func:`profiled_deviance`:

       ML:    d(θ)   = log|V| + n [1 + log(2π r'V⁻¹r / n)]
       REML:  d_R(θ) = log|V| + log|X'V⁻¹X| + (n − p) [1 + log(2π r'V⁻¹r / (n − p))]

   (notes: "Maximum Likelihood Estimates", "REML Log-likelihood Function"; with prior weights d loses
   Σ log w_i).

:class:`DevianceFunction` is that interface. An engine writes ``_evaluate`` (the three verbs) and how its
cross-products take a new response; everything else — the REML switch, the parameter vector and its
bounds, the log-likelihood at a given σ², stacks of responses for the bootstrap — is written here once.
The engines are :class:`~lmmteach.lmm.deviance.ProfiledDeviance` (one grouping factor, per-group blocks),
:class:`~lmmteach.lmm.blocked.BlockedDeviance` (any number of grouping factors, the blocked Cholesky
factor) and :class:`~lmmteach.lmm.gls.GLSDeviance` (nlme's gls: no random effects); which one a design
gets is decided in :mod:`lmmteach.lmm.engine` and nowhere else. The fitted models, the optimiser, the
profiles, the bootstrap and the Satterthwaite tests speak only to this interface.

What an evaluation returns (:class:`DevianceEvaluation`): ``deviance``, ``beta`` (b̂), ``A`` (X'V⁻¹X),
``sigma2`` (σ̂²), ``pwrss`` (r'V⁻¹r), ``logdet_V`` and, with ``gradient=True``, the exact ``gradient``
∂d/∂θ and the gradient over C itself (``dC``, with its parts ``dlogdetV_dC`` and ``dpwrss_dC``; for gls C
is V). Random-effects engines (:class:`RandomEffectsDeviance`) add the conditional modes term by term
(``term_blups``) and their conditional variances (``condvar``). A GLMM's PIRLS can reuse the same verbs: set θ, factor with
its working weights, solve.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

import numpy as np
from scipy.linalg import block_diag

from .._util import LOG_2PI

__all__ = ["profiled_deviance", "check_residual_left", "DevianceEvaluation", "FixedEffectsInQRBasis", "DevianceFunction",
           "RandomEffectsDeviance", "StackedEvaluation", "StackedDeviance"]


def profiled_deviance(logdet_V, pwrss, n: int, p: int, reml: bool, logdet_A=0.0, log_weights: float = 0.0):
    """The profiled deviance, −2 × the log-likelihood with b̂ and σ̂² = r'V⁻¹r / dof put in:

        ML   (dof = n):      d   = log|V| + dof [1 + log(2π r'V⁻¹r / dof)]
        REML (dof = n − p):  d_R = d + log|X'V⁻¹X|

    minus Σ log w_i with prior weights (log|Var(e)| = n log σ² − Σ log w_i). ``logdet_V``, ``pwrss`` and
    ``logdet_A`` may be arrays (one entry per response of a stack). The only place this formula is written."""
    dof = n - p if reml else n
    dev = logdet_V + dof * (1.0 + LOG_2PI + np.log(pwrss / dof))
    if reml:
        dev = dev + logdet_A
    return dev - log_weights


EXACT_FIT_RTOL = 1e-20
"""The OLS residual sum of squares e'e below this times y'y counts as zero (the fixed effects reproduce y)."""


def check_residual_left(yty_residual: float, y) -> None:
    """Refuse a response that the fixed effects reproduce exactly: OLS's residual sum of squares e'e is 0,
    so there is no variation left for random effects or residuals (every engine's cross-products check it)."""
    y = np.asarray(y, float)
    if yty_residual <= EXACT_FIT_RTOL * float(y @ y):
        raise ValueError("the fixed effects reproduce the response exactly (residual sum of squares 0): "
                         "there is no variation left for random effects or residuals")


class DevianceEvaluation(Protocol):
    """What one evaluation of any engine holds (the names every caller may use)."""

    theta: np.ndarray
    deviance: Any  # d(θ): a float, or an array for a stack of responses
    pwrss: Any  # r'V⁻¹r
    sigma2: Any  # σ̂² = r'V⁻¹r / dof
    logdet_V: Any  # log|V|
    gradient: np.ndarray | None  # ∂d/∂θ (with gradient=True)
    dC: np.ndarray | None  # ∂d/∂C (with gradient=True)
    dlogdetV_dC: np.ndarray | None  # ∂log|V|/∂C
    dpwrss_dC: np.ndarray | None  # ∂(r'V⁻¹r)/∂C

    @property
    def beta(self) -> np.ndarray: ...  # b̂

    @property
    def A(self) -> np.ndarray: ...  # X'V⁻¹X


class FixedEffectsInQRBasis:
    """b̂ and X'V⁻¹X read back from the QR basis X = QR in which every engine solves for them (the
    cross-products hold Q and, for y, its OLS residual: no estimate changes). Needs ``cp`` (with ``R`` and
    ``b_ols``), ``A_Q`` and ``beta_Q``."""

    cp: Any
    A_Q: np.ndarray
    beta_Q: np.ndarray

    @cached_property
    def beta(self) -> np.ndarray:
        """b̂, the GLS estimate (BLUE) of the fixed effects:  b̂ = R⁻¹ b̂_Q + b_ols."""
        return np.linalg.solve(self.cp.R, self.beta_Q[..., None])[..., 0] + self.cp.b_ols

    @cached_property
    def A(self) -> np.ndarray:
        """X'V⁻¹X = R'(Q'V⁻¹Q)R, so that Cov(b̂) = σ² A⁻¹."""
        return self.cp.R.T @ self.A_Q @ self.cp.R


class DevianceFunction(ABC):
    """θ ↦ −2 × (profiled, restricted when ``reml``) log-likelihood; call it, or ``evaluate`` it for the
    pieces. ``cp`` are the cross-products (formed once per data set), ``covariance`` what maps θ to the
    covariance (the random terms' structures, or gls's residual covariance)."""

    stacks_responses = False
    """True when ``evaluate`` takes a stack of responses and θ's natively (else they are looped over)."""

    search = "L-BFGS-B"
    """The search that suits this deviance (:func:`lmmteach.lmm.optimize.optimize_lmer`): L-BFGS-B with the
    exact gradient, or "COBYQA" (derivative-free) for an engine without one."""

    def __init__(self, crossproducts, covariance, reml: bool = True):
        self.cp = crossproducts
        self.covariance = covariance
        self.reml = bool(reml)
        self.p = crossproducts.R.shape[0]
        self._logdet_R2 = 2.0 * np.log(np.abs(np.diag(crossproducts.R))).sum()  # X = QR: log|X'X| = log|R|²
        if self.reml and self.cp.n <= self.p:
            raise ValueError(f"REML needs more observations ({self.cp.n}) than fixed effects ({self.p})")

    # -- the same model, changed ------------------------------------------------------------------------------
    def _new(self, crossproducts=None, covariance=None, reml: bool | None = None):
        return type(self)(self.cp if crossproducts is None else crossproducts,
                          self.covariance if covariance is None else covariance,
                          self.reml if reml is None else reml)

    def with_reml(self, reml: bool):
        """The same model's ML (``reml=False``) or REML deviance."""
        return self._new(reml=reml)

    def with_y(self, y: np.ndarray):
        """The same model with the response ``y`` as the engine fits it (rows scaled by √w, offset
        subtracted: :meth:`Design.fitting_response`); a stack of K responses, shape (K, n), gives a
        deviance whose ``evaluate`` takes K θ's, one per response. Only the cross-products with y change."""
        y = np.asarray(y, float)
        if y.ndim == 2 and not self.stacks_responses:
            return StackedDeviance([self.with_y(row) for row in y])
        return self._new(self.cp.with_response(y))

    def with_response(self, design):
        """The same model for ``design`` with a new response (:meth:`Design.with_response`)."""
        return self.with_y(design.fitting_response(design.y))

    def with_responses(self, design, Y: np.ndarray):
        """The same model for K responses at once (the rows of ``Y``, in the fitted order)."""
        return self.with_y(design.fitting_response(Y))

    def reweighted(self, weights, y):
        """The same model with prior weights w and response y, as the engine fits them (each row of X, Z and y
        scaled by √w_i): the weighted least-squares problem of one PIRLS iteration of a GLMM. Only the
        cross-products' numbers are recomputed (:meth:`BlockedCrossproducts.reweighted`). Call it on a deviance
        built without prior weights or offset."""
        return self._new(self.cp.reweighted(weights, y))

    def take(self, rows):
        """The deviance of the responses ``rows`` of a stack (:meth:`with_y` with K responses)."""
        return self._new(self.cp.take(rows))

    @property
    def n_responses(self) -> int | None:
        """K for a stack of responses, None for one response."""
        return None

    # -- the parameter vector θ ------------------------------------------------------------------------------
    @property
    @abstractmethod
    def n_theta(self) -> int: ...

    @property
    @abstractmethod
    def bounds(self) -> list[tuple[float, float]]: ...

    @property
    @abstractmethod
    def theta0(self) -> np.ndarray:
        """The default starting θ."""

    @property
    @abstractmethod
    def theta_scale(self) -> np.ndarray:
        """The typical size of each θ_k for this data (the optimiser searches θ_k / scale_k)."""

    @property
    def structures(self) -> list:
        """The random terms' covariance structures (none for gls)."""
        return []

    def factor_deviances(self) -> list[tuple[list[int] | None, Any]]:
        """For each grouping factor: (its terms, the deviance of the model with only those terms) — the
        pieces of a starting value (:func:`lmmteach.lmm.optimize.default_start`). A model with one grouping
        factor (or none) is its own single piece, with terms None."""
        return [(None, self)]

    # -- one evaluation ---------------------------------------------------------------------------------------
    @abstractmethod
    def _evaluate(self, theta: np.ndarray, gradient: bool):
        """set θ → factor → solve → :func:`profiled_deviance` (the engine's own work)."""

    def evaluate(self, theta, gradient: bool = False):
        """The deviance and its pieces at θ (:class:`DevianceEvaluation`), with the exact gradient ∂d/∂θ
        when ``gradient``. θ may be a stack of K θ's, shape (K, n_theta): then a :class:`StackedEvaluation`
        (one entry per θ)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        if theta.ndim == 2 and not self.stacks_responses:
            if theta.shape[1] != self.n_theta:
                raise ValueError(f"theta must have {self.n_theta} value(s) for this model; got shape {theta.shape}")
            return StackedEvaluation.of([self._evaluate(t, gradient) for t in theta])
        last = self.__dict__.get("_last")  # speed only: the optimiser often asks twice for the same θ
        key = (theta.shape, theta.tobytes())
        if last is not None and last[0] == key and (last[1].gradient is not None or not gradient):
            return last[1]
        e = self._evaluate(theta, gradient)
        self._last = (key, e)  # (evaluations are immutable: sharing one is safe)
        return e

    def with_gradient(self, e):
        """The evaluation ``e`` of this engine with the exact gradient added (θ evaluated again; an engine that can
        add it to the factor ``e`` holds overrides this: speed only)."""
        return e if e.gradient is not None else self._evaluate(e.theta, True)

    def __call__(self, theta) -> float:
        return self.evaluate(theta).deviance

    def loglik(self, theta, sigma2: float) -> float:
        """Log-likelihood at given covariance parameters (θ, σ²), with b̂ profiled out (not σ²):
        −½ :meth:`deviance_given_sigma`."""
        return float(-0.5 * self.deviance_given_sigma2(self.evaluate(theta), sigma2))

    def deviance_given_sigma2(self, e, sigma2):
        """:meth:`deviance_given_sigma` from an evaluation ``e`` at θ, for σ² given."""
        dof = self.cp.n - self.p if self.reml else self.cp.n
        out = dof * (LOG_2PI + np.log(sigma2)) + e.logdet_V + e.pwrss / sigma2
        if self.reml:
            out += np.linalg.slogdet(e.A)[1]
        return out - getattr(self.cp, "log_weights", 0.0)

    def deviance_given_sigma(self, theta, sigma: float, gradient: bool = False):
        """−2 × the log-likelihood at (θ, σ), with b̂ profiled out (not σ):

            ML:    d   = n log(2πσ²) + log|V| + r'V⁻¹r / σ²
            REML:  d_R = (n−p) log(2πσ²) + log|V| + log|A| + r'V⁻¹r / σ²

        (log|Σ*| = n log σ² + log|V| and log|X'Σ*⁻¹X| = log|A| − p log σ², as in the notes' formulas;
        with prior weights d loses Σ log w_i). With ``gradient`` also (d, ∂d/∂(θ, σ)), exactly:

            ∂d/∂θ_k = tr[(G + (1/σ² − dof/r'V⁻¹r) ∂(r'V⁻¹r)/∂C) ∂C/∂θ_k],   ∂d/∂σ = 2 dof/σ − 2 r'V⁻¹r/σ³,

        with G = ∂d(θ)/∂C the profiled deviance's gradient over C (σ̂² = r'V⁻¹r/dof there, σ² here).
        """
        e = self.evaluate(theta, gradient=gradient)
        sigma2 = sigma**2
        dof = self.cp.n - self.p if self.reml else self.cp.n
        d = self.deviance_given_sigma2(e, sigma2)
        if not gradient:
            return d
        G = e.dC + (1.0 / sigma2 - dof / e.pwrss) * e.dpwrss_dC
        d_sigma = 2 * dof / sigma - 2 * e.pwrss / sigma**3
        return float(d), np.r_[self.contract(G, theta), d_sigma]

    @abstractmethod
    def contract(self, G: np.ndarray, theta) -> np.ndarray:
        """tr(G ∂C/∂θ_k) for every k: a gradient over C (the layout of ``dC``) made a gradient over θ."""


class RandomEffectsDeviance(DevianceFunction):
    """A deviance of a model with random effects: θ is the concatenation of the terms' parameters
    (``structures``, one per random term, in the design's order), C(θ) = Σ/σ² block diagonal over them."""

    def __init__(self, crossproducts, structures, reml: bool = True):
        super().__init__(crossproducts, list(structures), reml)
        sizes = [s.n_params for s in self.covariance]
        self._slices = np.split(np.arange(sum(sizes)), np.cumsum(sizes)[:-1])

    @property
    def structures(self) -> list:
        return self.covariance

    def with_structures(self, structures):
        """The same data with other covariance structures for the terms (e.g. variance components for a
        staged start)."""
        return self._new(covariance=list(structures))

    @property
    def n_theta(self) -> int:
        return sum(s.n_params for s in self.structures)

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [b for s in self.structures for b in s.bounds]

    @property
    def theta0(self) -> np.ndarray:
        """Starting values: lme4's (identity Λ) for random-effect columns of unit size, scaled by the root
        mean square of each column of Z so that a slope on a variable measured in hundreds starts small."""
        return self._by_column_size("start")

    @property
    def theta_scale(self) -> np.ndarray:
        return self._by_column_size("typical")

    @abstractmethod
    def without_fixed_effect(self, k: int) -> "RandomEffectsDeviance":
        """The same model without column k of X, the same response (a fixed effect's profile then takes the
        response y − v x_k, :meth:`with_y`)."""

    @abstractmethod
    def _column_rms(self) -> np.ndarray:
        """The root mean square of each column of Z (all terms side by side)."""

    def _by_column_size(self, method: str) -> np.ndarray:
        """Each structure's ``start`` or ``typical`` θ, given the root mean square of its columns of Z."""
        rms = self._column_rms()
        rms = np.where(rms > 0, rms, 1.0)
        out, offset = [], 0
        for s in self.structures:
            out.append(getattr(s, method)(rms[offset : offset + s.q]))
            offset += s.q
        return np.concatenate(out)

    def split(self, theta) -> list[np.ndarray]:
        """θ cut into the terms' parameters (a stack of θ's is cut along its last axis)."""
        theta = np.atleast_1d(np.asarray(theta, float))
        return [theta[..., idx] for idx in self._slices]

    def relcov(self, theta) -> np.ndarray:
        """C(θ) = Σ/σ², block diagonal over the terms."""
        return block_diag(*[s.relcov(t) for s, t in zip(self.structures, self.split(theta))])

    def contract(self, G: np.ndarray, theta) -> np.ndarray:
        """tr(G ∂C/∂θ_k) for every k, term by term on the block diagonal of G."""
        out, offset = [], 0
        for s, t in zip(self.structures, self.split(theta)):
            out.append(np.einsum("ij,kij->k", G[offset : offset + s.q, offset : offset + s.q], s.relcov_grad(t)))
            offset += s.q
        return np.concatenate(out)


@dataclass(frozen=True)
class StackedEvaluation:
    """Evaluations at a stack of θ's (one per response of a :class:`StackedDeviance`, or several θ's of one
    response), as arrays with one row each: what the lockstep refits of
    :func:`~lmmteach.lmm.optimize.optimize_warm_many` read."""

    deviance: np.ndarray
    gradient: np.ndarray | None
    beta: np.ndarray
    sigma2: np.ndarray

    @classmethod
    def of(cls, evaluations) -> "StackedEvaluation":
        grads = [e.gradient for e in evaluations]
        return cls(np.array([e.deviance for e in evaluations]),
                   None if any(g is None for g in grads) else np.array(grads),
                   np.array([e.beta for e in evaluations]), np.array([e.sigma2 for e in evaluations]))


class StackedDeviance:
    """K deviances of one model, one per response, evaluated one θ each (what an engine without native
    stacks gives for :meth:`DevianceFunction.with_y` of K responses)."""

    def __init__(self, deviances):
        self.deviances = list(deviances)
        first = self.deviances[0]
        self.bounds, self.p, self.n_theta = first.bounds, first.p, first.n_theta

    @property
    def n_responses(self) -> int:
        return len(self.deviances)

    def take(self, rows) -> "StackedDeviance":
        return StackedDeviance([self.deviances[i] for i in np.atleast_1d(rows)])

    def evaluate(self, thetas, gradient: bool = False) -> StackedEvaluation:
        thetas = np.atleast_2d(np.asarray(thetas, float))
        if thetas.shape != (len(self.deviances), self.n_theta):
            raise ValueError(f"theta must have {self.n_theta} value(s) for this model, one row per response "
                             f"({len(self.deviances)}); got shape {thetas.shape}")
        return StackedEvaluation.of([f.evaluate(t, gradient) for f, t in zip(self.deviances, thetas)])
