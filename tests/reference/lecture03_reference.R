# Reference numbers asserted in lectures/03_lmm.ipynb that are not in lme4_reference.json.
# Run: Rscript tests/reference/lecture03_reference.R   (lme4 1.1-31 printed 1378.17851381 960.45657856)
suppressMessages(library(lme4))
ri <- lmer(Reaction ~ Days + (1 | Subject), sleepstudy)  # REML, as lmmteach's lmer default
stopifnot(is.null(ri@optinfo$conv$lme4$messages))          # a converged fit
print(as.data.frame(VarCorr(ri))$vcov, digits = 12)          # sigma_v^2, sigma_e^2 (cell "sigma_v^2 = ...")
