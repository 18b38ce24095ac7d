"""Generalised linear mixed models (lme4's ``glmer``), one concept per module, in the order of the fit:

- :mod:`~lmmteach.glmm.family` -- binomial and Poisson families, their links, densities and residuals;
- :mod:`~lmmteach.glmm.response` -- glmer's response (cbind, proportions with trials, factors), support checks;
- :mod:`~lmmteach.glmm.pirls` -- PIRLS: the conditional modes, one linear mixed-model solve per iteration;
- :mod:`~lmmteach.glmm.laplace` -- the Laplace deviance −2 log L(θ, β), the function the optimiser sees;
- :mod:`~lmmteach.glmm.quadrature` -- adaptive Gauss-Hermite quadrature for one scalar random effect;
- :mod:`~lmmteach.glmm.optimize` -- lme4's two optimisation stages;
- :mod:`~lmmteach.glmm.model` -- the fitted model and ``glmer``; :mod:`~lmmteach.glmm.display` prints it;
- :mod:`~lmmteach.glmm.textbook` -- the same likelihood by brute force (dense matrices, numerical integration).
"""
