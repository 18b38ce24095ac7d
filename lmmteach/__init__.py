"""lmmteach: linear mixed-effects regression from first principles.

The modules follow the order of the lecture notes (Helwig, "Linear Mixed-Effects Regression"):
one-way RM ANOVA -> formula and design -> covariance structures -> GLS -> mixed-model equations ->
profiled ML/REML deviance -> optimiser -> fitted model -> inference -> printing and plots.
"""

__version__ = "0.1.0"

# the course's data
from .datasets import (list_datasets, load_classrooms, load_dyestuff2, load_groceries, load_grocery,
                       load_machines, load_reaction_times, load_sleepstudy, load_timss)

# One-Way RM-ANOVA
from .rmanova import aov1rm, box_epsilon, mauchly
from .contrasts import contr_sum, contr_treatment
from .aovtables import anova_error_strata, anova_twoway_additive, long_to_wide, univariate_rm_table
from .multcomp import pairwise_comparisons

# Linear Mixed-Effects Model: lme4's stages, the textbook (dense) formulas, the fitted model
from .formula import parse_formula
from .design import lformula
from . import textbook
from .deviance import mk_devfun
from .optimize import optimize_lmer
from .model import LinearMixedModel, lmer

# inference
from .lrt import anova
from .bootstrap import BootstrapLRT, bootstrap_lrt
from .confint import confint
from .satterthwaite import satterthwaite

# homework
from . import grading
