"""Tests for lmmteach.aovtables and lmmteach.contrasts against R (reference JSON)."""


import numpy as np
import pandas as pd
import pytest

from lmmteach.aov.aovtables import (
    anova_error_strata,
    anova_twoway_additive,
    long_to_wide,
    univariate_rm_table,
)
from lmmteach.aov.contrasts import contr_sum, contr_treatment
from lmmteach.aov.rmanova import aov1rm



def long_from_columns(data: dict, columns: list) -> pd.DataFrame:
    n = len(data[columns[0]])
    return pd.DataFrame({
        "y": np.concatenate([data[c] for c in columns]),
        "subject": np.tile(np.arange(1, n + 1), len(columns)),
        "hour": np.repeat(columns, n),
    })




def assert_aov_matches(table: pd.DataFrame, r: dict):
    assert list(table.index) == r["rows"]
    assert list(table.columns) == ["Df", "Sum Sq", "Mean Sq", "F value", "Pr(>F)"]
    np.testing.assert_array_equal(table["Df"].to_numpy(), r["Df"])
    np.testing.assert_allclose(table["Sum Sq"], r["SumSq"], rtol=1e-6)
    np.testing.assert_allclose(table["Mean Sq"], r["MeanSq"], rtol=1e-6)
    F_ref = np.array([np.nan if v is None else v for v in r["F"]], dtype=float)
    p_ref = np.array([np.nan if v is None else v for v in r["p"]], dtype=float)
    np.testing.assert_allclose(table["F value"], F_ref, rtol=1e-6)
    np.testing.assert_allclose(table["Pr(>F)"], p_ref, rtol=1e-6)


# --- tables against R ------------------------------------------------------

def test_twoway_additive_matches_aov(grocery, ref):
    table = anova_twoway_additive(grocery, "price", "store", "item")
    assert_aov_matches(table, ref["grocery"]["aov_fixed"])


def test_twoway_additive_obrienkaiser(ref):
    block = ref["obrienkaiser_pre"]
    long = long_from_columns(block["data"], block["columns"])
    table = anova_twoway_additive(long, "y", "hour", "subject")
    assert_aov_matches(table, block["aov_fixed"])


def test_twoway_additive_row_order_does_not_matter(grocery, ref):
    shuffled = grocery.sample(frac=1.0, random_state=3)
    table = anova_twoway_additive(shuffled, "price", "store", "item")
    assert_aov_matches(table, ref["grocery"]["aov_fixed"])


def test_error_strata_match_aov(grocery, ref):
    strata = anova_error_strata(grocery, "price", "store", "item")
    assert list(strata) == ["item", "item:store"]
    assert_aov_matches(strata["item"], ref["grocery"]["aov_strata"]["item"])
    assert_aov_matches(strata["item:store"], ref["grocery"]["aov_strata"]["item:store"])


@pytest.mark.parametrize("key", ["grocery", "obrienkaiser_pre"])
def test_univariate_table_matches_car(key, grocery, ref):
    if key == "grocery":
        data, args = grocery, ("price", "store", "item")
    else:
        block = ref[key]
        data, args = long_from_columns(block["data"], block["columns"]), ("y", "hour", "subject")
    table = univariate_rm_table(data, *args)
    u = ref[key]["car"]["univariate"]
    assert list(table.index) == ["(Intercept)", args[1]]
    assert list(table.columns) == ["SS", "num Df", "Error SS", "den Df", "F", "Pr(>F)"]
    np.testing.assert_allclose(table["SS"], u["SS"], rtol=1e-6)
    np.testing.assert_array_equal(table["num Df"], u["num_df"])
    np.testing.assert_allclose(table["Error SS"], u["error_SS"], rtol=1e-6)
    np.testing.assert_array_equal(table["den Df"], u["den_df"])
    np.testing.assert_allclose(table["F"], u["F"], rtol=1e-6)
    np.testing.assert_allclose(table["Pr(>F)"], u["p"], rtol=1e-6)


def test_long_to_wide_feeds_aov1rm(grocery):
    wide = long_to_wide(grocery, "price", "store", "item")
    assert list(wide.columns) == ["A", "B", "C", "D"]
    assert wide.loc["eggs", "B"] == pytest.approx(0.99)
    assert aov1rm(wide).F == pytest.approx(4.344209, rel=1e-6)


# --- bad input ----------------------------------------------------------------

def test_unbalanced_design_names_cell(grocery):
    dropped = grocery[~((grocery["item"] == "milk") & (grocery["store"] == "C"))]
    with pytest.raises(ValueError, match=r"balanced.*'milk' has 0 observations at store 'C'"):
        anova_twoway_additive(dropped, "price", "store", "item")
    doubled = pd.concat([grocery, grocery.iloc[[0]]])
    with pytest.raises(ValueError, match=r"'lettuce' has 2 observations at store 'A'"):
        anova_error_strata(doubled, "price", "store", "item")


def test_missing_response_names_cell(grocery):
    bad = grocery.copy()
    bad.loc[(bad["item"] == "eggs") & (bad["store"] == "B"), "price"] = np.nan
    with pytest.raises(ValueError, match=r"missing or infinite.*'eggs' at store 'B'"):
        univariate_rm_table(bad, "price", "store", "item")


def test_column_and_type_errors(grocery):
    with pytest.raises(ValueError, match="no column for factor 'shop'"):
        anova_twoway_additive(grocery, "price", "shop", "item")
    with pytest.raises(ValueError, match="response 'item' must be numeric"):
        anova_twoway_additive(grocery, "item", "store", "price")
    with pytest.raises(TypeError, match="DataFrame"):
        anova_error_strata(grocery.to_numpy(), "price", "store", "item")
    one_level = grocery[grocery["store"] == "A"]
    with pytest.raises(ValueError, match="'store' needs at least 2 levels"):
        anova_twoway_additive(one_level, "price", "store", "item")


# --- contrasts ------------------------------------------------------------------

def test_contr_treatment_like_r(ref):
    C = contr_treatment(["A", "B", "C", "D"])
    assert list(C.index) == ["A", "B", "C", "D"]
    assert list(C.columns) == ["B", "C", "D"]
    np.testing.assert_array_equal(C.to_numpy(), np.array(ref["grocery"]["contr_treatment"]))
    assert C.loc["A"].sum() == 0 and C.loc["C", "C"] == 1


def test_contr_sum_like_r(ref):
    C = contr_sum(["A", "B", "C", "D"])
    assert list(C.columns) == [1, 2, 3]
    np.testing.assert_array_equal(C.to_numpy(), np.array(ref["grocery"]["contr_sum"]))
    assert (C.loc["D"] == -1).all()
    np.testing.assert_array_equal(C.sum(axis=0).to_numpy(), [0, 0, 0])


def test_contrast_input_checks():
    assert list(contr_treatment(3).index) == [1, 2, 3]
    with pytest.raises(ValueError, match="at least 2 levels"):
        contr_sum(["A"])
    with pytest.raises(ValueError, match="repeated.*'B'"):
        contr_treatment(["A", "B", "B"])
    with pytest.raises(TypeError, match="list of level names"):
        contr_sum("ABCD")
