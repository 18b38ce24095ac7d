# Kenward-Roger (and Satterthwaite) F tests for gls fits, checked where they can be: a gls with compound symmetry
# is the random-intercept model lmer(y ~ x + (1 | group)) when the fitted correlation is positive (Cov(y_i) =
# sigma_b^2 J + sigma^2 I either way), so pbkrtest's KRmodcomp and lmerTest's Satterthwaite F on that lmer fit
# are the references for lmmteach's KR and Satterthwaite tests of the gls fit. (R's mmrm package, which has KR
# for gls-type models, is not installable here; SAS's DDFM=KR is not available.)
# Run from the repository root: Rscript tests/reference/kr_gls_reference.R
# (lme4 1.1, lmerTest 3.1, pbkrtest 0.5, nlme 3.1; every lmer fit below converged without a warning, and its
# REML log-likelihood equals the gls CS one, which shows the two models are one.)
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(nlme); library(jsonlite)})
out_path <- "tests/reference/kr_gls_reference.json"
converged <- function(m) stopifnot(is.null(m@optinfo$conv$lme4$messages), length(m@optinfo$warnings) == 0)

g <- read.csv("datasets/groceries.csv")
grocery <- data.frame(price = unlist(g[, 2:5]), item = factor(rep(g$subject, 4), levels = g$subject),
                      store = factor(rep(LETTERS[1:4], each = 10)))
ortho <- read.csv("tests/reference/kr_gls_orthodont_missing.csv")  # Orthodont with 8 visits deleted (lecture 6)
ortho$Sex <- factor(ortho$Sex, levels = c("Male", "Female"))
ortho$visit <- factor(ortho$age)

one_case <- function(fixed, data, group, tests) {
  f_lmer <- as.formula(paste(deparse(fixed), "+ (1 |", group, ")"))
  m <- lmer(f_lmer, data = data, REML = TRUE)
  converged(m)
  cs <- gls(fixed, data = data, correlation = corCompSymm(form = as.formula(paste("~ 1 |", group))), method = "REML")
  rho <- as.numeric(coef(cs$modelStruct$corStruct, unconstrained = FALSE))
  stopifnot(rho > 0, abs(as.numeric(logLik(cs)) - as.numeric(logLik(m))) < 1e-6)
  res <- list()
  for (name in names(tests)) {
    L <- tests[[name]]
    kr <- KRmodcomp(m, L)$test["Ftest", ]
    sat <- contest(m, L, joint = TRUE, ddf = "Satterthwaite")
    res[[name]] <- list(L = L, F = kr$stat, ddf = kr$ddf, F_scaling = kr$F.scaling, p = kr$p.value,
                        sat_F = sat[["F value"]], sat_ddf = sat$DenDF, sat_p = sat[["Pr(>F)"]])
  }
  list(fixef_names = names(fixef(m)), rho = rho, loglik = as.numeric(logLik(m)),
       vcov_adjusted = unname(as.matrix(vcovAdj(m))), tests = res)
}

store_L <- cbind(0, diag(3))                    # storeB = storeC = storeD = 0
ref <- list(
  grocery = one_case(price ~ store, grocery, "item", list(store = store_L)),
  orthodont_missing = one_case(distance ~ Sex + visit, ortho, "Subject",
                               list(visit = cbind(0, 0, diag(3)), Sex = matrix(c(0, 1, 0, 0, 0), 1),
                                    visit14_minus_visit10 = matrix(c(0, 0, -1, 0, 1), 1))))
str(ref, max.level = 3)
writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE), out_path)
