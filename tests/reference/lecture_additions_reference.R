# Reference numbers asserted in the lectures' additions of issue 25 (diagnostics, singular fits, F tests with
# Satterthwaite and Kenward-Roger df, RM ANOVA vs the mixed model with a missing price, AR(1) over days).
# Run from the repository root: Rscript tests/reference/lecture_additions_reference.R
# (lme4 1.1, lmerTest 3.1, pbkrtest 0.5, nlme 3.1; every fit below converged without a warning).
suppressMessages({library(lme4); library(lmerTest); library(nlme)})
options(digits = 12)
converged <- function(m) stopifnot(is.null(m@optinfo$conv$lme4$messages), length(m@optinfo$warnings) == 0)

# ---- lecture 2: grocery prices, the price of eggs at store D missing ------------------------------------
g <- read.csv("datasets/groceries.csv")
grocery <- data.frame(price = unlist(g[, 2:5]), item = factor(rep(g$subject, 4), levels = g$subject),
                      store = factor(rep(LETTERS[1:4], each = 10)))
miss <- grocery[!(grocery$item == "eggs" & grocery$store == "D"), ]
cat("rows with one price missing:", nrow(miss), "\n")
complete <- droplevels(miss[miss$item != "eggs", ])     # RM ANOVA needs every store for an item: eggs dropped
s <- summary(aov(price ~ store + Error(item / store), data = complete))
print(as.data.frame(s[["Error: item:store"]][[1]])[1, c("Df", "F value", "Pr(>F)")], digits = 12)
for (d in list(grocery, miss)) {
  m <- lmer(price ~ store + (1 | item), data = d)         # REML, treatment coding (the F test does not depend on it)
  converged(m)
  print(as.data.frame(anova(m, type = 3, ddf = "Satterthwaite")), digits = 12)
  print(as.data.frame(anova(m, type = 3, ddf = "Kenward-Roger")), digits = 12)
}

# ---- lecture 3: sleepstudy, scaled conditional residuals; Dyestuff2 is in lme4_reference.json ----------
fm <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
converged(fm)
r <- resid(fm, scaled = TRUE)                              # (y - X b - Z v) / sigma
top <- order(abs(r), decreasing = TRUE)[1:3]
print(data.frame(Subject = sleepstudy$Subject[top], Days = sleepstudy$Days[top], scaled = r[top]))
cat("SD of the scaled residuals:", sd(r), "\n")

# ---- lecture 6: sleepstudy with gls, AR(1) over the days ------------------------------------------------
for (cor in list(corCompSymm(form = ~ 1 | Subject), corAR1(form = ~ Days | Subject))) {
  m <- gls(Reaction ~ Days, data = sleepstudy, correlation = cor)  # REML
  cat(class(cor)[1], ": logLik", logLik(m), " AIC", AIC(m), " parameter", coef(m$modelStruct$corStruct, unconstrained = FALSE), "\n")
}
rs <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
cat("lmer (Days | Subject): logLik", logLik(rs), " AIC", AIC(rs), "\n")
