# Reference numbers from lme4 for lmmteach's tests.
#
# Run from the repository root:   Rscript tests/reference/make_reference.R
# Writes tests/reference/lme4_reference.json (committed; the tests read it, so CI needs no R).
#
# Models: the notes' grocery models, every TIMSS model of the notes fitted to the simulated stand-in
# (datasets/timss1997_simulated.csv, centred exactly as the notes do), lme4's sleepstudy (random slopes)
# and Dyestuff2 (a singular fit), nlme's Orthodont (distance ~ age*Sex + (age|Subject)) and the High School
# and Beyond data (MathAch ~ cses*Sector + meanses + Minority + Sex + (cses|School), ML). Every fit is the
# best of lme4's optimizers (see fit() below). For each fit: log-likelihood, deviance, AIC, BIC, theta,
# sigma, fixed effects and SEs, vcov, VarCorr as a data frame, BLUPs, isSingular, the winning optimizer
# (its warnings are empty: the script stops otherwise) and what lme4's default optimizer reached. Also
# lme4's deviance function evaluated at fixed theta (no optimiser involved) and the anova() LRT tables.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

out_path <- "tests/reference/lme4_reference.json"

# ---- data -------------------------------------------------------------------------------------------
source("tests/reference/course_data.R")

# ---- converged fits: the best of lme4's optimizers ------------------------------------------------------
# A reference must be a converged fit. Like allFit(), each model is fitted with each of lme4's optimizers
# (nloptwrap, bobyqa, Nelder_Mead, each allowed maxfun = 1e5 evaluations); the reference is the fit with the
# highest (ML or REML) log-likelihood among those that gave no warning (the script stops if none is clean).
# The optimizers run to tolerances far below lme4's defaults (OPT_CONTROL): the tests hold estimates to 1e-4,
# and on flat likelihoods (the TIMSS REML random-slope model) the default stopping rules leave an SD 3e-4 off
# while the log-likelihood is within 2e-7.
# A fit without a warning is not enough by itself: on the TIMSS REML random-slope model bobyqa with its
# default tolerance stops 0.1 log-likelihood units short without a word. lme4's default fit is recorded too (default_logLik,
# default_warnings, default_isSingular): how far lme4's default optimizer stops short.
OPT_CONTROL <- list(
  nloptwrap = list(maxfun = 1e5, xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-12, ftol_rel = 1e-15),
  bobyqa = list(maxfun = 1e5, rhoend = 1e-10),
  Nelder_Mead = list(maxfun = 1e5, FtolAbs = 1e-12, FtolRel = 1e-15, XtolRel = 1e-12))
OPTIMIZERS <- names(OPT_CONTROL)
SINGULAR <- "boundary (singular) fit"

fit_with <- function(formula, data, REML, contrasts, control) {
  warns <- character(0)
  m <- withCallingHandlers(
    lmer(formula, data = data, REML = REML, contrasts = contrasts, control = control),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, trimws(conditionMessage(msg))); invokeRestart("muffleMessage") })
  # a singular fit is announced by a message and is a legitimate optimum (isSingular is recorded);
  # anything else lme4 says, warning, message or convergence note, disqualifies the fit
  warns <- unique(c(warns, unlist(m@optinfo$conv$lme4$messages)))
  attr(m, "warns") <- warns[!startsWith(warns, SINGULAR)]
  m
}

fit <- function(formula, data, REML, contrasts = NULL) {
  default <- fit_with(formula, data, REML, contrasts, lmerControl())
  tries <- lapply(OPTIMIZERS, function(opt)
    fit_with(formula, data, REML, contrasts, lmerControl(optimizer = opt, optCtrl = OPT_CONTROL[[opt]])))
  names(tries) <- OPTIMIZERS
  ll <- vapply(tries, function(m) as.numeric(logLik(m)), 0)
  clean <- vapply(tries, function(m) length(attr(m, "warns")) == 0, TRUE)
  if (!any(clean)) stop("no optimizer converged without a warning for ", deparse(formula))
  best <- names(which.max(ifelse(clean, ll, -Inf)))
  m <- tries[[best]]
  stopifnot(length(attr(m, "warns")) == 0)
  attr(m, "optimizer") <- best
  attr(m, "tries") <- lapply(tries, function(t) list(logLik = as.numeric(logLik(t)), warnings = attr(t, "warns")))
  attr(m, "default") <- list(logLik = as.numeric(logLik(default)), warnings = attr(default, "warns"),
                             isSingular = isSingular(default))
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
    optimizer = attr(m, "optimizer"),
    optimizers = attr(m, "tries"),
    default_logLik = attr(m, "default")$logLik,
    default_warnings = attr(m, "default")$warnings,
    default_isSingular = attr(m, "default")$isSingular
  )
}

lrt <- function(...) {
  a <- anova(..., refit = TRUE)
  # every row must be a converged fit; a REML model refitted by ML is checked against its ML twin below
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
stopifnot(abs(anovas$sleep_reml_refit$logLik[2] - as.numeric(logLik(s_us_ml))) < 1e-6 * abs(logLik(s_us_ml)))
fits$dyestuff2 <- describe(fit(Yield ~ 1 + (1 | Batch), Dyestuff2, REML = TRUE), "dyestuff2")

# ---- nlme's Orthodont and High School and Beyond: lme4's default optimizer stops short on both -----------
orthodont_model <- distance ~ age * Sex + (age | Subject)
o_reml <- fit(orthodont_model, orthodont, REML = TRUE)
fits$orthodont <- describe(o_reml, "orthodont")
fits$orthodont_ml <- describe(fit(orthodont_model, orthodont, REML = FALSE), "orthodont")
hsb_model <- MathAch ~ cses * Sector + meanses + Minority + Sex + (cses | School)
fits$hsb_ml <- describe(fit(hsb_model, hsb, REML = FALSE), "hsb")

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

# ---- fitted values (X b + Z u) and residuals, row by row ---------------------------------------------------
fitted_resid <- function(m) list(fitted = unname(fitted(m)), residuals = unname(residuals(m)))
predictions <- list(sleep_us = fitted_resid(s_us), orthodont = fitted_resid(o_reml))

ref <- list(
  generated_by = "tests/reference/make_reference.R",
  R_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  fits = fits, anova = anovas, devfun = devfuns, condvar = condvars, predictions = predictions
)
writeLines(toJSON(ref, digits = I(15), auto_unbox = TRUE, pretty = TRUE, na = "null"), out_path)
cat("wrote", out_path, "\n")

