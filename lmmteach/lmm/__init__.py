"""The linear mixed-effects model (the notes' "Linear Mixed-Effects Model" part and appendix): formula and
design (y = Xb + Zv + e), covariance structures, the profiled ML/REML deviance, its optimisation, the fitted
model, and the textbook (dense) formulas that check the fast path.

Reading order (the notes' order, lme4's stages): ``formula`` → ``design`` → ``covariance`` → ``textbook`` (the
notes' dense, stacked equations: the oracle) → ``profiled`` (the one deviance interface: set θ → factor →
solve → the profiled deviance formula) → ``deviance`` (one grouping factor, per-group blocks) and ``blocked``
(any number of grouping factors, the blocked Cholesky factor) → ``engine`` (which of the two a design gets) →
``optimize`` and ``control`` → ``fitted`` (what every fitted model shares) → ``model`` (lmer) and ``gls``.
Paths that exist only for speed (stacks of responses, scalar terms, dense crossed blocks) say "Speed only"
in their docstrings."""
