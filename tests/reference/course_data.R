# The course's data sets as R sees them, for the reference scripts (source() it from the repository root).
# grocery: the notes' long format; timss: the simulated stand-in, centred exactly as the notes do
# (merge + cbind); machines, orthodont, hsb: nlme's data as shipped in datasets/ (factor levels as the loaders
# set them; hsb gets cses = SES - school mean SES, as load_hsb() does); sleepstudy, Dyestuff2: lme4's.
groceries <- read.csv("datasets/groceries.csv")
grocery <- data.frame(price = as.numeric(unlist(groceries[, 2:5])),
                      item = factor(rep(groceries$subject, 4)),
                      store = factor(rep(LETTERS[1:4], each = 10)))

timss <- read.csv("datasets/timss1997_simulated.csv",
                  colClasses = c(rep("factor", 4), rep("numeric", 3)))
grpMmath <- with(timss, tapply(math, idschool, mean))
grpMhoursTV <- with(timss, tapply(hoursTV, idschool, mean))
timss <- merge(timss, data.frame(idschool = names(grpMmath),
                                 grpMmath = as.numeric(grpMmath),
                                 grpMhoursTV = as.numeric(grpMhoursTV)))
timss <- cbind(timss, grpCmath = (timss$math - timss$grpMmath),
               grpChoursTV = (timss$hoursTV - timss$grpMhoursTV))

machines <- read.csv("datasets/machines.csv")
machines$Worker <- factor(machines$Worker)
machines$Machine <- factor(machines$Machine)

orthodont <- read.csv("datasets/orthodont.csv")
orthodont$Subject <- factor(orthodont$Subject)
orthodont$Sex <- factor(orthodont$Sex, levels = c("Male", "Female"))

hsb <- read.csv("datasets/hsb.csv", colClasses = c(School = "character"))
hsb$School <- factor(hsb$School)
hsb$Sector <- factor(hsb$Sector, levels = c("Public", "Catholic"))
hsb$Minority <- factor(hsb$Minority, levels = c("No", "Yes"))
hsb$Sex <- factor(hsb$Sex, levels = c("Male", "Female"))
hsb$cses <- hsb$SES - ave(hsb$SES, hsb$School)

sleepstudy <- lme4::sleepstudy
Dyestuff2 <- lme4::Dyestuff2
