"""lmmteach: linear mixed-effects regression from first principles.

The package has five wings, in the order of the lecture notes (Helwig, "Linear Mixed-Effects Regression"),
and imports run one way, from the course down to RM ANOVA:

- :mod:`lmmteach.aov` — one-way RM ANOVA (R's ``aov``): sphericity, Box's ε, GG/HF corrections, tables, comparisons;
- :mod:`lmmteach.lmm` — the mixed model: formula → design → covariance structures → profiled deviance →
  optimiser → fitted model (lme4's stages), and the dense textbook formulas;
- :mod:`lmmteach.glmm` — generalised linear mixed models (lme4's glmer): PIRLS on the same engine, Laplace
  and adaptive quadrature;
- :mod:`lmmteach.inference` — likelihood-ratio tests, parametric bootstrap, intervals, Satterthwaite t tests;
- :mod:`lmmteach.course` — the course's data, figures and homework feedback.

Everything a lecture needs is here at the top: ``import lmmteach as lt; lt.lmer(...)``.
"""

import sys as _sys

__version__ = "0.1.0"

# the course's data
from .course.datasets import (list_datasets, load_cbpp, load_chickweight, load_classrooms, load_dyestuff2,
                              load_groceries,
                              load_grocery, load_hsb, load_insteval_like, load_machines, load_orthodont, load_pastes,
                              load_penicillin, load_reaction_times, load_sleepstudy, load_timss)

# One-Way RM-ANOVA
from .aov.rmanova import aov1rm, box_epsilon, mauchly
from .aov.contrasts import contr_sum, contr_treatment
from .aov.aovtables import anova_error_strata, anova_twoway_additive, long_to_wide, univariate_rm_table
from .aov.multcomp import pairwise_comparisons

# Linear Mixed-Effects Model: lme4's stages, the textbook (dense) formulas, the fitted model
from .lmm.formula import parse_formula
from .lmm.design import lformula
from .lmm import textbook
from .lmm.engine import mk_devfun
from .lmm.optimize import optimize_lmer
from .lmm.control import LmerControl
from .lmm.model import LinearMixedModel, lmer
from .lmm.gls import GLSFit, gls

# Generalised Linear Mixed Model (a course addition: lme4's glmer)
from .glmm.family import binomial, poisson
from .glmm.model import GeneralizedLinearMixedModel, glmer, glmer_devfun, overdispersion

# inference
from .inference.lrt import anova
from .inference.bootstrap import BootstrapLRT, bootstrap_lrt
from .inference.confint import confint
from .inference.profile import profile_zeta
from .inference.satterthwaite import satterthwaite
from .inference.ftest import contest
from .inference.kenward_roger import kenward_roger

# the course: figures, homework feedback, data
from .course import datasets, grading, plots

__all__ = [
    "list_datasets", "load_cbpp", "load_chickweight", "load_classrooms", "load_dyestuff2", "load_groceries",
    "load_grocery",
    "load_hsb", "load_machines", "load_orthodont", "load_penicillin", "load_pastes", "load_insteval_like",
    "load_reaction_times", "load_sleepstudy", "load_timss",
    "aov1rm", "box_epsilon", "mauchly", "contr_sum", "contr_treatment", "anova_error_strata",
    "anova_twoway_additive", "long_to_wide", "univariate_rm_table", "pairwise_comparisons",
    "parse_formula", "lformula", "textbook", "mk_devfun", "optimize_lmer", "LmerControl", "LinearMixedModel", "lmer", "GLSFit", "gls",
    "binomial", "poisson", "GeneralizedLinearMixedModel", "glmer", "glmer_devfun", "overdispersion",
    "anova", "BootstrapLRT", "bootstrap_lrt", "confint", "profile_zeta", "satterthwaite", "contest", "kenward_roger",
    "datasets", "grading", "plots",
]

# The modules' names from before the wings (``lmmteach.rmanova``, ``lt.lrt``) still work, with a
# DeprecationWarning naming the new path. ``lt.datasets``, ``lt.grading``, ``lt.plots`` and ``lt.textbook`` are
# public names (above) and stay. ``lt.anova`` is the likelihood-ratio test (R's ``anova(m0, m1)``) and nothing
# else; the RM-ANOVA wing, once the package ``lmmteach.anova``, is ``lmmteach.aov``: an import of the old package
# path fails with a message naming the new one (an alias would put a module back in ``lt.anova``'s place).
_FORMER_NAMES = {
    "rmanova": "aov", "aovtables": "aov", "multcomp": "aov", "contrasts": "aov",
    "formula": "lmm", "design": "lmm", "covariance": "lmm", "deviance": "lmm", "optimize": "lmm",
    "model": "lmm", "textbook": "lmm", "display": "lmm",
    "lrt": "inference", "bootstrap": "inference", "confint": "inference", "satterthwaite": "inference",
    "ftest": "inference", "kenward_roger": "inference",
    "datasets": "course", "plots": "course", "grading": "course",
}
_PUBLIC_MODULES = {"datasets", "grading", "plots", "textbook"}


def _former_module(name: str, stacklevel: int):
    """The wing module behind a former flat name, with a DeprecationWarning (not for the public modules)."""
    import importlib
    import warnings

    new = f"{__name__}.{_FORMER_NAMES[name]}.{name}"
    if name not in _PUBLIC_MODULES:
        warnings.warn(f"{__name__}.{name} is deprecated; use {new}", DeprecationWarning, stacklevel=stacklevel)
    return importlib.import_module(new)


def __getattr__(name: str):  # ``lt.lrt`` and the like (PEP 562)
    if name in _FORMER_NAMES:
        return _former_module(name, 3)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _FormerNames:
    """``import lmmteach.lrt`` / ``from lmmteach.lrt import ...``: a module of the former name whose contents
    are the wing module's (a finder on sys.meta_path, consulted only for ``lmmteach.<former name>``)."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        import importlib.util

        package, _, name = fullname.partition(".")
        if package != __name__:
            return None
        if name == "anova" or name.startswith("anova."):  # importing the old package path (its parent first)
            raise ModuleNotFoundError(f"the RM-ANOVA package {__name__}.anova is now {__name__}.aov (e.g. "
                                      f"{__name__}.aov.rmanova); {__name__}.anova is the likelihood-ratio test of "
                                      "fitted models, lt.anova(m0, m1)", name=fullname)
        if name not in _FORMER_NAMES:
            return None
        return importlib.util.spec_from_loader(fullname, _FormerNames)

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        name = module.__name__.rpartition(".")[2]
        real = _former_module(name, 3)  # the import statement (warnings skips importlib's own frames)
        module.__dict__.update({k: v for k, v in real.__dict__.items()
                                if k not in ("__name__", "__spec__", "__loader__", "__file__", "__cached__")})


_sys.meta_path.insert(0, _FormerNames)
