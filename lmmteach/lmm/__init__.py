"""The linear mixed-effects model (the notes' "Linear Mixed-Effects Model" part and appendix): formula and
design (y = Xb + Zv + e), covariance structures, the profiled ML/REML deviance, its optimisation, the fitted
model, and the textbook (dense) formulas that check the fast path."""
