# Reference numbers from lme4 for models with several grouping factors (crossed and nested).
#
# Run from the repository root:   Rscript tests/reference/crossed_reference.R
# Writes tests/reference/crossed_reference.json and the simulated data set
# tests/reference/crossed_slope_data.csv (both committed; the tests read them, so CI needs no R).
#
# Every fit is the best of lme4's optimisers (nloptwrap, bobyqa, Nelder_Mead) among those that gave no
# warning or convergence message. For each fit: log-likelihood, deviance, theta, sigma, fixed effects and
# SEs, VarCorr as a data frame, BLUPs with their conditional SDs (condVar), isSingular; and lme4's deviance
# function (devFunOnly) at fixed theta, with no optimiser involved.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
out_path <- "tests/reference/crossed_reference.json"

# ---- data -------------------------------------------------------------------------------------------
penicillin <- read.csv("datasets/penicillin.csv", stringsAsFactors = TRUE)
penicillin$w <- 1 + (seq_len(nrow(penicillin)) - 1) %% 3  # prior weights 1, 2, 3, 1, 2, 3, ... (row order)
pastes <- read.csv("datasets/pastes.csv", stringsAsFactors = TRUE)
# crossed subjects x items with a random slope for subjects (simulated, seeded)
set.seed(20240611)
n_subj <- 30; n_item <- 20
slope <- expand.grid(item = factor(sprintf("i%02d", 1:n_item)), subj = factor(sprintf("s%02d", 1:n_subj)))
slope <- slope[sample(nrow(slope), 520), ]  # an unbalanced subset
slope <- slope[order(slope$subj, slope$item), c("subj", "item")]
slope$x <- round(runif(nrow(slope), -1, 1), 3)
b_subj <- cbind(rnorm(n_subj, 0, 0.8), rnorm(n_subj, 0, 0.4))
b_item <- rnorm(n_item, 0, 0.6)
slope$y <- round(2 + 0.5 * slope$x + b_subj[as.integer(slope$subj), 1] + b_subj[as.integer(slope$subj), 2] * slope$x +
                 b_item[as.integer(slope$item)] + rnorm(nrow(slope), 0, 1), 4)
rownames(slope) <- NULL
write.csv(slope, "tests/reference/crossed_slope_data.csv", row.names = FALSE)
slope <- read.csv("tests/reference/crossed_slope_data.csv", stringsAsFactors = TRUE)

# ---- best converged fit of lme4's optimisers ----------------------------------------------------------
fit1 <- function(formula, data, REML, optimizer, weighted = FALSE) {
  warns <- character(0)
  args <- list(formula, data = data, REML = REML, control = lmerControl(optimizer = optimizer))
  if (weighted) args$weights <- data$w
  m <- withCallingHandlers(
    do.call(lmer, args),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
  warns <- c(warns, m@optinfo$conv$lme4$messages)
  attr(m, "warns") <- warns
  m
}
crit <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)
fit <- function(formula, data, REML, weighted = FALSE) {
  ms <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead"), function(o) fit1(formula, data, REML, o, weighted))
  clean <- Filter(function(m) length(attr(m, "warns")) == 0 ||
                    all(grepl("singular", attr(m, "warns"))), ms)
  if (length(clean) == 0) stop("no optimiser converged without warnings for ", deparse(formula))
  best <- clean[[which.min(sapply(clean, crit))]]
  attr(best, "optimizer") <- best@optinfo$optimizer
  best
}

describe <- function(m, data_name) {
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m, condVar = TRUE)
  list(
    formula = paste(deparse(formula(m), width.cutoff = 500), collapse = " "),
    data = data_name,
    REML = isREML(m),
    optimizer = attr(m, "optimizer"),
    logLik = as.numeric(logLik(m)),
    deviance = crit(m),
    AIC = AIC(m), BIC = BIC(m),
    nobs = nobs(m),
    ngrps = as.list(ngrps(m)),
    theta = unname(getME(m, "theta")),
    theta_names = names(getME(m, "theta")),
    sigma = sigma(m),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
    ranef = lapply(re, function(d) {
      pv <- attr(d, "postVar")
      sd <- if (is.list(pv)) NULL else unname(t(matrix(apply(pv, 3, function(S) sqrt(diag(as.matrix(S)))),
                                                       nrow = ncol(d))))
      list(levels = rownames(d), columns = colnames(d), values = unname(as.matrix(d)), condsd = sd)
    }),
    isSingular = isSingular(m),
    warnings = attr(m, "warns")
  )
}

fits <- list()
models <- list(
  penicillin = list(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin, "penicillin"),
  penicillin_weighted = list(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin, "penicillin"),
  pastes_nested = list(strength ~ 1 + (1 | batch/cask), pastes, "pastes"),
  pastes_interaction = list(strength ~ 1 + (1 | batch:cask) + (1 | batch), pastes, "pastes"),
  pastes_sample = list(strength ~ 1 + (1 | batch) + (1 | sample), pastes, "pastes"),
  slope = list(y ~ x + (x | subj) + (1 | item), slope, "crossed_slope"),
  slope_sorted = list(y ~ x + (1 | item) + (x | subj), slope, "crossed_slope"),
  slope_indep = list(y ~ x + (x || subj) + (1 | item), slope, "crossed_slope")
)
fitted <- list()
for (nm in names(models)) {
  for (REML in c(TRUE, FALSE)) {
    key <- paste0(nm, if (REML) "_reml" else "_ml")
    mm <- models[[nm]]
    fitted[[key]] <- fit(mm[[1]], mm[[2]], REML, weighted = nm == "penicillin_weighted")
    fits[[key]] <- describe(fitted[[key]], mm[[3]])
  }
}

# ---- likelihood-ratio tests (ML) ----------------------------------------------------------------------
lrt <- function(...) {
  a <- anova(..., refit = TRUE)
  list(models = rownames(a), npar = a$npar, logLik = a$logLik, deviance = a$deviance,
       Chisq = a$Chisq, Df = a$Df, p = a[["Pr(>Chisq)"]])
}
pen_plate <- fit(diameter ~ 1 + (1 | plate), penicillin, FALSE)
anovas <- list(penicillin = lrt(fitted$penicillin_ml, pen_plate),
               slope = lrt(fitted$slope_ml, fitted$slope_indep_ml))

# ---- deviance functions at fixed theta (no optimiser) ------------------------------------------------
devfun_at <- function(name, REML, thetas) {
  mm <- models[[name]]
  df <- lmer(mm[[1]], data = mm[[2]], REML = REML, devFunOnly = TRUE)
  lapply(thetas, function(th) list(name = name, REML = REML, theta = th, deviance = df(th)))
}
devfuns <- c(
  devfun_at("penicillin", TRUE, list(c(1, 1), c(1.5, 3), c(0, 2))),
  devfun_at("penicillin", FALSE, list(c(1, 1), c(1.5, 3))),
  devfun_at("pastes_nested", TRUE, list(c(1, 1), c(3, 1.5), c(2, 0))),
  devfun_at("pastes_nested", FALSE, list(c(1, 1), c(3, 1.5))),
  devfun_at("slope", TRUE, list(c(1, 0, 1, 1), c(0.8, 0.1, 0.3, 0.5))),
  devfun_at("slope", FALSE, list(c(0.8, 0.1, 0.3, 0.5))),
  devfun_at("slope_sorted", TRUE, list(c(0.8, 0.1, 0.3, 0.5)))
)

# ---- Satterthwaite degrees of freedom (lmerTest) -------------------------------------------------------
satt <- function(name) {
  mm <- models[[name]]
  m <- lmerTest::lmer(mm[[1]], data = mm[[2]], REML = TRUE)
  co <- summary(m)$coefficients
  list(name = name, terms = rownames(co), df = unname(co[, "df"]), t = unname(co[, "t value"]))
}
satterthwaite <- list(satt("penicillin"), satt("slope"), satt("pastes_nested"))

ref <- list(
  generated_by = "tests/reference/crossed_reference.R",
  R_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  lmerTest_version = as.character(packageVersion("lmerTest")),
  fits = fits, anova = anovas, devfun = devfuns, satterthwaite = satterthwaite
)
writeLines(toJSON(ref, digits = I(15), auto_unbox = TRUE, pretty = TRUE, na = "null"), out_path)
cat("wrote", out_path, "\n")
