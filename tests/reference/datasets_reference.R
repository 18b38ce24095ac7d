# Reference values of the course's data sets as R builds them, for tests/course/test_datasets.py.
#
# Run from the repository root:   Rscript tests/reference/datasets_reference.R
# Writes tests/reference/datasets_reference.json. course_data.R builds the data frames with the notes' own
# R code (grocery: data.frame/unlist/rep; TIMSS: tapply, merge, cbind) and nlme's/lme4's data, so the Python
# loaders are checked against R's construction, not against a second copy of their own pandas code.
suppressPackageStartupMessages(library(jsonlite))
source("tests/reference/course_data.R")

by_key <- function(values, keys) { o <- order(keys); list(keys = keys[o], values = unname(values[o])) }

timss_school <- aggregate(cbind(grpMmath, grpMhoursTV) ~ idschool, data = timss, FUN = function(v) v[1])
first <- timss[order(as.character(timss$idstudent))[1:25], ]
hsb_school <- aggregate(SES ~ School, data = hsb, FUN = mean)

ref <- list(
  generated_by = "tests/reference/datasets_reference.R",
  R_version = R.version.string,
  grocery = list(price = grocery$price, item = as.character(grocery$item), store = as.character(grocery$store),
                 item_levels = levels(grocery$item)),
  timss = list(
    nrow = nrow(timss),
    school = list(idschool = as.character(timss_school$idschool), grpMmath = timss_school$grpMmath,
                  grpMhoursTV = timss_school$grpMhoursTV),
    students = list(idstudent = as.character(first$idstudent), grpCmath = first$grpCmath,
                    grpChoursTV = first$grpChoursTV),
    sum_sq = list(grpCmath = sum(timss$grpCmath^2), grpChoursTV = sum(timss$grpChoursTV^2))),
  orthodont = list(nrow = nrow(orthodont), subject_levels = levels(orthodont$Subject),
                   sex_levels = levels(orthodont$Sex),
                   mean_by_sex = as.list(tapply(orthodont$distance, orthodont$Sex, mean)),
                   nlme_equal = isTRUE(all.equal(orthodont$distance, nlme::Orthodont$distance)) &&
                     identical(as.character(orthodont$Subject), as.character(nlme::Orthodont$Subject))),
  hsb = list(nrow = nrow(hsb), n_school = nlevels(hsb$School), school_levels = levels(hsb$School),
             school_mean_ses = hsb_school$SES, cses_head = hsb$cses[1:20], sum_sq_cses = sum(hsb$cses^2),
             sector_levels = levels(hsb$Sector),
             catholic_schools = sum(tapply(hsb$Sector == "Catholic", hsb$School, any)),
             mean_mathach = mean(hsb$MathAch),
             max_meanses_gap = max(abs(hsb$meanses - ave(hsb$SES, hsb$School))),
             nlme_equal = isTRUE(all.equal(hsb$MathAch, nlme::MathAchieve$MathAch)))
)
writeLines(toJSON(ref, digits = I(15), auto_unbox = TRUE, pretty = TRUE), "tests/reference/datasets_reference.json")
cat("wrote tests/reference/datasets_reference.json\n")
