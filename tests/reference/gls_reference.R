# Reference numbers for lmmteach.gls (tests/lmm/test_gls.py): nlme::gls, ML and REML.
#
# Run from the repository root:   Rscript tests/reference/gls_reference.R
# Writes tests/reference/gls_reference.json (committed; the tests read it, so CI needs no R).
#
# Structures as lmmteach names them, with nlme's spelling (t = position 1..T of the row within its group):
#   cs   corCompSymm(form = ~ 1 | g)         ar1  corAR1(form = ~ t | g)
#   toep corARMA(form = ~ t | g, p = T - 1)  (an AR(T-1) over T points is a general Toeplitz correlation)
#   un   corSymm(form = ~ t | g)             heteroscedastic: weights = varIdent(form = ~ 1 | tf)
# Data: the notes' grocery prices (item x store) and nlme's Orthodont (Subject x age), complete and with
# missing visits (rows dropped). Each fit records logLik, coefficients, their SEs, sigma, AIC/BIC,
# the estimated Cov(y_i) of a complete subject (getVarCov) and the variance-function coefficients.
# A fit is kept only when nlme reports convergence without a warning.
suppressPackageStartupMessages({
  library(nlme)
  library(jsonlite)
})
out_path <- "tests/reference/gls_reference.json"
source("tests/reference/course_data.R")

orthodont <- read.csv("datasets/orthodont.csv")
orthodont$Sex <- factor(orthodont$Sex, levels = c("Male", "Female"))
orthodont$Subject <- factor(orthodont$Subject)
# missing visits: every 4th subject misses age 12, every 5th misses age 14, subject 3 misses age 10
subj <- as.integer(factor(orthodont$Subject, levels = unique(orthodont$Subject)))
drop <- (subj %% 4 == 0 & orthodont$age == 12) | (subj %% 5 == 0 & orthodont$age == 14) |
        (subj == 3 & orthodont$age == 10)
orthodont_missing <- orthodont[!drop, ]

grocery$t <- as.integer(grocery$store)
grocery$tf <- grocery$store
orthodont$t <- as.integer((orthodont$age - 6) / 2)
orthodont$tf <- factor(orthodont$age)
orthodont_missing$t <- as.integer((orthodont_missing$age - 6) / 2)
orthodont_missing$tf <- factor(orthodont_missing$age)

corr_struct <- function(name, g, T) {
  f1 <- as.formula(paste("~ 1 |", g)); ft <- as.formula(paste("~ t |", g))
  switch(name, none = NULL, cs = corCompSymm(form = f1), ar1 = corAR1(form = ft),
         toep = corARMA(form = ft, p = T - 1), un = corSymm(form = ft))
}

fit_one <- function(data, formula, g, T, corr, het, reml, complete_subject) {
  args <- list(model = formula, data = data, method = if (reml) "REML" else "ML",
               control = glsControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, msTol = 1e-10))
  cs <- corr_struct(corr, g, T)
  if (!is.null(cs)) args$correlation <- cs
  if (het) args$weights <- varIdent(form = ~ 1 | tf)
  warned <- FALSE
  m <- withCallingHandlers(tryCatch(do.call(gls, args), error = function(e) NULL),
                           warning = function(w) { warned <<- TRUE; invokeRestart("muffleWarning") })
  if (is.null(m) || warned) return(NULL)
  delta <- if (het) coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE) else NULL
  V <- if (corr == "none") {  # getVarCov is not implemented without a correlation structure
    sd <- if (het) m$sigma * delta[levels(data$tf)] else rep(m$sigma, T)
    diag(sd^2, T)
  } else getVarCov(m, individual = complete_subject)
  list(correlation = corr, heteroscedastic = het, reml = reml,
       logLik = as.numeric(logLik(m)), AIC = AIC(m), BIC = BIC(m), df = attr(logLik(m), "df"),
       coefficients = as.list(coef(m)), se = as.list(sqrt(diag(vcov(m)))), sigma = m$sigma,
       cov_matrix = unname(matrix(as.numeric(V), nrow(V))),
       delta = if (is.null(delta)) NULL else as.list(delta))
}

cases <- list(
  list(name = "grocery", data = grocery, formula = price ~ store, g = "item", T = 4,
       fits = list(c("none", FALSE), c("cs", FALSE), c("ar1", FALSE), c("toep", FALSE), c("un", FALSE),
                   c("none", TRUE), c("cs", TRUE), c("un", TRUE))),
  list(name = "orthodont", data = orthodont, formula = distance ~ age * Sex, g = "Subject", T = 4,
       fits = list(c("cs", FALSE), c("ar1", FALSE), c("toep", FALSE), c("un", FALSE), c("ar1", TRUE),
                   c("toep", TRUE), c("un", TRUE))),
  list(name = "orthodont_missing", data = orthodont_missing, formula = distance ~ age * Sex, g = "Subject",
       T = 4, fits = list(c("cs", FALSE), c("ar1", FALSE), c("toep", FALSE), c("un", FALSE), c("cs", TRUE),
                         c("un", TRUE)))
)
out <- list()
for (case in cases) {
  complete <- names(which(table(case$data[[case$g]]) == case$T))[1]
  fits <- list()
  for (f in case$fits) for (reml in c(TRUE, FALSE)) {
    r <- fit_one(case$data, case$formula, case$g, case$T, f[1], as.logical(f[2]), reml, complete)
    key <- paste(f[1], if (as.logical(f[2])) "het" else "hom", if (reml) "REML" else "ML", sep = "_")
    if (is.null(r)) { message("skipped (did not converge or warned): ", case$name, " ", key); next }
    fits[[key]] <- r
  }
  out[[case$name]] <- list(formula = deparse(case$formula), group = case$g, n = nrow(case$data),
                           complete_subject = complete, fits = fits)
}
out$orthodont_missing$dropped <- which(drop) - 1  # 0-based row numbers of datasets/orthodont.csv

# gls versus lme with the same fixed part (nlme's anova, ML): random intercept = CS with omega >= 0
ri <- lme(distance ~ age * Sex, random = ~ 1 | Subject, data = orthodont, method = "ML")
un <- gls(distance ~ age * Sex, correlation = corSymm(form = ~ t | Subject),
          weights = varIdent(form = ~ 1 | tf), data = orthodont, method = "ML")
a <- anova(ri, un)
out$orthodont_anova <- list(lme_logLik = as.numeric(logLik(ri)), gls_logLik = as.numeric(logLik(un)),
                            L.Ratio = a$L.Ratio[2], p = a$`p-value`[2], df = a$df)
ri_reml <- lme(distance ~ age * Sex, random = ~ 1 | Subject, data = orthodont, method = "REML")
un_reml <- update(un, method = "REML")
a2 <- anova(ri_reml, un_reml)
out$orthodont_anova_reml <- list(L.Ratio = a2$L.Ratio[2], p = a2$`p-value`[2],
                                 lme_logLik = as.numeric(logLik(ri_reml)))
# AR(1) random effects, one per observation, beside a residual (identifiable: glmmTMB fits it), ML
suppressPackageStartupMessages(library(glmmTMB))
tmb <- glmmTMB(price ~ store + ar1(0 + store | item), data = grocery, REML = FALSE)
stopifnot(tmb$sdr$pdHess)
vc <- VarCorr(tmb)$cond$item
out$grocery_ar1_nugget <- list(formula = "price ~ store + ar1(0 + store | item)",
                               logLik = as.numeric(logLik(tmb)), fixef = as.list(fixef(tmb)$cond),
                               sd = as.numeric(attr(vc, "stddev")[1]), rho = attr(vc, "correlation")[2, 1],
                               sigma = sigma(tmb))
# Satterthwaite df of the fixed effects (lmerTest) for the random-intercept model, which is the gls
# compound-symmetry model when omega >= 0 (mmrm, which gives them for gls directly, is not installed)
suppressPackageStartupMessages(library(lmerTest))
lt_ri <- lmerTest::lmer(distance ~ age * Sex + (1 | Subject), data = orthodont, REML = TRUE)
out$orthodont_satterthwaite <- list(rows = rownames(coef(summary(lt_ri))),
                                    df = unname(coef(summary(lt_ri))[, "df"]))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, null = "null", pretty = TRUE), out_path)
cat("wrote", out_path, "\n")
