# Reference numbers from lme4 for lmmteach's tests.
#
# Run from the repository root:   Rscript tests/reference/make_reference.R
# Writes tests/reference/lme4_reference.json (committed; the tests read it, so CI needs no R).
#
# Models: the notes' grocery models, every TIMSS model of the notes fitted to the simulated stand-in
# (datasets/timss1997_simulated.csv, centred exactly as the notes do), lme4's sleepstudy (random slopes)
# and Dyestuff2 (a singular fit). For each fit: log-likelihood, deviance, AIC, BIC, theta, sigma, fixed
# effects and SEs, VarCorr as a data frame, BLUPs, isSingular, and the warnings lme4 gave. Also lme4's
# deviance function evaluated at fixed theta (no optimiser involved) and the anova() LRT tables.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_path <- "tests/reference/lme4_reference.json"

# ---- data -------------------------------------------------------------------------------------------
source("tests/reference/course_data.R")

# ---- fitting with warnings recorded -------------------------------------------------------------------
fit <- function(formula, data, REML, contrasts = NULL) {
  warns <- character(0)
  m <- withCallingHandlers(
    lmer(formula, data = data, REML = REML, contrasts = contrasts),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
  attr(m, "warns") <- warns
  m
}

describe <- function(m, data_name) {
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m, condVar = FALSE)
  list(
    formula = paste(deparse(formula(m), width.cutoff = 500), collapse = " "),
    data = data_name,
    REML = isREML(m),
    logLik = as.numeric(logLik(m)),
    deviance = if (isREML(m)) REMLcrit(m) else deviance(m),
    AIC = AIC(m), BIC = BIC(m),
    df_resid = df.residual(m),
    npar = attr(logLik(m), "df"),
    nobs = nobs(m),
    theta = unname(getME(m, "theta")),
    sigma = sigma(m),
    fixef = as.list(fixef(m)),
    se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    vcov = unname(as.matrix(vcov(m))),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov, sdcor = vc$sdcor),
    ranef = lapply(re, function(d) list(levels = rownames(d), columns = colnames(d),
                                         values = unname(as.matrix(d)))),
    isSingular = isSingular(m),
    warnings = attr(m, "warns"),
    optimizer_messages = m@optinfo$conv$lme4$messages
  )
}

lrt <- function(...) {
  a <- anova(..., refit = TRUE)
  list(models = rownames(a), npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
       deviance = a$deviance, Chisq = a$Chisq, Df = a$Df, p = a[["Pr(>Chisq)"]])
}

fits <- list()
anovas <- list()

# ---- grocery (notes: "lmer Syntax (ML solution)") ----------------------------------------------------
g_nmod <- fit(price ~ 1 + (1 | item), grocery, REML = FALSE)
g_amod <- fit(price ~ store + (1 | item), grocery, REML = FALSE)
g_amod_reml <- fit(price ~ store + (1 | item), grocery, REML = TRUE)
g_amod_sum <- fit(price ~ store + (1 | item), grocery, REML = FALSE, contrasts = list(store = "contr.sum"))
fits$grocery_nmod <- describe(g_nmod, "grocery")
fits$grocery_amod <- describe(g_amod, "grocery")
fits$grocery_amod_reml <- describe(g_amod_reml, "grocery")
fits$grocery_amod_sum <- describe(g_amod_sum, "grocery")
anovas$grocery <- lrt(g_amod, g_nmod)

# ---- TIMSS stand-in: every model of the notes -------------------------------------------------------
timss_models <- list(
  ramod = science ~ 1 + (1 | idschool),
  rimod = science ~ 1 + math + (1 | idschool),
  ri2mod = science ~ 1 + grpCmath + grpMmath + (1 | idschool),
  ri3mod = science ~ 1 + grpCmath + grpMmath + grade + (1 | idschool),
  ri4mod = science ~ 1 + grpCmath + grpMmath + grade + gender + (1 | idschool),
  ri5mod = science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV + (1 | idschool),
  risucmod = science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV +
    (grpCmath + grpChoursTV | idschool),
  risvcmod = science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV +
    (grpCmath + grpChoursTV || idschool),
  risicmod = science ~ 1 + grpCmath + grpMmath + grade + gender + grpChoursTV + grpMhoursTV +
    (1 | idschool) + (0 + grpCmath + grpChoursTV | idschool)
)
tm <- lapply(timss_models, function(f) fit(f, timss, REML = FALSE))
for (nm in names(tm)) fits[[paste0("timss_", nm)]] <- describe(tm[[nm]], "timss")
fits$timss_risucmod_reml <- describe(fit(timss_models$risucmod, timss, REML = TRUE), "timss")
anovas$timss_rimod_ramod <- lrt(tm$rimod, tm$ramod)
anovas$timss_ri_chain <- lrt(tm$ri2mod, tm$ri3mod, tm$ri4mod, tm$ri5mod)
anovas$timss_risucmod_risvcmod <- lrt(tm$risucmod, tm$risvcmod)
anovas$timss_risicmod_risvcmod <- lrt(tm$risicmod, tm$risvcmod)
anovas$timss_ri5mod_risvcmod <- lrt(tm$risvcmod, tm$ri5mod)

# ---- sleepstudy and Dyestuff2 -------------------------------------------------------------------------
s_us <- fit(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)
s_us_ml <- fit(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
s_vc_ml <- fit(Reaction ~ Days + (Days || Subject), sleepstudy, REML = FALSE)
s_ri_ml <- fit(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)
s_slope <- fit(Reaction ~ Days + (0 + Days | Subject), sleepstudy, REML = TRUE)
fits$sleep_us <- describe(s_us, "sleepstudy")
fits$sleep_us_ml <- describe(s_us_ml, "sleepstudy")
fits$sleep_vc_ml <- describe(s_vc_ml, "sleepstudy")
fits$sleep_ri_ml <- describe(s_ri_ml, "sleepstudy")
fits$sleep_slope <- describe(s_slope, "sleepstudy")
anovas$sleep <- lrt(s_us_ml, s_vc_ml, s_ri_ml)
anovas$sleep_reml_refit <- lrt(s_us, s_ri_ml)
fits$dyestuff2 <- describe(fit(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = TRUE), "dyestuff2")

# ---- deviance functions at fixed theta (no optimiser) ------------------------------------------------
devfun_at <- function(formula, data, REML, thetas, data_name, name) {
  df <- lmer(formula, data = data, REML = REML, devFunOnly = TRUE)
  lapply(thetas, function(th) list(name = name, data = data_name, formula = deparse(formula, width.cutoff = 500),
                                   REML = REML, theta = th, deviance = df(th)))
}
devfuns <- c(
  devfun_at(price ~ store + (1 | item), grocery, FALSE, list(0.5, 2, 10), "grocery", "grocery_amod"),
  devfun_at(price ~ store + (1 | item), grocery, TRUE, list(0.5, 2, 10), "grocery", "grocery_amod"),
  devfun_at(Reaction ~ Days + (Days | Subject), sleepstudy, TRUE,
            list(c(1, 0, 1), c(0.5, -0.2, 0.1), c(2, 0.3, 0)), "sleepstudy", "sleep_us"),
  devfun_at(Reaction ~ Days + (Days | Subject), sleepstudy, FALSE,
            list(c(1, 0, 1), c(0.5, -0.2, 0.1)), "sleepstudy", "sleep_us"),
  devfun_at(timss_models$risucmod, timss, FALSE,
            list(c(0.3, 0.005, 0.02, 0.01, -0.005, 0.05), c(0.2, 0, 0, 0.02, 0, 0.01)), "timss", "timss_risucmod"),
  devfun_at(timss_models$risucmod, timss, TRUE,
            list(c(0.3, 0.005, 0.02, 0.01, -0.005, 0.05)), "timss", "timss_risucmod")
)

# ---- conditional variances of the BLUPs (ranef condVar) -------------------------------------------------
condvar <- function(m) {
  re <- ranef(m, condVar = TRUE)
  lapply(re, function(d) { pv <- attr(d, "postVar"); list(levels = rownames(d),
         sd = unname(t(apply(pv, 3, function(S) sqrt(diag(as.matrix(S))))))) })
}
condvars <- list(sleep_us = condvar(s_us), grocery_amod = condvar(g_amod))

ref <- list(
  generated_by = "tests/reference/make_reference.R",
  R_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  fits = fits, anova = anovas, devfun = devfuns, condvar = condvars
)
writeLines(toJSON(ref, digits = I(15), auto_unbox = TRUE, pretty = TRUE, na = "null"), out_path)
cat("wrote", out_path, "\n")

