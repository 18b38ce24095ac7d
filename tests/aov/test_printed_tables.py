"""ANOVA and LRT tables printed as R prints them: blanks where a row has no test, not NaN or <NA>."""
import numpy as np
import pandas as pd
import pytest

import lmmteach as lt
from lmmteach.aov.aovtables import anova_twoway_additive, as_printed


def test_residual_row_of_the_aov_table_is_blank(grocery):
    text = as_printed(anova_twoway_additive(grocery, "price", "store", "item"))
    residuals = next(line for line in text.splitlines() if line.startswith("Residuals"))
    assert residuals.split() == ["Residuals", "27", "1.21374", "0.044953"]  # R: F value and Pr(>F) blank
    assert "NaN" not in text


def test_first_row_of_an_lrt_table_is_blank(grocery):
    nmod = lt.lmer("price ~ 1 + (1 | item)", grocery, reml=False)
    amod = lt.lmer("price ~ store + (1 | item)", grocery, reml=False)
    tab = lt.anova(nmod=nmod, amod=amod)
    assert pd.isna(tab["Df"].iloc[0]) and pd.isna(tab["Chisq"].iloc[0])  # the table itself keeps its missing values
    lines = as_printed(tab[["npar", "logLik", "Chisq", "Df"]].round(3)).splitlines()
    assert lines[1].split() == ["nmod", "3", "-26.773"]
    assert lines[2].split() == ["amod", "6", "-20.865", "11.816", "3"]
    assert "<NA>" not in "\n".join(lines) and "NaN" not in "\n".join(lines)


def test_numbers_are_untouched():
    tab = pd.DataFrame({"F": [np.nan, 2.5], "Df": pd.array([pd.NA, 4], dtype="Int64")}, index=["a", "b"])
    assert as_printed(tab).splitlines()[2].split() == ["b", "2.5", "4"]
    assert tab["Df"].dtype == "Int64"  # the caller's table is not changed


def test_rejects_what_is_not_a_table():
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        as_printed([1, 2, 3])
