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
# lme4's default fit is recorded too (default_logLik, default_warnings): how far the default stops short.
#
# Units: in the TIMSS random-slope models the slope of grpCmath (math points) has an SD of about 0.1, so
# lme4's Hessian check flags every optimizer's fit, even where they agree to 1e-9 in the log-likelihood, as
# "nearly unidentifiable: very large eigenvalue - Rescale variables?". Following that advice, those models
# are fitted with grpCmath in units of 10 points (units = c(grpCmath = 10)); all three optimizers then
# converge without a warning. The model is the same and describe() converts the estimates back to the
# notes' units exactly: coefficients, SEs and BLUPs of grpCmath are divided by 10, its variance by 100,
# covariances and the rows of the relative covariance factor Lambda (theta) by 10; correlations and sigma
# stay, and so does the ML log-likelihood. The REML log-likelihood has the term -1/2 log|X'V^-1 X|, which
# dividing a column of X by 10 raises by log(10): rescaled_loglik() takes it off again (and off AIC, BIC).
# What the three optimizers reached in the notes' units (and their warnings) is kept as unscaled_optimizers.
OPTIMIZERS <- c("nloptwrap", "bobyqa", "Nelder_Mead")
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

all_optimizers <- function(formula, data, REML, contrasts) {
  tries <- lapply(OPTIMIZERS, function(opt)
    fit_with(formula, data, REML, contrasts, lmerControl(optimizer = opt, optCtrl = list(maxfun = 1e5))))
  names(tries) <- OPTIMIZERS
  tries
}

# the log-likelihood in the original units of a fit whose fixed-effect columns were divided by units
rescaled_loglik <- function(m, units) {
  shift <- if (isREML(m) && !is.null(units)) sum(log(unit_of(names(fixef(m)), units))) else 0
  as.numeric(logLik(m)) - shift
}

summarise_tries <- function(tries, units = NULL)
  lapply(tries, function(t) list(logLik = rescaled_loglik(t, units), warnings = attr(t, "warns")))

fit <- function(formula, data, REML, contrasts = NULL, units = NULL) {
  default <- fit_with(formula, data, REML, contrasts, lmerControl())
  unscaled <- NULL
  if (!is.null(units)) {
    unscaled <- summarise_tries(all_optimizers(formula, data, REML, contrasts))
    for (v in names(units)) data[[v]] <- data[[v]] / units[[v]]
  }
  tries <- all_optimizers(formula, data, REML, contrasts)
  ll <- vapply(tries, function(m) as.numeric(logLik(m)), 0)
  clean <- vapply(tries, function(m) length(attr(m, "warns")) == 0, TRUE)
  if (!any(clean)) stop("no optimizer converged without a warning for ", deparse(formula))
  best <- names(which.max(ifelse(clean, ll, -Inf)))
  m <- tries[[best]]
  stopifnot(length(attr(m, "warns")) == 0)
  attr(m, "optimizer") <- best
  attr(m, "tries") <- summarise_tries(tries, units)
  attr(m, "unscaled") <- unscaled
  attr(m, "units") <- units
  attr(m, "default") <- list(logLik = as.numeric(logLik(default)), warnings = attr(default, "warns"),
                             isSingular = isSingular(default))
  m
}

# factor by which a coefficient named like "a:b" was multiplied when its variables were rescaled
unit_of <- function(names, units)
  vapply(strsplit(names, ":", fixed = TRUE), function(parts) {
    u <- units[parts[parts %in% names(units)]]
    if (length(u)) prod(u) else 1
  }, 0)

# row of Lambda (its random-effect column name) for each element of theta, term by term
theta_rows <- function(m)
  unlist(lapply(getME(m, "cnms"), function(cn) {
    nc <- length(cn)
    unlist(lapply(seq_len(nc), function(j) cn[j:nc]))
  }), use.names = FALSE)

describe <- function(m, data_name) {
  vc <- as.data.frame(VarCorr(m))
  re <- ranef(m, condVar = FALSE)
  units <- attr(m, "units")
  if (is.null(units)) units <- c(none = 1)
  fx <- fixef(m); ub <- unit_of(names(fx), units)
  ll <- rescaled_loglik(m, units)
  shift <- as.numeric(logLik(m)) - ll  # REML only; zero otherwise
  V <- as.matrix(vcov(m)) / outer(ub, ub)
  u1 <- ifelse(is.na(vc$var1), 1, unit_of(ifelse(is.na(vc$var1), "", vc$var1), units))
  u2 <- ifelse(is.na(vc$var2), u1, unit_of(ifelse(is.na(vc$var2), "", vc$var2), units))
  list(
    formula = paste(deparse(formula(m), width.cutoff = 500), collapse = " "),
    data = data_name,
    REML = isREML(m),
    logLik = ll,
    deviance = if (isREML(m)) REMLcrit(m) + 2 * shift else deviance(m),
    AIC = AIC(m) + 2 * shift, BIC = BIC(m) + 2 * shift,
    df_resid = df.residual(m),
    npar = attr(logLik(m), "df"),
    nobs = nobs(m),
    theta = unname(getME(m, "theta")) / unit_of(theta_rows(m), units),
    sigma = sigma(m),
    fixef = as.list(fx / ub),
    se = as.list(sqrt(diag(V))),
    vcov = unname(V),
    varcorr = list(grp = vc$grp, var1 = ifelse(is.na(vc$var1), "", vc$var1),
                   var2 = ifelse(is.na(vc$var2), "", vc$var2), vcov = vc$vcov / (u1 * u2),
                   sdcor = ifelse(is.na(vc$var2), vc$sdcor / u1, vc$sdcor)),
    ranef = lapply(re, function(d) list(levels = rownames(d), columns = colnames(d),
                                         values = unname(sweep(as.matrix(d), 2, unit_of(colnames(d), units), "/")))),
    isSingular = isSingular(m),
    warnings = attr(m, "warns"),
    optimizer = attr(m, "optimizer"),
    optimizers = attr(m, "tries"),
    units = if (is.null(attr(m, "units"))) NULL else as.list(attr(m, "units")),
    unscaled_optimizers = attr(m, "unscaled"),
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
slope_models <- c("risucmod", "risvcmod", "risicmod")  # grpCmath slopes: fitted in units of 10 points (see fit())
tm <- lapply(names(timss_models), function(nm)
  fit(timss_models[[nm]], timss, REML = FALSE, units = if (nm %in% slope_models) c(grpCmath = 10)))
names(tm) <- names(timss_models)
for (nm in names(tm)) fits[[paste0("timss_", nm)]] <- describe(tm[[nm]], "timss")
fits$timss_risucmod_reml <- describe(fit(timss_models$risucmod, timss, REML = TRUE, units = c(grpCmath = 10)),
                                     "timss")
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

