# Profile intervals of a GLMM with a vector-valued random-effects term, from lme4's confint(method = "profile").
#
# Run from the repository root:   Rscript tests/reference/glmm_profile_vector_reference.R
# Writes tests/reference/glmm_profile_vector_reference.json (committed; the tests read it, so CI needs no R).
#
# The model is glmm_reference.R's Contraception fit (tests/reference/glmm_contraception.csv),
#   use ~ I(age/10) + I((age/10)^2) + urban + livch + (urban | district), binomial logit, Laplace,
# the best of glmer's optimiser choices among those that gave no warning (as glmm_reference.R), with
# glmerControl(tolPwrss = 1e-13). lme4 profiles .sig01 (SD of the intercept), .sig02 (the correlation),
# .sig03 (SD of urbanY) and the fixed effects, and interpolates the signed root zeta by splines. Its warnings are
# kept, and `doubtful` names the parameters they mention (a non-monotonic profile, a spline that failed and fell back
# to linear interpolation): there lme4's end point is not a reference.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
contra <- read.csv("tests/reference/glmm_contraception.csv", stringsAsFactors = TRUE)
contra$district <- factor(contra$district); contra$livch <- factor(contra$livch); contra$urban <- factor(contra$urban)
fit1 <- function(optimizer) {
  warns <- character(0)
  m <- withCallingHandlers(
    glmer(use ~ I(age/10) + I((age/10)^2) + urban + livch + (urban | district), data = contra, family = binomial,
          control = glmerControl(optimizer = optimizer, tolPwrss = 1e-13)),
    warning = function(w) {warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning")})
  if (length(m@optinfo$conv$lme4$messages)) warns <- c(warns, m@optinfo$conv$lme4$messages)
  attr(m, "warns") <- warns
  m
}
ms <- lapply(list(c("bobyqa", "Nelder_Mead"), "bobyqa", "nloptwrap"), fit1)
clean <- Filter(function(m) length(attr(m, "warns")) == 0, ms)
m <- clean[[which.max(sapply(clean, function(m) as.numeric(logLik(m))))]]
t0 <- proc.time()[["elapsed"]]
profile_warnings <- character(0)  # lme4's own doubts (non-monotonic profile, bad spline fit): the tests skip those
ci <- withCallingHandlers(confint(m, method = "profile", level = 0.95),
  warning = function(w) {profile_warnings <<- c(profile_warnings, conditionMessage(w)); invokeRestart("muffleWarning")})
doubtful <- rownames(ci)[sapply(rownames(ci), function(p) any(grepl(p, profile_warnings, fixed = TRUE)))]
res <- list(formula = "use ~ I(age/10) + I((age/10)**2) + urban + livch + (urban | district)",
            logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")), fixef = unname(fixef(m)),
            optimizer = paste(m@optinfo$optimizer, collapse = "+"),
            names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]),
            warnings = profile_warnings, doubtful = doubtful,
            seconds = proc.time()[["elapsed"]] - t0,
            versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/glmm_profile_vector_reference.json")
cat("wrote tests/reference/glmm_profile_vector_reference.json\n")
