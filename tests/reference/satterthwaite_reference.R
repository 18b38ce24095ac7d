# Reference Satterthwaite denominator df for lmmteach's step-independent derivatives
# (tests/inference/test_satterthwaite_exact.py).
#
# Run from the repository root:   Rscript tests/reference/satterthwaite_reference.R
# Writes tests/reference/satterthwaite_reference.json and the data it fits, tests/reference/bodyweight.csv
# (nlme's BodyWeight: rat growth curves under three diets; committed so that CI needs no R).
#
# BodyWeight (nlme), weight ~ Time * Diet + (Time | Rat), REML: lmerTest's summary() df. The reference is
# the best converged fit of lme4's optimizers (nloptwrap, bobyqa, Nelder_Mead): none may warn.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(nlme)
  library(jsonlite)
})

out_path <- "tests/reference/satterthwaite_reference.json"
data("BodyWeight", package = "nlme")
bw <- data.frame(weight = BodyWeight$weight, Time = BodyWeight$Time,
                 Rat = as.character(BodyWeight$Rat), Diet = as.character(BodyWeight$Diet))
write.csv(bw, "tests/reference/bodyweight.csv", row.names = FALSE)

best_fit <- function(formula, data, REML) {
  best <- NULL
  for (opt in c("nloptwrap", "bobyqa", "Nelder_Mead")) {
    warned <- FALSE
    m <- withCallingHandlers(
      lmerTest::lmer(formula, data = data, REML = REML, control = lmerControl(optimizer = opt)),
      warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") })
    if (length(m@optinfo$conv$lme4$messages) > 0) warned <- TRUE
    if (!warned && (is.null(best) || logLik(m) > logLik(best))) best <- m
  }
  if (is.null(best)) stop("no optimizer converged without a warning")
  best
}

m <- best_fit(weight ~ Time * Diet + (Time | Rat), bw, REML = TRUE)
tab <- coef(summary(m))
out <- list(bodyweight = list(
  formula = "weight ~ Time * Diet + (Time | Rat)", REML = TRUE,
  names = rownames(tab), estimate = unname(tab[, "Estimate"]), se = unname(tab[, "Std. Error"]),
  df = unname(tab[, "df"]), loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta"))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_path)
