"""Tests for lmmteach.rmanova (one-way RM ANOVA, Box/GG/HF epsilon, Mauchly).

Reference numbers: the notes' printout for the grocery data, and
tests/reference/rmanova_reference.json written by rmanova_reference.R (R + car).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest

import _shared as shared

from lmmteach.aov.rmanova import (
    aov1rm,
    box_epsilon,
    huynh_feldt_epsilon,
    mauchly,
    orthonormal_contrasts,
)





def close(x, y, rel=1e-6):
    return x == pytest.approx(y, rel=rel)


# --- the notes' printed numbers ---------------------------------------------

def test_grocery_matches_notes_printout(groceries):
    res = aov1rm(groceries[["subject", "storeA", "storeB", "storeC", "storeD"]])
    assert close(res.F, 4.344209)
    assert (res.df1, res.df2) == (3, 27)
    assert close(res.p, 0.01273035)
    assert close(res.eps_gg, 0.6391090)
    assert close(res.p_gg, 0.03093080)
    assert close(res.eps_hf, 0.8082292)
    assert close(res.p_hf, 0.02033859)


def test_grocery_table_matches_aov_summary(groceries, ref):
    table = aov1rm(groceries).table
    fixed = ref["grocery"]["aov_fixed"]  # rows store, item, Residuals
    assert list(table.index) == ["Subjects", "Treatment", "Error", "Total"]
    assert list(table.columns) == ["SS", "df", "MS", "F", "p"]
    assert close(table.loc["Treatment", "SS"], fixed["SumSq"][0])
    assert close(table.loc["Subjects", "SS"], fixed["SumSq"][1])
    assert close(table.loc["Error", "SS"], fixed["SumSq"][2])
    assert close(table.loc["Subjects", "F"], fixed["F"][1])
    assert close(table.loc["Subjects", "p"], fixed["p"][1])
    assert list(table["df"]) == [9, 3, 27, 39]
    assert close(table.loc["Total", "SS"], sum(fixed["SumSq"]))
    assert np.isnan(table.loc["Error", "F"]) and np.isnan(table.loc["Total", "MS"])


def test_grocery_estimates_match_notes_function(groceries, ref):
    res = aov1rm(groceries)
    r = ref["grocery"]["notes_aov1rm"]
    assert close(res.mu, r["mu"])
    np.testing.assert_allclose(res.alphas.to_numpy(), r["alphas"], rtol=1e-6, atol=shared.ZERO_ATOL)
    np.testing.assert_allclose(res.rhos.to_numpy(), r["rhos"], rtol=1e-6)
    assert close(res.sigma2_e, r["sigma2_e"])
    assert close(res.sigma2_rho, r["sigma2_rho"])
    assert list(res.alphas.index) == ["storeA", "storeB", "storeC", "storeD"]
    assert res.rhos.index[3] == "eggs"
    assert abs(res.alphas.sum()) < 1e-12


@pytest.mark.parametrize("key", ["grocery", "obrienkaiser_pre", "hf_above_one"])
def test_matches_car_univariate_and_sphericity(key, ref, groceries):
    block = ref[key]
    X = groceries if key == "grocery" else pd.DataFrame(block["data"])[block["columns"]]
    res = aov1rm(X)
    car = block["car"]
    assert close(res.F, car["univariate"]["F"][1])
    assert close(res.p, car["univariate"]["p"][1])
    assert close(res.eps_gg, car["gg_eps"])
    assert close(res.p_gg, car["p_gg"])
    assert close(res.eps_hf, car["hf_eps"])  # uncapped in both
    assert close(res.p_hf, car["p_hf"])  # car caps HF at 1 for the p-value
    assert close(res.mauchly_W, car["mauchly_W"])
    assert close(res.mauchly_p, car["mauchly_p"])


def test_hf_above_one_cap_conventions(ref):
    block = ref["hf_above_one"]
    X = pd.DataFrame(block["data"])
    capped = aov1rm(X)
    notes = aov1rm(X, cap_hf=False)
    assert capped.eps_hf > 1 and close(capped.eps_hf, notes.eps_hf)
    # car: min(1, HF) -> the uncorrected p-value
    assert close(capped.p_hf, capped.p)
    # the notes' aov1rm: uncapped HF df
    assert close(notes.p_hf, block["notes_aov1rm"]["p_hf"])
    assert notes.p_hf < notes.p


@pytest.mark.parametrize("key", ["obrienkaiser_pre", "hf_above_one"])
def test_notes_function_on_other_data(key, ref):
    block = ref[key]
    res = aov1rm(pd.DataFrame(block["data"])[block["columns"]], cap_hf=False)
    r = block["notes_aov1rm"]
    for name in ["mu", "F", "p", "p_gg", "p_hf", "eps_gg", "eps_hf", "sigma2_e", "sigma2_rho"]:
        assert close(getattr(res, name), r[name]), name


def test_array_input_same_as_dataframe(groceries):
    Y = groceries[["storeA", "storeB", "storeC", "storeD"]].to_numpy()
    res_arr = aov1rm(Y)
    res_df = aov1rm(groceries)
    assert close(res_arr.F, res_df.F)
    assert list(res_arr.alphas.index) == [1, 2, 3, 4]
    assert len(res_arr.rhos) == 10


def test_numeric_subject_column_is_labels_not_a_level(groceries):
    X = groceries[["storeA", "storeB", "storeC", "storeD"]].copy()
    X.insert(0, "subject", np.arange(101, 111))
    res = aov1rm(X)
    assert res.a == 4 and list(res.rhos.index[:2]) == [101, 102]
    assert res.F == pytest.approx(4.344209, rel=1e-6)


def test_result_is_immutable(groceries):
    res = aov1rm(groceries)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.F = 1.0


def test_str_and_html_show_key_numbers(groceries):
    res = aov1rm(groceries)
    text = str(res)
    for piece in ["Subjects", "Treatment", "Error", "Total", "4.34421", "0.639109", "0.808229"]:
        assert piece in text
    html = res._repr_html_()
    assert "<table" in html and "0.0309308" in html


# --- Box's epsilon and Huynh-Feldt -----------------------------------------

def test_box_epsilon_bounds():
    a = 5
    compound_symmetry = 2.0 * np.eye(a) + 0.7
    assert box_epsilon(compound_symmetry) == pytest.approx(1.0)
    # rank-one double-centred matrix: the lower bound 1/(a-1)
    v = np.array([1.0, -1.0, 0.0, 0.0, 0.0])
    assert box_epsilon(np.outer(v, v)) == pytest.approx(1 / (a - 1))


def test_box_epsilon_matches_trace_formula(groceries):
    Y = groceries[["storeA", "storeB", "storeC", "storeD"]].to_numpy()
    S = np.cov(Y, rowvar=False)
    a = 4
    J = np.eye(a) - 1 / a
    D = J @ S @ J
    gg = np.trace(D) ** 2 / ((a - 1) * np.sum(D**2))  # the notes' R code
    assert box_epsilon(S) == pytest.approx(gg, rel=shared.ROUNDING_RTOL)


def test_box_epsilon_bad_input():
    with pytest.raises(ValueError, match="square"):
        box_epsilon(np.ones((2, 3)))
    with pytest.raises(ValueError, match="symmetric"):
        box_epsilon(np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="zero"):
        box_epsilon(np.ones((3, 3)))


def test_huynh_feldt_formula_and_n2():
    assert huynh_feldt_epsilon(0.6391090123, 10, 4) == pytest.approx(0.8082292499, rel=1e-8)
    assert np.isnan(huynh_feldt_epsilon(1 / 3, 2, 4))


def test_orthonormal_contrasts():
    P = orthonormal_contrasts(5)
    np.testing.assert_allclose(P.T @ P, np.eye(4), atol=shared.ZERO_ATOL)
    np.testing.assert_allclose(P.sum(axis=0), 0, atol=shared.ZERO_ATOL)


def test_mauchly_function_matches_car(ref):
    block = ref["obrienkaiser_pre"]
    m = mauchly(pd.DataFrame(block["data"]))
    assert close(m.W, block["car"]["mauchly_W"])
    assert close(m.p, block["car"]["mauchly_p"])
    assert m.df == 4 * 5 // 2 - 1


def test_mauchly_undefined_when_too_few_subjects():
    rng = np.random.default_rng(1)
    m = mauchly(rng.normal(size=(3, 5)))  # n - 1 = 2 < a - 1 = 4
    assert m.W == 0.0 and np.isnan(m.p)


def test_two_subjects_runs_and_says_what_is_undefined():
    with pytest.warns(UserWarning, match=r"Huynh-Feldt epsilon and p and Mauchly's test: undefined \(NaN\)"):
        res = aov1rm(np.array([[1.0, 2.0, 4.0], [2.0, 2.5, 3.0]]))
    assert np.isfinite(res.F) and np.isnan(res.eps_hf) and np.isnan(res.p_hf)


# --- bad input ---------------------------------------------------------------

def test_missing_cell_names_subject_and_level(groceries):
    X = groceries.copy()
    X.loc[3, "storeB"] = np.nan
    with pytest.raises(ValueError, match=r"missing.*'eggs'.*'storeB'"):
        aov1rm(X)


def test_infinite_value_named(groceries):
    X = groceries.copy()
    X.loc[0, "storeC"] = np.inf
    with pytest.raises(ValueError, match=r"infinite.*'lettuce'.*'storeC'"):
        aov1rm(X)


def test_non_numeric_columns_named(groceries):
    X = groceries.copy()
    X["storeB"] = X["storeB"].astype(str)
    X["note"] = "x"
    with pytest.raises(ValueError, match=r"non-numeric.*storeB, note"):
        aov1rm(X)


def test_too_few_levels_and_subjects(groceries):
    with pytest.raises(ValueError, match="at least 2 treatment levels"):
        aov1rm(groceries[["subject", "storeA"]])
    with pytest.raises(ValueError, match="at least 2 subjects"):
        aov1rm(groceries.iloc[:1])


def test_wrong_types():
    with pytest.raises(TypeError, match="DataFrame.*list"):
        aov1rm([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="2-D"):
        aov1rm(np.arange(6.0))
    with pytest.raises(ValueError, match="numbers"):
        aov1rm(np.array([["a", "b"], ["c", "d"]]))


def test_exactly_additive_data_is_explained():
    Y = np.add.outer([0.0, 1.0, 5.0], [1.0, 2.0, 4.0])
    with pytest.raises(ValueError, match="SSE is zero"):
        aov1rm(Y)
