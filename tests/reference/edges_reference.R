# Reference numbers for the edge cases of issue 23: gls time handling (nlme), ordered factors and contrasts
# by name (lme4), `pi` in a formula, Kenward-Roger with several grouping factors (pbkrtest).
#
# Run from the repository root:   Rscript tests/reference/edges_reference.R
# Writes tests/reference/edges_reference.json and the data sets it fits (committed; CI needs no R):
#   tests/reference/edges_gls_times.csv   150 subjects x 3 visits at integer times 0-69 (and continuous ones)
#   tests/reference/edges_gls_irregular.csv  40 subjects at times {0, 1, 5, 6}, some visits missing
#   tests/reference/edges_cake.csv        lme4's cake (temperature is an ordered factor in R)
#   tests/reference/edges_oats.csv        nlme's Oats
# lme4 fits are the best of nloptwrap, bobyqa and Nelder_Mead among those with no warning.
suppressPackageStartupMessages({
  library(lme4)
  library(nlme)
  library(pbkrtest)
  library(jsonlite)
})
out_path <- "tests/reference/edges_reference.json"
out <- list()

# ---- gls data ----------------------------------------------------------------------------------------
set.seed(20261205)
n_subj <- 150
times <- t(replicate(n_subj, sort(sample(0:69, 3))))
many <- data.frame(id = rep(sprintf("s%03d", 1:n_subj), each = 3), t = as.vector(t(times)))
many$tc <- round(many$t / 7 + runif(nrow(many), 0, 0.1), 4)  # continuous times (weeks, jittered)
many$x <- round(rnorm(nrow(many)), 4)
u <- rep(rnorm(n_subj, 0, 0.7), each = 3)
e <- unlist(lapply(split(many$t, many$id), function(tt) {  # continuous-time AR(1) errors, phi = 0.97 per unit
  R <- 0.97^abs(outer(tt, tt, "-")); as.vector(t(chol(R)) %*% rnorm(length(tt)))
}))
many$y <- round(1 + 0.5 * many$x + u + e, 4)
write.csv(many, "tests/reference/edges_gls_times.csv", row.names = FALSE)
many <- read.csv("tests/reference/edges_gls_times.csv")

set.seed(7)
irr <- data.frame(g = rep(sprintf("g%02d", 1:40), each = 4), t = rep(c(0, 1, 5, 6), 40))
irr$x <- round(rnorm(nrow(irr)), 4)
irr$y <- round(2 - 0.3 * irr$x + rep(rnorm(40), each = 4) +
               unlist(lapply(1:40, function(i) t(chol(0.6^abs(outer(c(0, 1, 5, 6), c(0, 1, 5, 6), "-")))) %*% rnorm(4))),
               4)
irr <- irr[-sample(nrow(irr), 20), ]  # 20 visits missing
rownames(irr) <- NULL
write.csv(irr, "tests/reference/edges_gls_irregular.csv", row.names = FALSE)
irr <- read.csv("tests/reference/edges_gls_irregular.csv")
irr$t2 <- 2 * irr$t
irr$tf <- factor(irr$t)
irr$pos <- as.integer(irr$tf)

describe_gls <- function(m) {
  cs <- m$modelStruct$corStruct
  list(logLik = as.numeric(logLik(m)), df = attr(logLik(m), "df"), reml = m$method == "REML",
       coefficients = as.list(coef(m)), se = as.list(sqrt(diag(vcov(m)))), sigma = m$sigma,
       phi = if (is.null(cs)) NULL else unname(coef(cs, unconstrained = FALSE)),
       delta = if (is.null(m$modelStruct$varStruct)) NULL else
         as.list(coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)))
}
ctl <- glsControl(tolerance = 1e-10, msTol = 1e-10, maxIter = 500, msMaxIter = 500)
out$gls_many_times <- list(
  n = nrow(many), n_times = length(unique(many$t)), n_times_continuous = length(unique(many$tc)),
  none_ml = describe_gls(gls(y ~ x, many, method = "ML")),
  lm_loglik = as.numeric(logLik(lm(y ~ x, many))),
  cs = describe_gls(gls(y ~ x, many, correlation = corCompSymm(form = ~ 1 | id), control = ctl)),
  # nlme's corAR1(form = ~ t | id) at these wide lags stops with "Coefficient matrix not invertible"
  ar1_error = tryCatch({gls(y ~ x, many, correlation = corAR1(form = ~ t | id)); ""}, error = conditionMessage),
  car1 = describe_gls(gls(y ~ x, many, correlation = corCAR1(form = ~ t | id), control = ctl)),
  car1_continuous = describe_gls(gls(y ~ x, many, correlation = corCAR1(form = ~ tc | id), control = ctl)),
  car1_continuous_ml = describe_gls(gls(y ~ x, many, correlation = corCAR1(form = ~ tc | id), method = "ML",
                                        control = ctl)))
out$gls_irregular <- list(
  n = nrow(irr),
  ar1 = describe_gls(gls(y ~ x, irr, correlation = corAR1(form = ~ t | g), control = ctl)),
  car1 = describe_gls(gls(y ~ x, irr, correlation = corCAR1(form = ~ t | g), control = ctl)),
  # times doubled: nlme's corAR1 stays at its start Phi = 0 (all lags even, a stationary point), corCAR1 does not
  car1_doubled = describe_gls(gls(y ~ x, irr, correlation = corCAR1(form = ~ t2 | g), control = ctl)),
  ar1_positions = describe_gls(gls(y ~ x, irr, correlation = corAR1(form = ~ pos | g), control = ctl)),
  car1_het = describe_gls(gls(y ~ x, irr, correlation = corCAR1(form = ~ t | g),
                              weights = varIdent(form = ~ 1 | tf), control = ctl)))

# ---- lme4 fits ---------------------------------------------------------------------------------------
fit1 <- function(formula, data, REML, optimizer, contrasts = NULL) {
  warns <- character(0)
  m <- withCallingHandlers(
    lmer(formula, data = data, REML = REML, control = lmerControl(optimizer = optimizer), contrasts = contrasts),
    warning = function(w) { warns <<- c(warns, conditionMessage(w)); invokeRestart("muffleWarning") },
    message = function(msg) { warns <<- c(warns, conditionMessage(msg)); invokeRestart("muffleMessage") })
  attr(m, "warns") <- c(warns, m@optinfo$conv$lme4$messages)
  m
}
crit <- function(m) if (isREML(m)) REMLcrit(m) else deviance(m)
fit <- function(formula, data, REML = TRUE, contrasts = NULL) {
  ms <- lapply(c("nloptwrap", "bobyqa", "Nelder_Mead"), function(o) fit1(formula, data, REML, o, contrasts))
  clean <- Filter(function(m) length(attr(m, "warns")) == 0, ms)
  if (length(clean) == 0) stop("no optimiser converged without warnings for ", deparse(formula))
  clean[[which.min(sapply(clean, crit))]]
}
describe <- function(m) list(logLik = as.numeric(logLik(m)), REML = isREML(m), fixef = as.list(fixef(m)),
                             se = as.list(sqrt(diag(as.matrix(vcov(m))))), sigma = sigma(m),
                             theta = unname(getME(m, "theta")))

cake_out <- data.frame(recipe = as.character(cake$recipe), replicate = as.integer(cake$replicate),
                       temperature = as.integer(as.character(cake$temperature)), angle = cake$angle)
write.csv(cake_out, "tests/reference/edges_cake.csv", row.names = FALSE)
f_cake <- angle ~ recipe * temperature + (1 | recipe:replicate)
cake_unordered <- transform(cake, temperature = factor(as.character(temperature), levels = levels(cake$temperature),
                                                       ordered = FALSE))
out$cake <- list(
  ordered_reml = describe(fit(f_cake, cake)),
  ordered_ml = describe(fit(f_cake, cake, REML = FALSE)),
  # contrasts by name on an unordered factor
  helmert_poly = describe(fit(angle ~ recipe + temperature + (1 | recipe:replicate), cake_unordered,
                              contrasts = list(recipe = "contr.helmert", temperature = "contr.poly"))),
  sum_treatment = describe(fit(angle ~ recipe + temperature + (1 | recipe:replicate), cake_unordered,
                               contrasts = list(recipe = "contr.sum", temperature = "contr.treatment"))))

sleep <- read.csv("datasets/sleepstudy.csv", stringsAsFactors = TRUE)
out$sleep_pi <- describe(fit(Reaction ~ I(Days * pi) + (1 | Subject), sleep))

# ---- Kenward-Roger with several grouping factors (pbkrtest) ------------------------------------------------
oats <- data.frame(Block = as.character(Oats$Block), Variety = as.character(Oats$Variety), nitro = Oats$nitro,
                   yield = Oats$yield)
write.csv(oats, "tests/reference/edges_oats.csv", row.names = FALSE)
oats <- read.csv("tests/reference/edges_oats.csv", stringsAsFactors = TRUE)
kr <- function(big, L) {
  t <- KRmodcomp(big, L)$test
  list(F = t["Ftest", "stat"], ndf = t["Ftest", "ndf"], ddf = t["Ftest", "ddf"], F_scaling = t["Ftest", "F.scaling"],
       p = t["Ftest", "p.value"])
}
m_oats <- fit(yield ~ nitro + Variety + (1 | Block/Variety), oats)
Lv <- matrix(0, 2, 4); Lv[1, 3] <- 1; Lv[2, 4] <- 1
out$oats_kr <- c(describe(m_oats), list(
  fixef_names = names(fixef(m_oats)),
  vcov_adjusted = unname(as.matrix(vcovAdj(m_oats))),
  nitro = kr(m_oats, matrix(c(0, 1, 0, 0), 1)), variety = kr(m_oats, Lv)))
pen <- read.csv("datasets/penicillin.csv", stringsAsFactors = TRUE)
m_pen <- fit(diameter ~ 1 + (1 | plate) + (1 | sample), pen)
out$penicillin_kr <- c(describe(m_pen), list(vcov_adjusted = unname(as.matrix(vcovAdj(m_pen))),
                                             intercept = kr(m_pen, matrix(1, 1, 1))))

out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     nlme = as.character(packageVersion("nlme")), pbkrtest = as.character(packageVersion("pbkrtest")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
