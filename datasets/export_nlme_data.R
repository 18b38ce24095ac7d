# Writes datasets/orthodont.csv and datasets/hsb.csv from R's nlme package.
#
# Run from the repository root:   Rscript datasets/export_nlme_data.R
#
# orthodont.csv: nlme::Orthodont as it is (108 rows; distance, age, Subject, Sex).
# hsb.csv: the High School and Beyond data, nlme::MathAchieve (7,185 students in 160 schools) with each
#   school's Sector and MEANSES from nlme::MathAchSchool (MEANSES is the published school mean SES of the
#   full HSB sample, so it differs slightly from the mean over the students in MathAchieve). Columns
#   School, Sector, meanses, Minority, Sex, SES, MathAch.  lmmteach.load_hsb() adds cses, the SES centred
#   at the school mean of the students in the file.
suppressPackageStartupMessages(library(nlme))

orthodont <- as.data.frame(Orthodont)
orthodont$Subject <- as.character(orthodont$Subject)
orthodont$Sex <- as.character(orthodont$Sex)
write.csv(orthodont[, c("distance", "age", "Subject", "Sex")], "datasets/orthodont.csv", row.names = FALSE)

ma <- as.data.frame(MathAchieve)
school <- as.character(ma$School)
at <- match(school, as.character(MathAchSchool$School))
stopifnot(!anyNA(at))
hsb <- data.frame(School = school,
                  Sector = as.character(MathAchSchool$Sector[at]),
                  meanses = MathAchSchool$MEANSES[at],
                  Minority = as.character(ma$Minority),
                  Sex = as.character(ma$Sex),
                  SES = ma$SES,
                  MathAch = ma$MathAch)
write.csv(hsb, "datasets/hsb.csv", row.names = FALSE)
cat("wrote datasets/orthodont.csv and datasets/hsb.csv\n")
