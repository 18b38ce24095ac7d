# Reference numbers for lectures/07_glmm.ipynb (generalised linear mixed models, a course addition).
#
# Run from the repository root:   Rscript tests/reference/lecture07_reference.R
# Writes datasets/cbpp.csv (lme4's cbpp, read by lmmteach.load_cbpp()) and tests/reference/lecture07_reference.json.
# The lecture asserts these numbers with grading.check_close (it cannot read this file: students do not get tests/);
# tests/course/test_lecture07_reference.py checks that the numbers written in the lecture are these.
#
# Fits: every glmer fit is the best (highest log-likelihood) of glmer's optimisers -- the default
# c("bobyqa", "Nelder_Mead"), bobyqa in both stages, nloptwrap in both stages -- among those that gave no warning
# or convergence message, with glmerControl(tolPwrss = 1e-13): with lme4's default PIRLS tolerance (1e-7) the
# conditional modes stop short and the Laplace deviance of cbpp is 5.7e-4 above the converged one (see
# tests/reference/glmm_reference.R); the printed summaries are the same at lme4's printed precision.
#
# nAGQ > 1: lme4's logLik and deviance leave out the saturated model's log-likelihood sum(log p(y_i | mu_i = y_i));
# `saturated_loglik` is that constant, so that   full log-likelihood = lme4's logLik + saturated_loglik.
suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

# ---- data ---------------------------------------------------------------------------------------------------
data(cbpp, package = "lme4")
out <- data.frame(herd = as.character(cbpp$herd), incidence = cbpp$incidence, size = cbpp$size,
                  period = as.character(cbpp$period))
write.csv(out, "datasets/cbpp.csv", row.names = FALSE)
cbpp <- read.csv("datasets/cbpp.csv")
cbpp$herd <- factor(cbpp$herd, levels = as.character(1:15))
cbpp$period <- factor(cbpp$period, levels = as.character(1:4))
stopifnot(all(cbpp$incidence == lme4::cbpp$incidence), all(cbpp$size == lme4::cbpp$size), identical(levels(cbpp$herd), levels(lme4::cbpp$herd)))

# ---- best converged glmer fit ---------------------------------------------------------------------------------
fit1 <- function(args, optimizer) {
  warns <- character(0)
  args$control <- glmerControl(optimizer = optimizer, tolPwrss = 1e-13)
  m <- withCallingHandlers(do.call(glmer, args),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
  attr(m, "warns") <- c(warns, m@optinfo$conv$lme4$messages)
  m
}
best_fit <- function(...) {
  args <- list(...)
  ms <- lapply(list(c("bobyqa", "Nelder_Mead"), "bobyqa", "nloptwrap"),
               function(o) tryCatch(fit1(args, o), error = function(e) NULL))
  clean <- Filter(function(m) !is.null(m) && length(attr(m, "warns")) == 0, ms)
  if (length(clean) == 0) stop("no optimiser converged without warnings")
  best <- clean[[which.max(sapply(clean, function(m) as.numeric(logLik(m))))]]
  attr(best, "logliks_tried") <- sapply(clean, function(m) as.numeric(logLik(m)))
  best
}
saturated <- function(m) sum(dbinom(round(getME(m, "y") * weights(m)), round(weights(m)), getME(m, "y"), log = TRUE))
printed <- function(m) {  # lme4's summary as a student's call prints it (data = cbpp, no control argument)
  m@call$data <- as.name("cbpp"); m@call$control <- NULL
  paste(capture.output(print(summary(m))), collapse = "\n")
}
describe <- function(m) {
  list(loglik = as.numeric(logLik(m)), deviance_printed = -2 * as.numeric(logLik(m)), aic = AIC(m), bic = BIC(m),
       saturated_loglik = saturated(m), theta = unname(getME(m, "theta")), fixef = unname(fixef(m)),
       fixef_names = names(fixef(m)), se = unname(sqrt(diag(as.matrix(vcov(m))))),
       z = unname(summary(m)$coefficients[, 3]), p = unname(summary(m)$coefficients[, 4]),
       ranef_herd = unname(ranef(m)$herd[, 1]), logliks_tried = attr(m, "logliks_tried"),
       optimizer = paste(m@optinfo$optimizer, collapse = "+"), summary = printed(m))
}
form <- cbind(incidence, size - incidence) ~ period + (1 | herd)
m_lap <- best_fit(form, data = cbpp, family = binomial)
m_agq <- best_fit(form, data = cbpp, family = binomial, nAGQ = 25)
m_null <- best_fit(cbind(incidence, size - incidence) ~ 1 + (1 | herd), data = cbpp, family = binomial)
lrt <- anova(m_null, m_lap)

# ---- why the LMM fails: a linear mixed model for the proportions ----------------------------------------------
cbpp$prop <- cbpp$incidence / cbpp$size
m_lmm <- lmer(prop ~ period + (1 | herd), cbpp)  # REML, lmer's default
stopifnot(is.null(m_lmm@optinfo$conv$lme4$messages))
vc <- as.data.frame(VarCorr(m_lmm))

# ---- the GLM without herds (the refresher: IRLS) --------------------------------------------------------------
g <- glm(cbind(incidence, size - incidence) ~ period, family = binomial, data = cbpp)

# ---- one herd's likelihood at the Laplace estimates: exact (integrate) and lme4's quadrature ------------------
theta <- getME(m_lap, "theta"); beta <- fixef(m_lap)
X <- model.matrix(~ period, cbpp)
eta_fixed <- drop(X %*% beta)
herd_integrand <- function(h) {
  r <- cbpp$herd == h
  function(u) sapply(u, function(uk) exp(sum(dbinom(cbpp$incidence[r], cbpp$size[r],
                                                    plogis(eta_fixed[r] + theta * uk), log = TRUE))) * dnorm(uk))
}
exact <- sapply(levels(cbpp$herd), function(h) log(integrate(herd_integrand(h), -Inf, Inf, rel.tol = 1e-12)$value))
nodes <- 1:25
lme4_path <- function(d) {  # the whole data's full log-likelihood at (theta, beta) with nAGQ = k, lme4's devfun
  sat <- sum(dbinom(d$incidence, d$size, d$incidence / d$size, log = TRUE))
  sapply(nodes, function(k) {
    f <- glmer(form, data = d, family = binomial, nAGQ = k, devFunOnly = TRUE,
               control = glmerControl(tolPwrss = 1e-13))
    -0.5 * f(c(theta, beta)) + (if (k > 1) sat else 0)
  })
}
# one herd alone, its fixed part as an offset (its data may not have all four periods)
herd_path <- function(h) {
  d <- cbpp[cbpp$herd == h, ]; d$herd <- droplevels(d$herd); d$off <- eta_fixed[cbpp$herd == h]
  sat <- sum(dbinom(d$incidence, d$size, d$incidence / d$size, log = TRUE))
  sapply(nodes, function(k) {
    f <- glmer(cbind(incidence, size - incidence) ~ 0 + offset(off) + (1 | herd), data = d, family = binomial,
               nAGQ = k, devFunOnly = TRUE, control = glmerControl(tolPwrss = 1e-13,
                                                                   check.nlev.gtr.1 = "ignore"))
    -0.5 * f(theta) + (if (k > 1) sat else 0)
  })
}
# (glmer refuses a herd whose proportions are all equal, e.g. no case at all: NA there)
laplace_by_herd <- sapply(levels(cbpp$herd), function(h) tryCatch(herd_path(h)[1], error = function(e) NA_real_))
worst <- levels(cbpp$herd)[which.max(abs(laplace_by_herd - exact))]  # the herd the lecture draws
whole <- lme4_path(cbpp)
stopifnot(abs(sum(exact) - whole[25]) < 1e-6)  # 25 nodes reproduce the exact integrals

# ---- marginal (population-averaged) against conditional (b = 0) probabilities, Laplace estimates ---------------
eta_period <- unname(beta[1] + c(0, beta[-1]))  # period 1, 2, 3, 4 at b = 0
marginal <- sapply(eta_period, function(e) integrate(function(u) plogis(e + theta * u) * dnorm(u), -Inf, Inf,
                                                     rel.tol = 1e-12)$value)

res <- list(
  versions = list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
  formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
  laplace = describe(m_lap), agq25 = describe(m_agq), null = describe(m_null),
  lrt = list(chisq = lrt$Chisq[2], df = lrt$Df[2], p = lrt[["Pr(>Chisq)"]][2]),
  lmm = list(fixef = unname(fixef(m_lmm)), sd_herd = vc$sdcor[1], sigma = vc$sdcor[2],
             loglik_reml = as.numeric(logLik(m_lmm)), fitted_range = range(fitted(m_lmm))),
  glm = list(coef = unname(coef(g)), loglik = as.numeric(logLik(g)), deviance = deviance(g), iter = g$iter),
  herd = list(label = worst, exact_loglik = unname(exact[worst]), agq_loglik = herd_path(worst), nodes = nodes,
              exact_by_herd = unname(exact), laplace_by_herd = unname(laplace_by_herd)),
  whole = list(nodes = nodes, loglik = whole),
  marginal = list(eta = eta_period, conditional = plogis(eta_period), marginal = marginal)
)
writeLines(toJSON(res, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/lecture07_reference.json")
cat("herd drawn:", worst, " Laplace", laplace_by_herd[worst], " exact", exact[worst], "\n")
cat(res$laplace$summary, "\n")
print(lrt)
