"""Confidence intervals for the parameters of a fitted model (lme4's ``confint``).

Rows as lme4 names them: ``.sig01, .sig02, ...`` for the random-effect standard deviations and
correlations (term by term, within a term in the order of the lower triangle of Σ taken column by column:
σ_0, ρ_01, ..., σ_1, ...), ``.sigma`` for σ, then the fixed effects. Three methods:

* ``"wald"``: b̂_k ± z_{1−α/2} se(b̂_k) for fixed effects; NaN for the variance parameters (as lme4: their
  sampling distributions are far from normal).
* ``"profile"`` (the default, as lme4): the likelihood-ratio interval { v : d_k(v) − d(ψ̂) ≤ χ²_{1, level} }
  of the profiled deviance d_k (:mod:`lmmteach.inference.profile`).
* ``"boot"``: percentile intervals of the estimates refitted to ``nsim`` data sets simulated from the fit
  (the parametric bootstrap of :mod:`lmmteach.inference.bootstrap`, lme4's ``bootMer``).

Only unstructured (``us``) and variance-components (``diag``) blocks have lme4's σ/ρ scale; other
structures get Wald intervals for their fixed effects only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .profile import check_scale, parameter_names, profile_intervals, sdcor

__all__ = ["confint"]


def _level_columns(level):
    a = (1 - level) / 2
    return [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]


def confint(model, method: str = "profile", level: float = 0.95, parm=None, nsim: int = 500, seed=None,
            progress: bool = False, n_jobs: int = 1) -> pd.DataFrame:
    """lme4's ``confint(m, method=...)``: a DataFrame with rows ``.sig01, ..., .sigma``, then the fixed
    effects, and columns ``2.5 %`` and ``97.5 %`` (for level 0.95). ``parm`` selects rows by name;
    ``nsim``, ``seed`` and ``n_jobs`` (worker processes; the result does not depend on it) are for
    ``method="boot"``."""
    from ..glmm.model import GeneralizedLinearMixedModel

    if isinstance(model, GeneralizedLinearMixedModel):  # glmer fits: Wald or profile, by the model itself
        return model.confint(level=level, method=method, parm=parm)
    method = method.lower()
    if method not in ("wald", "profile", "boot"):
        raise ValueError(f"method must be 'wald', 'profile' or 'boot', not {method!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    cols = _level_columns(level)
    fixed = list(model.fixef.index)
    if method == "wald":
        try:
            check_scale(model)
            names = parameter_names(model)
        except NotImplementedError:
            names = fixed
        z = stats.norm.isf((1 - level) / 2)
        out = pd.DataFrame(np.nan, index=names, columns=cols)
        out.loc[fixed, cols[0]] = (model.fixef - z * model.se).to_numpy()
        out.loc[fixed, cols[1]] = (model.fixef + z * model.se).to_numpy()
        return out if parm is None else out.loc[list(parm)]
    check_scale(model)
    names = parameter_names(model)
    wanted = names if parm is None else list(parm)
    unknown = [p for p in wanted if p not in names]
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; the parameters are {names}")
    if method == "boot":
        from .bootstrap import parametric_bootstrap

        def statistic(Y):  # the estimates of a batch of simulated responses, refitted together
            r = model.refit_many(Y, theta0=model.theta)
            return [np.r_[sdcor(model, t, s), b] for t, s, b in zip(r.theta, r.sigma, r.fixef)]

        sims = parametric_bootstrap(model, statistic, nsim, seed, progress, desc="bootstrap confint",
                                    n_jobs=n_jobs, many=True)
        a = (1 - level) / 2
        q = np.nanquantile(sims, [a, 1 - a], axis=0).T
        return pd.DataFrame(q, index=names, columns=cols).loc[wanted]

    return profile_intervals(model, names, wanted, level, cols)
