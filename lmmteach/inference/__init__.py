"""Inference for fitted mixed models: likelihood-ratio tests (χ² and χ̄² references), the parametric
bootstrap, confidence intervals (Wald, profile, bootstrap) and t tests with Satterthwaite df."""
