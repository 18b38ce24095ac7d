# Reference numbers from lme4 for crossed factors fitted by the sparse Schur complement
# (lmmteach/lmm/sparse_schur.py): a clustered crossed design, patients x doctors within clinics.
#
# Run from the repository root:   Rscript tests/reference/sparse_schur_reference.R
# Writes tests/reference/sparse_schur_reference.json and the simulated data set
# tests/reference/sparse_schur_data.csv (both committed; the tests read them, so CI needs no R).
#
# Every fit is the best of lme4's optimisers (nloptwrap, bobyqa, Nelder_Mead) among those that gave no
# warning or convergence message: log-likelihood, theta, sigma, fixed effects, and lme4's deviance
# function (devFunOnly) at fixed theta, with no optimiser involved.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
out_path <- "tests/reference/sparse_schur_reference.json"

# ---- data: 3,000 visits; 20 clinics, each with 15 patients and 15 doctors; a visit is a patient seeing a
# doctor of the same clinic, except 2% of visits to a doctor of another clinic (seeded) ----------------------
set.seed(20261205)
n <- 3000; n_clinic <- 20; per <- 15
clinic <- sample(n_clinic, n, replace = TRUE)
patient <- (clinic - 1) * per + sample(per, n, replace = TRUE)
elsewhere <- runif(n) < 0.02
clinic_doc <- ifelse(elsewhere, sample(n_clinic, n, replace = TRUE), clinic)
doctor <- (clinic_doc - 1) * per + sample(per, n, replace = TRUE)
x <- round(runif(n, -1, 1), 3)
b_pat <- rnorm(n_clinic * per, 0, 0.9)
b_doc <- cbind(rnorm(n_clinic * per, 0, 0.6), rnorm(n_clinic * per, 0, 0.3))
y <- round(1 + 0.5 * x + b_pat[patient] + b_doc[doctor, 1] + b_doc[doctor, 2] * x + rnorm(n), 4)
d <- data.frame(patient = sprintf("p%03d", patient), doctor = sprintf("d%03d", doctor), x = x, y = y)
write.csv(d, "tests/reference/sparse_schur_data.csv", row.names = FALSE)
d <- read.csv("tests/reference/sparse_schur_data.csv", stringsAsFactors = TRUE)

fit1 <- function(formula, REML, optimizer) {
  warns <- character(0)
  m <- withCallingHandlers(
    lmer(formula, data = d, REML = REML, control = lmerControl(optimizer = optimizer)),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
  attr(m, "warns") <- c(warns, m@optinfo$conv$lme4$messages)
  m
}
crit <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)
fit <- function(formula, REML) {
  ms <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead"), function(o) fit1(formula, REML, o))
  clean <- Filter(function(m) length(attr(m, "warns")) == 0, ms)
  if (length(clean) == 0) stop("no optimiser converged without warnings for ", deparse(formula))
  clean[[which.min(sapply(clean, crit))]]
}

models <- list(
  intercepts_ml = list(formula = y ~ x + (1 | patient) + (1 | doctor), REML = FALSE),
  intercepts_reml = list(formula = y ~ x + (1 | patient) + (1 | doctor), REML = TRUE),
  slope_reml = list(formula = y ~ x + (1 | patient) + (x | doctor), REML = TRUE)
)
fits <- list()
for (name in names(models)) {
  spec <- models[[name]]
  m <- fit(spec$formula, spec$REML)
  devfun <- lmer(spec$formula, data = d, REML = spec$REML, devFunOnly = TRUE)
  theta_fixed <- rep(0.5, length(getME(m, "theta")))
  fits[[name]] <- list(
    formula = paste(deparse(spec$formula), collapse = ""), REML = spec$REML,
    optimizer = m@optinfo$optimizer, logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
    sigma = sigma(m), beta = unname(fixef(m)),
    theta_fixed = theta_fixed, devfun_at_theta_fixed = devfun(theta_fixed))
}
writeLines(toJSON(list(lme4 = as.character(packageVersion("lme4")), fits = fits), auto_unbox = TRUE,
                  digits = I(15), pretty = TRUE), out_path)
