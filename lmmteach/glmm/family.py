"""Families and links of a generalised linear mixed model (R's ``binomial()`` and ``poisson()``).

Given the random effects b, each response is independent with mean μ_i and

    g(μ_i) = η_i = offset_i + x_i'β + z_i'b          (the link g, its inverse μ = g⁻¹(η))
    Var(y_i | b) = φ V(μ_i) / w_i                      (variance function V, prior weights w_i, φ = 1 here)

* binomial: y_i is a proportion of w_i trials (0/1 when w_i = 1), V(μ) = μ(1 − μ); links logit
  log(μ/(1 − μ)), probit Φ⁻¹(μ), cloglog log(−log(1 − μ));
* Poisson: y_i is a count, V(μ) = μ; link log.

A family supplies what PIRLS and the likelihood need: μ = g⁻¹(η), dμ/dη, V(μ), the log-density
log p(y_i | μ_i) with its constants (so that −2 log L is lme4's deviance of the fit, ``logLik``), the
deviance residuals, and a random draw (``simulate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

__all__ = ["Link", "Family", "Binomial", "Poisson", "binomial", "poisson", "make_family", "LINKS", "ResponseLogLik"]

MU_EPS = np.finfo(float).eps
"""Probabilities are kept in [ε, 1 − ε] (R's binomial links do the same), so that log μ stays finite."""

ETA_MAX_LOG = np.log(np.finfo(float).max) - 1.0
"""Largest η whose exp() stays finite (R's poisson()$linkinv takes pmax(exp(η), ε) the same way)."""


@dataclass(frozen=True)
class Link:
    """A link g with its inverse μ = g⁻¹(η) and the derivative dμ/dη."""

    name: str

    def linkfun(self, mu: np.ndarray) -> np.ndarray:
        """η = g(μ)."""
        mu = np.asarray(mu, float)
        if self.name == "logit":
            return special.logit(mu)
        if self.name == "probit":
            return special.ndtri(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        return np.log(mu)

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """μ = g⁻¹(η) (probabilities kept inside [ε, 1 − ε])."""
        eta = np.asarray(eta, float)
        if self.name == "logit":
            return np.clip(special.expit(eta), MU_EPS, 1 - MU_EPS)
        if self.name == "probit":
            return np.clip(special.ndtr(eta), MU_EPS, 1 - MU_EPS)
        if self.name == "cloglog":
            return np.clip(-np.expm1(-np.exp(np.minimum(eta, ETA_MAX_LOG))), MU_EPS, 1 - MU_EPS)
        return np.maximum(np.exp(np.minimum(eta, ETA_MAX_LOG)), MU_EPS)

    def mu_eta(self, eta: np.ndarray, mu: np.ndarray | None = None) -> np.ndarray:
        """dμ/dη (``mu``: g⁻¹(η) when the caller has it; the logit link's μ(1 − μ) then costs no exp)."""
        eta = np.asarray(eta, float)
        if self.name == "logit":
            p = special.expit(eta) if mu is None else mu
            return np.maximum(p * (1 - p), MU_EPS)
        if self.name == "probit":
            return np.maximum(stats.norm.pdf(eta), MU_EPS)
        if self.name == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e - np.exp(e)), MU_EPS)
        return np.maximum(np.exp(np.minimum(eta, ETA_MAX_LOG)), MU_EPS)


LINKS = {"binomial": ("logit", "probit", "cloglog"), "poisson": ("log",)}
"""The links each family accepts (the first is the canonical one, the default)."""


@dataclass(frozen=True)
class Family:
    """A response distribution with its link (R's family object: ``binomial(link = "probit")``)."""

    name: str
    link: Link

    def __post_init__(self):
        if self.link.name not in LINKS[self.name]:
            raise ValueError(f"the {self.name} family takes the link {' or '.join(map(repr, LINKS[self.name]))}, "
                             f"not {self.link.name!r}")

    def __str__(self) -> str:
        return f"{self.name}  ( {self.link.name} )"

    def variance(self, mu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_density_constant(self, y, weights) -> np.ndarray:
        """The part of log p(y_i | μ_i) free of μ (binomial log C(w_i, s_i), Poisson −w_i log y_i!)."""
        raise NotImplementedError

    def log_density_kernel(self, y, mu, weights) -> np.ndarray:
        """The part of log p(y_i | μ_i) that depends on μ (binomial s log μ + (w − s) log(1 − μ), Poisson
        w(y log μ − μ))."""
        raise NotImplementedError

    def loglik_terms(self, y, mu, weights) -> np.ndarray:
        """log p(y_i | μ_i), one value per observation, with every constant (R's family ``aic`` / −2)."""
        return self.log_density_constant(y, weights) + self.log_density_kernel(y, mu, weights)

    def deviance_residuals(self, y, mu, weights) -> np.ndarray:
        """d_i = 2 [log p(y_i | μ = y_i) − log p(y_i | μ_i)], so that Σ d_i is the GLM deviance."""
        raise NotImplementedError

    def simulate(self, mu, weights, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def working(self, y, eta, offset, weights, mu=None) -> tuple[np.ndarray, np.ndarray]:
        """PIRLS's weights and response at η, from one μ and one dμ/dη:

            W_i = w_i (dμ/dη)² / V(μ_i)   (Fisher scoring's information per observation),
            z_i = η_i − offset_i + (y_i − μ_i) / (dμ/dη)_i   (a linearised y on the η scale).

        ``mu``: μ = g⁻¹(η) when the caller has it already (speed only)."""
        mu = self.link.linkinv(eta) if mu is None else mu
        d = self.link.mu_eta(eta, mu)
        return weights * d**2 / self.variance(mu), eta - offset + (y - mu) / d

    def working_weights(self, eta, weights) -> np.ndarray:
        """PIRLS weights W_i (:meth:`working`; they do not depend on y)."""
        return self.working(0.0, eta, 0.0, weights)[0]

    def working_response(self, y, eta, offset) -> np.ndarray:
        """PIRLS's response z_i (:meth:`working`)."""
        return self.working(y, eta, offset, 1.0)[1]

    def pearson_residuals(self, y, mu, weights) -> np.ndarray:
        """(y_i − μ_i) √w_i / √V(μ_i)."""
        return (y - mu) * np.sqrt(weights / self.variance(mu))


class Binomial(Family):
    """y_i = s_i / w_i, the proportion of successes s_i in w_i trials:  p(y_i | μ_i) = C(w_i, s_i) μ^s (1 − μ)^(w−s)."""

    def variance(self, mu):
        return mu * (1 - mu)

    def log_density_constant(self, y, weights):
        s = np.round(weights * y)
        return special.gammaln(weights + 1) - special.gammaln(s + 1) - special.gammaln(weights - s + 1)

    def log_density_kernel(self, y, mu, weights):
        s = np.round(weights * y)
        return special.xlogy(s, mu) + special.xlog1py(weights - s, -mu)

    def deviance_residuals(self, y, mu, weights):
        return 2 * weights * (special.xlogy(y, y / mu) + special.xlogy(1 - y, (1 - y) / (1 - mu)))

    def simulate(self, mu, weights, rng):
        trials = np.round(weights).astype(np.int64)
        return rng.binomial(trials, mu) / trials


class Poisson(Family):
    """y_i a count:  p(y_i | μ_i) = μ^y e^(−μ) / y!  (to the power w_i with prior weights, as R's ``poisson()``)."""

    def variance(self, mu):
        return mu

    def log_density_constant(self, y, weights):
        return -weights * special.gammaln(y + 1)

    def log_density_kernel(self, y, mu, weights):
        return weights * (special.xlogy(y, mu) - mu)

    def deviance_residuals(self, y, mu, weights):
        return 2 * weights * (special.xlogy(y, y / mu) - (y - mu))

    def simulate(self, mu, weights, rng):
        return rng.poisson(mu).astype(float)


@dataclass(frozen=True)
class ResponseLogLik:
    """log p(y | μ) = Σ_i log p(y_i | μ_i) of fixed responses y as a function of μ, and the GLM deviance
    Σ_i d_i = 2 [log p(y | μ = y) − log p(y | μ)], with the parts free of μ summed once (speed only: PIRLS
    evaluates them at every step; :meth:`Family.loglik_terms` and :meth:`Family.deviance_residuals` give the
    same per observation). For 0/1 responses without weights the binomial kernel is Σ log(μ_i or 1 − μ_i):
    one logarithm per row."""

    family: Family
    y: np.ndarray
    weights: np.ndarray
    constant: float  # Σ of the parts free of μ
    saturated: float  # Σ of the kernel at μ = y
    ones: np.ndarray | None  # 0/1 responses without weights: where y = 1 (else None)

    @classmethod
    def of(cls, family: Family, y, weights) -> "ResponseLogLik":
        y = np.asarray(y, float)
        weights = np.broadcast_to(np.asarray(weights, float), y.shape)
        binary = family.name == "binomial" and bool(np.all(weights == 1.0) and np.all((y == 0) | (y == 1)))
        return cls(family, y, weights, float(np.sum(family.log_density_constant(y, weights))),
                   float(np.sum(family.log_density_kernel(y, y, weights))), y == 1 if binary else None)

    def kernel(self, mu) -> float:
        """Σ_i of the parts of log p(y_i | μ_i) that depend on μ."""
        if self.ones is not None:
            return float(np.sum(np.log(np.where(self.ones, mu, 1.0 - mu))))
        return float(np.sum(self.family.log_density_kernel(self.y, mu, self.weights)))

    def __call__(self, mu) -> float:
        """log p(y | μ)."""
        return self.constant + self.kernel(mu)

    def deviance(self, mu) -> float:
        """Σ_i d_i(y_i, μ_i) = 2 [log p(y | y) − log p(y | μ)]."""
        return 2.0 * (self.saturated - self.kernel(mu))


def binomial(link: str = "logit") -> Family:
    """R's ``binomial(link)``: links "logit" (default), "probit", "cloglog"."""
    return Binomial("binomial", Link(link))


def poisson(link: str = "log") -> Family:
    """R's ``poisson(link)``: the log link."""
    return Poisson("poisson", Link(link))


def make_family(family) -> Family:
    """A :class:`Family` from glmer's ``family=`` argument: a name ("binomial", "poisson") or a family object."""
    if isinstance(family, Family):
        return family
    if isinstance(family, str):
        makers = {"binomial": binomial, "poisson": poisson}
        if family not in makers:
            raise ValueError(f"family={family!r} is not available; use 'binomial' or 'poisson' "
                             "(or binomial(link='probit'), binomial(link='cloglog'))")
        return makers[family]()
    raise TypeError(f"family must be 'binomial', 'poisson' or a Family such as binomial('probit'), "
                    f"not {type(family).__name__}")
