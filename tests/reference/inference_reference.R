# Reference numbers for lmmteach's covariance structures and inference (tests/test_covariance.py,
# tests/test_inference.py).
#
# Run from the repository root:   Rscript tests/reference/inference_reference.R
# Writes tests/reference/inference_reference.json (committed; the tests read it, so CI needs no R).
#
# * compound symmetry: nlme::lme with pdCompSymm on nlme's Machines (ML and REML);
# * AR(1): glmmTMB's ar1() on Machines (ML and REML);
# * unstructured (0 + Machine | Worker): lme4;
# * Toeplitz with one common variance (the notes' definition): no installed package fits it (glmmTMB's
#   toep() has one variance per random effect), so a 20-line direct maximisation of the marginal ML
#   likelihood, log L = -1/2 sum_i [log|Sigma_i| + r_i' Sigma_i^-1 r_i + m_i log 2pi], done here with optim();
#   glmmTMB's heterogeneous toep() logLik is recorded for the nesting checks;
# * lme4 confint(method = "profile") and confint(method = "Wald"): sleepstudy and grocery; profile for the
#   crossed Penicillin model;
# * lmerTest Satterthwaite df: sleepstudy, grocery, a TIMSS random-intercept model (REML and ML);
# * chi-bar-square p-values of LRTs on the boundary, computed from lme4's LRT statistics.
suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(glmmTMB)
  library(lmerTest)
  library(jsonlite)
})

out_path <- "tests/reference/inference_reference.json"

# ---- data ---------------------------------------------------------------------------------------------
source("tests/reference/course_data.R")

# ---- covariance structures -------------------------------------------------------------------------------
structures <- list()
for (method in c("ML", "REML")) {
  m <- lme(score ~ Machine, random = list(Worker = pdCompSymm(~ Machine - 1)), data = machines, method = method)
  S <- as.matrix(m$modelStruct$reStruct[[1]]) * m$sigma^2   # Sigma = sigma^2 * (relative pd matrix)
  structures[[paste0("cs_", method)]] <- list(
    package = "nlme", logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)), sigma = m$sigma,
    variance = S[1, 1], covariance = S[1, 2], correlation = S[1, 2] / S[1, 1])
}
for (reml in c(FALSE, TRUE)) {
  g <- glmmTMB(score ~ Machine + ar1(0 + Machine | Worker), data = machines, REML = reml)
  S <- VarCorr(g)$cond$Worker
  structures[[paste0("ar1_", if (reml) "REML" else "ML")]] <- list(
    package = "glmmTMB", logLik = as.numeric(logLik(g)), fixef = as.list(fixef(g)$cond), sigma = sigma(g),
    variance = S[1, 1], rho = attr(S, "correlation")[1, 2])
  h <- glmmTMB(score ~ Machine + toep(0 + Machine | Worker), data = machines, REML = reml)
  structures[[paste0("heterogeneous_toep_", if (reml) "REML" else "ML")]] <- list(
    package = "glmmTMB", logLik = as.numeric(logLik(h)))
}
for (reml in c(FALSE, TRUE)) {
  u <- lmer(score ~ Machine + (0 + Machine | Worker), data = machines, REML = reml)
  vc <- as.data.frame(VarCorr(u))
  structures[[paste0("us_", if (reml) "REML" else "ML")]] <- list(
    package = "lme4", logLik = as.numeric(logLik(u)), fixef = as.list(fixef(u)), sigma = sigma(u),
    vcov = vc$vcov, sdcor = vc$sdcor)
}

# Toeplitz with a common variance: sigma_kl = s^2 rho_|k-l|, maximised directly (b by GLS at each step).
toeplitz_ml <- function(data) {
  X <- model.matrix(~ Machine, data)
  y <- data$score
  groups <- split(seq_len(nrow(data)), data$Worker)
  negll <- function(par) {
    s2 <- exp(2 * par[1]); rho <- tanh(par[2:3]); e2 <- exp(2 * par[4])
    Sig <- s2 * toeplitz(c(1, rho))
    if (min(eigen(Sig, only.values = TRUE)$values) < 0) return(1e10)
    XtVX <- 0; XtVy <- 0; parts <- list()
    for (g in groups) {
      Z <- model.matrix(~ 0 + Machine, data[g, ])
      V <- Z %*% Sig %*% t(Z) + e2 * diag(length(g))
      Vi <- solve(V)
      XtVX <- XtVX + t(X[g, ]) %*% Vi %*% X[g, ]
      XtVy <- XtVy + t(X[g, ]) %*% Vi %*% y[g]
      parts[[length(parts) + 1]] <- list(g = g, Vi = Vi, ld = determinant(V)$modulus)
    }
    b <- solve(XtVX, XtVy)
    ll <- 0
    for (p in parts) { r <- y[p$g] - X[p$g, ] %*% b; ll <- ll + p$ld + t(r) %*% p$Vi %*% r }
    as.numeric(0.5 * (ll + length(y) * log(2 * pi)))
  }
  best <- NULL
  for (start in list(c(log(5), 0.5, 0.5, 0), c(log(6), 0.7, 1, 0), c(log(4), 0.3, 0.2, -0.2))) {
    o <- optim(start, negll, method = "BFGS", control = list(reltol = 1e-14, maxit = 5000))
    if (is.null(best) || o$value < best$value) best <- o
  }
  list(package = "R optim (direct marginal ML)", logLik = -best$value,
       variance = exp(2 * best$par[1]), rho = tanh(best$par[2:3]), sigma = exp(best$par[4]))
}
structures$toep_ML <- toeplitz_ml(machines)

# ---- confidence intervals (lme4) ----------------------------------------------------------------------------
ci <- function(m, method) {
  x <- suppressWarnings(suppressMessages(confint(m, method = method, oldNames = TRUE)))
  list(rows = rownames(x), lower = unname(x[, 1]), upper = unname(x[, 2]))
}
s_us <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = TRUE)
s_us_ml <- lme4::lmer(Reaction ~ Days + (Days | Subject), sleepstudy, REML = FALSE)
s_ri <- lme4::lmer(Reaction ~ Days + (1 | Subject), sleepstudy, REML = FALSE)
g_amod <- lme4::lmer(price ~ store + (1 | item), grocery, REML = FALSE)
g_amod_reml <- lme4::lmer(price ~ store + (1 | item), grocery, REML = TRUE)
confints <- list(
  sleep_us_profile = ci(s_us, "profile"),
  sleep_us_ml_profile = ci(s_us_ml, "profile"),
  sleep_us_wald = ci(s_us, "Wald"),
  grocery_amod_profile = ci(g_amod, "profile"),
  grocery_amod_reml_profile = ci(g_amod_reml, "profile"),
  grocery_amod_wald = ci(g_amod, "Wald"),
  sleep_us_profile_90 = {x <- suppressWarnings(confint(s_us, method = "profile", level = 0.9, oldNames = TRUE));
                         list(rows = rownames(x), lower = unname(x[, 1]), upper = unname(x[, 2]))},
  # crossed random effects (several grouping factors): lme4's Penicillin, REML (profiled by ML)
  penicillin_profile = ci(lme4::lmer(diameter ~ 1 + (1 | plate) + (1 | sample), Penicillin), "profile")
)

# ---- Satterthwaite t tests (lmerTest) -------------------------------------------------------------------------
satt <- function(formula, data, REML) {
  m <- lmerTest::lmer(formula, data = data, REML = REML)
  co <- coef(summary(m, ddf = "Satterthwaite"))
  list(formula = paste(deparse(formula, width.cutoff = 500), collapse = " "), REML = REML,
       rows = rownames(co), estimate = unname(co[, "Estimate"]), se = unname(co[, "Std. Error"]),
       df = unname(co[, "df"]), t = unname(co[, "t value"]), p = unname(co[, "Pr(>|t|)"]))
}
satterthwaite <- list(
  sleep_us = satt(Reaction ~ Days + (Days | Subject), sleepstudy, TRUE),
  sleep_us_ml = satt(Reaction ~ Days + (Days | Subject), sleepstudy, FALSE),
  sleep_ri = satt(Reaction ~ Days + (1 | Subject), sleepstudy, TRUE),
  grocery_amod_reml = satt(price ~ store + (1 | item), grocery, TRUE),
  grocery_amod = satt(price ~ store + (1 | item), grocery, FALSE),
  timss_ri2mod = satt(science ~ 1 + grpCmath + grpMmath + (1 | idschool), timss, TRUE),
  timss_ri2mod_ml = satt(science ~ 1 + grpCmath + grpMmath + (1 | idschool), timss, FALSE)
)

# ---- chi-bar-square references for variances on the boundary ----------------------------------------------------
chibar <- function(m1, m0, m) {
  D <- 2 * (as.numeric(logLik(m1)) - as.numeric(logLik(m0)))
  list(Chisq = D, m = m,
       p_chibar = 0.5 * pchisq(D, m, lower.tail = FALSE) + 0.5 * pchisq(D, m + 1, lower.tail = FALSE),
       p_chisq = pchisq(D, attr(logLik(m1), "df") - attr(logLik(m0), "df"), lower.tail = FALSE))
}
s_vc <- lme4::lmer(Reaction ~ Days + (Days || Subject), sleepstudy, REML = FALSE)
lrt_boundary <- list(
  sleep_vc_vs_ri = chibar(s_vc, s_ri, 0),     # adds the slope variance:        1/2 chisq(0) + 1/2 chisq(1)
  sleep_us_vs_ri = chibar(s_us_ml, s_ri, 1),  # adds it with one covariance:    1/2 chisq(1) + 1/2 chisq(2)
  sleep_us_vs_vc = list(Chisq = 2 * (as.numeric(logLik(s_us_ml)) - as.numeric(logLik(s_vc))),
                        p_chisq = anova(s_us_ml, s_vc)[2, "Pr(>Chisq)"])  # a covariance only: chisq(1)
)

ref <- list(
  generated_by = "tests/reference/inference_reference.R",
  R_version = R.version.string,
  versions = list(lme4 = as.character(packageVersion("lme4")), nlme = as.character(packageVersion("nlme")),
                  glmmTMB = as.character(packageVersion("glmmTMB")),
                  lmerTest = as.character(packageVersion("lmerTest"))),
  structures = structures, confint = confints, satterthwaite = satterthwaite, lrt_boundary = lrt_boundary
)
writeLines(toJSON(ref, digits = I(15), auto_unbox = TRUE, pretty = TRUE, na = "null"), out_path)
cat("wrote", out_path, "\n")
