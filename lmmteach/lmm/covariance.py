"""Covariance structures for the random-effects covariance matrix Σ (notes: "Covariance Structure Choices").

The model for subject i is  y_i = X_i b + Z_i v_i + e_i  with  v_i ~ N(0, Σ),  e_i ~ N(0, σ² I), so

    Σ_i = Z_i Σ Z_i' + σ² I.

Following lme4, each structure is parametrised *relative to the residual variance*: a parameter vector θ
gives the relative covariance  C(θ) = Σ / σ²  (q × q). Then  Σ_i = σ² (Z_i C Z_i' + I), and σ² can be
profiled out of the likelihood analytically. Every structure is one small class with the same interface:

* ``n_params``, ``theta0``, ``bounds`` -- what the optimiser needs;
* ``relcov(θ)`` -- the map θ → C = Σ/σ²;
* ``relcov_grad(θ)`` -- dC/dθ_k, shape (k, q, q) (numerical by default; exact where it is easy);
* ``factor(θ)`` -- some Λ with Λ Λ' = C (lme4's relative covariance factor);
* ``parameters(θ, σ²)`` -- the structure's own parameters for printing (σ's, ρ's).

``us`` and ``diag`` also take a stack of θ's (shape (K, n_params), one row per simulated response in the
bootstrap) in ``factor`` and ``relcov_grad`` and return a stack (``batched = True``); the other structures
are evaluated one θ at a time.

Structures (q random effects per group, the notes' definitions):

=========  =====================================================  ===============
``us``     unstructured: every σ_k², σ_kl free                    q(q+1)/2 params
``diag``   variance components: σ_k² free, σ_kl = 0               q
``cs``     compound symmetry: σ_k² = σ_v² + σ², σ_kl = σ_v²       2
``ar1``    autoregressive(1): σ_kl = σ² ρ^|k-l|                   2
``car1``   continuous-time AR(1) (gls only): σ² φ^|t_k - t_l|     2
``toep``   Toeplitz: σ_kl = σ² ρ_|k-l|, ρ_0 = 1                   q
=========  =====================================================  ===============
"""

from __future__ import annotations

import numpy as np

__all__ = ["CovarianceStructure", "Unstructured", "VarianceComponents", "CompoundSymmetry", "AR1", "CAR1", "Toeplitz",
           "make_structure", "sd_correlation", "check_sdcor_scale", "sdcor_of_theta", "sdcor_bounds", "sd_cor_blocks",
           "theta_from_blocks"]


class CovarianceStructure:
    """Base class. A subclass defines ``n_params``, ``theta0``, ``bounds``, ``relcov`` and ``parameters``."""

    name = "base"
    batched = False  # True: factor and relcov_grad accept a stack of θ's (leading axes)

    def __init__(self, q: int):
        if q < 1:
            raise ValueError("a random-effects term needs at least one column")
        self.q = int(q)

    # -- what every structure must say -------------------------------------------------------------
    @property
    def n_params(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def theta0(self) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def bounds(self) -> list[tuple[float, float]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def relcov(self, theta: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def parameters(self, theta: np.ndarray, sigma2: float) -> list[tuple[str, float]]:  # pragma: no cover
        raise NotImplementedError

    # -- shared defaults ----------------------------------------------------------------------------
    def start(self, column_scale: np.ndarray) -> np.ndarray:
        """Starting θ when the random-effect columns have root mean square ``column_scale``: the SD-type
        parameter is divided by their mean size (so every random effect starts at the scale of the data)."""
        theta = self.theta0.copy()
        theta[0] /= float(np.mean(column_scale))
        return theta

    def typical(self, column_scale: np.ndarray) -> np.ndarray:
        """A typical size of each θ_k (for scaling the search): the start, with correlations at 1."""
        t = np.abs(self.start(column_scale))
        return np.where(t > 0, t, 1.0)

    def relcov_grad(self, theta: np.ndarray) -> np.ndarray:
        """dC/dθ_k by central differences (C is a tiny q × q map, so this is cheap and accurate)."""
        theta = np.asarray(theta, float)
        out = np.empty((self.n_params, self.q, self.q))
        for k in range(self.n_params):
            h = 1e-6 * max(1.0, abs(theta[k]))
            lo, hi = self.bounds[k]
            tp, tm = theta.copy(), theta.copy()
            tp[k] = min(theta[k] + h, hi)
            tm[k] = max(theta[k] - h, lo)
            out[k] = (self.relcov(tp) - self.relcov(tm)) / (tp[k] - tm[k])
        return out

    def factor(self, theta: np.ndarray) -> np.ndarray:
        """A square root Λ of C (Λ Λ' = C): Cholesky when C is positive definite, else from eigenvalues."""
        C = self.relcov(theta)
        try:
            return np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            w, U = np.linalg.eigh(C)
            return U * np.sqrt(np.clip(w, 0.0, None))

    def is_singular(self, theta: np.ndarray, tol: float = 1e-4) -> bool:
        """On the boundary of the parameter space (lme4's ``isSingular``): a relative SD below ``tol``
        or a correlation-type parameter within ``tol`` of ±1."""
        theta = np.asarray(theta, float)
        for t, (lo, hi) in zip(theta, self.bounds):
            if lo == 0.0 and t < tol:
                return True
            if np.isfinite(lo) and lo < 0 and (t - lo < tol or hi - t < tol):
                return True
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(q={self.q})"


class Unstructured(CovarianceStructure):
    """Unstructured Σ, parametrised by lme4's lower-triangular factor: C = Λ Λ', θ = the lower triangle of Λ
    taken column by column (so Λ_kk ≥ 0 keeps Σ positive semi-definite)."""

    name = "us"
    batched = True

    def __init__(self, q: int):
        super().__init__(q)
        self._rows, self._cols = _lower_triangle_columnwise(self.q)

    @property
    def n_params(self):
        return self.q * (self.q + 1) // 2

    @property
    def theta0(self):
        return (self._rows == self._cols).astype(float)

    @property
    def bounds(self):
        return [(0.0, np.inf) if r == c else (-np.inf, np.inf) for r, c in zip(self._rows, self._cols)]

    def start(self, column_scale):
        theta = self.theta0.copy()
        diag = self._rows == self._cols
        theta[diag] = 1.0 / np.asarray(column_scale, float)
        return theta

    def typical(self, column_scale):
        return 1.0 / np.asarray(column_scale, float)[self._rows]

    def factor(self, theta):
        theta = np.asarray(theta, float)
        L = np.zeros(theta.shape[:-1] + (self.q, self.q))
        L[..., self._rows, self._cols] = theta
        return L

    def relcov(self, theta):
        L = self.factor(theta)
        return L @ L.T

    def relcov_grad(self, theta):
        """dC/dθ_k = E_k Λ' + Λ E_k', with E_k the unit matrix at θ_k's position in Λ."""
        L = self.factor(theta)
        D = np.zeros(L.shape[:-2] + (self.n_params, self.q, self.q))  # D_k = E_k Λ': row r_k is column c_k of Λ
        D[..., np.arange(self.n_params), self._rows, :] = np.swapaxes(L[..., :, self._cols], -1, -2)
        return D + np.swapaxes(D, -1, -2)

    def theta_from_relcov(self, C: np.ndarray) -> np.ndarray:
        L = _psd_cholesky(C)
        return L[self._rows, self._cols]

    def parameters(self, theta, sigma2):
        return _sd_cor_parameters(self.relcov(theta) * sigma2)


class VarianceComponents(CovarianceStructure):
    """Diagonal Σ ("variance components"): θ_k = σ_k / σ, C = diag(θ²)."""

    name = "diag"
    batched = True

    @property
    def n_params(self):
        return self.q

    @property
    def theta0(self):
        return np.ones(self.q)

    @property
    def bounds(self):
        return [(0.0, np.inf)] * self.q

    def start(self, column_scale):
        return 1.0 / np.asarray(column_scale, float)

    def factor(self, theta):
        theta = np.asarray(theta, float)
        return theta[..., :, None] * np.eye(self.q)

    def relcov(self, theta):
        return np.diag(np.asarray(theta, float) ** 2)

    def relcov_grad(self, theta):
        theta = np.asarray(theta, float)
        out = np.zeros(theta.shape[:-1] + (self.q, self.q, self.q))
        for k in range(self.q):
            out[..., k, k, k] = 2 * theta[..., k]
        return out

    def parameters(self, theta, sigma2):
        sd = np.sqrt(sigma2) * np.asarray(theta, float)
        return [(f"sd{k}", s) for k, s in enumerate(sd)]


class _ScaleAndCorrelation(CovarianceStructure):
    """A structure with two parameters: a relative SD s ≥ 0 and a correlation in [``rho_min``, 1]."""

    rho_min = -1.0

    @property
    def n_params(self):
        return 2

    @property
    def theta0(self):
        return np.array([1.0, 0.0])

    @property
    def bounds(self):
        return [(0.0, np.inf), (self.rho_min, 1.0)]


class CompoundSymmetry(_ScaleAndCorrelation):
    """Compound symmetry: σ_k² = σ_v² + σ_d², σ_kl = σ_v² (the notes write σ² for σ_d²).
    θ = (s, ω): C = s² [(1 - ω) I + ω J] with correlation ω ∈ [-1/(q-1), 1]."""

    name = "cs"

    @property
    def rho_min(self):
        return -1.0 / (self.q - 1) if self.q > 1 else -1.0

    def relcov(self, theta):
        s, w = theta
        return s * s * ((1 - w) * np.eye(self.q) + w * np.ones((self.q, self.q)))

    def relcov_grad(self, theta):
        """∂C/∂s = 2s [(1 − ω) I + ω J],  ∂C/∂ω = s² (J − I)."""
        s, w = np.asarray(theta, float)
        I, J = np.eye(self.q), np.ones((self.q, self.q))
        return np.stack([2 * s * ((1 - w) * I + w * J), s * s * (J - I)])

    def parameters(self, theta, sigma2):
        s, w = theta
        total = sigma2 * s * s
        return [("sigma_v^2", total * w), ("sigma^2", total * (1 - w)), ("omega", w)]


class AR1(_ScaleAndCorrelation):
    """First-order autoregressive: σ_kl = σ² ρ^|t_k - t_l|.  θ = (s, ρ): C = s² ρ^|t_k - t_l|, ρ ∈ [-1, 1].

    The times t_k are the positions 0, 1, ..., q-1 unless given; given times must be integers (nlme's
    ``corAR1(form = ~ t | g)``: times {0, 1, 5, 6} give lags 1, 4, 5, 6), since ρ^lag with ρ < 0 needs an
    integer lag. Continuous times are :class:`CAR1`'s."""

    name = "ar1"

    def __init__(self, q: int, times=None):
        super().__init__(q)
        t = np.arange(self.q, dtype=float) if times is None else np.asarray(times, float)
        if t.shape != (self.q,) or not np.all(np.isfinite(t)):
            raise ValueError(f"{self.name} needs {self.q} finite times, got {t!r}")
        if self.rho_min < 0 and np.any(t != np.round(t)):
            raise ValueError(f"{self.name} needs integer times (a negative correlation has no power at a "
                             "fractional lag); for continuous times use car1")
        self.lag = np.abs(np.subtract.outer(t, t))

    def relcov(self, theta):
        s, rho = theta
        return s * s * np.power(rho, self.lag)

    def relcov_grad(self, theta):
        """∂C/∂s = 2s ρ^|t_k−t_l|,  ∂C/∂ρ = s² |t_k−t_l| ρ^(|t_k−t_l|−1) (0 on the diagonal)."""
        s, rho = np.asarray(theta, float)
        lag = self.lag
        with np.errstate(divide="ignore", invalid="ignore"):
            d_rho = np.where(lag > 0, lag * np.power(rho, lag - 1), 0.0)
        return np.stack([2 * s * np.power(rho, lag), s * s * d_rho])

    def parameters(self, theta, sigma2):
        s, rho = theta
        return [("sigma^2", sigma2 * s * s), ("rho", rho)]


class CAR1(AR1):
    """Continuous-time AR(1), nlme's ``corCAR1``: σ_kl = σ² φ^|t_k - t_l| for any real times, φ ∈ [0, 1]
    (φ is the correlation of two observations one time unit apart). With integer times it is :class:`AR1`
    restricted to φ ≥ 0."""

    name = "car1"
    rho_min = 0.0


class Toeplitz(CovarianceStructure):
    """Toeplitz: σ_kl = σ² ρ_|k-l| with ρ_0 = 1.

    To keep Σ positive semi-definite the optimiser works with the *partial* autocorrelations
    φ_1..φ_{q-1} ∈ [-1, 1] (the Durbin-Levinson map φ → ρ is onto the valid ρ's);
    θ = (s, φ_1, ..., φ_{q-1}) and C = s² T(ρ)."""

    name = "toep"

    @property
    def n_params(self):
        return self.q

    @property
    def theta0(self):
        return np.r_[1.0, np.zeros(self.q - 1)]

    @property
    def bounds(self):
        return [(0.0, np.inf)] + [(-1.0, 1.0)] * (self.q - 1)

    def rhos(self, theta) -> np.ndarray:
        """ρ_0..ρ_{q-1} from the partial autocorrelations (Durbin-Levinson recursion)."""
        phi = np.asarray(theta[1:], float)
        rho = np.ones(self.q)
        a = np.zeros(0)  # AR coefficients of the current order
        for k, pk in enumerate(phi, start=1):
            # rho_k = sum_j a_j rho_{k-j} + pk * (1 - sum_j a_j rho_j)
            prev = rho[1:k][::-1] if k > 1 else np.zeros(0)
            v = 1.0 - (a @ rho[1:k] if k > 1 else 0.0)
            rho[k] = (a @ prev if k > 1 else 0.0) + pk * v
            a = np.r_[a - pk * a[::-1], pk]
        return rho

    def rhos_grad(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """ρ_0..ρ_{q−1} and ∂ρ_k/∂φ_j, shape (q, q − 1): the Durbin-Levinson recursion of :meth:`rhos`
        differentiated step by step (forward mode: each quantity carries its derivatives in φ)."""
        phi = np.asarray(theta[1:], float)
        m = len(phi)
        rho, drho = np.ones(self.q), np.zeros((self.q, m))
        a, da = np.zeros(0), np.zeros((0, m))
        for k, pk in enumerate(phi, start=1):
            e = np.zeros(m)
            e[k - 1] = 1.0  # ∂φ_k/∂φ
            prev, dprev = rho[1:k][::-1], drho[1:k][::-1]
            v = 1.0 - a @ rho[1:k]
            dv = -(a @ drho[1:k] + rho[1:k] @ da)
            rho[k] = a @ prev + pk * v
            drho[k] = prev @ da + a @ dprev + e * v + pk * dv
            a, da = np.r_[a - pk * a[::-1], pk], np.vstack([da - np.outer(a[::-1], e) - pk * da[::-1], e])
        return rho, drho

    def relcov(self, theta):
        rho = self.rhos(theta)
        lag = np.abs(np.subtract.outer(np.arange(self.q), np.arange(self.q)))
        return theta[0] ** 2 * rho[lag]

    def relcov_grad(self, theta):
        """∂C/∂s = 2s T(ρ),  ∂C/∂φ_j = s² T(∂ρ/∂φ_j) (:meth:`rhos_grad`)."""
        theta = np.asarray(theta, float)
        rho, drho = self.rhos_grad(theta)
        lag = np.abs(np.subtract.outer(np.arange(self.q), np.arange(self.q)))
        s = theta[0]
        return np.concatenate([(2 * s * rho[lag])[None], s * s * np.moveaxis(drho[lag], -1, 0)])

    def parameters(self, theta, sigma2):
        rho = self.rhos(theta)
        return [("sigma^2", sigma2 * theta[0] ** 2)] + [(f"rho{k}", rho[k]) for k in range(1, self.q)]


STRUCTURES = {
    "us": Unstructured,
    "diag": VarianceComponents,
    "cs": CompoundSymmetry,
    "ar1": AR1,
    "toep": Toeplitz,
}


def make_structure(name: str, q: int) -> CovarianceStructure:
    """The structure class called ``name`` (us, diag, cs, ar1, toep) for q random effects."""
    try:
        cls = STRUCTURES[name]
    except KeyError:
        raise ValueError(f"unknown covariance structure {name!r}; choose one of {sorted(STRUCTURES)}") from None
    if name in ("cs", "ar1", "toep") and q < 2:
        raise ValueError(f"the {name}() structure needs at least 2 random effects per group, got {q}")
    return cls(q)


# -- small helpers -------------------------------------------------------------------------------
def _lower_triangle_columnwise(q: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = [], []
    for c in range(q):
        for r in range(c, q):
            rows.append(r)
            cols.append(c)
    return np.array(rows), np.array(cols)


def _psd_cholesky(C: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L' = C for a positive semi-definite C (zero columns where C is singular)."""
    q = C.shape[0]
    L = np.zeros_like(C, dtype=float)
    for j in range(q):
        d = C[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * max(1.0, abs(C[j, j])):
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1 :, j] = (C[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


def sd_correlation(S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviations σ_k = √S_kk and correlations ρ_kl = S_kl / (σ_k σ_l) of a covariance matrix
    (NaN where a standard deviation is 0 and the correlation is undefined)."""
    sd = np.sqrt(np.clip(np.diag(S), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        R = S / np.outer(sd, sd)
    R[np.outer(sd, sd) == 0] = np.nan
    return sd, R


# -- lme4's SD/correlation scale of the random-effects parameters (profiles, bootstrap intervals) ---------------
# ψ lists, block by block in the terms' order, each column's SD followed by its correlations with the later
# columns (lme4's .sig01, .sig02, ...): for (1 + x | g) that is sd(1), cor(1, x), sd(x). Σ = σ² C(θ) = D R D.
def check_sdcor_scale(structures) -> None:
    """Raise NotImplementedError unless every block is on lme4's SD/correlation scale (us or diag)."""
    for s in structures:
        if not isinstance(s, (Unstructured, VarianceComponents)):
            raise NotImplementedError(
                f"profile and bootstrap intervals use lme4's SD/correlation scale, which a {s.name}() "
                "block does not have; use method='wald' for the fixed effects")


def sdcor_of_theta(structures, thetas, sigma: float = 1.0) -> np.ndarray:
    """ψ: the SDs and correlations of Σ = σ² C(θ) in lme4's order (an undefined correlation, at a zero SD, is 0);
    ``thetas`` holds each block's θ (σ = 1 for a GLMM)."""
    out = []
    for s, t in zip(structures, thetas):
        sd, R = sd_correlation(sigma**2 * s.relcov(t))
        R = np.nan_to_num(R)
        for c in range(s.q):
            out.append(sd[c])
            if isinstance(s, Unstructured):
                out.extend(R[c + 1 :, c])
    return np.array(out)


def sdcor_bounds(structures) -> list[tuple[float, float]]:
    """Each ψ's range: an SD in [0, ∞), a correlation in [−1, 1]."""
    out = []
    for s in structures:
        for c in range(s.q):
            out.append((0.0, np.inf))
            if isinstance(s, Unstructured):
                out += [(-1.0, 1.0)] * (s.q - c - 1)
    return out


def sd_cor_blocks(structures, psi):
    """ψ cut into its blocks: (structure, SDs, correlation matrix R, the positions in ψ of the SDs, of the
    correlations as (position, row, column)) per block, in lme4's order (entries of ψ after the blocks, such as
    σ, are ignored)."""
    out, k = [], 0
    for s in structures:
        q = s.q
        if isinstance(s, VarianceComponents):
            out.append((s, np.asarray(psi[k : k + q], float), np.eye(q), list(range(k, k + q)), []))
            k += q
            continue
        sd, R, sd_at, cor_at = np.zeros(q), np.eye(q), [], []
        for c in range(q):
            sd[c] = psi[k]
            sd_at.append(k)
            k += 1
            for r in range(c + 1, q):
                R[r, c] = R[c, r] = psi[k]
                cor_at.append((k, r, c))
                k += 1
        out.append((s, sd, R, sd_at, cor_at))
    return out


def theta_from_blocks(blocks, sigma: float = 1.0) -> np.ndarray | None:
    """θ of the blocks of :func:`sd_cor_blocks`: C = D R D / σ² per block, θ from its Cholesky factor; None when
    the correlations do not make a valid covariance matrix."""
    thetas = []
    for structure, sd, R, _, _ in blocks:
        if isinstance(structure, VarianceComponents):
            thetas.append(sd / sigma)
            continue
        q = len(sd)
        if q == 2 and abs(R[1, 0]) > 1 + 1e-12 or q > 2 and np.linalg.eigvalsh(R).min() < -1e-12:
            return None
        thetas.append(structure.theta_from_relcov(np.outer(sd, sd) * R / sigma**2))
    return np.concatenate(thetas)


def _sd_cor_parameters(S: np.ndarray) -> list[tuple[str, float]]:
    sd, R = sd_correlation(S)
    out = [(f"sd{k}", s) for k, s in enumerate(sd)]
    for c in range(len(sd)):
        for r in range(c + 1, len(sd)):
            out.append((f"cor{r}{c}", R[r, c]))
    return out
