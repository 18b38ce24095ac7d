"""The optimiser's settings in one place (lme4's ``lmerControl``, MixedModels.jl's ``OptSummary``).

Every heuristic the search over θ uses has a name and a default here, so that a student can read what the
optimiser does and change it: ``lt.lmer(formula, data, control=LmerControl(gtol=1e-8))``. What the search
did (its steps, evaluations, final gradient) is recorded in the fit log, ``model.optimum.log``; printing it is
:func:`lmmteach.lmm.display.fit_log_lines`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["OPTIMIZERS", "LmerControl", "DEFAULT_CONTROL"]

OPTIMIZERS = ("L-BFGS-B", "COBYQA")
"""The searches over θ: quasi-Newton with the exact gradient, or derivative-free."""


@dataclass(frozen=True)
class LmerControl:
    """Named tolerances of :func:`lmmteach.lmm.optimize.optimize_lmer` (defaults in brackets).

    ``optimizer`` ["L-BFGS-B"]: L-BFGS-B with the exact gradient, then Newton steps (every engine), or
    "COBYQA" (derivative-free, as lme4's BOBYQA). For L-BFGS-B:

    * ``gtol`` [1e-6], ``ftol`` [1e-15], ``maxiter`` [2000], ``maxcor`` [10]: L-BFGS-B's own stopping rules
      and memory, on θ measured in units of its typical size;
    * ``sd_floor`` [1e-6], ``sd_cap`` [1e4]: during the search an SD-type θ stays in [floor, cap] (in units of
      its typical size): at exactly 0 its gradient vanishes, far out X'V⁻¹X becomes singular;
    * ``boundary_restarts`` [10], ``boundary_probe`` [1e-3], ``boundary_restart_at`` [0.1]: when the search
      stops at the floor where the deviance still falls into the parameter space, restart that θ at
      ``boundary_restart_at`` times its starting size, at most ``boundary_restarts`` times;
    * ``snap_tol`` [1e-10]: an SD at the floor is set to exactly 0 if the deviance rises by at most this;
    * ``newton_steps`` [8], ``decrement_tol`` [1e-6], ``fd_step`` [1e-6]: the Newton polish (Hessian by
      forward differences of the gradient with relative step ``fd_step``) and the convergence test: the
      deviance still to gain, ½ g'H⁻¹g, below ``decrement_tol``;

    for COBYQA:

    * ``df_initial_radius`` [0.05], ``df_final_radius`` [1e-6]: first and last trust-region radius;
    * ``df_gradient_step`` [1e-5]: relative step of the central differences of the final convergence check,
      which uses ``decrement_tol`` too.
    """

    gtol: float = 1e-6
    ftol: float = 1e-15
    maxiter: int = 2000
    maxcor: int = 10
    sd_floor: float = 1e-6
    sd_cap: float = 1e4
    boundary_restarts: int = 10
    boundary_probe: float = 1e-3
    boundary_restart_at: float = 0.1
    snap_tol: float = 1e-10
    newton_steps: int = 8
    decrement_tol: float = 1e-6
    fd_step: float = 1e-6
    df_initial_radius: float = 0.05
    df_final_radius: float = 1e-6
    df_gradient_step: float = 1e-5
    optimizer: str = "L-BFGS-B"

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"LmerControl.optimizer must be one of {list(OPTIMIZERS)}, not {self.optimizer!r}")
        for f in fields(self):
            if f.name == "optimizer":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"LmerControl.{f.name} must be a number, not {value!r}")
            if not value > 0:
                raise ValueError(f"LmerControl.{f.name} must be positive, got {value!r}")
        if self.df_final_radius >= self.df_initial_radius:
            raise ValueError("LmerControl.df_final_radius must be smaller than df_initial_radius")


DEFAULT_CONTROL = LmerControl()
