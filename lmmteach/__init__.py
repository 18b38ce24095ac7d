"""lmmteach: linear mixed-effects regression from first principles.

The package has five wings, in the order of the lecture notes (Helwig, "Linear Mixed-Effects Regression"),
and imports run one way, from the course down to RM ANOVA:

- :mod:`lmmteach.anova` — one-way RM ANOVA: sphericity, Box's ε, GG/HF corrections, tables, comparisons;
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
from .course.datasets import (list_datasets, load_chickweight, load_classrooms, load_dyestuff2, load_groceries,
                              load_grocery, load_hsb, load_insteval_like, load_machines, load_orthodont, load_pastes,
                              load_penicillin, load_reaction_times, load_sleepstudy, load_timss)

# One-Way RM-ANOVA
from .anova.rmanova import aov1rm, box_epsilon, mauchly
from .anova.contrasts import contr_sum, contr_treatment
from .anova.aovtables import anova_error_strata, anova_twoway_additive, long_to_wide, univariate_rm_table
from .anova.multcomp import pairwise_comparisons

# Linear Mixed-Effects Model: lme4's stages, the textbook (dense) formulas, the fitted model
from .lmm.formula import parse_formula
from .lmm.design import lformula
from .lmm import textbook
from .lmm.deviance import mk_devfun
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
from .inference.satterthwaite import satterthwaite
from .inference.ftest import contest
from .inference.kenward_roger import kenward_roger

# the course: figures, homework feedback, data
from .course import datasets, grading, plots

__all__ = [
    "list_datasets", "load_chickweight", "load_classrooms", "load_dyestuff2", "load_groceries", "load_grocery",
    "load_hsb", "load_machines", "load_orthodont", "load_penicillin", "load_pastes", "load_insteval_like",
    "load_reaction_times", "load_sleepstudy", "load_timss",
    "aov1rm", "box_epsilon", "mauchly", "contr_sum", "contr_treatment", "anova_error_strata",
    "anova_twoway_additive", "long_to_wide", "univariate_rm_table", "pairwise_comparisons",
    "parse_formula", "lformula", "textbook", "mk_devfun", "optimize_lmer", "LmerControl", "LinearMixedModel", "lmer", "GLSFit", "gls",
    "binomial", "poisson", "GeneralizedLinearMixedModel", "glmer", "glmer_devfun", "overdispersion",
    "anova", "BootstrapLRT", "bootstrap_lrt", "confint", "satterthwaite", "contest", "kenward_roger",
    "datasets", "grading", "plots",
]

# The modules' names from before the wings (``lmmteach.rmanova``, ``from lmmteach.plots import ...``) still work.
_FORMER_NAMES = {
    "rmanova": "anova", "aovtables": "anova", "multcomp": "anova", "contrasts": "anova",
    "formula": "lmm", "design": "lmm", "covariance": "lmm", "deviance": "lmm", "optimize": "lmm",
    "model": "lmm", "textbook": "lmm", "display": "lmm",
    "lrt": "inference", "bootstrap": "inference", "confint": "inference", "satterthwaite": "inference",
    "ftest": "inference", "kenward_roger": "inference",
    "datasets": "course", "plots": "course", "grading": "course",
}
for _name, _wing in _FORMER_NAMES.items():
    _module = __import__(f"{__name__}.{_wing}.{_name}", fromlist=[_name])
    _sys.modules.setdefault(f"{__name__}.{_name}", _module)
    globals().setdefault(_name, _module)
del _name, _wing, _module
