"""One-way repeated-measures ANOVA (the notes' "One-Way RM-ANOVA" part): the model, sphericity, Box's ε,
Greenhouse–Geisser and Huynh–Feldt corrections, the ANOVA tables, contrasts and multiple comparisons."""
