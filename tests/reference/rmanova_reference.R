# Reference numbers for the one-way RM ANOVA toolkit (lmmteach.rmanova,
# lmmteach.aovtables, lmmteach.multcomp).
#
# Run from the repository root:
#     Rscript tests/reference/rmanova_reference.R
# It writes tests/reference/rmanova_reference.json, which the Python tests read
# (CI has no R, so the JSON is committed).
#
# Needs the R packages car and jsonlite.

suppressPackageStartupMessages({
  library(car)
  library(jsonlite)
})

out_file <- file.path("tests", "reference", "rmanova_reference.json")

# ---------------------------------------------------------------------------
# Data 1: grocery prices (Helwig's notes, from William B. King)
# ---------------------------------------------------------------------------
groceries <- data.frame(
  subject = c("lettuce", "potatoes", "milk", "eggs", "bread", "cereal",
              "ground.beef", "tomato.soup", "laundry.detergent", "aspirin"),
  storeA = c(1.17, 1.77, 1.49, 0.65, 1.58, 3.13, 2.09, 0.62, 5.89, 4.46),
  storeB = c(1.78, 1.98, 1.69, 0.99, 1.70, 3.15, 1.88, 0.65, 5.99, 4.84),
  storeC = c(1.29, 1.99, 1.79, 0.69, 1.89, 2.99, 2.09, 0.65, 5.99, 4.99),
  storeD = c(1.29, 1.99, 1.59, 1.09, 1.89, 3.09, 2.49, 0.69, 6.99, 5.15),
  stringsAsFactors = FALSE
)
grocery <- data.frame(
  price = as.numeric(unlist(groceries[, 2:5])),
  item  = factor(rep(groceries$subject, 4), levels = groceries$subject),
  store = factor(rep(LETTERS[1:4], each = 10))
)

# summary(aov(...)) as a named list of columns
aov_table <- function(s) {
  tab <- as.data.frame(s)
  rn <- trimws(rownames(tab))
  # I() keeps length-1 columns as JSON arrays
  list(rows = I(rn),
       Df = I(tab[["Df"]]), SumSq = I(tab[["Sum Sq"]]),
       MeanSq = I(tab[["Mean Sq"]]),
       F = I(tab[["F value"]]), p = I(tab[["Pr(>F)"]]))
}

# car's univariate RM table plus sphericity corrections and Mauchly's test
car_univariate <- function(Y, factor_name) {
  lmod <- lm(as.matrix(Y) ~ 1)
  idata <- data.frame(factor(colnames(Y), levels = colnames(Y)))
  names(idata) <- factor_name
  almod <- Anova(lmod, type = "III", idata = idata,
                 idesign = as.formula(paste("~", factor_name)))
  s <- summary(almod, multivariate = FALSE)
  uni <- unclass(s$univariate)
  adj <- unclass(s$pval.adj)
  sph <- unclass(s$sphericity.tests)
  list(
    univariate = list(rows = rownames(uni),
                      SS = unname(uni[, "Sum Sq"]),
                      num_df = unname(uni[, "num Df"]),
                      error_SS = unname(uni[, "Error SS"]),
                      den_df = unname(uni[, "den Df"]),
                      F = unname(uni[, "F value"]),
                      p = unname(uni[, "Pr(>F)"])),
    gg_eps = unname(adj[1, "GG eps"]),
    p_gg = unname(adj[1, "Pr(>F[GG])"]),
    hf_eps = unname(adj[1, "HF eps"]),
    p_hf = unname(adj[1, "Pr(>F[HF])"]),
    mauchly_W = unname(sph[1, "Test statistic"]),
    mauchly_p = unname(sph[1, "p-value"])
  )
}

# The notes' aov1rm (Helwig 2017), verbatim except "%%" -> "%*%" (a typo in the
# notes' listing).  Its HF p-value does not cap the HF epsilon at 1.
aov1rm <- function(X){
  X = as.matrix(X)
  n = nrow(X)
  a = ncol(X)
  mu = mean(X)
  rhos = rowMeans(X) - mu
  alphas = colMeans(X) - mu
  ssa = n*sum(alphas^2)
  msa = ssa / (a - 1)
  mss = a*sum(rhos^2) / (n - 1)
  ehat = X - ( mu + matrix(rhos,n,a) + matrix(alphas,n,a,byrow=TRUE) )
  sse = sum(ehat^2)
  mse = sse / ( (a-1)*(n-1) )
  Fstat = msa / mse
  pval = 1 - pf(Fstat,a-1,(a-1)*(n-1))
  Cmat = cov(X)
  Jmat = diag(a) - matrix(1/a,a,a)
  Dmat = Jmat%*%Cmat%*%Jmat
  gg = ( sum(diag(Dmat))^2 ) / ( (a-1)*sum(Dmat^2) )
  hf = (n*(a-1)*gg - 2) / ( (a-1)*(n - 1 - (a-1)*gg) )
  pgg = 1 - pf(Fstat,gg*(a-1),gg*(a-1)*(n-1))
  phf = 1 - pf(Fstat,hf*(a-1),hf*(a-1)*(n-1))
  list(mu = mu, alphas = alphas, rhos = rhos,
       Fstat = c(F=Fstat,df1=(a-1),df2=(a-1)*(n-1)),
       pvals = c(pGG=pgg,pHF=phf,p=pval),
       epsilon = c(GG=gg,HF=hf),
       vcomps = c(sigsq.e=mse, sigsq.rho=((mss-mse)/a)) )
}

notes_aov1rm <- function(X) {
  r <- aov1rm(X)
  list(mu = r$mu, alphas = unname(r$alphas), rhos = unname(r$rhos),
       F = unname(r$Fstat["F"]), df1 = unname(r$Fstat["df1"]),
       df2 = unname(r$Fstat["df2"]),
       p = unname(r$pvals["p"]), p_gg = unname(r$pvals["pGG"]),
       p_hf = unname(r$pvals["pHF"]),
       eps_gg = unname(r$epsilon["GG"]), eps_hf = unname(r$epsilon["HF"]),
       sigma2_e = unname(r$vcomps["sigsq.e"]),
       sigma2_rho = unname(r$vcomps["sigsq.rho"]))
}

# pairwise.t.test(..., paired = TRUE) p-values in pair order (j < k)
paired_t <- function(y, g, adjust) {
  pt <- pairwise.t.test(y, g, paired = TRUE, p.adjust.method = adjust)$p.value
  lev <- levels(g)
  pairs <- character(0); p <- numeric(0)
  for (j in 1:(length(lev) - 1)) for (k in (j + 1):length(lev)) {
    pairs <- c(pairs, paste(lev[k], lev[j], sep = "-"))
    p <- c(p, pt[lev[k], lev[j]])
  }
  list(pairs = pairs, p_adj = p)
}

# Paired t statistics themselves (unadjusted), same pair order
paired_stats <- function(Y) {
  a <- ncol(Y); pairs <- character(0)
  est <- se <- tval <- df <- p <- numeric(0)
  for (j in 1:(a - 1)) for (k in (j + 1):a) {
    tt <- t.test(Y[, k], Y[, j], paired = TRUE)
    pairs <- c(pairs, paste(colnames(Y)[k], colnames(Y)[j], sep = "-"))
    est <- c(est, unname(tt$estimate)); se <- c(se, unname(tt$stderr))
    tval <- c(tval, unname(tt$statistic)); df <- c(df, unname(tt$parameter))
    p <- c(p, tt$p.value)
  }
  list(pairs = pairs, estimate = est, se = se, t = tval, df = df, p = p)
}

fixed_aov <- summary(aov(price ~ store + item, data = grocery))[[1]]
strata <- summary(aov(price ~ store + Error(item / store), data = grocery))
tk <- TukeyHSD(aov(price ~ store + item, data = grocery), "store")$store

Yg <- as.matrix(groceries[, 2:5])
colnames(Yg) <- LETTERS[1:4]

grocery_ref <- list(
  notes_aov1rm = notes_aov1rm(groceries[, 2:5]),
  aov_fixed = aov_table(fixed_aov),
  aov_strata = list(item = aov_table(strata[["Error: item"]][[1]]),
                    `item:store` = aov_table(strata[["Error: item:store"]][[1]])),
  car = car_univariate(groceries[, 2:5], "store"),
  tukey_store = list(pairs = rownames(tk),
                     diff = unname(tk[, "diff"]), lwr = unname(tk[, "lwr"]),
                     upr = unname(tk[, "upr"]), p_adj = unname(tk[, "p adj"])),
  paired_t_bonferroni = paired_t(grocery$price, grocery$store, "bonferroni"),
  paired_t_holm = paired_t(grocery$price, grocery$store, "holm"),
  paired_t_stats = paired_stats(Yg),
  contr_treatment = unname(contr.treatment(4)),
  contr_sum = unname(contr.sum(4))
)

# ---------------------------------------------------------------------------
# Data 2: car::OBrienKaiser, the five pre-treatment hours as one-way RM design
# ---------------------------------------------------------------------------
pre <- OBrienKaiser[, paste0("pre.", 1:5)]
Yp <- as.matrix(pre)
colnames(Yp) <- paste0("pre.", 1:5)
long_pre <- data.frame(y = as.numeric(Yp),
                       subject = factor(rep(seq_len(nrow(Yp)), ncol(Yp))),
                       hour = factor(rep(colnames(Yp), each = nrow(Yp))))
tk_pre <- TukeyHSD(aov(y ~ hour + subject, data = long_pre), "hour")$hour

obk_ref <- list(
  data = lapply(as.list(pre), as.numeric),
  columns = colnames(Yp),
  notes_aov1rm = notes_aov1rm(pre),
  car = car_univariate(pre, "hour"),
  aov_fixed = aov_table(summary(aov(y ~ hour + subject, data = long_pre))[[1]]),
  tukey_hour = list(pairs = rownames(tk_pre),
                    diff = unname(tk_pre[, "diff"]), lwr = unname(tk_pre[, "lwr"]),
                    upr = unname(tk_pre[, "upr"]), p_adj = unname(tk_pre[, "p adj"])),
  paired_t_bonferroni = paired_t(long_pre$y, long_pre$hour, "bonferroni")
)

# ---------------------------------------------------------------------------
# Data 3: a small simulated design whose Huynh-Feldt epsilon exceeds 1, to
# document car's convention: "HF eps" is printed uncapped but the p-value
# uses min(1, HF eps) (car warns "HF eps > 1 treated as 1").
# ---------------------------------------------------------------------------
set.seed(2)
Ys <- round(matrix(rnorm(24), 8, 3) + rnorm(8, sd = 2) +
              rep(c(0, 0.5, 1), each = 8), 1)
colnames(Ys) <- c("t1", "t2", "t3")
hf_ref <- list(
  data = lapply(as.list(as.data.frame(Ys)), as.numeric),
  columns = colnames(Ys),
  notes_aov1rm = notes_aov1rm(Ys),
  car = suppressWarnings(car_univariate(as.data.frame(Ys), "time"))
)

ref <- list(
  generated_by = "tests/reference/rmanova_reference.R",
  R_version = R.version.string,
  car_version = as.character(packageVersion("car")),
  grocery = grocery_ref,
  obrienkaiser_pre = obk_ref,
  hf_above_one = hf_ref
)

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE,
                  na = "null"), out_file)
cat("wrote", out_file, "\n")
