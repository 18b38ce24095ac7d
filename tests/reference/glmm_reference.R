# Reference numbers from lme4's glmer (generalised linear mixed models).
#
# Run from the repository root:   Rscript tests/reference/glmm_reference.R
# Writes tests/reference/glmm_reference.json and the data sets as CSV (tests/reference/glmm_*.csv), all
# committed: the tests read them, so CI needs no R.
#
# Every fit is the best (highest log-likelihood) of glmer's optimiser choices -- the default
# c("bobyqa", "Nelder_Mead"), bobyqa in both stages, nloptwrap in both stages -- among those that gave no
# warning or convergence message. For each fit: logLik, deviance, AIC, BIC, theta, fixed effects, vcov,
# the scaled Pearson residuals' quantiles, VarCorr, conditional modes with conditional SDs; and glmer's
# deviance function (devFunOnly) at fixed parameters, with no optimiser involved.
#
# PIRLS tolerance: every fit uses glmerControl(tolPwrss = 1e-13). With lme4's default 1e-7 the conditional
# modes stop short and the Laplace deviance of cbpp at the optimum is 5.7e-4 above its converged value
# (184.053133 instead of 184.052564; theta 0.642064 instead of 0.642261); with 1e-10 and 1e-13 lme4 gives the
# same converged numbers, which are the ones a converged fit must match. VerbAgg (pdev ~ 8000, a relative
# tolerance) needs the 1e-13: with 1e-10 its deviance at the optimum is still 7.5e-4 above the converged one.
#
# nAGQ > 1: lme4's deviance and logLik then leave out the saturated model's log-likelihood (the constant
# sum(log p(y_i | mu_i = y_i)) of the Laplace version); `saturated` records -2 x that constant.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})
out_path <- "tests/reference/glmm_reference.json"
dir <- "tests/reference"

# ---- data (lme4's and mlmRev's data sets, exported so that Python reads exactly the same rows) ----------
data(cbpp, package = "lme4")
data(grouseticks, package = "lme4")
data(VerbAgg, package = "lme4")
write.csv(cbpp, file.path(dir, "glmm_cbpp.csv"), row.names = FALSE)
write.csv(grouseticks[, c("INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION", "cHEIGHT")],
          file.path(dir, "glmm_grouseticks.csv"), row.names = FALSE)
write.csv(VerbAgg[, c("Anger", "Gender", "item", "resp", "id", "btype", "situ", "mode", "r2")],
          file.path(dir, "glmm_verbagg.csv"), row.names = FALSE)
if (requireNamespace("mlmRev", quietly = TRUE)) {
  data(Contraception, package = "mlmRev")
  contra <- Contraception
  contra$use <- as.integer(contra$use == "Y")
} else {  # a seeded stand-in with the same columns and shape (1934 women in 60 districts)
  set.seed(20240612)
  n <- 1934
  contra <- data.frame(woman = factor(1:n), district = factor(sample(1:60, n, replace = TRUE)),
                       age = round(rnorm(n, 0, 9), 2), urban = factor(sample(c("N", "Y"), n, TRUE, c(.7, .3))),
                       livch = factor(sample(c("0", "1", "2", "3+"), n, TRUE)))
  b <- rnorm(60, 0, .5)
  eta <- -0.8 + 0.005 * contra$age - 0.004 * contra$age^2 + 0.7 * (contra$urban == "Y") + 0.5 * (contra$livch != "0") +
    b[as.integer(contra$district)]
  contra$use <- rbinom(n, 1, plogis(eta))
}
write.csv(contra[, c("woman", "district", "use", "livch", "age", "urban")], file.path(dir, "glmm_contraception.csv"),
          row.names = FALSE)
# read back, so that R fits exactly what the CSV holds
cbpp <- read.csv(file.path(dir, "glmm_cbpp.csv"), stringsAsFactors = TRUE)
cbpp$herd <- factor(cbpp$herd); cbpp$period <- factor(cbpp$period)
grouse <- read.csv(file.path(dir, "glmm_grouseticks.csv"), stringsAsFactors = TRUE)
grouse$BROOD <- factor(grouse$BROOD); grouse$LOCATION <- factor(grouse$LOCATION); grouse$YEAR <- factor(grouse$YEAR)
verb <- read.csv(file.path(dir, "glmm_verbagg.csv"), stringsAsFactors = TRUE)
verb$id <- factor(verb$id)
contra <- read.csv(file.path(dir, "glmm_contraception.csv"), stringsAsFactors = TRUE)
contra$district <- factor(contra$district); contra$livch <- factor(contra$livch)

# ---- best converged fit of glmer's optimisers -----------------------------------------------------------
fit1 <- function(args, optimizer) {
  warns <- character(0)
  args$control <- glmerControl(optimizer = optimizer, tolPwrss = 1e-13)
  m <- withCallingHandlers(
    do.call(glmer, args),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
  warns <- c(warns, m@optinfo$conv$lme4$messages)
  attr(m, "warns") <- warns
  m
}
fit <- function(...) {
  args <- list(...)
  optimizers <- list(c("bobyqa", "Nelder_Mead"), "bobyqa", "nloptwrap")
  ms <- lapply(optimizers, function(o) tryCatch(fit1(args, o), error = function(e) NULL))
  ms <- Filter(Negate(is.null), ms)
  clean <- Filter(function(m) length(attr(m, "warns")) == 0, ms)
  if (length(clean) == 0) stop("no optimiser converged without warnings for ", deparse(args[[1]]))
  best <- clean[[which.max(sapply(clean, function(m) as.numeric(logLik(m))))]]
  attr(best, "optimizers") <- sapply(ms, function(m) paste(m@optinfo$optimizer, collapse = "+"))
  attr(best, "logliks") <- sapply(ms, function(m) as.numeric(logLik(m)))
  best
}

describe <- function(m, data_name, formula_py, family, link, nAGQ = 1, weights = NULL, newdata = NULL) {
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m, condVar = TRUE)
  modes <- lapply(names(re), function(g) {
    pv <- attr(re[[g]], "postVar")
    list(levels = rownames(re[[g]]), values = unname(as.matrix(re[[g]])),
         condsd = t(sapply(seq_len(nrow(re[[g]])), function(i) sqrt(diag(as.matrix(pv[, , i])))))) })
  names(modes) <- names(re)
  theta <- getME(m, "theta"); beta <- unname(fixef(m))
  devfun <- update(m, devFunOnly = TRUE)
  theta_other <- theta * 0.7 + 0.1
  beta_other <- beta + 0.1
  if (nAGQ == 0) {  # lme4's nAGQ = 0 deviance function takes theta alone (beta moves inside PIRLS)
    at_fit <- devfun(theta)
    at_other <- devfun(theta_other)
  } else {
    at_fit <- devfun(c(theta, beta))
    at_other <- devfun(c(theta_other, beta_other))
  }
  out <- list(data = data_name, formula = formula_py, family = family, link = link, nAGQ = nAGQ,
              optimizer = paste(m@optinfo$optimizer, collapse = "+"), optimizers_tried = attr(m, "optimizers"),
              logliks_tried = attr(m, "logliks"),
              loglik = as.numeric(logLik(m)), deviance = deviance(m), aic = AIC(m), bic = BIC(m),
              df_resid = df.residual(m), nobs = nobs(m),
              theta = unname(theta), fixef = beta, fixef_names = names(fixef(m)),
              se = unname(sqrt(diag(as.matrix(vcov(m))))), vcov = unname(as.matrix(vcov(m))),
              z = unname(summary(m)$coefficients[, 3]), p = unname(summary(m)$coefficients[, 4]),
              scaled_resid = unname(quantile(residuals(m, "pearson", scaled = TRUE))),
              varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                             var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
              ranef = modes, isSingular = isSingular(m),
              devfun = list(at_fit = at_fit, theta_other = unname(theta_other), beta_other = beta_other,
                            at_other = at_other),
              fitted_head = unname(head(fitted(m), 10)),
              saturated = -2 * sum(if (family == "poisson") dpois(getME(m, "y"), getME(m, "y"), log = TRUE) else
                dbinom(round(getME(m, "y") * weights(m)), round(weights(m)), getME(m, "y"), log = TRUE)))
  m2 <- m
  m2@call$data <- as.name(sub("[.]csv$", "", sub("^glmm_", "", data_name)))
  m2@call$control <- NULL
  out$summary <- paste(capture.output(print(summary(m2))), collapse = "\n")
  if (!is.null(newdata)) {
    out$predict_link <- unname(predict(m, newdata = newdata, type = "link", allow.new.levels = TRUE))
    out$predict_response <- unname(predict(m, newdata = newdata, type = "response", allow.new.levels = TRUE))
    out$predict_fixed <- unname(predict(m, newdata = newdata, type = "link", re.form = NA))
  }
  out
}

res <- list()
cat("cbpp\n")
m_cbpp <- fit(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial)
nd <- data.frame(period = factor(c("1", "2", "4", "3"), levels = levels(cbpp$period)),
                 herd = factor(c("1", "5", "15", "99"), levels = c(levels(cbpp$herd), "99")))
res$cbpp <- describe(m_cbpp, "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                     "binomial", "logit", newdata = nd)
m_cbpp0 <- fit(cbind(incidence, size - incidence) ~ 1 + (1 | herd), data = cbpp, family = binomial)
res$cbpp_null <- describe(m_cbpp0, "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                          "binomial", "logit")
a <- anova(m_cbpp0, m_cbpp)
res$cbpp_anova <- list(chisq = a$Chisq[2], df = a$Df[2], p = a[["Pr(>Chisq)"]][2], aic = a$AIC, bic = a$BIC,
                       loglik = a$logLik, deviance = a$deviance)
cat("cbpp proportion with weights\n")
cbpp$prop <- cbpp$incidence / cbpp$size
m_prop <- fit(prop ~ period + (1 | herd), data = cbpp, family = binomial, weights = cbpp$size)
res$cbpp_prop <- describe(m_prop, "glmm_cbpp.csv", "prop ~ period + (1 | herd)", "binomial", "logit")
cat("cbpp nAGQ=25\n")
m_agq <- fit(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 25)
res$cbpp_agq25 <- describe(m_agq, "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                           "binomial", "logit", nAGQ = 25)
res$cbpp_agq_path <- lapply(c(1, 2, 3, 5, 9, 15, 25), function(k) {
  dk <- update(m_agq, nAGQ = k, devFunOnly = TRUE, control = glmerControl(tolPwrss = 1e-13))
  list(nAGQ = k, deviance = dk(c(getME(m_agq, "theta"), fixef(m_agq)))) })
cat("cbpp probit and cloglog\n")
m_probit <- fit(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
                family = binomial(link = "probit"))
res$cbpp_probit <- describe(m_probit, "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                            "binomial", "probit")
m_cloglog <- fit(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp,
                 family = binomial(link = "cloglog"))
res$cbpp_cloglog <- describe(m_cloglog, "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                             "binomial", "cloglog")
cat("nAGQ = 0\n")
m_agq0 <- fit(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cbpp, family = binomial, nAGQ = 0)
res$cbpp_agq0 <- describe(m_agq0, "glmm_cbpp.csv", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                          "binomial", "logit", nAGQ = 0)
cat("grouseticks\n")
m_grouse <- fit(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), data = grouse, family = poisson)
m_grouse0 <- fit(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION), data = grouse, family = poisson, nAGQ = 0)
res$grouseticks_agq0 <- describe(m_grouse0, "glmm_grouseticks.csv",
                                 "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", "poisson", "log", nAGQ = 0)
res$grouseticks <- describe(m_grouse, "glmm_grouseticks.csv", "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)",
                            "poisson", "log")
m_grouse_agq <- fit(TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD), data = grouse, family = poisson, nAGQ = 9)
res$grouseticks_agq9 <- describe(m_grouse_agq, "glmm_grouseticks.csv", "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD)",
                                 "poisson", "log", nAGQ = 9)
res$grouseticks_agq9$pearson_chi2 <- sum(residuals(m_grouse_agq, "pearson")^2)
cat("Contraception\n")
m_contra <- fit(use ~ I(age/10) + I((age/10)^2) + urban + livch + (urban | district), data = contra, family = binomial)
res$contraception <- describe(m_contra, "glmm_contraception.csv",
                              "use ~ I(age/10) + I((age/10)**2) + urban + livch + (urban | district)", "binomial", "logit")
cat("VerbAgg\n")
t0 <- proc.time()[["elapsed"]]
m_verb <- fit(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), data = verb, family = binomial)
res$verbagg <- describe(m_verb, "glmm_verbagg.csv", "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
                        "binomial", "logit")
cat("profile intervals\n")
prof_ci <- function(m) {
  ci <- confint(m, method = "profile", level = 0.95)
  list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}
res$cbpp$confint_profile <- prof_ci(m_cbpp)
res$grouseticks$confint_profile <- prof_ci(m_grouse)
res$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
