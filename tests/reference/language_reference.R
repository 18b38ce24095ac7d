# Reference numbers for the lme4 model language and lmerTest's F tests (tests/lmm/test_language.py,
# tests/inference/test_ftest.py).
#
# Run from the repository root:   Rscript tests/reference/language_reference.R
# Writes datasets/chickweight.csv (R's datasets::ChickWeight, shipped with the package) and
# tests/reference/language_reference.json (committed; the tests read it, so CI needs no R).
#
# Every model is fitted with lme4's three optimizers (nloptwrap, bobyqa, Nelder_Mead); the reference is the
# fit with the highest (restricted) log-likelihood among those that gave no warning. F tests: lmerTest's
# anova(m, type, ddf) with Satterthwaite and Kenward-Roger (pbkrtest) denominator degrees of freedom.
suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(jsonlite)
})

out_path <- "tests/reference/language_reference.json"

cw <- as.data.frame(datasets::ChickWeight)
write.csv(data.frame(weight = cw$weight, Time = cw$Time, Chick = as.character(cw$Chick),
                     Diet = as.character(cw$Diet)), "datasets/chickweight.csv", row.names = FALSE, quote = FALSE)
cw <- data.frame(weight = cw$weight, Time = cw$Time, Chick = factor(as.character(cw$Chick), levels = levels(cw$Chick)),
                 Diet = factor(as.character(cw$Diet)))
cw$wt <- 1 / (1 + cw$Time / 7)   # prior weights used below (the Python tests compute the same column)

fit_best <- function(formula, reml = TRUE, w = NULL, contrasts = NULL, data = cw) {
  best <- NULL
  for (opt in c("nloptwrap", "bobyqa", "Nelder_Mead")) {
    warns <- character(0)
    d <- data
    d$.w <- if (is.null(w)) rep(1, nrow(data)) else w   # lmer reads weights from the data (non-standard evaluation)
    m <- withCallingHandlers(
      if (is.null(w)) lmerTest::lmer(formula, data = d, REML = reml, control = lmerControl(optimizer = opt), contrasts = contrasts)
      else lmerTest::lmer(formula, data = d, REML = reml, control = lmerControl(optimizer = opt), weights = .w, contrasts = contrasts),
      warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
      message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
    if (length(warns) || length(m@optinfo$conv$lme4$messages)) next
    if (is.null(best) || as.numeric(logLik(m)) > as.numeric(logLik(best)) + 1e-12) {
      best <- m
      attr(best, "optimizer") <- opt
    }
  }
  if (is.null(best)) stop("no optimizer gave a clean fit of ", deparse(formula))
  best
}

describe <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(formula = paste(deparse(formula(m)), collapse = " "), optimizer = attr(m, "optimizer"),
       REML = isREML(m), logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
       fixef_names = names(fixef(m)), se = as.numeric(sqrt(diag(as.matrix(vcov(m))))),
       sigma = sigma(m), vcov = vc$vcov, theta = as.numeric(getME(m, "theta")),
       fitted_head = as.numeric(head(fitted(m), 5)))
}

models <- list(
  poly = log(weight) ~ poly(Time, 2) * Diet + (Time | Chick),
  poly_raw = log(weight) ~ poly(Time, 2, raw = TRUE) + Diet + (Time | Chick),
  I_square = weight ~ Time + I(Time^2) + Diet + (Time | Chick),
  scale = log(weight) ~ scale(Time) + Diet + (Time | Chick),
  sqrt_center = sqrt(weight) ~ I(Time - mean(Time)) + Diet + (Time | Chick),
  offset = weight ~ Diet + offset(8 * Time) + (Time | Chick),
  term_order = weight ~ Time:Diet + Diet + Time + (Time | Chick),
  interaction = weight ~ Time * Diet + (Time | Chick)
)
fits <- list()
out <- list(models = list(), weighted = list(), anova = list(), contest = list(), predict = list(),
            chick_levels = levels(cw$Chick))
for (nm in names(models)) {
  fits[[nm]] <- fit_best(models[[nm]])
  out$models[[nm]] <- describe(fits[[nm]])
  out$models[[paste0(nm, "_ML")]] <- describe(fit_best(models[[nm]], reml = FALSE))
}
for (reml in c(TRUE, FALSE)) {
  m <- fit_best(log(weight) ~ Time * Diet + (Time | Chick), reml = reml, w = cw$wt)
  out$weighted[[if (reml) "REML" else "ML"]] <- describe(m)
  if (reml) weighted_fit <- m
}

# predictions at new data use the training data's poly/scale parameters
newdata <- data.frame(Time = c(0, 5, 10, 21, 30), Diet = factor(c("1", "2", "3", "4", "2"), levels = 1:4),
                      Chick = factor("1", levels = levels(cw$Chick)))
for (nm in c("poly", "scale", "offset")) {
  out$predict[[nm]] <- list(re = as.numeric(predict(fits[[nm]], newdata = newdata)),
                            fixed = as.numeric(predict(fits[[nm]], newdata = newdata, re.form = NA)))
}

table_json <- function(a) {
  a <- as.data.frame(a)
  list(terms = rownames(a), SumSq = a[["Sum Sq"]], MeanSq = a[["Mean Sq"]], NumDF = a[["NumDF"]],
       DenDF = a[["DenDF"]], F = a[["F value"]], p = a[["Pr(>F)"]])
}
for (nm in c("interaction", "poly", "term_order")) {
  m <- fits[[nm]]
  for (type in c(1, 3)) for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    out$anova[[paste(nm, type, ddf, sep = "_")]] <- table_json(anova(m, type = type, ddf = ddf))
  }
}
# sum-to-zero coding: type III is the same, type I too
m_sum <- fit_best(weight ~ Time * Diet + (Time | Chick), contrasts = list(Diet = "contr.sum"))
out$anova$interaction_sum_3_Satterthwaite <- table_json(anova(m_sum, type = 3))
out$anova$interaction_sum_3_KR <- table_json(anova(m_sum, type = 3, ddf = "Kenward-Roger"))

# two crossed factors (type III contains grade and gender in grade:gender): the TIMSS stand-in's schools
# 10-400 (pbkrtest forms n x n matrices, so the whole stand-in would need gigabytes)
source("tests/reference/course_data.R")
timss40 <- droplevels(subset(timss, as.numeric(as.character(idschool)) <= 400))
m_timss <- fit_best(science ~ grpCmath + grade * gender + (grpCmath | idschool), data = timss40)
out$models$timss <- describe(m_timss)
for (type in c(1, 3)) for (ddf in c("Satterthwaite", "Kenward-Roger")) {
  out$anova[[paste("timss", type, ddf, sep = "_")]] <- table_json(anova(m_timss, type = type, ddf = ddf))
}

# prior weights in the F tests (Satterthwaite; Kenward-Roger is not offered with weights in lmmteach)
out$anova$weighted_3_Satterthwaite <- table_json(anova(weighted_fit, type = 3))

# a joint test of several contrasts, and Kenward-Roger's adjusted covariance
m <- fits$interaction
L <- rbind(c(0, 0, 1, -1, 0, 0, 0, 0), c(0, 0, 0, 1, -1, 0, 0, 0))
for (ddf in c("Satterthwaite", "Kenward-Roger")) {
  ct <- contest(m, L, joint = TRUE, ddf = ddf)
  out$contest[[ddf]] <- list(L = L, SumSq = ct[["Sum Sq"]], MeanSq = ct[["Mean Sq"]], NumDF = ct$NumDF,
                             DenDF = ct$DenDF, F = ct[["F value"]], p = ct[["Pr(>F)"]])
  ct1 <- contest(m, L, joint = FALSE, ddf = ddf)
  out$contest[[paste0(ddf, "_1d")]] <- list(estimate = ct1$Estimate, se = ct1[["Std. Error"]], df = ct1$df,
                                            t = ct1[["t value"]], p = ct1[["Pr(>|t|)"]])
}
# lme4's summary names the columns of "Correlation of Fixed Effects" by abbreviate(names, 6), rows by 11
abbr_names <- c(names(fixef(fits$poly)), names(fixef(fits$interaction)), "grpCmath", "grpChoursTV", "storeB")
out$abbreviate <- list(names = abbr_names, six = unname(abbreviate(abbr_names, 6)),
                       eleven = unname(abbreviate(abbr_names, 11)))
out$kr_vcov <- as.matrix(vcovAdj(fits$interaction))
out$info <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                 lmerTest = as.character(packageVersion("lmerTest")),
                 pbkrtest = as.character(packageVersion("pbkrtest")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
