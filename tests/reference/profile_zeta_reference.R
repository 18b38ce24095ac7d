# lme4's profile(m): the signed root zeta(v) of the profiled deviance at lme4's own grid of values, for the
# variance parameters (.sig01, .sig02, .sig03, .sigma on the SD/correlation scale) and the fixed effects of the
# ML fit of Reaction ~ Days + (Days | Subject) (lecture 3's m2). Each grid point is one of lme4's constrained fits
# (the spline only interpolates between them), so lmmteach's profile_zeta at the same values must give the same zeta.
# Run from the repository root: Rscript tests/reference/profile_zeta_reference.R   (lme4 1.1; the fit converged
# without a warning, and nloptwrap, bobyqa and Nelder_Mead reach the same deviance to 1e-6.)
suppressMessages({library(lme4); library(jsonlite)})
out_path <- "tests/reference/profile_zeta_reference.json"
sleep <- read.csv("datasets/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
fits <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead"), function(opt)
  lmer(Reaction ~ Days + (Days | Subject), sleep, REML = FALSE, control = lmerControl(optimizer = opt)))
devs <- sapply(fits, deviance)
stopifnot(max(devs) - min(devs) < 1e-6)
m <- fits[[which.min(devs)]]
stopifnot(is.null(m@optinfo$conv$lme4$messages), length(m@optinfo$warnings) == 0)
pr <- as.data.frame(profile(m, signames = TRUE))
out <- list(deviance = deviance(m))
for (p in levels(pr$.par)) {
  d <- pr[pr$.par == p, ]
  out[[p]] <- list(value = d[[p]], zeta = d$.zeta)
}
str(out, max.level = 1)
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_path)
